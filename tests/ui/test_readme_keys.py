"""README documents the TUI's keys as the help screen lists them: the two tables cannot drift."""

from __future__ import annotations

from pathlib import Path

from wizard.ui.screens.modals import HELP

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_key_row_of_the_help_screen_is_in_the_readme() -> None:
    rows = [line for line in HELP.splitlines() if line.startswith("| ") and "|---" not in line]
    keys = [r for r in rows[: rows.index("| step | what it does |")] if r != "| key | does |"]
    assert len(keys) >= 10
    readme = README.read_text(encoding="utf-8")
    assert [r for r in keys if r not in readme] == []
