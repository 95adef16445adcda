"""The Session as a Markdown incident report, postmortem style: verdict first, then the evidence.

Pure and deterministic: every time comes from the session, nothing reads a clock. All text
from the systems examined goes through :mod:`wizard.report.sanitize`; text authored in the
checklist (cause summaries, remedies) is kept as Markdown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from wizard.model import STEP_IDS, CheckResult, Evidence, Finding, Session, Status, StepResult
from wizard.report.mermaid import sequence_diagram
from wizard.report.sanitize import authored, cell, clean, code, code_cell, fenced, html, inline

NO_RESET = "no-reset-observed"
STATUS_LABEL = {Status.PASS: "pass", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skipped",
                Status.ERROR: "ERROR"}

Describe = Callable[[str], str]


def _pct(confidence: float) -> str:
    return f"{confidence * 100:.0f} %"


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _diagnosed(session: Session, threshold: float) -> list[Finding]:
    return [f for f in session.diagnosis if f.cause != NO_RESET and f.confidence >= threshold]


def _title_of(session: Session, cause: str) -> str:
    found = next((f for f in session.diagnosis if f.cause == cause), None)
    return found.title if found and found.title else cause


# -- sections -------------------------------------------------------------------------


def _summary(session: Session, threshold: float) -> list[str]:
    out = ["## Summary and verdict", ""]
    if session.interrupted:
        missing = [s for s in STEP_IDS if s not in {st.id for st in session.steps if st.checks}]
        out += ["**The run was interrupted before it finished.** What is below is what had been gathered"
                + (f"; steps not run: {', '.join(missing)}." if missing else "."), ""]
    diagnosed = _diagnosed(session, threshold)
    top = diagnosed[0] if diagnosed else None
    if top is None:
        lead = session.diagnosis[0] if session.diagnosis else None
        out.append("**Verdict: no cause of the resets was found.**")
        if lead is not None and lead.cause == NO_RESET:
            out += ["", f"{authored(lead.summary)}"]
        candidates = [f for f in session.diagnosis if f.cause != NO_RESET]
        if candidates:
            best = candidates[0]
            out += ["", f"The strongest candidate, {code(best.cause)} ({inline(best.title or best.cause)}), "
                        f"reached only {_pct(best.confidence)}, below the {_pct(threshold)} needed to call it."]
        out.append("")
        return out
    out += [f"**Verdict: {code(top.cause)} — {inline(top.title or top.cause)}** "
            f"(confidence {_pct(top.confidence)})", "", authored(top.summary), ""]
    if top.evidence:
        out += ["Decisive evidence:", ""]
        out += [f"- {inline(line)}" for line in top.evidence[:5]]
        if len(top.evidence) > 5:
            out.append(f"- … and {len(top.evidence) - 5} more under Ranked causes")
        out.append("")
    close = session.close_call
    if close is not None:
        a, b = close.causes
        conf = {f.cause: f.confidence for f in session.diagnosis}
        out += [f"**Close call:** {code(a)} ({_pct(conf.get(a, 0.0))}) and {code(b)} ({_pct(conf.get(b, 0.0))}) "
                f"are too close to tell apart with this evidence. To separate them: {authored(close.separate_with)}", ""]
    others = diagnosed[1:]
    if others and close is None:
        out += ["Also diagnosed: " + ", ".join(f"{code(f.cause)} ({_pct(f.confidence)})" for f in others) + ".", ""]
    return out


def _inputs(session: Session) -> list[str]:
    t, a, c = session.target, session.answers, session.context
    rows: list[tuple[str, str]] = [("Target", code_cell(t.display()))]
    if t.scheme:
        rows.append(("URL", code_cell(f"{t.scheme}://{t.display()}{t.path or ''}")))
    rows.append(("Resolved addresses", ", ".join(code_cell(x) for x in t.addresses) or "none recorded"))
    rows.append(("Client context", code_cell(c.client)))
    rows.append(("Server context", code_cell(c.server)))
    rows.append(("Side that saw the error", inline(a.side)))
    rows.append(("Reset seen at", _time(a.at) if a.at else "not given (the last window before the run)"))
    rows.append(("Log window", f"± {_duration(a.window_s / 2)}" if a.at else f"the last {_duration(a.window_s)}"))
    if a.logs:
        rows.append(("Logs", ", ".join(code_cell(p) for p in a.logs)))
    if a.journal:
        rows.append(("Journal units", ", ".join(code_cell(u) for u in a.journal)))
    rows.append(("Probe", f"{a.attempts} attempts, timeout {a.timeout_s:g} s, hold {a.hold_s:g} s, "
                          f"capture {'on' if a.capture else 'off'}"))
    out = ["## Inputs", "", "| | |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in rows]
    out.append("")
    if a.error:
        out += ["The error as it was seen:", "", fenced(a.error), ""]
    if a.payload:
        out += ["The probe payload:", "", fenced(a.payload), ""]
    return out


def _timeline(session: Session) -> list[str]:
    events: list[tuple[datetime, int, str]] = []
    if session.answers.at:
        events.append((session.answers.at, 0, "**reset reported** (the time given with --at)"))
    events.append((session.started_at, 1, "diagnosis started"))
    for step in session.steps:
        for check in step.checks:
            if check.started_at is None:
                continue
            events.append((check.started_at, 2,
                           f"{code_cell(check.id)} {inline(check.title)} ({step.id}): "
                           f"{STATUS_LABEL[check.status]} after {check.duration_ms} ms"))
    if session.finished_at:
        events.append((session.finished_at, 3, "diagnosis " + ("interrupted" if session.interrupted else "finished")))

    def key(e: tuple[datetime, int, str]) -> tuple[datetime, int]:
        moment = e[0] if e[0].tzinfo else e[0].replace(tzinfo=timezone.utc)
        return moment, e[1]

    events.sort(key=key)
    start = key((session.started_at, 0, ""))[0]
    out = ["## Timeline", "", "| time (UTC) | from start | event |", "|---|---:|---|"]
    for moment, _, text in events:
        delta = key((moment, 0, ""))[0] - start
        out.append(f"| {_time(moment)} | {_offset(delta)} | {text} |")
    out.append("")
    return out


def _offset(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{abs(seconds):.3f} s"


# -- evidence -------------------------------------------------------------------------


def _log_block(ev: Evidence) -> str:
    text = clean(ev.text).rstrip("\n")
    if not ev.highlight:
        return fenced(text)
    marks = set(ev.highlight)
    # A gutter marks the matching lines: "> " matched, two spaces for context.
    lines = [("> " if i in marks else "  ") + line for i, line in enumerate(text.split("\n"))]
    return fenced("\n".join(lines))


def _counter_rows(data: dict[str, Any]) -> tuple[list[tuple[str, Any, Any, Any]], dict[str, Any]]:
    rows: list[tuple[str, Any, Any, Any]] = []
    rest: dict[str, Any] = {}
    before, after = data.get("before"), data.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        for name in sorted(set(before) | set(after)):
            b, a = before.get(name), after.get(name)
            d = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
            rows.append((name, b, a, d))
        rest = {k: v for k, v in data.items() if k not in ("before", "after")}
        return rows, rest
    for name, value in data.items():
        if isinstance(value, dict) and ("delta" in value or "before" in value):
            rows.append((name, value.get("before"), value.get("after"), value.get("delta")))
        else:
            rest[name] = value
    return rows, rest


def _num(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    if signed and isinstance(value, (int, float)) and value > 0:
        return f"**+{value:g}**" if isinstance(value, float) else f"**+{value}**"
    return cell(str(value))


def _table(data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    columns = data.get("columns")
    for key, value in data.items():
        if not isinstance(value, list) or not value:
            continue
        if all(isinstance(r, dict) for r in value):
            cols: list[str] = []
            for row in value:
                cols += [k for k in row if k not in cols]
            body = [[row.get(c, "") for c in cols] for row in value]
        elif all(isinstance(r, (list, tuple)) for r in value) and isinstance(columns, list):
            cols, body = [str(c) for c in columns], [list(r) for r in value]
        else:
            continue
        lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(cell(_scalar(v)) for v in row) + " |" for row in body]
        rest = {k: v for k, v in data.items() if k not in (key, "columns")}
        return lines, rest
    return [], data


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _data_details(data: dict[str, Any]) -> list[str]:
    if not data:
        return []
    dumped = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return ["<details><summary>data</summary>", "", fenced(dumped, "json"), "", "</details>", ""]


def _is_whole_ruleset(ev: Evidence) -> bool:
    return bool(ev.data.get("whole") or ev.data.get("ruleset")) or "ruleset" in ev.title.lower()


def kernel_reasons(session: Session) -> list[str]:
    """The server kernel's own reasons for the resets it sent towards the target's port, as
    recorded by tracing (evidence data ``rst_reasons``): "TCP_ABORT_ON_CLOSE (python[4242])"."""
    ends = {f"{a}:{session.target.port}" for a in session.target.addresses + [session.target.host]}
    ends |= {f"[{a}]:{session.target.port}" for a in session.target.addresses if ":" in a}
    out: list[str] = []
    for step in session.steps:
        for check in step.checks:
            for ev in check.evidence:
                for item in ev.data.get("rst_reasons") or []:
                    if not isinstance(item, dict) or str(item.get("flow", "")).split("->")[0] not in ends:
                        continue
                    who = f" ({item['comm']}[{item['pid']}])" if item.get("pid") else ""
                    line = f"{item.get('reason', '?')}{who}"
                    if line not in out:
                        out.append(line)
    return out


def _with_kernel_reasons(data: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """The ladder with the kernel's reason beside each RST the server sent."""
    if not reasons:
        return data
    events = []
    for ev in data.get("events") or []:
        if isinstance(ev, dict) and ev.get("src") == "server" and "RST" in str(ev.get("label", "")):
            note = str(ev.get("note") or "")
            ev = {**ev, "note": (note + " — " if note else "") + "server kernel's reason: " + ", ".join(reasons)}
        events.append(ev)
    return {**data, "events": events}


