"""Evidence views: log excerpts with matches highlighted, rule and counter tables, ladders.

Each Evidence kind gets the view that reads best at 3 a.m.: verbatim text keeps its lines
and marks the ones that matched; structured data becomes a DataTable; a handshake becomes
a ladder diagram with client and server columns.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from wizard.ui.widgets.ladder import Ladder

MAX_LINES = 60


def evidence_text(ev: Any) -> str:
    """Plain text of one piece of evidence, as it is copied to the clipboard."""
    parts = [ev.title]
    if ev.source:
        parts.append(f"source: {ev.source}")
    if ev.text:
        parts.append(ev.text.rstrip("\n"))
    if ev.data and not ev.text:
        rows = table_rows(ev)
        if rows:
            columns, body, _ = rows
            parts.append("\t".join(columns))
            parts.extend("\t".join(str(c) for c in row) for row in body)
        elif ev.kind == "ladder":
            parts.extend(f"{e.get('ms', '')} ms {e.get('src', '')} -> {e.get('dst', '')} {e.get('label', '')}"
                         for e in ev.data.get("events", []))
    return "\n".join(parts)


def _delta(before: Any, after: Any) -> str:
    try:
        value = float(after) - float(before)
    except (TypeError, ValueError):
        return ""
    text = f"{value:+g}"
    return text if value else "0"


def table_rows(ev: Any) -> tuple[list[str], list[list[Any]], set[int]] | None:
    """Columns, rows and the indexes of rows to mark, when the evidence is tabular."""
    data = ev.data or {}
    marked = {int(i) for i in data.get("match", data.get("marked", [])) if str(i).isdigit()}
    if isinstance(data.get("columns"), list) and isinstance(data.get("rows"), list):
        rows = [list(r.values()) if isinstance(r, dict) else list(r) for r in data["rows"]]
        return [str(c) for c in data["columns"]], rows, marked
    if isinstance(data.get("before"), dict) and isinstance(data.get("after"), dict):
        before, after = data["before"], data["after"]
        names = list(dict.fromkeys([*before, *after]))
        rows = [[n, before.get(n, ""), after.get(n, ""), _delta(before.get(n), after.get(n))] for n in names]
        moved = {i for i, r in enumerate(rows) if r[3] not in ("", "0")}
        return ["counter", "before", "after", "delta"], rows, marked or moved
    counters = data.get("counters")
    if isinstance(counters, dict) and all(isinstance(v, dict) for v in counters.values()):
        rows = [[n, v.get("before", ""), v.get("after", ""),
                 v.get("delta", _delta(v.get("before"), v.get("after")))] for n, v in counters.items()]
        moved = {i for i, r in enumerate(rows) if str(r[3]) not in ("", "0")}
        return ["counter", "before", "after", "delta"], rows, marked or moved
    return None


class EvidenceView(Vertical):
    """One piece of evidence: its title, its source, then the view for its kind."""

    def __init__(self, evidence: Any) -> None:
        super().__init__(classes=f"evidence -{evidence.kind}")
        self.evidence = evidence

    def compose(self) -> ComposeResult:
        ev = self.evidence
        head = Text()
        head.append("• ", style="bold")
        head.append(ev.title, style="bold")
        if ev.source:
            head.append(f"   {ev.source}", style="dim italic")
        yield Static(head, classes="evidence-title")
        if ev.kind == "ladder" and ev.data.get("events"):
            yield Ladder(ev.data.get("lanes") or ["client", "server"], ev.data["events"])
            return
        rows = table_rows(ev)
        if rows is not None:
            yield _table(*rows)
        elif ev.kind == "rules" and ev.text:
            yield _table(["", "rule"], [[line] for line in ev.text.splitlines()], set(ev.highlight),
                         mark_column=True)
        if ev.text and not (ev.kind == "rules" and rows is None):
            yield Static(_verbatim(ev.text, set(ev.highlight), ev.kind), classes="verbatim")


def _verbatim(text: str, highlight: set[int], kind: str) -> Text:
    lines = text.rstrip("\n").splitlines()
    out = Text(no_wrap=False, overflow="fold")
    shown = lines[:MAX_LINES]
    width = len(str(len(shown)))
    for index, line in enumerate(shown):
        hit = index in highlight
        out.append("▶ " if hit else "  ", style="bold yellow" if hit else "")
        if kind in ("log", "file"):
            out.append(f"{index + 1:>{width}} ", style="dim")
        out.append(line, style="bold black on yellow" if hit else ("red" if kind == "traceback" else ""))
        out.append("\n")
    if len(lines) > MAX_LINES:
        out.append(f"… {len(lines) - MAX_LINES} more lines (in the report and the copy)", style="dim italic")
    out.rstrip()
    return out


def _table(columns: list[str], rows: list[list[Any]], marked: set[int],
           mark_column: bool = False) -> DataTable:
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
