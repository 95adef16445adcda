"""Fast time-window excerpts of big ordered logs (I/O through a Host): the window's edges found
by binary search on timestamps, the bytes between taken as the window without parsing each
line, and only the lines that match the signatures (plus context) turned into LogLines.

``LogReader.window`` parses every line of the window, which costs ~10 MB/s of Python; here a
timestamp is parsed only near the two edges (a few kilobytes each) and for the selected
lines. The window is the run of lines from the first line stamped at or after ``start`` up
to the first line stamped after ``end``, so lines out of order by less than the file's
disorder are taken with their neighbours (the sampled order check sends files with larger
disorder to ``LogReader.window``'s scan, as does a small or unrecognised file).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from wizard.probes import hsmatch
from wizard.probes.commands import run_command
from wizard.probes.hosts import Host, HostError
from wizard.probes.logs import (COUNT_PREFIX, DEFAULT_CAP, HEAD_BYTES, PROBE_BYTES, SMALL_FILE,
                                LogLine, LogReader, LogWindow, _Budget, _Scanner, _split, is_gzip)
from wizard.probes.logremote import is_remote, remote_rows
from wizard.probes.logscan import literal_line_starts, minimal_literals, required_literals
from wizard.probes.timestamps import detect, format_named

CUT_CHUNK = 16 << 20  # one read of a local window's bytes (each within the read timeout)
REMOTE_CHUNK = 4 << 20  # a read over SSH: each must finish within the read timeout
BACK_LINES = 500  # how far back an unstamped line's owner is looked for
REMOTE_PROBE = 512  # a binary-search step over SSH: one or two lines
LOCAL_PROBE = 2 << 10  # a step here: a dozen lines (grown to PROBE_BYTES for longer ones)


@dataclass
class Selector:
    """Signature regexes (case-insensitive) and the literal prefilter derived from them."""

    regexes: list[re.Pattern[str]]
    literals: list[bytes]  # lowered; a line matching any regex contains one of these
    unfiltered: list[re.Pattern[bytes]] = field(default_factory=list)  # no literal: run as is

    @classmethod
    def of(cls, regexes: Sequence[str]) -> Selector:
        lits: set[str] = set()
        unfiltered: list[re.Pattern[bytes]] = []
        for rx in regexes:
            need = required_literals(rx)
            if need is None:
                unfiltered.append(re.compile(rx.encode(), re.I | re.M))
            else:
                lits |= need
        return cls([re.compile(rx, re.I) for rx in regexes],
                   [lit.encode() for lit in minimal_literals(lits)], unfiltered)

    def candidate_starts(self, data: bytes) -> list[int]:
        """Offsets (in ``data``) of the lines that may match: whole-buffer searches only."""
        starts = literal_line_starts(data.lower(), self.literals) if self.literals else set()
        for rx in self.unfiltered:
            for m in rx.finditer(data):
                starts.add(data.rfind(b"\n", 0, m.start()) + 1)
        return sorted(starts)

    def matches(self, text: str) -> bool:
        return any(rx.search(text) for rx in self.regexes)

    async def fast_starts(self, data: bytes) -> list[int]:
        """``candidate_starts`` by a local grep over the bytes (already in memory, on stdin):
        its multi-literal search is one pass where Python needs one per literal (~10x
        faster on a 10-minute window of a busy log); the literal-less regexes by grep -P at
        the same time. Whatever grep cannot do (missing, no -P, output too large) falls back
        to Python for that part, so the lines found are the same either way."""
        if len(data) < GREP_MIN:
            return self.candidate_starts(data)
        jobs = [_grep_starts(data, ["-F", "-o"], [lit.decode("utf-8", "surrogateescape") for lit in self.literals])
                if self.literals else _none(),
                *(_grep_starts(data, ["-P"], [rx.pattern.decode("utf-8", "surrogateescape")]) for rx in self.unfiltered)]
        found = await asyncio.gather(*jobs)
        starts: set[int] = set()
        py = Selector(self.regexes, [], [])
        if self.literals:
            if found[0] is None:
                py.literals = self.literals
            else:
                starts.update(found[0])
        for rx, got in zip(self.unfiltered, found[1:]):
            if got is None:
                py.unfiltered.append(rx)
            else:
                starts.update(got)
        if py.literals or py.unfiltered:
            starts.update(py.candidate_starts(data))
        return sorted(starts)


GREP_MIN = 256 << 10  # below this, Python is as fast as starting grep
GREP_OUT_CAP = 4 << 20  # more output than this: the prefilter passes too much, use Python
GREP_TIMEOUT = 30.0


async def _none() -> list[int] | None:
    return None


async def _grep_starts(data: bytes, mode: list[str], patterns: list[str]) -> list[int] | None:
    """Offsets of the lines of ``data`` that ``grep -i`` finds any of ``patterns`` in (-b:
    the byte offset of each match with -o, of each line without); None when grep cannot."""
    argv = ["grep", "-a", "-b", "-i", *mode]
    for pat in patterns:
        argv += ["-e", pat]
    try:
        out = await run_command(argv, GREP_TIMEOUT, GREP_OUT_CAP, stdin=data, where="local")
    except OSError:
        return None
    if out.missing or out.timed_out or out.truncated or out.returncode not in (0, 1):
        return None
    starts: set[int] = set()
    for raw in out.stdout.split(b"\n"):
        num, sep, _ = raw.partition(b":")
        if sep and num.isdigit():
            off = int(num)
            starts.add(data.rfind(b"\n", 0, off) + 1 if "-o" in mode else off)
    return sorted(starts)


@dataclass
class WindowCut:
    """The bytes of one file's window: from the first line in it to the line after it."""

    path: str
    size: int = 0
    mtime: float = 0.0
    start: int = 0  # offset of the window's first line
    end: int = 0  # offset just after its last line
    data: bytes = b""
    first_number: int | None = None  # line number at ``start`` (None: prefix not counted)
    format: str | None = None
    format_has_zone: bool = True
    bytes_read: int = 0
    capped: bool = False
    error: str = ""
    fallback: str = ""  # why this file needs LogReader.window instead

    @property
    def lines(self) -> int:
        return self.data.count(b"\n") + (1 if self.data and not self.data.endswith(b"\n") else 0)


