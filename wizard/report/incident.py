"""The incident as the session knows it (pure): the server's log lines that matched, with their
own times, and the resets the wizard's probes met, in wall-clock time.

Log times come from the lines themselves (the format the log check recorded, or detected);
a probe's reset is placed at its check's start plus the reset's offset in the probe, so it is
as exact as that offset (a burst's later attempts start a stagger apart: ``approx``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wizard.diag.logs.parse.timestamps import FORMATS, TimeContext, TimeFormat, detect
from wizard.model import CheckResult, Session
from wizard.model.evidence import Ladder, LogExcerpt, Table, body
from wizard.report.merge import is_reset, probe_counts
from wizard.report.text import utc


@dataclass(frozen=True)
class LogLine:
    at: datetime | None  # None: the line carries no time the report can read
    source: str  # the file or journal
    text: str  # the line without its leading timestamp
    during: bool  # written while the wizard ran (its own probes' traces)
    zoned: bool  # the log wrote its zone (else the time is read as UTC)


@dataclass(frozen=True)
class ProbeReset:
    at: datetime
    check: str
    what: str  # "5 of 5 connections reset after the first data", or the RST as a ladder says it
    approx: bool


def _format(ev: LogExcerpt, lines: list[str]) -> TimeFormat | None:
    name = ev.extra.get("format")
    known = next((f for f in FORMATS if f.name == name), None)
    return known or detect(lines, TimeContext(tz=UTC))


def _log_lines(session: Session, check: CheckResult, ev: LogExcerpt) -> list[LogLine]:
    lines = ev.text.split("\n")
    start = utc(session.started_at)
    ctx = TimeContext(tz=start.tzinfo, year_ref=start)
    fmt = _format(ev, lines)
    out = []
    for i in ev.highlight:
        if not 0 <= i < len(lines):
            continue
        line = lines[i]
        seconds = fmt.parse(line, ctx) if fmt else None
        at = datetime.fromtimestamp(seconds, start.tzinfo) if seconds is not None else None
        text = line
        if at is not None and fmt is not None and fmt.anchored:
            m = fmt.pattern.match(line)
            text = line[m.end():].strip() if m else line
        during = at >= start if at is not None else check.id == "logs.probed"
        out.append(LogLine(at=at, source=ev.source, text=text, during=during,
                           zoned=bool(fmt and fmt.has_zone)))
    return out


def log_lines(session: Session) -> list[LogLine]:
    """Every matched (highlighted) line of every log excerpt, in the session's order."""
    out: list[LogLine] = []
    for step in session.steps:
        for check in step.checks:
            for ev in check.evidence:
                typed = body(ev)
                if isinstance(typed, LogExcerpt) and typed.highlight:
                    out += _log_lines(session, check, typed)
    return out


def _outcomes(table: Table) -> tuple[int, int, int]:
    """(attempts, resets after the handshake, refusals) of a probe table's ``outcome`` column."""
    at = table.columns.index("outcome")
    outcomes = [str(row[at]) for row in table.rows if len(row) > at]
    resets = sum(1 for o in outcomes if is_reset(o) and not o.startswith("refused"))
    return len(outcomes), resets, sum(1 for o in outcomes if o.startswith("refused"))


def said(attempts: int, resets: int, refused: int) -> str:
    """"5 of 5 probe connections reset", "2 of 2 ... refused (RST to the SYN)", or both."""
    noun = "probe connection" if attempts == 1 else "probe connections"
    if resets and refused:
        return f"{resets + refused} of {attempts} {noun}: {resets} reset, {refused} refused (RST to the SYN)"
    if refused:
        return f"{refused} of {attempts} {noun} refused (RST to the SYN)"
    return f"{resets or 'none'} of {attempts} {noun} reset"


def _burst(check: CheckResult, start: datetime, table: Table) -> ProbeReset | None:
    if "outcome" not in table.columns or "ms" not in table.columns:
        return None
    at, ms = table.columns.index("outcome"), table.columns.index("ms")
    hit = [row for row in table.rows if len(row) > max(at, ms) and is_reset(str(row[at]))]
    offsets = [float(row[ms]) for row in hit if isinstance(row[ms], (int, float))]
    if not offsets:
        return None
    attempts, resets, refused = _outcomes(table)
    return ProbeReset(at=start + timedelta(milliseconds=min(offsets)), check=check.id, approx=len(hit) > 1,
                      what=said(attempts, resets, refused) + (
                          "; the first's time, from the check's start" if len(hit) > 1 else ""))


def _ladder(check: CheckResult, start: datetime, ladder: Ladder) -> ProbeReset | None:
    for event in ladder.events:
        if "RST" in event.label and event.src != "client" and event.ms is not None:
            return ProbeReset(at=start + timedelta(milliseconds=event.ms), check=check.id, approx=False,
                              what=f"{event.label} from the {event.src}: {check.summary}")
    return None


def probe_resets(session: Session) -> list[ProbeReset]:
    """The resets the wizard's own probes met: a burst's first, and each ladder's first RST
    sent towards the client; then those a watch or an analysis saw on the wire."""
    out: list[ProbeReset] = []
    for step in session.steps:
        for check in step.checks:
            if check.started_at is None:
                continue
            start = utc(check.started_at)
            for ev in check.evidence:
                typed = body(ev)
                found = (_burst(check, start, typed) if isinstance(typed, Table)
                         else _ladder(check, start, typed) if isinstance(typed, Ladder) else None)
                if found is not None:
                    out.append(found)
                    break
    if session.observation is not None:
        out += [ProbeReset(at=utc(ev.at), check=session.mode, approx=False,
                           what=f"RST toward the {ev.toward} in {ev.flow}: {ev.sender_words}")
                for ev in session.observation.events]
    return out


@dataclass(frozen=True)
class ResetCount:
    attempts: int
    resets: int  # reset after the handshake
    refused: int  # RST to the SYN
    by_check: list[tuple[str, int, int]]  # (check, resets and refusals, attempts)
    observed: int  # resets a watch or an analysis saw in real traffic


def _counted(check: CheckResult) -> tuple[int, int, int]:
    """(attempts, resets, refusals) of one check's probes: its outcome tables, and the payload
    exchange's one connection."""
    attempts = resets = refused = 0
    for ev in check.evidence:
        typed = body(ev)
        if isinstance(typed, Table) and "outcome" in typed.columns:
            a, r, f = _outcomes(typed)
            attempts, resets, refused = attempts + a, resets + r, refused + f
    if check.id == "tcp.exchange" and not attempts:
        hit, tried, _ = probe_counts({check.id: check})
        attempts, resets = tried, hit
    return attempts, resets, refused


def reset_count(session: Session) -> ResetCount:
    """How many of the probes' connections were reset or refused, and by which check."""
    by_check, total = [], [0, 0, 0]
    for step in session.steps:
        for check in step.checks:
            counted = _counted(check)
            if counted[0]:
                by_check.append((check.id, counted[1] + counted[2], counted[0]))
                total = [t + c for t, c in zip(total, counted, strict=True)]
    obs = session.observation
    observed = len(obs.events) + obs.dropped_events if obs is not None else 0
    return ResetCount(attempts=total[0], resets=total[1], refused=total[2], by_check=by_check, observed=observed)