def _evidence(ev: Evidence, reasons: list[str] | None = None) -> list[str]:
    head = f"**{inline(ev.title)}**" if ev.title else "**evidence**"
    if ev.source:
        head += f" — from {code(ev.source)}"
    out = [head, ""] if ev.kind != "traceback" or ev.source else []
    data = dict(ev.data)
    if ev.kind == "log" and ev.text:
        out += [_log_block(ev), ""]
    elif ev.kind == "counters":
        rows, data = _counter_rows(data)
        if rows:
            out += ["| counter | before | after | delta |", "|---|---:|---:|---:|"]
            out += [f"| {code_cell(n)} | {_num(b)} | {_num(a)} | {_num(d, signed=True)} |" for n, b, a, d in rows]
            out.append("")
        if ev.text:
            out += [fenced(ev.text), ""]
    elif ev.kind == "table":
        lines, data = _table(data)
        if lines:
            out += lines + [""]
        elif ev.text:
            out += [fenced(ev.text), ""]
    elif ev.kind == "rules":
        if not ev.text.strip():
            out += ["(no rules: the ruleset is empty)", ""]
        elif _is_whole_ruleset(ev):
            data = {k: v for k, v in data.items() if k not in ("whole", "ruleset")}
            lines = ev.text.count("\n") + 1
            out += [f"<details><summary>{html(ev.title or 'ruleset')} ({lines} lines)</summary>", "",
                    fenced(ev.text), "", "</details>", ""]
        else:
            out += [fenced(ev.text), ""]
    elif ev.kind == "ladder":
        diagram = sequence_diagram(_with_kernel_reasons(data, reasons or []))
        if diagram is not None:
            out += [fenced(diagram, "mermaid"), ""]
            data = {k: v for k, v in data.items() if k not in ("lanes", "events")}
        if ev.text:
            out += [fenced(ev.text), ""]
    elif ev.kind == "traceback":
        out += [f"<details><summary>{html(ev.title or 'traceback')}</summary>", "", fenced(ev.text), "", "</details>", ""]
    elif ev.text:
        out += [fenced(ev.text), ""]
    # A fact's structured data repeats its title for machines: the JSON session has it,
    # the report stays readable.
    if ev.kind not in ("fact", "command", "file"):
        out += _data_details(data)
    return out