async def _edge(sc: _Scanner, target: float, strict: bool) -> int:
    """Offset of the first line stamped at (or, ``strict``, after) ``target``; the file's
    size when there is none."""
    pos = await sc.bisect(target if not strict else target + 1e-6)
    # Read from one byte early in probe-sized pieces: the edge is within a probe or two.
    at, skip = (pos - 1, True) if pos > 0 else (0, False)
    n = sc.budget.probe
    while at < sc.size:
        data = await sc.budget.read(at, n)
        if not data:
            break
        lines, nxt = _split(data, at, at + len(data) >= sc.size)
        if (nxt == at or (skip and len(lines) < 2)) and n < PROBE_BYTES and len(data) == n:
            n = PROBE_BYTES  # a line longer than a small probe: read it whole
            continue
        if skip and lines:
            lines, skip = lines[1:], False
        for off, text in lines:
            ts = sc._ts(text)
            if ts is not None and (ts > target if strict else ts >= target):
                return off
        at = nxt if nxt > at else at + len(data)
    return sc.size


async def cut_window(reader: LogReader, path: str, start: float, end: float, *,
                     read_data: bool = True, probe: int = LOCAL_PROBE) -> WindowCut:
    """The bytes of ``path`` inside [start, end] by two binary searches; ``fallback`` says why
    not (gzip, small, unknown format, out of order), and then nothing else is set. Without
    ``read_data`` only the edges are found (the window is searched where the file is); a
    small ``probe`` makes each search step read less (a few hundred bytes over SSH)."""
    cut = WindowCut(path)
    if is_gzip(path):
        cut.fallback = "gzip"
        return cut
    budget = _Budget(reader.host, path, reader.cap, probe)
    try:
        info = await reader.host.stat(path)
        if not info.is_file or info.size <= SMALL_FILE:
            cut.fallback = "small or not a regular file"
            return cut
        cut.size, cut.mtime = info.size, info.mtime
        ctx = reader.time_context(info.mtime)
        head = await budget.read(0, HEAD_BYTES if probe > REMOTE_PROBE else 4 * probe)
        fmt = detect([t for _, t in _split(head, 0, False)[0]], ctx)
        if fmt is None:
            cut.fallback = "no known timestamp format"
            return cut
        cut.format, cut.format_has_zone = fmt.name, fmt.has_zone
        sc = _Scanner(budget, fmt, ctx, info.size, start, end, 0)
        if not await sc.ordered():
            cut.fallback = "out of order"
            return cut
        # both edges searched at once: their probes travel together
        cut.start, last = await asyncio.gather(_edge(sc, start, strict=False), _edge(sc, end, strict=True))
        cut.end = max(cut.start, last)
        if not read_data:
            cut.bytes_read, cut.capped = budget.used, budget.capped
            return cut
        if cut.start == 0:
            cut.first_number = 1
        elif cut.start <= COUNT_PREFIX:
            cut.first_number = (await budget.read(0, cut.start)).count(b"\n") + 1
        cut.data = await _window_bytes(budget, cut)
    except HostError as exc:
        cut.error = exc.message
    cut.bytes_read, cut.capped = budget.used, budget.capped
    return cut


