"""docs/causes.md is the project's own account of its causes, generated from the checklist,
and no test depends on anything outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from wizard.engine.discovery import load
from wizard.report.causes import REGENERATE, causes_markdown, shipped

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "causes.md"


def test_docs_causes_md_is_what_the_shipped_checklist_gives() -> None:
    assert DOC.is_file(), f"docs/causes.md is missing: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == shipped(), f"docs/causes.md is stale: {REGENERATE}"


def test_every_cause_has_its_section_with_each_weight_and_the_checks_raising_it() -> None:
    checklist = load()
    text = causes_markdown(checklist, {"listener.absent": ["listen.sockets"]})
    for cause in checklist.causes:
        assert f"## `{cause.id}`: {cause.title}" in text
    port_closed = text.split("## `port-closed`")[1].split("\n## `")[0]
    assert re.search(r"\| `listener\.absent` \| [\d.]+ \| `listen\.sockets` \|", port_closed)
    threshold = checklist.model_copy(update={"threshold": 0.8})
    assert "at or above 80%" in causes_markdown(threshold, {})


def test_no_test_reads_a_file_outside_the_repository() -> None:
    outside = re.compile("|".join([r"\.\./" + "shared", "shared" + r"[\"']?\s*/\s*[\"']?" + "design",
                                   "/work/" + "shared", r"parents\[\d\]\.parent"]))
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "tests").rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if outside.search(line)]
    assert found == []
