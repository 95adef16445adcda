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


@dataclass(frozen=True)
class Row:
    at: datetime
    order: int  # ties: what was reported, then logs, then the wizard, then the probes
    who: str  # Markdown for the "source" cell
    what: str  # Markdown for the "event" cell
    approx: bool = False
    log: str = ""  # the log's source, for log rows


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
    out += [Row(at=r.at, order=3, who=f"probe {code_cell(r.check)}", what=cell(_cut(r.what)), approx=r.approx)
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


def _folded(before: list[Row]) -> list[Row]:
    """Runs of more than LOG_RUN lines of one log: their first two, a count, their last two."""
    out: list[Row] = []
    i = 0
    while i < len(before):
        j = i
        while j < len(before) and before[j].log and before[j].log == before[i].log:
            j += 1
        run = before[i:j] if j > i else [before[i]]
        if len(run) > LOG_RUN:
            hidden = run[2:-2]
            out += [*run[:2], Row(at=hidden[0].at, order=1, who=run[0].who, log=run[0].log,
                                  what=f"… {plural(len(hidden), 'more line')} until "
                                       f"{stamp(hidden[-1].at, date=False)}"), *run[-2:]]
        else:
            out += run
        i += len(run)
    return out


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
    """Every event of the incident's timeline, each log line on its own row."""
    return _table(rows(session))


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
