"""Step 3 check: excerpts of the server's logs around the time of the reset, matched against
the checklist's signatures (log files through the log reader probe, journald units)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import ClassVar

from pydantic import Field

from wizard.checks.base import Check, CheckContext, CheckParams, Findings
from wizard.checks.registry import register
from wizard.model import CheckResult, Signature, Status
from wizard.probes.journal import is_journal_file, journal_window
from wizard.probes.logcut import excerpt_window
from wizard.probes.logrotated import rotated_in_window
from wizard.probes.logs import LogLine, LogReader, LogWindow

# What a Linux admin would look at first; globs for per-service directories. Only the ones
# that exist are read, at most MAX_DEFAULT_LOGS of them.
DEFAULT_LOGS = ("/var/log/syslog", "/var/log/messages", "/var/log/kern.log",
                "/var/log/daemon.log", "/var/log/nginx/error.log", "/var/log/apache2/error.log",
                "/var/log/httpd/error_log", "/var/log/haproxy.log", "/var/log/mysql/error.log",
                "/var/log/mysqld.log", "/var/log/postgresql/*.log", "/var/log/*/error.log",
                "/var/log/auth.log", "/var/log/secure")
MAX_DEFAULT_LOGS = 12
HIST_BUCKETS = 12
SPARK = "▁▂▃▄▅▆▇█"
HIST_CLASSES = (("resets", ("rst_certain",)), ("eof", ("eof_or_rst",)), ("proxy", ("proxy_state",)),
                ("crashes", ("crash",)), ("resource", ("resource", "kernel_event")))

CLASS_SIGNALS = {"rst_certain": "log.reset", "eof_or_rst": "log.eof", "crash": "log.crash",
                 "resource": "log.resource", "protocol": "log.protocol",
                 "proxy_state": "log.proxy_upstream"}
ID_SIGNALS = {"nf-conntrack-full": "log.conntrack_full", "syn-flood": "log.syn_flood"}
TITLE_CLASSES = (("rst_certain", "reset"), ("eof_or_rst", "eof-or-reset"), ("crash", "crash"),
                 ("resource", "resource"), ("kernel_event", "kernel"), ("proxy_state", "proxy"),
                 ("protocol", "protocol"), ("not_reset", "refused/timeout"))


class LogExcerptParams(CheckParams):
    context_lines: int = Field(default=2, ge=0, le=20)
    max_matches: int = Field(default=200, ge=1, le=10000)


@dataclass
class Match:
    line: LogLine
    index: int  # position in the window's lines
    signatures: list[Signature]


@dataclass
class Excerpt:
    """The matched lines of one source with their context, merged into one text."""

    text: str = ""
    highlight: list[int] = field(default_factory=list)
    first_line: int | None = None
    matches: list[Match] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # signature id -> matches
    left_out: int = 0
    times: list[tuple[float, set[str]]] = field(default_factory=list)  # every match: ts, classes


def match_lines(lines: list[LogLine], signatures: list[Signature]) -> list[Match]:
    compiled = [(s, s.compiled()) for s in signatures]
    out = []
    for i, line in enumerate(lines):
        if not line.in_window:
            continue
        hits = [s for s, rx in compiled if rx.search(line.text)]
        if hits:
            out.append(Match(line, i, hits))
    return out


def adjacent(a: LogLine, b: LogLine) -> bool:
    """Whether ``b`` is the line right after ``a`` in its file. The lines given to excerpt()
    may be only the matches and their context, so neighbours in the list can be far apart."""
    if a.number is not None and b.number is not None:
        return b.number == a.number + 1
    if a.offset == b.offset == 0:
        return True  # no position known (a journal's entries): taken as given
    # The decoded text is at least as long in UTF-8 as the raw line (a replaced byte grows),
    # plus "\r\n" at most.
    return 0 < b.offset - a.offset <= len(a.text.encode("utf-8", "replace")) + 2


def excerpt(lines: list[LogLine], signatures: list[Signature], context: int, budget: int) -> Excerpt:
    """Keep ``context`` lines around each of the first ``budget`` matches, merging overlaps;
    context never reaches across a gap between lines that are not neighbours in the file."""
    found = match_lines(lines, signatures)
    ex = Excerpt(counts=Counter(s.id for m in found for s in m.signatures),
                 times=[(m.line.ts, {s.cls for s in m.signatures}) for m in found
                        if m.line.ts is not None])
    kept = found[:max(budget, 0)]
    ex.left_out = len(found) - len(kept)
    ex.matches = kept
    if not kept:
        return ex
    spans: list[list[int]] = []
    for m in kept:
        lo = hi = m.index
        while lo > 0 and m.index - lo < context and adjacent(lines[lo - 1], lines[lo]):
            lo -= 1
        while hi < len(lines) - 1 and hi - m.index < context and adjacent(lines[hi], lines[hi + 1]):
            hi += 1
        if spans and lo <= spans[-1][1] + 1 and (lo <= spans[-1][1] or adjacent(lines[spans[-1][1]], lines[lo])):
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    hit_idx = {m.index for m in kept}
    text: list[str] = []
    for n, (lo, hi) in enumerate(spans):
        if n:
            text.append("...")
        for i in range(lo, hi + 1):
            if i in hit_idx:
                ex.highlight.append(len(text))
            text.append(lines[i].text)
    ex.text = "\n".join(text)
    ex.first_line = lines[spans[0][0]].number
    return ex


def _where(path: str, line: LogLine) -> str:
    return f"{path}:{line.number}" if line.number is not None else f"{path}@{line.offset}"


def _trim(text: str, n: int = 160) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _title(path: str, counts: Counter[str], sigs: dict[str, Signature]) -> str:
    per_class: Counter[str] = Counter()
    for sid, n in counts.items():
        per_class[sigs[sid].cls] += n
    parts = [f"{per_class[c]} {word} lines" for c, word in TITLE_CLASSES if per_class[c]]
    return f"{path}: " + (", ".join(parts) if parts else "no matching lines")


def _hhmmss(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    """A bucket's length as people write it: 0.3 s, 50 s, 2.5 min, 1.2 h."""
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.2g} min"
    return f"{seconds / 3600:.2g} h"