async def _window_bytes(budget: _Budget, cut: WindowCut, chunk: int = CUT_CHUNK) -> bytes:
    parts: list[bytes] = []
    pos = cut.start
    while pos < cut.end:
        data = await budget.read(pos, min(chunk, cut.end - pos))
        if not data:
            break
        parts.append(data)
        pos += len(data)
    return b"".join(parts)


async def _around(host: Host, path: str, cut: WindowCut, margin: int) -> tuple[list[bytes], list[bytes]]:
    """Up to ``margin`` whole lines just before and just after the window."""
    if margin <= 0:
        return [], []
    before: list[bytes] = []
    if cut.start > 0:
        off = max(0, cut.start - PROBE_BYTES)
        data = await host.read(path, off, cut.start - off)
        lines = data.split(b"\n")[:-1]  # the window starts a line: data ends with "\n"
        if off > 0:
            lines = lines[1:]  # the first piece may be the tail of a longer line
        before = lines[-margin:]
    after: list[bytes] = []
    if cut.end < cut.size:
        data = await host.read(path, cut.end, PROBE_BYTES)
        lines = data.split(b"\n")
        if cut.end + len(data) < cut.size:
            lines = lines[:-1]
        after = [ln for ln in lines[:margin]]
    return before, after


async def excerpt_window(reader: LogReader, path: str, start: float, end: float,
                         regexes: Sequence[str], margin: int = 2) -> tuple[LogWindow, int]:
    """The lines of ``path`` in [start, end] that match any of ``regexes`` with ``margin``
    context lines each side (a LogWindow whose ``lines`` are only those), and the number of
    lines in the window. Files the fast path cannot cut go through ``reader.window``."""
    remote = is_remote(reader.host)
    cut = await cut_window(reader, path, start, end, read_data=not remote,
                           probe=REMOTE_PROBE if remote else LOCAL_PROBE)
    if cut.fallback:
        win = await reader.window(path, start, end, margin)
        sel = Selector.of(regexes)
        inside = sum(1 for ln in win.lines if ln.in_window)
        hits = {i for i, ln in enumerate(win.lines) if ln.in_window and sel.matches(ln.text)}
        keep = sorted({j for i in hits for j in range(max(0, i - margin), min(len(win.lines), i + margin + 1))})
        win.lines = [win.lines[j] for j in keep]
        return win, inside
    win = LogWindow(path, cut.size, cut.mtime, cut.format, cut.format_has_zone, method="bisect",
                    bytes_read=cut.bytes_read, capped=cut.capped, error=cut.error)
    if cut.error:
        return win, 0
    if remote:
        sel = Selector.of(regexes)
        try:
            found = await _remote_excerpt(reader, cut, sel, regexes, margin, win)
        except HostError as exc:
            win.error = exc.message
            return win, 0
        if found is not None:
            return found
        win.notes.append("no python3 on the server: the window was read by ranged reads")
        budget = _Budget(reader.host, path, reader.cap)
        try:
            cut.data = await _window_bytes(budget, cut, REMOTE_CHUNK)
            if cut.start <= COUNT_PREFIX:
                cut.first_number = (await budget.read(0, cut.start)).count(b"\n") + 1 if cut.start else 1
        except HostError as exc:
            win.error = exc.message
            return win, 0
        win.bytes_read += budget.used
        cut.capped = budget.capped
    if cut.capped:
        win.notes.append(f"stopped after reading {reader.cap >> 20} MiB (the per-file cap)")
    data = cut.data
    m = hsmatch.matcher(regexes)
    if m is not None:  # the window's bytes are in memory: one Hyperscan pass, exact lines
        starts = [hit.start for hit in m.lines(data)]
    else:  # the literal prefilter is built only here: parsing 42 regexes costs ~10 ms
        if not remote:
            win.notes.append(hsmatch.NO_ENGINE_NOTE)
        sel = Selector.of(regexes)
        starts = [s for s in await sel.fast_starts(data)
                  if sel.matches(_text(data, s))]
    total = cut.lines  # counted once: a window can be tens of MiB
    if not starts:
        return win, total
    ctx = reader.time_context(cut.mtime)
    tf = format_named(cut.format)  # type: ignore[arg-type]

    def ts_of(text: str) -> float | None:
        return tf.parse(text, ctx)

    # Line starts needed: each hit and its margin lines inside the window.
    wanted: dict[int, bool] = {}  # offset in data -> is a hit
    for s in starts:
        wanted[s] = True
        p = s
        for _ in range(margin):
            if p == 0:
                break
            p = data.rfind(b"\n", 0, p - 1) + 1
            wanted.setdefault(p, False)
        p = s
        for _ in range(margin):
            nl = data.find(b"\n", p)
            if nl < 0 or nl + 1 >= len(data):
                break
            p = nl + 1
            wanted.setdefault(p, False)
    before, after = await _around(reader.host, path, cut, margin)
    out: list[LogLine] = []

    def context(raws: list[bytes], off: int, number: int | None) -> None:
        """Context lines read just outside the window, from file offset ``off``."""
        for b in raws:
            text = _decode(b)
            ts = ts_of(text)
            out.append(LogLine(number, off, text, ts, ts is not None, False))
            off += len(b) + 1
            number = None if number is None else number + 1

    offsets = sorted(wanted)
    need_before = max(0, margin - data.count(b"\n", 0, starts[0]))
    if need_before and before:
        before = before[-need_before:]
        off = cut.start - sum(len(b) + 1 for b in before)
        context(before, off, None if cut.first_number is None else cut.first_number - len(before))
    counted_to, counted = 0, 0  # newlines in data[:counted_to]: offsets ascend, counted once
    for s in offsets:
        text = _text(data, s)
        own = ts_of(text)
        ts = own if own is not None else _owner_ts(data, s, ts_of)
        counted += data.count(b"\n", counted_to, s)
        counted_to = s
        number = None if cut.first_number is None else cut.first_number + counted
        out.append(LogLine(number, cut.start + s, text, ts, own is not None, True))
    # the last hit is among the offsets: newlines before it are those counted, less any after it
    need_after = max(0, margin - (total - 1 - (counted - data.count(b"\n", starts[-1], counted_to))))
    if need_after and after:
        after = after[:need_after]
        context(after, cut.end, None if cut.first_number is None else cut.first_number + total)
    win.lines = out
    return win, total


