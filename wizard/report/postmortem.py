"""The report's first screen (pure): title, summary, impact and detection, root cause, action
items and what was not checked. Every verdict word is read from ``session.verdict``, which
the analysis decided once; nothing here compares confidences to a threshold."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence

from wizard.model import NO_RESET, STEP_IDS, CheckResult, Finding, Session, Status, Verdict
from wizard.model.wording import fix_ways
from wizard.report.incident import LogLine, log_lines, reset_count, said
from wizard.report.sanitize import authored, code, code_cell, inline
from wizard.report.text import duration, fix_markdown, pct, plural, stamp, utc

Describe = Callable[[str], str]


def _top(session: Session) -> Finding | None:
    v = session.verdict
    return session.diagnosis[0] if v is not None and v.kind == "cause" and session.diagnosis else None


def _said(v: Verdict | None) -> str:
    """The verdict in a few words, for the title."""
    if v is None:
        return "not analysed"
    return {"no-reset": "no reset seen, no cause found", "no-cause": "no cause confirmed",
            "interrupted": "run interrupted, no cause claimed"}.get(v.kind, "")


def _lower(text: str) -> str:
    """A title inside a sentence: "The server ..." as "the server ...", an acronym kept."""
    first = text.split(" ", 1)[0]
    acronym = len(first) > 1 and any(ch.isupper() for ch in first[1:])
    return text if not text or acronym else text[0].lower() + text[1:]


def title(session: Session) -> list[str]:
    target = code(session.target.display())
    top = _top(session)
    said = f"{inline(_lower(top.title or top.cause))} ({code(top.cause)})" if top else _said(session.verdict)
    end = session.finished_at
    seconds = round((utc(end) - utc(session.started_at)).total_seconds(), 1) if end else 0.0
    took = f", {duration(seconds)}" if seconds > 0 else ""
    return [f"# Connection reset on {target}: {said}", "",
            f"Postmortem by {inline(session.tool.name)} {inline(session.tool.version)} from a run at "
            f"{stamp(session.started_at)}{took}; client {code(session.context.client)}, "
            f"server evidence from {code(session.context.server)}.", ""]


# -- summary ------------------------------------------------------------------------------


def _first_line(text: str) -> str:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= 120 else line[:119] + "…"


def _since(session: Session) -> str:
    start = utc(session.started_at)
    before = [utc(ln.at) for ln in log_lines(session) if ln.at is not None and utc(ln.at) < start]
    at = utc(session.answers.at) if session.answers.at else None
    if before and (at is None or min(before) <= at):
        return f"{stamp(min(before))} (the first matching server log line)"
    if at is not None:
        return f"{stamp(at)} (the time given with `--at`)"
    return f"{stamp(start)} (this run: no log line dates it earlier)"


def _how_sure(session: Session) -> str:
    v, top = session.verdict, _top(session)
    if v is None:
        return "not analysed"
    if top is not None:
        out = f"{pct(top.confidence)} that it is {code(top.cause)}, on {plural(len(top.evidence), 'piece')} of evidence"
        close = session.close_call
        if close is not None:
            other = next((f for f in session.diagnosis if f.cause == close.causes[1]), None)
            out += f", a close call with {code(close.causes[1])}" + (f" ({pct(other.confidence)})" if other else "")
        if v.reset_observed is not None:
            out += "; this run saw the resets" if v.reset_observed else "; no reset was seen during this run"
        return out
    if v.kind == "interrupted":
        return "no cause confirmed: the run was interrupted before its checks could tell"
    if v.kind == "no-reset":
        return "no cause confirmed: every probe behaved, no reset was seen during this run"
    lead = next((f for f in session.diagnosis if f.cause != NO_RESET), None)
    if lead is None:
        return "no cause confirmed: no check raised a signal"
    return (f"no cause confirmed: the strongest lead, {code(lead.cause)}, reached {pct(lead.confidence)}, "
            f"below the {pct(v.threshold)} needed")


def _to_do(session: Session) -> str:
    top = _top(session)
    if top is not None:
        return authored(top.remedy) or "no remedy recorded"
    v = session.verdict
    if v is not None and v.kind == "no-reset" and session.diagnosis and session.diagnosis[0].remedy:
        return authored(session.diagnosis[0].remedy)
    if v is not None and v.kind == "interrupted":
        return "Run the diagnosis again to the end (the action items say how)."
    return "Make the checks under *Not checked* run, then run again while the resets happen."


def summary(session: Session) -> list[str]:
    t = code_cell(session.target.display())
    error = session.answers.error
    failed = (f"{code_cell(_first_line(error))} on connections to {t}" if error
              else f"connections to {t} (no error text was given)")
    rows = [("What failed", failed), ("Since when", _since(session)), ("How sure", _how_sure(session)),
            ("What to do", _to_do(session).replace("|", "\\|"))]
    out = ["## Summary", "", "| | |", "|---|---|", *[f"| **{k}** | {v} |" for k, v in rows], ""]
    if session.interrupted:
        out += ["**The run was interrupted before it finished**: what follows is what had been gathered.", ""]
    return out


# -- impact and detection -----------------------------------------------------------------


def _span(lines: list[LogLine]) -> str:
    times = sorted(utc(ln.at) for ln in lines if ln.at is not None)
    if not times:
        return ""
    return f" (first {stamp(times[0])}, last {stamp(times[-1])})" if len(times) > 1 else f" ({stamp(times[0])})"


def _log_bullets(session: Session) -> list[str]:
    lines = log_lines(session)
    out = []
    for source in dict.fromkeys(ln.source for ln in lines):
        parts = []
        for during, when in ((False, "before the run"), (True, "while the wizard probed")):
            mine = [ln for ln in lines if ln.source == source and ln.during == during]
            if mine:
                parts.append(f"{plural(len(mine), 'matching line')} {when}{_span(mine)}")
        out.append(f"- Server log {code(source)}: {'; '.join(parts)}.")
    if not lines and (session.answers.logs or session.answers.journal or any(
            c.id == "logs.excerpt" for s in session.steps for c in s.checks)):
        out.append("- Server log: no line matched a reset signature in the window searched.")
    return out


def impact(session: Session) -> list[str]:
    a = session.answers
    out = ["## Impact and detection", ""]
    if a.error:
        seen = {"client": " on the client", "server": " on the server"}.get(a.side, "")
        when = f" at {stamp(a.at)}" if a.at else ""
        out.append(f"- Reported{seen}{when}: {code(_first_line(a.error))}.")
    else:
        out.append("- Reported: no error text was given (`--error`).")
    out += _log_bullets(session)
    count = reset_count(session)
    if count.attempts:
        parts = ", ".join(f"{code(c)} {r} of {n}" for c, r, n in count.by_check)
        out.append(f"- Probes: {said(count.attempts, count.resets, count.refused)} ({parts}).")
    if count.observed:
        out.append(f"- Traffic: {plural(count.observed, 'reset')} seen on the wire ({session.mode}).")
    v = session.verdict
    if v is not None and v.reset_observed is False and not count.resets + count.refused:
        out.append("- No reset was observed during this run.")
    return [*out, ""]


# -- root cause ---------------------------------------------------------------------------


def _source(session: Session, line: str) -> str:
    """Where a verdict's evidence line ("check: fact") came from: its check's first source."""
    check_id = line.split(":", 1)[0]
    check = next((c for s in session.steps for c in s.checks if c.id == check_id), None)
    source = next((ev.source for ev in check.evidence if ev.source), "") if check else ""
    return f" (from {code(source)})" if source else ""


def _no_verdict(session: Session, verdict: Verdict) -> list[str]:
    if verdict.kind == "interrupted":
        return ["**Verdict: none.** The run was interrupted before its checks could tell: no cause "
                "is claimed and none is ruled out.", ""]
    out = ["**Verdict: no cause of the resets was found.**"]
    lead = session.diagnosis[0] if session.diagnosis else None
    if verdict.kind == "no-reset" and lead is not None:
        out += ["", authored(lead.summary)]
        if lead.against:
            out += ["", "Against that: " + "; ".join(inline(x) for x in lead.against[:3])
                    + (f" (and {len(lead.against) - 3} more)" if len(lead.against) > 3 else "") + "."]
    candidates = [f for f in session.diagnosis if f.cause != verdict.cause]
    if candidates:
        best = candidates[0]
        out += ["", f"The strongest candidate, {code(best.cause)} ({inline(best.title or best.cause)}), "
                    f"reached only {pct(best.confidence)}, below the {pct(verdict.threshold)} needed to call it."]
    return [*out, ""]


def root_cause(session: Session) -> list[str]:
    out = ["## Root cause", ""]
    verdict, top = session.verdict, _top(session)
    if verdict is None:
        return [*out, "**Verdict: none yet** (the session was not analysed).", ""]
    if top is None:
        return out + _no_verdict(session, verdict)
    out += [f"**Verdict: {code(top.cause)} — {inline(top.title or top.cause)}** (confidence {pct(top.confidence)}). "
            + authored(top.summary), ""]
    if verdict.reset_observed is False:
        out += ["No reset was observed during this run: the verdict rests on the evidence below, "
                "not on a reset the wizard saw.", ""]
    out += [f"- {inline(line)}{_source(session, line)}" for line in top.evidence[:5]]
    if len(top.evidence) > 5:
        out.append(f"- … and {len(top.evidence) - 5} more under Ranked causes")
    out += [""] if top.evidence else []
    close = session.close_call
    if close is not None:
        a, b = close.causes
        conf = {f.cause: f.confidence for f in session.diagnosis}
        out += [f"**Close call:** {code(a)} ({pct(conf.get(a, 0.0))}) and {code(b)} ({pct(conf.get(b, 0.0))}) "
                f"are too close to tell apart with this evidence. To separate them: {authored(close.separate_with)}",
                ""]
    elif len(others := session.diagnosed()[1:]) > 0:
        out += ["Also diagnosed: " + ", ".join(f"{code(f.cause)} ({pct(f.confidence)})" for f in others) + ".", ""]
    return out


# -- action items -------------------------------------------------------------------------


def rerun_command(session: Session) -> str:
    """The `diagnose` command that examines the same target with the same evidence sources."""
    return shlex.join(["reset-wizard", *session.rerun_argv()])


def _skipped(session: Session) -> list[CheckResult]:
    return [c for s in session.steps for c in s.checks if c.status in (Status.SKIP, Status.ERROR)]


def fix_ways_markdown(fix: str, rerun: Sequence[str] | None = None) -> str:
    """A fix's ways (wizard.model.wording.fix_ways) as Markdown: each command alone in its
    code span, what it is for as text beside it, prose as prose; "; or " between ways. An
    option of the wizard, or ``reset-wizard ...``, is ``rerun`` (this run's command line)."""
    said = []
    for command, words in fix_ways(fix, rerun):
        if not command:
            said.append(fix_markdown(words))
        else:
            said.append(f"{inline(words)}: {code(command)}" if words else code(command))
    return "; or ".join(said)


def action_items(session: Session) -> list[str]:
    out = ["## Action items", ""]
    chosen = session.diagnosed()
    v = session.verdict
    if not chosen and v is not None and v.kind == "no-reset":
        chosen = [f for f in session.diagnosis if f.cause == NO_RESET][:1]
    out += [f"- [ ] {authored(f.remedy) or 'no remedy recorded'} ({code(f.cause)})" for f in chosen]
    if session.close_call is not None:
        a, b = session.close_call.causes
        out.append(f"- [ ] Tell {code(a)} from {code(b)}: {authored(session.close_call.separate_with)}")
    fixes = [c for c in _skipped(session) if c.fix]
    first = ("Once fixed, confirm: run" if chosen and chosen[0].cause != NO_RESET
             else "Run again while the resets happen:")
    after = f" (after the {plural(len(fixes), 'fix', 'fixes')} under *Not checked*)" if fixes else ""
    out.append(f"- [ ] {first} {code(rerun_command(session))}{after}")
    return [*out, ""]


# -- what was not checked -----------------------------------------------------------------


def _group_key(check: CheckResult) -> tuple[str, str]:
    if check.status == Status.ERROR:
        return "errored (a fault of the wizard; its traceback is under Evidence)", ""
    return (check.reason or check.summary).strip().rstrip("."), check.fix or ""


def not_checked(session: Session, describe: Describe | None) -> list[str]:
    out = ["## Not checked", ""]
    groups: dict[tuple[str, str], list[tuple[str, CheckResult]]] = {}
    for step in session.steps:
        for check in step.checks:
            if check.status in (Status.SKIP, Status.ERROR):
                groups.setdefault(_group_key(check), []).append((step.id, check))
    for (why, fix), checks in groups.items():
        out.append(f"- **{inline(why)}**" + (f"; fix: {fix_ways_markdown(fix, session.rerun_argv())}" if fix else ""))
        for step_id, check in checks:
            what = describe(check.id) if describe else ""
            told = f"; would have told: {inline(what).rstrip('. ')}" if what else ""
            error = f" ({inline(check.reason or check.summary)})" if check.status == Status.ERROR else ""
            out.append(f"  - {code(check.id)} {inline(check.title)} ({step_id}){error}{told}")
    ran = {s.id for s in session.steps if s.checks}
    missing = [s for s in STEP_IDS if s not in ran]
    if missing:
        why = " (the run was interrupted)" if session.interrupted else ""
        out.append(f"- **{plural(len(missing), 'step')} did not run{why}**: " + ", ".join(code(s) for s in missing))
    if len(out) == 2:
        out.append("Every check ran.")
    return [*out, ""]
