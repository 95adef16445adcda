"""Step 3 check: excerpts of the server's logs around the time of the reset, matched against
the checklist's signatures (log files through the log reader probe, journald units)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pydantic import Field

from wizard.checks.base import Check, CheckContext, CheckParams, Findings
from wizard.checks.registry import register
from wizard.model import CheckResult, Signature, Status
from wizard.probes.logs import LogLine, LogReader, journal_window

DEFAULT_LOGS = ("/var/log/syslog", "/var/log/messages", "/var/log/kern.log",
                "/var/log/nginx/error.log", "/var/log/apache2/error.log",
                "/var/log/httpd/error_log", "/var/log/haproxy.log")

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


def excerpt(lines: list[LogLine], signatures: list[Signature], context: int, budget: int) -> Excerpt:
    """Keep ``context`` lines around each of the first ``budget`` matches, merging overlaps."""
    found = match_lines(lines, signatures)
    ex = Excerpt(counts=Counter(s.id for m in found for s in m.signatures))
    kept = found[:max(budget, 0)]
    ex.left_out = len(found) - len(kept)
    ex.matches = kept
    if not kept:
        return ex
    spans: list[list[int]] = []
    for m in kept:
        lo, hi = max(0, m.index - context), min(len(lines) - 1, m.index + context)
        if spans and lo <= spans[-1][1] + 1:
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


def window_of(ctx: CheckContext) -> tuple[datetime, datetime]:
    span = ctx.answers.window_s
    if ctx.answers.at is not None:
        at = ctx.answers.at if ctx.answers.at.tzinfo else ctx.answers.at.replace(tzinfo=timezone.utc)
        return at - timedelta(seconds=span), at + timedelta(seconds=span)
    now = ctx.now()
    return now - timedelta(seconds=span), now


def _signal_for(sig: Signature) -> str | None:
    return ID_SIGNALS.get(sig.id) or CLASS_SIGNALS.get(sig.cls)


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

    async def run(self, ctx: CheckContext, params: LogExcerptParams) -> CheckResult:
        f = Findings()
        start, end = window_of(ctx)
        t0, t1 = start.timestamp(), end.timestamp()
        window = [start.isoformat(), end.isoformat()]
        where = ctx.server.spec
        paths: list[str] = []
        problems: list[str] = []
        for pattern in ctx.answers.logs:
            found = await ctx.server.glob(pattern)
            if not found and not any(c in pattern for c in "*?["):
                found = [pattern]  # read it anyway, so that the reason it fails is said
            if not found:
                problems.append(f"no file matches {pattern} in {where}")
                f.add(f"no file matches {pattern}", source=pattern)
            paths += [p for p in found if p not in paths]
        if not ctx.answers.logs and not ctx.answers.journal:
            paths = [p for p in DEFAULT_LOGS if await ctx.server.exists(p)]
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
        reader = LogReader(ctx.server)

        def report(source: str, lines: list[LogLine], extra: dict) -> None:
            nonlocal budget, left_out
            ex = excerpt(lines, list(sigs.values()), params.context_lines, budget)
            budget -= len(ex.matches)
            left_out += ex.left_out
            totals.update(ex.counts)
            if not ex.matches:
                return
            f.add(_title(source, ex.counts, sigs), kind="log", source=source, text=ex.text,
                  highlight=ex.highlight,
                  data={"first_line": ex.first_line, "matches": dict(ex.counts), "window": window,
                        "left_out": ex.left_out, **extra})
            for m in ex.matches:
                for sig in m.signatures:
                    sid = _signal_for(sig)
                    if sid and sid not in signalled:
                        signalled.add(sid)
                        f.signal(sid, f"{_where(source, m.line)}: {_trim(m.line.text)} ({sig.id})")

        for path in paths:
            win = await reader.window(path, t0, t1, params.context_lines)
            if win.error:
                problems.append(win.error)
                f.add(f"{path}: cannot be read: {win.error}", source=path)
                continue
            if win.format and not win.format_has_zone:
                naive_note = True
            notes = "; ".join(win.notes)
            in_window = sum(1 for ln in win.lines if ln.in_window)
            f.add(f"{path}: {in_window} lines in the window (format {win.format or 'unknown'}, "
                  f"read {win.bytes_read} of {win.size} bytes by {win.method})"
                  + (f"; {notes}" if notes else ""), source=path,
                  data={"format": win.format, "bytes_read": win.bytes_read, "size": win.size,
                        "method": win.method, "capped": win.capped})
            report(path, win.lines, {"format": win.format})

        for unit in ctx.answers.journal:
            jw = await journal_window(ctx.server, unit, t0, t1)
            if jw.error:
                problems.append(f"journal of {unit}: {jw.error}")
                f.add(f"journal of {unit}: {jw.error}", source=jw.command or f"journalctl -u {unit}")
                continue
            lines = [LogLine(i + 1, 0, e.text, e.ts, True, True) for i, e in enumerate(jw.entries)]
            f.add(f"journal of {unit}: {len(lines)} lines in the window", source=jw.command)
            report(jw.command, lines, {"unit": unit})

        if naive_note:
            f.add("timestamps without a zone were read in the wizard's local time zone "
                  f"({datetime.now().astimezone().tzname()}); if the server's zone differs, "
                  "widen --window")
        if left_out:
            f.add(f"{left_out} more matching lines were left out (max_matches {params.max_matches})")
        status = Status.WARN if (signalled or problems) else Status.PASS
        total = sum(totals.values())
        summary = (f"{total} matching lines in the window" + (
            " (" + ", ".join(f"{n} {sid}" for sid, n in totals.most_common(4)) + ")" if total else "")
            + (f"; {len(problems)} sources could not be read" if problems else ""))
        return f.result(status, summary)
