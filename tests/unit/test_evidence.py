"""Evidence as a tagged union: every kind a check records is read once, by the model, into
one typed member; the report and the TUI each have one renderer per member and read no
evidence's raw ``data`` themselves."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.containers import HorizontalScroll
from textual.widgets import DataTable, Static

from wizard.model import Evidence
from wizard.model.evidence import (
    Body,
    Counters,
    Fact,
    Histogram,
    Ladder,
    LogExcerpt,
    Rules,
    Table,
    Traceback,
    body,
    rst_reasons,
)
from wizard.model.results import EvidenceKind
from wizard.report.evidence import RENDERERS, render_evidence
from wizard.ui.widgets.evidence import VIEWS, EvidenceView, evidence_text
from wizard.ui.widgets.ladder import Ladder as LadderView

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = typing.get_args(typing.get_args(Body)[0])
SAMPLES = {
    "log": Evidence(kind="log", title="app.log", source="/var/log/app.log", text="a\nreset by peer\nb",
                    highlight=[1], data={"first_line": 10}),
    "table": Evidence(kind="table", title="attempts", data={"columns": ["n", "outcome"],
                                                          "rows": [[1, "ok"], [2, "reset"]], "match": [1]}),
    "counters": Evidence(kind="counters", title="counters", data={"before": {"OutRsts": 3, "InSegs": 9},
                                                                 "after": {"OutRsts": 5, "InSegs": 9}}),
    "rules": Evidence(kind="rules", title="the whole ruleset", text="table inet f {\n}", data={"whole": True}),
    "ladder": Evidence(kind="ladder", title="probe", data={"lanes": ["client", "server"], "events": [
        {"ms": 0, "src": "client", "dst": "server", "label": "SYN"},
        {"ms": 1.5, "src": "server", "dst": "client", "label": "RST", "note": "abort"}]}),
    "fact": Evidence(kind="command", title="ss -ltn", source="ss -ltn", text="LISTEN 0 64 *:80"),
    "traceback": Evidence(kind="traceback", title="traceback", text="Traceback\nKeyError: 'ttl'"),
    "histogram": Evidence(kind="histogram", title="matches over time", text="reset ▁▃█",
                          data={"columns": ["from", "to", "reset"], "rows": [["t0", "t1", 3]]}),
}


def test_every_recorded_kind_is_one_member_and_every_member_has_one_renderer_in_report_and_tui() -> None:
    kinds = {m.model_fields["kind"].default for m in MEMBERS}
    assert kinds == {"log", "table", "counters", "rules", "ladder", "fact", "traceback", "histogram"}
    assert set(RENDERERS) == kinds == set(VIEWS)
    for recorded in typing.get_args(EvidenceKind):
        assert body(Evidence(kind=recorded, title="t")).kind in kinds
    assert {name: type(body(ev)) for name, ev in SAMPLES.items()} == {
        "log": LogExcerpt, "table": Table, "counters": Counters, "rules": Rules, "ladder": Ladder,
        "fact": Fact, "traceback": Traceback, "histogram": Histogram}


def test_counters_are_read_from_either_shape_in_the_order_the_check_wrote_them() -> None:
    pairs = body(SAMPLES["counters"])
    named = body(Evidence(kind="counters", title="c", data={
        "TcpExt.TCPAbortOnClose": {"before": 4, "after": 5, "delta": 1}, "probe": {"kind": "reset"}}))
    assert isinstance(pairs, Counters) and isinstance(named, Counters)
    assert [(c.name, c.before, c.after, c.delta) for c in pairs.counters] == [("OutRsts", 3, 5, 2), ("InSegs", 9, 9, 0)]
    assert pairs.moved() == [0]
    assert [c.name for c in named.counters] == ["TcpExt.TCPAbortOnClose"] and named.extra == {"probe": {"kind": "reset"}}


def test_a_table_of_dict_rows_takes_its_columns_from_the_keys_and_keeps_the_rest_as_extra() -> None:
    typed = body(Evidence(kind="table", title="t", data={"rows": [{"a": 1}, {"a": 2, "b": 3}], "states": {"x": 1}}))
    assert isinstance(typed, Table)
    assert typed.columns == ["a", "b"] and typed.rows == [[1, ""], [2, 3]] and typed.extra == {"states": {"x": 1}}
    assert body(SAMPLES["table"]).marked == [1]  # type: ignore[union-attr]


def test_a_malformed_ladder_event_is_left_out_not_a_crash() -> None:
    typed = body(Evidence(kind="ladder", title="l", data={"events": [{"ms": "soon"}, "x", {"ms": 1, "src": "client"}]}))
    assert isinstance(typed, Ladder) and [e.ms for e in typed.events] == [1]


def test_the_kernels_rst_reasons_are_typed_too() -> None:
    ev = Evidence(kind="table", title="resets", data={"rst_reasons": [
        {"flow": "10.0.0.2:80->10.0.0.1:5000", "reason": "NO_SOCKET", "comm": "python", "pid": 7}, "junk"]})
    assert [(r.flow, r.reason, r.comm, r.pid) for r in rst_reasons(ev)] == [
        ("10.0.0.2:80->10.0.0.1:5000", "NO_SOCKET", "python", 7)]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_report_renders_each_kind_with_its_title_and_content(name: str) -> None:
    text = "\n".join(render_evidence(SAMPLES[name]))
    assert (name == "traceback") or f"**{SAMPLES[name].title}**" in text
    expect = {"log": "> reset by peer", "table": "| 2 | reset |", "counters": "| `OutRsts` | 3 | 5 | **+2** |",
              "rules": "<details><summary>the whole ruleset (2 lines)</summary>", "ladder": "```mermaid",
              "fact": "LISTEN 0 64 *:80", "traceback": "KeyError: 'ttl'", "histogram": "reset ▁▃█"}[name]
    assert expect in text


def _reads_data(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "data"]


def test_neither_the_report_nor_the_tuis_evidence_view_reads_an_evidences_raw_data() -> None:
    # merge.py reads probe tables to compare hosts: it renders no evidence.
    sources = [ROOT / "wizard/report/markdown.py", ROOT / "wizard/report/evidence.py",
               ROOT / "wizard/ui/widgets/evidence.py"]
    assert {str(p.relative_to(ROOT)): _reads_data(p) for p in sources if _reads_data(p)} == {}


class _Host(App[None]):
    def __init__(self, ev: Evidence) -> None:
        super().__init__()
        self.ev = ev

    def compose(self) -> ComposeResult:
        yield EvidenceView(self.ev)


WIDGET = {"log": Static, "table": DataTable, "counters": DataTable, "rules": DataTable,
          # a command's output and a ladder are in columns: a view that scrolls sideways around them
          "ladder": HorizontalScroll,
          "fact": HorizontalScroll, "traceback": Static, "histogram": DataTable}


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_the_tui_renders_each_kind_from_the_typed_model(name: str) -> None:
    app = _Host(SAMPLES[name])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        view = app.query_one(EvidenceView)
        assert view.typed.kind == name
        shown = [w for w in view.children if not w.has_class("evidence-title")]
        assert shown and isinstance(shown[0], WIDGET[name])
        if name == "ladder":
            assert isinstance(shown[0].children[0], LadderView)
        if name == "fact":
            assert "LISTEN 0 64" in str(shown[0].query_one(Static).render())
        if name == "counters":
            table = app.query_one(DataTable)
            assert [str(c) for c in table.get_row_at(0)][1:] == ["OutRsts", "3", "5", "+2"]
    assert SAMPLES[name].title in evidence_text(SAMPLES[name])
