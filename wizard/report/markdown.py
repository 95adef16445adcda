"""The Session as a Markdown postmortem: one screen for the ticket (title, summary, impact and
detection, timeline, root cause, action items, what was not checked), then everything else
folded in ``<details>``: the evidence of each step, the ranked causes, the run's inputs and
the wizard's own timeline.

Pure and deterministic: every time comes from the session, nothing reads a clock. All text
from the systems examined goes through :mod:`wizard.report.sanitize`; text authored in the
checklist (cause summaries, remedies) is kept as Markdown.
"""

from __future__ import annotations

from collections.abc import Callable

from wizard.model import STEP_IDS, CheckResult, Session, Status, StepResult
from wizard.model.evidence import rst_reasons
from wizard.report.evidence import render_evidence
from wizard.report.postmortem import action_items, impact, not_checked, root_cause, summary, title
from wizard.report.sanitize import authored, cell, clean, code, code_cell, html, inline
from wizard.report.text import block, duration, payload, pct, plural, stamp
from wizard.report.timeline import STATUS_LABEL, full_timeline, incident_timeline, run_timeline

Describe = Callable[[str], str]


def details(summary_text: str, body: list[str]) -> list[str]:
    """``body`` folded under a ``<summary>`` line (plain text, escaped here)."""
    return [f"<details><summary>{html(summary_text)}</summary>", "", *body, "</details>", ""]


def _inputs(session: Session) -> list[str]:
    t, a, c = session.target, session.answers, session.context
    rows: list[tuple[str, str]] = [("Target", code_cell(t.display()))]
    if t.scheme:
        rows.append(("URL", code_cell(f"{t.scheme}://{t.display()}{t.path or ''}")))
    rows.append(("Resolved addresses", ", ".join(code_cell(x) for x in t.addresses) or "none recorded"))
    rows.append(("Client context", code_cell(c.client)))
    rows.append(("Server context", code_cell(c.server)))
    rows.append(("Side that saw the error", inline(a.side)))
    rows.append(("Reset seen at", stamp(a.at) if a.at else "not given (the last window before the run)"))
    rows.append(("Log window", f"± {duration(a.window_s / 2)}" if a.at else f"the last {duration(a.window_s)}"))
    if a.logs:
        rows.append(("Logs", ", ".join(code_cell(p) for p in a.logs)))
    if a.journal:
        rows.append(("Journal units", ", ".join(code_cell(u) for u in a.journal)))
    rows.append(("Probe", f"{a.attempts} attempts, timeout {a.timeout_s:g} s, hold {a.hold_s:g} s, "
                          f"capture {'on' if a.capture else 'off'}"))
    out = ["| | |", "|---|---|", *[f"| {name} | {value} |" for name, value in rows], ""]
    if a.error:
        out += ["The error as it was seen:", "", *block(a.error)]
    if a.payload:
        out += ["The probe payload (as given):", "", *payload(a.payload)]
    return out


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


def _tally(step: StepResult) -> str:
    counts: dict[str, int] = {}
    for check in step.checks:
        counts[STATUS_LABEL[check.status].lower()] = counts.get(STATUS_LABEL[check.status].lower(), 0) + 1
    return plural(len(step.checks), "check") + " (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")"


def _step(number: int, step: StepResult, reasons: list[str] | None = None) -> list[str]:
    head = f"{number}. {step.title or step.id} — {STATUS_LABEL[step.status]}"
    if not step.checks:
        return [f"- {inline(head)}: no check of this step ran.", ""]
    body: list[str] = []
    for check in step.checks:
        body += _check(check, reasons)
    if step.notes.strip():
        body += ["Notes:", ""]
        body += ["> " + line if line.strip() else ">" for line in clean(step.notes).strip().split("\n")]
        body.append("")
    return details(f"{head}: {_tally(step)}", body)


def _findings(session: Session) -> list[str]:
    out = ["## Evidence by step", ""]
    by_id = {s.id: s for s in session.steps}
    reasons = kernel_reasons(session)
    for number, step_id in enumerate(STEP_IDS, start=1):
        if step_id in by_id:
            out += _step(number, by_id[step_id], reasons)
    return out


def _causes(session: Session) -> list[str]:
    out = ["## Ranked causes", ""]
    if not session.diagnosis:
        return [*out, "No cause was weighed (no check raised a signal).", ""]
    body = ["| rank | cause | confidence | evidence for | against |", "|---:|---|---:|---:|---:|"]
    for rank, f in enumerate(session.diagnosis, start=1):
        body.append(f"| {rank} | {code_cell(f.cause)} {cell(f.title)} | {pct(f.confidence)} | "
                    f"{len(f.evidence)} | {len(f.against)} |")
    body.append("")
    diagnosed = session.diagnosed()
    above = [f for f in session.diagnosis if not f.diagnosed and diagnosed and f.confidence > diagnosed[0].confidence]
    if above:
        body += [", ".join(code(f.cause) for f in above) + " ranks below the diagnosed causes whatever its "
                 "confidence: it is no cause, and the evidence of a cause outweighs the absence of a reset.", ""]
    for rank, f in enumerate(session.diagnosis, start=1):
        body += [f"### {rank}. {code(f.cause)} {inline(f.title)} ({pct(f.confidence)})", "", authored(f.summary), ""]
        if f.evidence:
            body += ["Evidence for:", ""] + [f"- {inline(line)}" for line in f.evidence] + [""]
        if f.against:
            body += ["Evidence against:", ""] + [f"- {inline(line)}" for line in f.against] + [""]
    return out + details(f"{plural(len(session.diagnosis), 'cause')} weighed, the verdict first", body)


def _appendix(session: Session) -> list[str]:
    events = full_timeline(session)
    checks = sum(len(s.checks) for s in session.steps)
    return ["## Appendix", "",
            *details(f"Every event of the timeline ({plural(len(events) - 2, 'row')})", [*events, ""]),
            *details(f"The wizard's run: when each check ran ({plural(checks, 'check')})", run_timeline(session)),
            *details("The inputs of the run", _inputs(session))]


def render_markdown(session: Session, *, describe: Describe | None = None) -> str:
    """The postmortem for ``session``. ``describe(check_id)`` says what a check would tell."""
    out = title(session)
    out += summary(session)
    out += impact(session)
    out += incident_timeline(session)
    out += root_cause(session)
    out += action_items(session)
    out += not_checked(session, describe)
    if session.notes.strip():
        quoted = ["> " + line if line.strip() else ">" for line in clean(session.notes).strip().split("\n")]
        out += ["## Notes", "", *quoted, ""]
    out += _findings(session)
    out += _causes(session)
    out += _appendix(session)
    out += ["---", "", f"Generated by {inline(session.tool.name)} {inline(session.tool.version)} "
                       f"from session schema {session.schema_version}; finished {stamp(session.finished_at)}."]
    return "\n".join(out) + "\n"