def _check(check: CheckResult, reasons: list[str] | None = None) -> list[str]:
    out = [f"#### {code(check.id)} {inline(check.title)} — {STATUS_LABEL[check.status]}", "",
           inline(check.summary), ""]
    if check.status in (Status.SKIP, Status.ERROR) and check.reason and check.reason not in check.summary:
        out += [f"Reason: {inline(check.reason)}", ""]
    for ev in check.evidence:
        out += _evidence(ev, reasons)
    return out


def _step(number: int, step: StepResult, reasons: list[str] | None = None) -> list[str]:
    out = [f"### {number}. {inline(step.title or step.id)} — {STATUS_LABEL[step.status]}", ""]
    if not step.checks:
        out += ["No check of this step ran.", ""]
    for check in step.checks:
        out += _check(check, reasons)
    if step.notes.strip():
        out += ["Notes:", ""]
        out += ["> " + line if line.strip() else ">" for line in clean(step.notes).strip().split("\n")]
        out.append("")
    return out


def _findings(session: Session) -> list[str]:
    out = ["## Findings by step", ""]
    by_id = {s.id: s for s in session.steps}
    for number, step_id in enumerate(STEP_IDS, start=1):
        if step_id in by_id:
            out += _step(number, by_id[step_id], kernel_reasons(session))
    return out


