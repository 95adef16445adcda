"""The Session as a Markdown incident report, postmortem style: verdict first, then the evidence.

Pure and deterministic: every time comes from the session, nothing reads a clock. All text
from the systems examined goes through :mod:`wizard.report.sanitize`; text authored in the
checklist (cause summaries, remedies) is kept as Markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from wizard.model import (
    NO_RESET,
    STEP_IDS,
    CheckResult,
    Session,
    Status,
    StepResult,
    Verdict,
)
from wizard.model.evidence import rst_reasons
from wizard.report.evidence import render_evidence
from wizard.report.sanitize import (
    authored,
    cell,
    clean,
    code,
    code_cell,
    fenced,
    inline,
)

STATUS_LABEL = {Status.PASS: "pass", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skipped",
                Status.ERROR: "ERROR"}

Describe = Callable[[str], str]


def _pct(confidence: float) -> str:
    return f"{confidence * 100:.0f} %"


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _title_of(session: Session, cause: str) -> str:
    found = next((f for f in session.diagnosis if f.cause == cause), None)
    return found.title if found and found.title else cause


# -- sections -------------------------------------------------------------------------


def _summary(session: Session) -> list[str]:
    out = ["## Summary and verdict", ""]
    if session.interrupted:
        missing = [s for s in STEP_IDS if s not in {st.id for st in session.steps if st.checks}]
        out += ["**The run was interrupted before it finished.** What is below is what had been gathered"
                + (f"; steps not run: {', '.join(missing)}." if missing else "."), ""]
    verdict = session.verdict
    if verdict is None:
        return [*out, "**Verdict: none yet** (the session was not analysed).", ""]
    if verdict.kind != "cause":
        return out + _no_verdict(session, verdict)
    top = session.diagnosis[0]
    out += [f"**Verdict: {code(top.cause)} — {inline(top.title or top.cause)}** "
            f"(confidence {_pct(top.confidence)})", "", authored(top.summary), ""]
    if verdict.reset_observed is False:
        out += ["No reset was observed during this run: the verdict rests on the evidence below, "
                "not on a reset the wizard saw.", ""]
    if top.evidence:
        out += ["Decisive evidence:", ""]
        out += [f"- {inline(line)}" for line in top.evidence[:5]]
        if len(top.evidence) > 5:
            out.append(f"- … and {len(top.evidence) - 5} more under Ranked causes")
        out.append("")
    return out + _close_or_others(session)


def _no_verdict(session: Session, verdict: Verdict) -> list[str]:
    """The summary when no cause was diagnosed: no reset seen, no cause strong enough, or an
    interrupted run that claims nothing."""
    if verdict.kind == "interrupted":
        return ["**Verdict: none.** The run was interrupted before its checks could tell: no cause "
                "is claimed and none is ruled out.", ""]
    out = ["**Verdict: no cause of the resets was found.**"]
    lead = session.diagnosis[0] if session.diagnosis else None
    if verdict.kind == "no-reset" and lead is not None:
        out += ["", f"{authored(lead.summary)}"]
        if lead.against:
            out += ["", "Against that: " + "; ".join(inline(line) for line in lead.against[:3])
                    + (f" (and {len(lead.against) - 3} more)" if len(lead.against) > 3 else "") + "."]
    candidates = [f for f in session.diagnosis if f.cause != verdict.cause]
    if candidates:
        best = candidates[0]
        out += ["", f"The strongest candidate, {code(best.cause)} ({inline(best.title or best.cause)}), "
                    f"reached only {_pct(best.confidence)}, below the {_pct(verdict.threshold)} needed to call it."]
    return [*out, ""]


def _close_or_others(session: Session) -> list[str]:
    close = session.close_call
    if close is not None:
        a, b = close.causes
        conf = {f.cause: f.confidence for f in session.diagnosis}
        return [f"**Close call:** {code(a)} ({_pct(conf.get(a, 0.0))}) and {code(b)} ({_pct(conf.get(b, 0.0))}) "
                "are too close to tell apart with this evidence. "
                f"To separate them: {authored(close.separate_with)}", ""]
    others = session.diagnosed()[1:]
    if others:
        return ["Also diagnosed: " + ", ".join(f"{code(f.cause)} ({_pct(f.confidence)})" for f in others) + ".", ""]
    return []


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
        moment = e[0] if e[0].tzinfo else e[0].replace(tzinfo=UTC)
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


def kernel_reasons(session: Session) -> list[str]:
    """The server kernel's own reasons for the resets it sent towards the target's port, as
    recorded by tracing (evidence data ``rst_reasons``): "TCP_ABORT_ON_CLOSE (python[4242])"."""
    ends = {f"{a}:{session.target.port}" for a in [*session.target.addresses, session.target.host]}
    ends |= {f"[{a}]:{session.target.port}" for a in session.target.addresses if ":" in a}
    out: list[str] = []
    for step in session.steps:
        for check in step.checks:
            for ev in check.evidence:
                for item in rst_reasons(ev):
                    if item.flow.split("->")[0] not in ends:
                        continue
                    who = f" ({item.comm}[{item.pid}])" if item.pid else ""
                    line = f"{item.reason}{who}"
                    if line not in out:
                        out.append(line)
    return out


def _check(check: CheckResult, reasons: list[str] | None = None) -> list[str]:
    out = [f"#### {code(check.id)} {inline(check.title)} — {STATUS_LABEL[check.status]}", "",
           inline(check.summary), ""]
    if check.status in (Status.SKIP, Status.ERROR) and check.reason and check.reason not in check.summary:
        out += [f"Reason: {inline(check.reason)}", ""]
    for ev in check.evidence:
        out += render_evidence(ev, reasons)
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
        return [*out, "No cause was weighed (no check raised a signal).", ""]
    out += ["| rank | cause | confidence | evidence for | against |", "|---:|---|---:|---:|---:|"]
    for rank, f in enumerate(session.diagnosis, start=1):
        out.append(f"| {rank} | {code_cell(f.cause)} {cell(f.title)} | {_pct(f.confidence)} | "
                   f"{len(f.evidence)} | {len(f.against)} |")
    out.append("")
    diagnosed = session.diagnosed()
    above = [f for f in session.diagnosis if not f.diagnosed and diagnosed and f.confidence > diagnosed[0].confidence]
    if above:
        out += [", ".join(code(f.cause) for f in above) + " ranks below the diagnosed causes whatever its "
                "confidence: it is no cause, and the evidence of a cause outweighs the absence of a reset.", ""]
    for rank, f in enumerate(session.diagnosis, start=1):
        out += [f"### {rank}. {code(f.cause)} {inline(f.title)} ({_pct(f.confidence)})", "", authored(f.summary), ""]
        if f.evidence:
            out += ["Evidence for:", ""] + [f"- {inline(line)}" for line in f.evidence] + [""]
        if f.against:
            out += ["Evidence against:", ""] + [f"- {inline(line)}" for line in f.against] + [""]
    return out


def _remedies(session: Session) -> list[str]:
    out = ["## Remedies", ""]
    chosen = session.diagnosed()
    if not chosen:
        chosen = [f for f in session.diagnosis if f.cause == NO_RESET][:1]
    if not chosen:
        return [*out, "No cause was diagnosed, so there is no remedy to suggest yet.", ""]
    for f in chosen:
        out += [f"- **{code(f.cause)}** {inline(f.title)}: {authored(f.remedy) or 'no remedy recorded'}"]
    return [*out, ""]


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
            items.append(f"- step {code(step_id)} did not run"
                         + (" (the run was interrupted)" if session.interrupted else ""))
    if not items:
        return [*out, "Every check ran.", ""]
    return out + items + [""]


def _sentence(text: str) -> str:
    return inline(text).rstrip(". ")


def render_markdown(session: Session, *, describe: Describe | None = None) -> str:
    """The incident report for ``session``. ``describe(check_id)`` says what a check would tell."""
    target = session.target.display()
    out = [f"# Connection reset: {code(target)}", "",
           f"Incident report by {inline(session.tool.name)} {inline(session.tool.version)}, "
           f"run started {_time(session.started_at)}.", ""]
    out += _summary(session)
    out += _inputs(session)
    out += _timeline(session)
    out += _findings(session)
    out += _causes(session)
    out += _remedies(session)
    out += _unknowns(session, describe)
    if session.notes.strip():
        quoted = ["> " + line if line.strip() else ">" for line in clean(session.notes).strip().split("\n")]
        out += ["## Notes", "", *quoted, ""]
    out += ["---", "", f"Generated by {inline(session.tool.name)} {inline(session.tool.version)} "
                       f"from session schema {session.schema_version}; finished {_time(session.finished_at)}."]
    return "\n".join(out) + "\n"
