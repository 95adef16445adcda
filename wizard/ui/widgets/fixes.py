"""A skipped check's fix in the TUI: each way on its own line, the command to paste alone and
what it is for beside it (wizard.model.wording.fix_ways, as the console and the report), the
wizard's own options as this session's command line with them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from wizard.model.wording import fix_ways

FIRST, OTHER = "to run it: ", "       or: "


def rerun_of(session: Any) -> list[str] | None:
    """The session's `diagnose` command line (after the program's name), None without one."""
    return None if session is None else list(session.rerun_argv())


def fix_text(fix: str, rerun: Sequence[str] | None, indent: str = "    ") -> Text:
    """The ways, each on a line of its own after a line break and ``indent``: the command
    bold (to copy), its purpose dim after it, prose plain."""
    text = Text()
    for i, (command, words) in enumerate(fix_ways(fix, rerun)):
        text.append("\n" + indent)  # the indent unstyled: a screenshot draws it in place
        text.append(FIRST if i == 0 else OTHER, style="dim")
        text.append(command or words, style="bold cyan" if command else "cyan")
        if command and words:
            text.append(f"  ({words})", style="dim")
    return text


def fix_plain(fix: str, rerun: Sequence[str] | None) -> list[str]:
    """The same lines as plain text, for the clipboard: what a command is for after ``# ``."""
    return [(FIRST if i == 0 else OTHER).strip() + " " + (f"{command}  # {words}" if command and words
                                                           else command or words)
            for i, (command, words) in enumerate(fix_ways(fix, rerun))]