def _causes(session: Session) -> list[str]:
    out = ["## Ranked causes", ""]
    if not session.diagnosis:
        return out + ["No cause was weighed (no check raised a signal).", ""]
    out += ["| rank | cause | confidence | evidence for | against |", "|---:|---|---:|---:|---:|"]
    for rank, f in enumerate(session.diagnosis, start=1):
        out.append(f"| {rank} | {code_cell(f.cause)} {cell(f.title)} | {_pct(f.confidence)} | "
                   f"{len(f.evidence)} | {len(f.against)} |")
    out.append("")
    for rank, f in enumerate(session.diagnosis, start=1):
        out += [f"### {rank}. {code(f.cause)} {inline(f.title)} ({_pct(f.confidence)})", "", authored(f.summary), ""]
        if f.evidence:
            out += ["Evidence for:", ""] + [f"- {inline(line)}" for line in f.evidence] + [""]
        if f.against:
            out += ["Evidence against:", ""] + [f"- {inline(line)}" for line in f.against] + [""]
    return out


def _remedies(session: Session, threshold: float) -> list[str]:
    out = ["## Remedies", ""]
    chosen = _diagnosed(session, threshold)
    if not chosen:
        chosen = [f for f in session.diagnosis if f.cause == NO_RESET][:1]
    if not chosen:
        return out + ["No cause was diagnosed, so there is no remedy to suggest yet.", ""]
    for f in chosen:
        out += [f"- **{code(f.cause)}** {inline(f.title)}: {authored(f.remedy) or 'no remedy recorded'}"]
    return out + [""]


def _unknowns(session: Session, describe: Describe | None) -> list[str]:
    out = ["## Unknowns", ""]
    items: list[str] = []
    for step in session.steps:
        for check in step.checks:
            if check.status not in (Status.SKIP, Status.ERROR):
                continue
            what = describe(check.id) if describe else ""
            line = f"- {code(check.id)} {inline(check.title)} ({step.id}): " + \
                   ("skipped" if check.status == Status.SKIP else "errored")
            if what:
                line += f"\n  - would have told: {_sentence(what)}"
            line += f"\n  - reason: {_sentence(check.reason or check.summary)}"
            if check.fix:
                line += f"\n  - fix: {code(check.fix)}"
            items.append(line)
    ran = {s.id for s in session.steps if s.checks}
    for step_id in STEP_IDS:
        if step_id not in ran:
            items.append(f"- step {code(step_id)} did not run" + (" (the run was interrupted)" if session.interrupted else ""))
    if not items:
        return out + ["Every check ran.", ""]
    return out + items + [""]


def _sentence(text: str) -> str:
    return inline(text).rstrip(". ")


def render_markdown(session: Session, *, describe: Describe | None = None, threshold: float = 0.5) -> str:
    """The incident report for ``session``. ``describe(check_id)`` says what a check would tell."""
    target = session.target.display()
    out = [f"# Connection reset: {code(target)}", "",
           f"Incident report by {inline(session.tool.name)} {inline(session.tool.version)}, "
           f"run started {_time(session.started_at)}.", ""]
    out += _summary(session, threshold)
    out += _inputs(session)
    out += _timeline(session)
    out += _findings(session)
    out += _causes(session)
    out += _remedies(session, threshold)
    out += _unknowns(session, describe)
    if session.notes.strip():
        out += ["## Notes", ""] + ["> " + line if line.strip() else ">" for line in clean(session.notes).strip().split("\n")] + [""]
    out += ["---", "", f"Generated by {inline(session.tool.name)} {inline(session.tool.version)} "
                       f"from session schema {session.schema_version}; finished {_time(session.finished_at)}."]
    return "\n".join(out) + "\n"