def histogram(times: list[tuple[float, set[str]]], t0: float, t1: float,
              buckets: int = HIST_BUCKETS) -> tuple[dict, str] | None:
    """Matches counted per time bucket of [t0, t1] and per kind: the table's data and a
    sparkline text (one row per kind that occurs). None when nothing is in the window."""
    width = (t1 - t0) / buckets if t1 > t0 else 0.0
    if width <= 0:
        return None
    counts = [[0] * len(HIST_CLASSES) for _ in range(buckets)]
    seen = False
    for ts, classes in times:
        if not t0 <= ts <= t1:
            continue
        b = min(buckets - 1, int((ts - t0) / width))
        for k, (_, members) in enumerate(HIST_CLASSES):
            if classes & set(members):
                counts[b][k] += 1
                seen = True
    if not seen:
        return None
    columns = ["from", "to", *(name for name, _ in HIST_CLASSES)]
    spec = "seconds" if width >= 1 else "milliseconds"  # short windows: buckets under a second
    rows = [[datetime.fromtimestamp(t0 + i * width, timezone.utc).isoformat(timespec=spec),
             datetime.fromtimestamp(t0 + (i + 1) * width, timezone.utc).isoformat(timespec=spec),
             *counts[i]] for i in range(buckets)]
    lines = []
    for k, (name, _) in enumerate(HIST_CLASSES):
        series = [row[k] for row in counts]
        top = max(series)
        if not top:
            continue
        spark = "".join(" " if v == 0 else SPARK[min(7, (v * 8 - 1) // top)] for v in series)
        lines.append(f"{name:<9}|{spark}| max {top} per {_span(width)}")
    lines.append(f"{'':<9} {_hhmmss(t0)}{'':{max(1, buckets - 16)}}{_hhmmss(t1)} UTC")
    return {"columns": columns, "rows": rows, "bucket_s": width}, "\n".join(lines)


def window_of(ctx: CheckContext) -> tuple[datetime, datetime]:
    span = ctx.answers.window_s
    if ctx.answers.at is not None:
        at = ctx.answers.at if ctx.answers.at.tzinfo else ctx.answers.at.replace(tzinfo=timezone.utc)
        return at - timedelta(seconds=span), at + timedelta(seconds=span)
    now = ctx.now()
    return now - timedelta(seconds=span), now


def _signal_for(sig: Signature) -> str | None:
    return ID_SIGNALS.get(sig.id) or CLASS_SIGNALS.get(sig.cls)


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
    step = "server-logs"
    Params = LogExcerptParams
    reads_server = True
    emits = ("log.reset", "log.eof", "log.crash", "log.resource", "log.protocol",
             "log.proxy_upstream", "log.conntrack_full", "log.syn_flood")
    description = ("Reads the server's logs (--log, --journal, or the usual files) in the time "
                   "window around --at and quotes the lines that match reset, crash and "
                   "resource signatures.")

    weighs: ClassVar[bool] = True  # whether its matches raise signals for the diagnosis
    phrase: ClassVar[str] = "in the window"

    def window(self, ctx: CheckContext) -> tuple[datetime, datetime]:
        """The time window read: around --at, else the last --window seconds."""
        return window_of(ctx)

    async def run(self, ctx: CheckContext, params: LogExcerptParams) -> CheckResult:
        f = Findings()
        start, end = self.window(ctx)
        # what this read could see: lines written later (by the probes) are not in it yet
        ctx.marks[f"{self.id}.until"] = min(end, ctx.now())
        t0, t1 = start.timestamp(), end.timestamp()
        window = [start.isoformat(), end.isoformat()]
        where = ctx.server.spec
        paths: list[str] = []
        problems: list[str] = []
        journal_files = [v for v in [*ctx.answers.logs, *ctx.answers.journal] if is_journal_file(v)]
        units = [v for v in ctx.answers.journal if not is_journal_file(v)]
        for pattern in ctx.answers.logs:
            if is_journal_file(pattern):
                continue
            found = await ctx.server.glob(pattern)
            if not found and not any(c in pattern for c in "*?["):
                found = [pattern]  # read it anyway, so that the reason it fails is said
            if not found:
                problems.append(f"no file matches {pattern} in {where}")
                f.add(f"no file matches {pattern}", source=pattern)
            paths += [p for p in found if p not in paths]
        if not ctx.answers.logs and not ctx.answers.journal:
            paths = await default_logs(ctx)
            if not paths:
                return CheckResult.skipped(
                    f"none of the usual log files ({', '.join(DEFAULT_LOGS)}) exists in {where}",
                    "--log PATH (or --journal UNIT)")
            f.add(f"no --log given: read the usual files that exist in {where}: {', '.join(paths)}")

        sigs = {s.id: s for s in ctx.checklist.signatures}
        budget = params.max_matches
        totals: Counter[str] = Counter()
        left_out = 0
        signalled: set[str] = set()
        naive_note = False
        all_times: list[tuple[float, set[str]]] = []
        reader = LogReader(ctx.server)

        def report(source: str, lines: list[LogLine], extra: dict) -> None:
            nonlocal budget, left_out
            ex = excerpt(lines, list(sigs.values()), params.context_lines, budget)
            budget -= len(ex.matches)
            left_out += ex.left_out
            totals.update(ex.counts)
            all_times.extend(ex.times)
            if not ex.matches:
                return
            f.add(_title(source, ex.counts, sigs), kind="log", source=source, text=ex.text,
                  highlight=ex.highlight,
                  data={"first_line": ex.first_line, "matches": dict(ex.counts), "window": window,
                        "left_out": ex.left_out, **extra})
            for m in ex.matches:
                for sig in m.signatures:
                    sid = _signal_for(sig)
                    if sid and sid not in signalled and self.weighs:
                        signalled.add(sid)
                        f.signal(sid, f"{_where(source, m.line)}: {_trim(m.line.text)} ({sig.id})")

        regexes = [s.regex for s in sigs.values()]
        windows: list[tuple[LogWindow, int]] = []

        async def cut(path: str) -> tuple[LogWindow, int]:
            # Only the matching lines and their context come back (and only they cross an
            # SSH link); the count says how many lines the window held.
            return await excerpt_window(reader, path, t0, t1, regexes, params.context_lines)

        for path in paths:
            sibs, notes = await rotated_in_window(reader, path, t0, t1)
            for note in notes:
                f.add(f"{path}: {note}", source=path)
            for sib in sibs:
                if sib.path not in paths and sib.path not in (w.path for w, _ in windows):
                    windows.append(await cut(sib.path))
            if sibs:
                f.add(f"{path}: the window reaches back into its rotated copies "
                      f"{', '.join(s.path for s in sibs)}", source=path,
                      data={"rotated": [{"path": s.path, "first": s.first, "last": s.last}
                                        for s in sibs]})
            windows.append(await cut(path))
        for win, in_window in windows:
            path = win.path
            if win.error:
                problems.append(win.error)
                f.add(f"{path}: cannot be read: {win.error}", source=path)
                continue
            if win.format and not win.format_has_zone:
                naive_note = True
            notes = "; ".join(win.notes)
            how = (f"read the whole file ({win.size} bytes)" if win.bytes_read >= win.size
                   else f"read {win.bytes_read} of {win.size} bytes by {win.method}")
            f.add(f"{path}: {in_window} lines in the window (format {win.format or 'unknown'}, {how})"
                  + (f"; {notes}" if notes else ""), source=path,
                  data={"format": win.format, "bytes_read": win.bytes_read, "size": win.size,
                        "method": win.method, "capped": win.capped})
            report(path, win.lines, {"format": win.format})

        sources = [(u, "") for u in units] + [("", j) for j in journal_files]
        for unit, jfile in sources:
            name = unit or jfile
            jw = await journal_window(ctx.server, unit, t0, t1, file=jfile)
            if jw.error:
                problems.append(f"journal of {name}: {jw.error}")
                f.add(f"journal of {name}: {jw.error}",
                      source=jw.command or (f"journalctl -u {unit}" if unit else f"journalctl --file {jfile}"))
                continue
            lines = [LogLine(i + 1, 0, e.text, e.ts, True, True) for i, e in enumerate(jw.entries)]
            f.add(f"journal of {name}: {len(lines)} lines in the window"
                  + (" (output truncated)" if jw.truncated else ""), source=jw.command)
            report(jw.command, lines, {"unit": unit} if unit else {"journal_file": jfile})

        hist = histogram(all_times, t0, t1)
        if hist:
            data, text = hist
            f.add("matches over time in the window (" + ", ".join(
                f"{sum(r[i + 2] for r in data['rows'])} {name}"
                for i, (name, _) in enumerate(HIST_CLASSES) if any(r[i + 2] for r in data["rows"]))
                + ")", kind="table", source=self.id, text=text, data=data)

        if naive_note:
            f.add("timestamps without a zone were read in the wizard's local time zone "
                  f"({datetime.now().astimezone().tzname()}); if the server's zone differs, "
                  "widen --window")
        if left_out:
            f.add(f"{left_out} more matching lines were left out (max_matches {params.max_matches})")
        total = sum(totals.values())
        status = Status.WARN if (signalled or problems or (total and not self.weighs)) else Status.PASS
        summary = (f"{total} matching lines {self.phrase}" + (
            " (" + ", ".join(f"{n} {sid}" for sid, n in totals.most_common(4)) + ")" if total else "")
            + (f"; {len(problems)} sources could not be read" if problems else ""))
        return f.result(status, summary)


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
    phrase = "while the wizard probed"
    description = ("Reads the same logs as step 3 again after the probes, from where step 3's "
                   "window ended (or the run's start) to now, and quotes the lines the server "
                   "wrote while the wizard probed it (evidence to read; it does not weigh in "
                   "the ranking).")

    def window(self, ctx: CheckContext) -> tuple[datetime, datetime]:
        now = ctx.now()
        started = ctx.started or now
        before = ctx.marks.get(f"{LogExcerptCheck.id}.until")
        # Lines step 3 already read are not read twice; a window around a past --at ends
        # before the run, so then the run's start is where the probes' lines begin.
        start = max(started, before) if before is not None else started
        return min(start, now), now
