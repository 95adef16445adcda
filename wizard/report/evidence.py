"""Evidence in the Markdown report: one renderer per kind of :data:`wizard.model.evidence.Body`.

Each renderer gets the typed member and returns the report's lines for it (after the bold
title line, which is common); none reads an evidence's raw ``data``. What a kind does not
model (its ``extra``) is printed folded as JSON, except for facts, whose structured data
only repeats their title for machines (the session JSON has it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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
)
from wizard.report.mermaid import sequence_diagram
from wizard.report.sanitize import cell, clean, code, code_cell, fenced, html, inline
from wizard.report.text import block, payload, short_line, short_lines


def _log(ev: LogExcerpt, reasons: list[str]) -> list[str]:
    if not ev.text:
        return []
    text = clean(ev.text).rstrip("\n")
    if not ev.highlight:
        return [fenced(short_lines(text)), ""]
    marks = set(ev.highlight)
    # A gutter marks the matching lines: "> " matched, two spaces for context.
    lines = [("> " if i in marks else "  ") + short_line(line) for i, line in enumerate(text.split("\n"))]
    return [fenced("\n".join(lines)), ""]


def _num(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    if signed and isinstance(value, (int, float)) and value > 0:
        return f"**+{value:g}**" if isinstance(value, float) else f"**+{value}**"
    return cell(str(value))


def _counters(ev: Counters, reasons: list[str]) -> list[str]:
    out: list[str] = []
    if ev.counters:
        out += ["| counter | before | after | delta |", "|---|---:|---:|---:|"]
        out += [f"| {code_cell(c.name)} | {_num(c.before)} | {_num(c.after)} | {_num(c.delta, signed=True)} |"
                for c in ev.counters]
        out.append("")
    if ev.text:
        out += block(ev.text)
    return out


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _grid(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cell(_scalar(v)) for v in row) + " |" for row in rows]


def _table(ev: Table, reasons: list[str]) -> list[str]:
    if ev.columns:
        return [*_grid(ev.columns, ev.rows), ""]
    return block(ev.text) if ev.text else []


def _histogram(ev: Histogram, reasons: list[str]) -> list[str]:
    out = block(ev.text) if ev.text else []
    if ev.columns:
        out += [*_grid(ev.columns, ev.rows), ""]
    return out


def _rules(ev: Rules, reasons: list[str]) -> list[str]:
    if not ev.text.strip():
        return ["(no rules: the ruleset is empty)", ""]
    if ev.whole:
        lines = ev.text.count("\n") + 1
        return [f"<details><summary>{html(ev.title or 'ruleset')} ({lines} lines)</summary>", "",
                fenced(short_lines(ev.text)), "", "</details>", ""]
    return [fenced(short_lines(ev.text)), ""]


def _ladder(ev: Ladder, reasons: list[str]) -> list[str]:
    events = [e.model_dump(exclude_none=True) for e in ev.events]
    if reasons:
        # The server kernel's reason beside each RST the server sent.
        for e in events:
            if e.get("src") == "server" and "RST" in str(e.get("label", "")):
                note = str(e.get("note") or "")
                e["note"] = (note + " — " if note else "") + "server kernel's reason: " + ", ".join(reasons)
    diagram = sequence_diagram({"lanes": ev.lanes, "events": events})
    out = [fenced(diagram, "mermaid"), ""] if diagram is not None else []
    return out + (block(ev.text) if ev.text else [])


def _traceback(ev: Traceback, reasons: list[str]) -> list[str]:
    return [f"<details><summary>{html(ev.title or 'traceback')}</summary>", "", fenced(ev.text), "",
            "</details>", ""]


def _fact(ev: Fact, reasons: list[str]) -> list[str]:
    if not ev.text:
        return []
    if "payload" in ev.extra:  # what a probe sent: its head, length and hash
        return payload(ev.text)
    if ev.as_ == "packets":
        lines = ev.text.count("\n") + 1
        return [f"<details><summary>the packets ({lines} lines)</summary>", "", *block(ev.text), "</details>", ""]
    return block(ev.text)


RENDERERS: dict[str, Callable[[Any, list[str]], list[str]]] = {
    "log": _log, "counters": _counters, "table": _table, "histogram": _histogram, "rules": _rules,
    "ladder": _ladder, "traceback": _traceback, "fact": _fact,
}


def _extra(typed: Body) -> list[str]:
    # A fact's structured data repeats its title for machines: the JSON session has it,
    # the report stays readable.
    if isinstance(typed, Fact) or not typed.extra:
        return []
    dumped = json.dumps(typed.extra, indent=2, ensure_ascii=False, default=str)
    return ["<details><summary>data</summary>", "", fenced(dumped, "json"), "", "</details>", ""]


def render_evidence(ev: Evidence, reasons: list[str] | None = None) -> list[str]:
    """The report's lines for one piece of evidence: its title and source, then its kind's view.
    ``reasons`` are the server kernel's reasons for its resets, set beside a ladder's RSTs."""
    typed = body(ev)
    head = f"**{inline(typed.title)}**" if typed.title else "**evidence**"
    if typed.source:
        head += f" — from {code(typed.source)}"
    out = [head, ""] if not isinstance(typed, Traceback) or typed.source else []
    return out + RENDERERS[typed.kind](typed, reasons or []) + _extra(typed)
