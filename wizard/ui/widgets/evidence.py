"""Evidence views: log excerpts with matches highlighted, rule and counter tables, ladders.

Each kind of evidence gets the view that reads best at 3 a.m., rendered from its typed
member of :data:`wizard.model.evidence.Body` (never by reading the raw ``data``): verbatim
text keeps its lines and marks the ones that matched; tables, counters and histograms
become a DataTable; a handshake becomes a ladder diagram with client and server columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import HorizontalScroll, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

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
)
from wizard.ui.widgets.ladder import Ladder as LadderView

MAX_LINES = 60
COUNTER_COLUMNS = ["counter", "before", "after", "delta"]


def _delta(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:+g}" if value else "0"


def _cell(value: Any) -> Any:
    return "" if value is None else value


def counter_rows(ev: Counters) -> list[list[Any]]:
    return [[c.name, _cell(c.before), _cell(c.after), _delta(c.delta)] for c in ev.counters]


def evidence_text(ev: Any) -> str:
    """Plain text of one piece of evidence, as it is copied to the clipboard."""
    typed = body(ev)
    parts = [typed.title]
    if typed.source:
        parts.append(f"source: {typed.source}")
    text = getattr(typed, "text", "")
    if text:
        parts.append(text.rstrip("\n"))
        return "\n".join(parts)
    grid: tuple[list[str], list[list[Any]]] | None = None
    if isinstance(typed, (Table, Histogram)) and typed.columns:
        grid = typed.columns, typed.rows
    elif isinstance(typed, Counters) and typed.counters:
        grid = COUNTER_COLUMNS, counter_rows(typed)
    if grid is not None:
        parts.append("\t".join(grid[0]))
        parts.extend("\t".join(str(c) for c in row) for row in grid[1])
    elif isinstance(typed, Ladder):
        parts.extend(f"{'' if e.ms is None else f'{e.ms:g}'} ms {e.src} -> {e.dst} {e.label}" for e in typed.events)
    return "\n".join(parts)


def _verbatim(text: str, highlight: set[int], numbered: bool = False, red: bool = False,
              wrap: bool = True) -> Static:
    lines = text.rstrip("\n").splitlines()
    out = Text(no_wrap=not wrap, overflow="fold" if wrap else "ignore")
    shown = lines[:MAX_LINES]
    width = len(str(len(shown)))
    for index, line in enumerate(shown):
        hit = index in highlight
        out.append("▶ " if hit else "  ", style="bold yellow" if hit else "")
        if numbered:
            out.append(f"{index + 1:>{width}} ", style="dim")
        out.append(line, style="bold black on yellow" if hit else ("red" if red else ""))
        out.append("\n")
    if len(lines) > MAX_LINES:
        out.append(f"… {len(lines) - MAX_LINES} more lines (in the report and the copy)", style="dim italic")
    out.rstrip()
    return Static(out, classes="verbatim")


def _sideways(text: str, highlight: set[int] | None = None) -> Widget:
    """Text laid out in columns (a packet table, a command's output): its rows unwrapped,
    scrolled sideways, so that a column stays a column at any width."""
    return HorizontalScroll(_verbatim(text, highlight or set(), wrap=False), classes="sideways")


def _table(columns: list[str], rows: list[list[Any]], marked: set[int], mark_column: bool = False) -> DataTable:
    table: DataTable = DataTable(cursor_type="row", zebra_stripes=True, classes="evidence-table")
    if not mark_column:
        columns = ["", *columns]
    table.add_columns(*columns)
    for index, row in enumerate(rows):
        hit = index in marked
        mark = Text("▶ match", style="bold") if hit else Text("")
        cells = [Text(str(c), style="bold" if hit else "") for c in row]
        table.add_row(mark, *cells)
    return table


def _log(ev: LogExcerpt) -> Iterator[Widget]:
    if ev.text:
        yield _verbatim(ev.text, set(ev.highlight), numbered=True)


def _fact(ev: Fact) -> Iterator[Widget]:
    if ev.text and ev.as_ in ("packets", "command"):
        yield _sideways(ev.text, set(ev.highlight))
    elif ev.text:
        yield _verbatim(ev.text, set(ev.highlight), numbered=ev.as_ == "file")


def _traceback(ev: Traceback) -> Iterator[Widget]:
    if ev.text:
        yield _verbatim(ev.text, set(), red=True)


def _grid(ev: Table) -> Iterator[Widget]:
    if ev.columns:
        yield _table(ev.columns, ev.rows, set(ev.marked))
    if ev.text:
        yield _sideways(ev.text)


def _histogram(ev: Histogram) -> Iterator[Widget]:
    if ev.columns:
        yield _table(ev.columns, ev.rows, set())
    if ev.text:
        yield _sideways(ev.text)


def _counters(ev: Counters) -> Iterator[Widget]:
    if ev.counters:
        yield _table(COUNTER_COLUMNS, counter_rows(ev), set(ev.moved()))
    if ev.text:
        yield _sideways(ev.text)


def _rules(ev: Rules) -> Iterator[Widget]:
    if ev.table is not None and ev.table.columns:
        yield _table(ev.table.columns, ev.table.rows, set(ev.table.marked))
    elif ev.text:
        yield _table(["", "rule"], [[line] for line in ev.text.splitlines()], set(ev.highlight), mark_column=True)


def _ladder(ev: Ladder) -> Iterator[Widget]:
    if ev.events:
        yield HorizontalScroll(LadderView(ev.lanes or ["client", "server"],
                                          [e.model_dump(exclude_none=True) for e in ev.events]),
                               classes="sideways")
    elif ev.text:
        yield _verbatim(ev.text, set())


VIEWS: dict[str, Callable[[Any], Iterator[Widget]]] = {
    "log": _log, "fact": _fact, "traceback": _traceback, "table": _grid, "histogram": _histogram,
    "counters": _counters, "rules": _rules, "ladder": _ladder,
}


class EvidenceView(Vertical):
    """One piece of evidence: its title, its source, then the view for its kind."""

    def __init__(self, evidence: Any) -> None:
        super().__init__(classes=f"evidence -{evidence.kind}")
        self.evidence = evidence
        self.typed: Body = body(evidence)

    def compose(self) -> ComposeResult:
        ev = self.typed
        head = Text()
        head.append("• ", style="bold")
        head.append(ev.title, style="bold")
        if ev.source:
            head.append(f"   {ev.source}", style="dim italic")
        yield Static(head, classes="evidence-title")
        yield from VIEWS[ev.kind](ev)
