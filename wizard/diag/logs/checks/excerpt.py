"""Step 3 checks: excerpts of the server's logs around the time of the reset, matched against
the checklist's signatures (log files through the log reader probe, journald units)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from wizard.diag.logs.checks.matching import (
    HIST_CLASSES,
    HIST_WORDS,
    excerpt,
    histogram,
    line_place,
    source_title,
    trim_line,
)
from wizard.diag.logs.io.excerpt import excerpt_window
from wizard.diag.logs.io.journal import is_journal_file, journal_window
from wizard.diag.logs.io.reader import LogLine, LogReader, LogWindow
from wizard.diag.logs.io.rotated import rotated_in_window
from wizard.diag.logs.io.whole import match_window
from wizard.diag.logs.parse.servers import line_signal
from wizard.diag.process.checks.settings import running_servers
from wizard.engine.contract import Check, CheckContext, CheckParams, Findings, register
from wizard.hosts.base import HostError
from wizard.model import CheckResult, Status, StepId
from wizard.model.wording import plural

# What a Linux admin would look at first; globs for per-service directories. Only the ones
# that exist are read, at most MAX_DEFAULT_LOGS of them.
DEFAULT_LOGS = ("/var/log/syslog", "/var/log/messages", "/var/log/kern.log",
                "/var/log/daemon.log", "/var/log/nginx/error.log", "/var/log/apache2/error.log",
                "/var/log/httpd/error_log", "/var/log/haproxy.log", "/var/log/mysql/error.log",
                "/var/log/mysqld.log", "/var/log/postgresql/*.log", "/var/log/*/error.log",
                "/var/log/auth.log", "/var/log/secure")
MAX_DEFAULT_LOGS = 12

class LogExcerptParams(CheckParams):
    context_lines: int = Field(default=2, ge=0, le=20)
    max_matches: int = Field(default=200, ge=1, le=10000)


def window_of(ctx: CheckContext) -> tuple[datetime, datetime]:
    span = ctx.answers.window_s
    if ctx.answers.at is not None:
        at = ctx.answers.at if ctx.answers.at.tzinfo else ctx.answers.at.replace(tzinfo=UTC)
        return at - timedelta(seconds=span), at + timedelta(seconds=span)
    # Up to the run's start: steps overlap, so what the probes make the server write is
    # logs.probed's to read (it starts there), never in this window by the luck of timing.
    now = ctx.started or ctx.now()
    return now - timedelta(seconds=span), now


async def server_logs(ctx: CheckContext) -> list[str]:
    """The log files the server owning the listener writes (its configuration, its open
    files), that exist in the server context."""
    try:
        run = await running_servers(ctx)
    except HostError:
        return []
    names = list(dict.fromkeys(p for c in run.configs for p in c.logs))
    return [p for p in names if await ctx.server.exists(p)][:MAX_DEFAULT_LOGS]


async def default_logs(ctx: CheckContext) -> list[str]:
    """The usual logs that exist in the server context, at most MAX_DEFAULT_LOGS."""
    out: list[str] = []
    for pattern in DEFAULT_LOGS:
        if "*" in pattern:
            found = await ctx.server.glob(pattern)
        else:
            found = [pattern] if await ctx.server.exists(pattern) else []
        out += [p for p in found if p not in out]
        if len(out) >= MAX_DEFAULT_LOGS:
            return out[:MAX_DEFAULT_LOGS]
    return out


@register
class LogExcerptCheck(Check[LogExcerptParams]):
    id = "logs.excerpt"
    title = "Server log excerpts"
    step: ClassVar[StepId] = "server-logs"
    Params = LogExcerptParams
    reads_server = True
    emits: ClassVar[tuple[str, ...]] = (
        "log.reset", "log.eof", "log.crash", "log.resource", "log.protocol", "log.proxy_upstream",
        "log.conntrack_full", "log.syn_flood", "log.client_timeout", "log.client_abort",
        "log.proxy_reject", "log.rate_limit", "log.worker_killed", "log.worker_boot")
    description = ("Reads the server's logs (--log, --journal, or the usual files) in the time "
                   "window around --at and quotes the lines that match reset, crash and "
                   "resource signatures.")

    weighs: ClassVar[bool] = True  # whether its matches raise signals for the diagnosis
    untimed_ok: ClassVar[bool] = True  # whether a log without timestamps is read
    #: whether it leaves where its reading ended for the check that reads after the probes
    leaves_read_until: ClassVar[bool] = True
    phrase: ClassVar[str] = "in the window"

    def window(self, ctx: CheckContext) -> tuple[datetime, datetime]:
        """The time window read: around --at, else the last --window seconds."""
        return window_of(ctx)

    async def run(self, ctx: CheckContext, params: LogExcerptParams) -> CheckResult:
        start, end = self.window(ctx)
        if self.leaves_read_until:
            # what this read could see: lines written later (by the probes) are not in it yet
            ctx.logs_read_until = min(end, ctx.now())
        reading = _Reading(self, ctx, params, start, end)
        paths = await reading.paths()
        if paths is None:
            return CheckResult.skipped(
                f"none of the usual log files ({', '.join(DEFAULT_LOGS)}) exists in {ctx.server.spec}",
                "--log PATH (or --journal UNIT)")
        await reading.files(paths)
        await reading.journals()
        return reading.result()


@register
class LogsDuringProbesCheck(LogExcerptCheck):
    """The same logs read again once the probes have run: what the server wrote while the
    wizard's own probes ran. A reset the probes reproduced then comes with the server's own
    account of it (its reset, EOF, crash or upstream line), at the moment the probe saw it."""

    id = "logs.probed"
    title = "Server logs while the wizard probed"
    step = "handshake"
    emits = ()
    # Evidence for the reader, not for the ranking: these lines answer the wizard's own
    # probes, whose packets steps 4-6 have already judged; and what a signature names in
    # them (a worker's traceback, a restart) may be beside the reset the probe met.
    weighs = False
    untimed_ok = False  # every line of it would look written "while the wizard probed"
    leaves_read_until = False  # it reads from where step 3 ended; a rerun starts there again
    phrase = "while the wizard probed"
    description = ("Reads the same logs as step 3 again after the probes, from where step 3's "
                   "window ended (or the run's start) to now, and quotes the lines the server "
                   "wrote while the wizard probed it (evidence to read; it does not weigh in "
                   "the ranking).")

    def window(self, ctx: CheckContext) -> tuple[datetime, datetime]:
        now = ctx.now()
        started = ctx.started or now
        before = ctx.logs_read_until
        # Lines step 3 already read are not read twice; a window around a past --at ends
        # before the run, so then the run's start is where the probes' lines begin.
        start = max(started, before) if before is not None else started
        return min(start, now), now


class _Reading:
    """One reading of the server's logs for a check: the sources, what each held, the matches
    within the budget, and what could not be read."""

    def __init__(self, check: LogExcerptCheck, ctx: CheckContext, params: LogExcerptParams,
                 start: datetime, end: datetime) -> None:
        self.check, self.ctx, self.params = check, ctx, params
        self.t0, self.t1 = start.timestamp(), end.timestamp()
        self.window = [start.isoformat(), end.isoformat()]
        self.f = Findings()
        self.problems: list[str] = []
        self.sigs = {s.id: s for s in ctx.checklist.signatures}
        self.regexes = [s.regex for s in self.sigs.values()]
        self.budget = params.max_matches
        self.totals: Counter[str] = Counter()
        self.matched = 0  # lines
        self.left_out = 0
        self.signalled: set[str] = set()
        self.naive_note = False
        self.all_times: list[tuple[float, set[str]]] = []
        self.reader = LogReader(ctx.server)

    async def paths(self) -> list[str] | None:
        """The files to read: --log's (globs expanded), else the usual ones that exist
        (None: none does). Journal files given with --log are read as journals."""
        ctx, f, where = self.ctx, self.f, self.ctx.server.spec
        paths: list[str] = []
        for pattern in ctx.answers.logs:
            if is_journal_file(pattern):
                continue
            found = await ctx.server.glob(pattern)
            if not found and not any(c in pattern for c in "*?["):
                found = [pattern]  # read it anyway, so that the reason it fails is said
            if not found:
                self.problems.append(f"no file matches {pattern} in {where}")
                f.add(f"no file matches {pattern}", source=pattern)
            paths += [p for p in found if p not in paths]
        if not ctx.answers.logs and not ctx.answers.journal:
            mine = await server_logs(ctx)
            if mine:
                f.add(f"no --log given: the logs the running server names: {', '.join(mine)}",
                      source="process.settings")
            paths = [*mine, *(p for p in await default_logs(ctx) if p not in mine)]
            if not paths:
                return None
            f.add(f"no --log given: read the usual files that exist in {where}: {', '.join(paths)}")
        return paths

    def report(self, source: str, lines: list[LogLine], extra: dict[str, Any],
               more: list[tuple[float | None, tuple[int, ...]]] | None = None) -> None:
        """The matches of one source within what is left of the budget, with their signals
        (``more``: later matches, counted and timed only)."""
        ex = excerpt(lines, list(self.sigs.values()), self.params.context_lines, self.budget, more or ())
        self.budget -= len(ex.matches)
        self.left_out += ex.left_out
        self.totals.update(ex.counts)
        self.matched += ex.lines
        self.all_times.extend(ex.times)
        if not ex.matches:
            return
        self.f.add(source_title(source, ex.class_lines), kind="log", source=source, text=ex.text,
                   highlight=ex.highlight,
                   data={"first_line": ex.first_line, "matches": dict(ex.counts), "window": self.window,
                         "left_out": ex.left_out, **extra})
        for m in ex.matches:
            for sig in m.signatures:
                sid, meaning = line_signal(sig.id, sig.cls, m.line.text)
                if sid and sid not in self.signalled and self.check.weighs:
                    self.signalled.add(sid)
                    self.f.signal(sid, f"{line_place(source, m.line)}: {trim_line(m.line.text)} ({sig.id}"
                                  + (f": {meaning}" if meaning else "") + ")")

    async def _cut(self, path: str) -> tuple[LogWindow, int]:
        # Only the matching lines and their context come back (and only they cross an
        # SSH link); the count says how many lines the window held.
        # Lines are made for at most max_matches of them: no more can be quoted.
        return await excerpt_window(self.reader, path, self.t0, self.t1, self.regexes,
                                    self.params.context_lines, keep=self.params.max_matches)

    async def files(self, paths: list[str]) -> None:
        """Each file's window (and its rotated copies' when the window reaches into them)."""
        f = self.f
        windows: list[tuple[LogWindow, int]] = []
        for path in paths:
            if not self.check.untimed_ok and path in self.ctx.logs_untimed:
                f.add(f"{path}: no timestamps, so the lines written while the wizard probed "
                      "cannot be told from older ones: not read again", source=path)
                continue
            sibs, notes = await rotated_in_window(self.reader, path, self.t0, self.t1)
            for note in notes:
                f.add(f"{path}: {note}", source=path)
            for sib in sibs:
                if sib.path not in paths and sib.path not in (w.path for w, _ in windows):
                    windows.append(await self._cut(sib.path))
            if sibs:
                f.add(f"{path}: the window reaches back into its rotated copies "
                      f"{', '.join(s.path for s in sibs)}", source=path,
                      data={"rotated": [{"path": s.path, "first": s.first, "last": s.last}
                                        for s in sibs]})
            windows.append(await self._cut(path))
        for win, in_window in windows:
            self._file(win, in_window)

    def _file(self, win: LogWindow, in_window: int) -> None:
        path = win.path
        if win.error:
            self.problems.append(win.error)
            self.f.add(f"{path}: cannot be read: {win.error}", source=path)
            return
        if win.format and not win.format_has_zone:
            self.naive_note = True
        if win.format is None and win.size and self.check.untimed_ok:
            self.ctx.logs_untimed.add(path)  # step 3 read it once: enough
        said = "; ".join(win.notes)
        how = (f"read the whole file ({win.size} bytes)" if win.bytes_read >= win.size
               else f"read {win.bytes_read} of {win.size} bytes by {win.method}")
        self.f.add(f"{path}: {plural(in_window, 'line')} in the window (format {win.format or 'unknown'}, {how})"
                   + (f"; {said}" if said else ""), source=path,
                   data={"format": win.format, "bytes_read": win.bytes_read, "size": win.size,
                         "method": win.method, "capped": win.capped})
        self.report(path, win.lines, {"format": win.format}, win.more)

    async def journals(self) -> None:
        """The journal of each --journal unit, and each journal file given."""
        answers = self.ctx.answers
        journal_files = [v for v in [*answers.logs, *answers.journal] if is_journal_file(v)]
        units = [v for v in answers.journal if not is_journal_file(v)]
        for unit, jfile in [(u, "") for u in units] + [("", j) for j in journal_files]:
            name = unit or jfile
            jw = await journal_window(self.ctx.server, unit, self.t0, self.t1, file=jfile)
            if jw.error:
                self.problems.append(f"journal of {name}: {jw.error}")
                self.f.add(f"journal of {name}: {jw.error}",
                           source=jw.command or (f"journalctl -u {unit}" if unit else f"journalctl --file {jfile}"))
                continue
            lines = [LogLine(i + 1, 0, e.text, e.ts, True, True) for i, e in enumerate(jw.entries)]
            jwin = LogWindow(name, lines=lines)
            await match_window(jwin, self.regexes)
            lines = jwin.lines
            self.f.add(f"journal of {name}: {plural(len(lines), 'line')} in the window"
                       + (" (output truncated)" if jw.truncated else ""), source=jw.command)
            self.report(jw.command, lines, {"unit": unit} if unit else {"journal_file": jfile})

    def result(self) -> CheckResult:
        """The histogram, the notes, and the status and summary of the whole reading."""
        f, params = self.f, self.params
        hist = histogram(self.all_times, self.t0, self.t1)
        if hist:
            data, text = hist
            f.add("matches over time in the window (" + ", ".join(
                plural(sum(r[i + 2] for r in data["rows"]), HIST_WORDS[name])
                for i, (name, _) in enumerate(HIST_CLASSES) if any(r[i + 2] for r in data["rows"]))
                + ")", kind="histogram", source=self.check.id, text=text, data=data)
        if self.naive_note:
            f.add("timestamps without a zone were read in the wizard's local time zone "
                  f"({datetime.now().astimezone().tzname()}); if the server's zone differs, "
                  "widen --window")
        if self.left_out:
            f.add(f"{self.left_out} more matching lines were left out (max_matches {params.max_matches})")
        total, problems, weighs = self.matched, self.problems, self.check.weighs
        status = Status.WARN if (self.signalled or problems or (total and not weighs)) else Status.PASS
        summary = (f"{plural(total, 'matching line')} {self.check.phrase}" + (
            " (" + ", ".join(f"{n} {sid}" for sid, n in self.totals.most_common(4)) + ")" if total else "")
            + (f"; {plural(len(problems), 'source')} could not be read" if problems else ""))
        return f.result(status, summary)
