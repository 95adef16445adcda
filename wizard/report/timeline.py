"""The incident's timeline in wall-clock time (pure): the server's matched log lines and the
resets the probes met; the lines the server wrote while the wizard probed are one row per
log (every line is in the full timeline of the appendix, with the wizard's own check times)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wizard.model import Session, Status
from wizard.report.incident import LogLine, log_lines, probe_resets
from wizard.report.sanitize import cell, code_cell
from wizard.report.text import plural, stamp, utc

STATUS_LABEL = {Status.PASS: "pass", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skipped",
                Status.ERROR: "ERROR"}
#: an event's text in the timeline is cut here (the evidence has the whole line)
EVENT_CHARS = 140
#: a run of more log lines of one source than this keeps its first and last two
LOG_RUN = 5
#: the appendix's timeline keeps every log line, and of a run of resets a watch or an analysis
#: saw (thousands on a busy port) its first and last RUN_KEPT // 2: the session has them all
RUN_KEPT = 100


@dataclass(frozen=True)
class Row:
    at: datetime
    order: int  # ties: what was reported, then logs, then the wizard, then the probes
    who: str  # Markdown for the "source" cell
    what: str  # Markdown for the "event" cell
    approx: bool = False
    log: str = ""  # the log's source, for log rows
    seen: str = ""  # the watch or analysis that saw it, for the resets of real traffic


def _name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def _cut(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= EVENT_CHARS else one[:EVENT_CHARS - 1] + "…"


def _log_row(line: LogLine) -> Row:
    assert line.at is not None
    zone = "" if line.zoned else " (no zone in the log: read as UTC)"
    return Row(at=utc(line.at), order=1, who=f"log {code_cell(_name(line.source))}",
               what=cell(_cut(line.text)) + zone, log=line.source)


def rows(session: Session) -> list[Row]:
    """Every event, in time order: reported, log lines, the wizard's start, probe resets."""
    out: list[Row] = []
    if session.answers.at is not None:
        out.append(Row(at=utc(session.answers.at), order=0, who="reported",
                       what="the reset, at the time given with `--at`"))
    out += [_log_row(line) for line in log_lines(session) if line.at is not None]
    out.append(Row(at=utc(session.started_at), order=2, who="reset-wizard", what="the wizard starts probing"))
    seen = session.mode if session.observation is not None else ""
    out += [Row(at=r.at, order=3, who=f"probe {code_cell(r.check)}", what=cell(_cut(r.what)), approx=r.approx,
                seen=seen if r.check == seen else "")
            for r in probe_resets(session)]
    return sorted(out, key=lambda r: (r.at, r.order))


def _during(session: Session, all_rows: list[Row]) -> list[Row]:
    """The log lines written while the wizard ran, one row per log: when the first was, how many."""
    start = utc(session.started_at)
    lines = log_lines(session)
    out = []
    for source in dict.fromkeys(r.log for r in all_rows if r.log and r.at >= start):
        mine = [r for r in all_rows if r.log == source and r.at >= start]
        count = sum(1 for ln in lines if ln.source == source and ln.during)
        first, last = mine[0], mine[-1]
        out.append(Row(at=first.at, order=1, who=first.who, log=source,
                       what=f"{plural(count, 'matching line')} while the wizard probed, until "
                            f"{stamp(last.at, date=False)}; the first: {first.what}"))
    return out


def _run_of(row: Row) -> str:
    return row.log or (f"seen {row.seen}" if row.seen else "")


def _between(hidden: list[Row]) -> Row:
    """The row that stands for ``hidden``, a run of one log's lines or of resets a watch saw."""
    first = hidden[0]
    noun, more = ("more line", "") if first.log else ("more reset", " (every one is in the session's JSON)")
    return Row(at=first.at, order=first.order, who=first.who, log=first.log, seen=first.seen,
               what=f"… {plural(len(hidden), noun)} until {stamp(hidden[-1].at, date=False)}{more}")


def _folded(before: list[Row]) -> list[Row]:
    """Runs of more than LOG_RUN rows of one log, or of resets one watch or analysis saw:
    their first two, a count, their last two."""
    out: list[Row] = []
    i = 0
    while i < len(before):
        j, kind = i, _run_of(before[i])
        while j < len(before) and kind and _run_of(before[j]) == kind:
            j += 1
        run = before[i:j] if j > i else [before[i]]
        out += [*run[:2], _between(run[2:-2]), *run[-2:]] if len(run) > LOG_RUN else run
        i += len(run)
    return out


def _thinned(every: list[Row]) -> list[Row]:
    """Every row, but of the resets a watch or an analysis saw only the first and last
    RUN_KEPT // 2 and one row for those between (log lines between them are all kept)."""
    seen = [r for r in every if r.seen]
    if len(seen) <= RUN_KEPT:
        return every
    half = RUN_KEPT // 2
    hidden = seen[half:-half]
    dropped = {id(r) for r in hidden}
    return sorted([r for r in every if id(r) not in dropped] + [_between(hidden)], key=lambda r: (r.at, r.order))


def _table(shown: list[Row]) -> list[str]:
    days = {r.at.date() for r in shown}
    one_day = len(days) == 1
    head = f"time (UTC, {next(iter(days))})" if one_day else "time (UTC)"
    out = [f"| {head} | source | event |", "|---|---|---|"]
    for r in shown:
        when = ("≈" if r.approx else "") + stamp(r.at, date=not one_day)
        out.append(f"| {when} | {r.who} | {r.what} |")
    return out


def incident_timeline(session: Session) -> list[str]:
    everything = rows(session)
    start = utc(session.started_at)
    before = [r for r in everything if not (r.log and r.at >= start)]
    shown = sorted(_folded(before) + _during(session, everything), key=lambda r: (r.at, r.order))
    return ["## Timeline", "", *_table(shown), ""]


def full_timeline(session: Session) -> list[str]:
    """Every event of the incident's timeline, each log line on its own row (of the resets a
    watch or an analysis saw in a row, the first and last RUN_KEPT // 2)."""
    return _table(_thinned(rows(session)))


def run_timeline(session: Session) -> list[str]:
    """The wizard's own run: when each check started, how long it took, its outcome."""
    start = utc(session.started_at)
    out = ["| time (UTC) | from start | check | outcome |", "|---|---:|---|---|"]
    checks = [(utc(c.started_at), step.id, c) for step in session.steps for c in step.checks if c.started_at]
    for at, step_id, check in sorted(checks, key=lambda x: x[0]):
        out.append(f"| {stamp(at)} | +{(at - start).total_seconds():.3f} s | {code_cell(check.id)} "
                   f"{cell(check.title)} ({step_id}) | {STATUS_LABEL[check.status]} in {check.duration_ms} ms |")
    end = ("was interrupted" if session.interrupted else "finished") + f" at {stamp(session.finished_at)}"
    return [f"The run started at {stamp(session.started_at)} and {end}.", "", *out, ""]