async def _remote_excerpt(reader: LogReader, cut: WindowCut, sel: Selector, regexes: Sequence[str],
                          margin: int, win: LogWindow) -> tuple[LogWindow, int] | None:
    """The window searched on the server by the helper: only matches and context cross."""
    got = await remote_rows(reader.host, cut.path, cut.start, cut.end, sel.literals,
                            [rx.pattern.decode("utf-8", "surrogateescape") for rx in sel.unfiltered],
                            regexes, margin)
    if got is None:
        return None
    win.method = "bisect+remote"
    win.bytes_read += got.bytes_received
    if got.truncated:
        win.notes.append("the server-side search stopped at its output or match cap")
    ctx = reader.time_context(cut.mtime)
    tf = format_named(cut.format)  # type: ignore[arg-type]
    first = None if got.prefix is None else got.prefix + 1
    by_index = {r[0]: r for r in got.rows}
    out: list[LogLine] = []
    for n, off, text, _hit in got.rows:
        own = tf.parse(text, ctx)
        ts = own
        inside = 0 <= n < got.lines
        if own is None and inside:
            # Its owner: a stamped row just before it, else a small read backwards.
            k = n - 1
            while k in by_index and k >= 0:
                ts = tf.parse(by_index[k][2], ctx)
                if ts is not None:
                    break
                k -= 1
            else:
                ts = await _owner_by_reads(reader.host, cut.path, off, cut.start,
                                           lambda t: tf.parse(t, ctx))
        out.append(LogLine(None if first is None else first + n, off, text, ts, own is not None, inside))
    win.lines = out
    return win, got.lines


async def _owner_by_reads(host: Host, path: str, off: int, floor: int, ts_of: object) -> float | None:
    """The time of the stamped line before ``off`` (not before ``floor``), read backwards in
    small pieces: only for a matching continuation line whose owner is beyond the context."""
    end, seen, step = off, 0, REMOTE_PROBE  # the owner is usually a line or two back
    while end > floor and seen < BACK_LINES:
        at = max(floor, end - step)
        step = min(step * 4, 64 << 10)
        data = await host.read(path, at, end - at)  # ends with the "\n" before ``end``
        cut = data.find(b"\n") if at > floor else -1  # a partial first line: read it next time
        for raw in reversed(data[cut + 1:].split(b"\n")[:-1]):
            seen += 1
            ts = ts_of(_decode(raw))  # type: ignore[operator]
            if ts is not None:
                return ts
        nxt = at + cut + 1 if cut >= 0 else at
        end = nxt if nxt < end else at  # no progress (one very long line): past it
    return None


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", "replace")


def _text(data: bytes, s: int) -> str:
    e = data.find(b"\n", s)
    return _decode(data[s:] if e < 0 else data[s:e])


def _owner_ts(data: bytes, s: int, ts_of: object) -> float | None:
    """The time of the stamped line an unstamped line at ``s`` continues (the window's first
    line is stamped, so one is found unless the continuation is very long)."""
    p = s
    for _ in range(BACK_LINES):
        if p == 0:
            return None
        p = data.rfind(b"\n", 0, p - 1) + 1
        ts = ts_of(_text(data, p))  # type: ignore[operator]
        if ts is not None:
            return ts
    return None


__all__ = ["DEFAULT_CAP", "Selector", "WindowCut", "cut_window", "excerpt_window"]
