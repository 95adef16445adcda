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

from wizard.diag.logs.io.newlines import newlines
from wizard.diag.logs.io.reader import (
    COUNT_PREFIX,
    DEFAULT_CAP,
    HEAD_BYTES,
    MAX_PROBE,
    PROBE_BYTES,
    SMALL_FILE,
    LogReader,
    _Budget,
    _Scanner,
    _split,
    is_gzip,
)
from wizard.diag.logs.io.scan import (
    literal_line_starts,
    minimal_literals,
    required_literals,
)
from wizard.diag.logs.parse.timestamps import detect
from wizard.hosts.base import Host, HostError
from wizard.hosts.commands import run_command
from wizard.hosts.cpu import Stop
from wizard.model import linear

CUT_CHUNK = 16 << 20  # one read of a local window's bytes (each within the read timeout)
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
        return cls([linear.compile_linear(rx) for rx in regexes],
                   [lit.encode() for lit in minimal_literals(lits)], unfiltered)

    def candidate_starts(self, data: bytes) -> list[int]:
        """Offsets (in ``data``) of the lines that may match: whole-buffer searches only."""
        starts = literal_line_starts(data.lower(), self.literals) if self.literals else set()
        for rx in self.unfiltered:
            for m in rx.finditer(data):
                starts.add(data.rfind(b"\n", 0, m.start()) + 1)
        return sorted(starts)

    def matches(self, text: str) -> bool:
        return any(linear.search(rx, text) for rx in self.regexes)

    def ids(self, texts: Sequence[str], stop: Stop) -> list[tuple[int, ...]]:
        """The regexes each text matches (the Python path, without Hyperscan)."""
        out = []
        for k, text in enumerate(texts):
            if k % 256 == 0:
                stop.check()
            out.append(tuple(i for i, rx in enumerate(self.regexes) if linear.search(rx, text)))
        return out

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
                *(_grep_starts(data, ["-P"], [rx.pattern.decode("utf-8", "surrogateescape")])
                  for rx in self.unfiltered)]
        found = await asyncio.gather(*jobs)
        starts: set[int] = set()
        py = Selector(self.regexes, [], [])
        if self.literals:
            if found[0] is None:
                py.literals = self.literals
            else:
                starts.update(found[0])
        for rx, got in zip(self.unfiltered, found[1:], strict=False):
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
    data: bytes = field(default=b"", repr=False)  # tens of MiB: never in a repr
    first_number: int | None = None  # line number at ``start`` (None: prefix not counted)
    format: str | None = None
    format_has_zone: bool = True
    bytes_read: int = 0
    capped: bool = False
    error: str = ""
    fallback: str = ""  # why this file needs LogReader.window instead
    binary: bool = False  # its first bytes are not text: skipped
    # what ``_around`` reads just outside the window, when the cut read it already (None: not)
    around: tuple[bytes, bytes] | None = field(default=None, repr=False)

    @property
    def lines(self) -> int:
        return newlines(self.data) + (1 if self.data and not self.data.endswith(b"\n") else 0)


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
        if (nxt == at or (skip and len(lines) < 2)) and n < MAX_PROBE and len(data) == n:
            n *= 4  # a line longer than the probe: read it whole
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
                     read_data: bool = True, probe: int = LOCAL_PROBE, around: bool = False) -> WindowCut:
    """The bytes of ``path`` inside [start, end] by two binary searches; ``fallback`` says why
    not (gzip, small, unknown format, out of order), and then nothing else is set. Without
    ``read_data`` only the edges are found (the window is searched where the file is); a
    small ``probe`` makes each search step read less (a few hundred bytes over SSH). With
    ``around``, the bytes ``_around`` looks at for context are read too (``cut.around``)."""
    cut = WindowCut(path)
    if is_gzip(path):
        cut.fallback = "gzip"
        return cut
    budget = _Budget(reader.host, path, reader.cap, probe)
    try:
        info = await reader.host.stat(path)
        if not info.is_file:
            cut.fallback = "not a regular file"
            return cut
        cut.size, cut.mtime = info.size, info.mtime
        head = await budget.read(0, HEAD_BYTES if probe > REMOTE_PROBE else 4 * probe)
        if looks_binary(head):
            cut.binary = True
            return cut
        if info.size <= SMALL_FILE:
            cut.fallback = "small"
            return cut
        ctx = reader.time_context(info.mtime)
        fmt = detect([t for _, t in _split(head, 0, False)[0]], ctx)
        if fmt is None:
            await _untimed(budget, cut, read_data)
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
        if around:  # (in the cut's thread, two reads more; each was a hop to a thread later)
            cut.around = await _prefetch(reader.host, path, cut)
    except HostError as exc:
        cut.error = exc.message
    cut.bytes_read, cut.capped = budget.used, budget.capped
    return cut


def looks_binary(head: bytes) -> bool:
    """Whether a file's first bytes are not a log's text: control bytes (NUL among them)
    and bytes that are not UTF-8 make up more than a tenth of them (a few NULs, as a crash
    leaves in syslog, or a Latin-1 name, are text)."""
    if not head:
        return False
    bad = sum(head.count(bytes([c])) for c in (*range(0, 8), *range(14, 27), *range(28, 32)))
    bad += head.decode("utf-8", "replace").count("\ufffd")
    return bad * 10 > len(head)


async def _untimed(budget: _Budget, cut: WindowCut, read_data: bool) -> None:
    """A log without timestamps has no time window: its last bytes (the per-file cap, less
    what the head cost) are the window, searched at the scan's speed, read once."""
    room = budget.cap - budget.used - PROBE_BYTES
    cut.start, cut.end = 0, cut.size
    if cut.size > room:
        at = cut.size - room
        nl = (await budget.read(at - 1, PROBE_BYTES)).find(b"\n")
        cut.start = cut.size if nl < 0 else at + nl
    cut.first_number = 1 if cut.start == 0 else None
    if read_data:
        if 0 < cut.start <= COUNT_PREFIX:
            cut.first_number = (await budget.read(0, cut.start)).count(b"\n") + 1
        cut.data = await _window_bytes(budget, cut)


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


async def _around_bytes(host: Host, path: str, cut: WindowCut) -> tuple[bytes, bytes]:
    """The bytes just before the window (up to PROBE_BYTES) and just after it (as many)."""
    before = after = b""
    if cut.start > 0:
        off = max(0, cut.start - PROBE_BYTES)
        before = await host.read(path, off, cut.start - off)
    if cut.end < cut.size:
        after = await host.read(path, cut.end, PROBE_BYTES)
    return before, after


async def _prefetch(host: Host, path: str, cut: WindowCut) -> tuple[bytes, bytes] | None:
    """``_around_bytes`` now; None when they cannot be read (``_around`` tries again, and says so)."""
    try:
        return await _around_bytes(host, path, cut)
    except HostError:
        return None


async def _around(host: Host, path: str, cut: WindowCut, margin: int) -> tuple[list[bytes], list[bytes]]:
    """Up to ``margin`` whole lines just before and just after the window."""
    if margin <= 0:
        return [], []
    data_before, data_after = cut.around if cut.around is not None else await _around_bytes(host, path, cut)
    before: list[bytes] = []
    if cut.start > 0:
        lines = data_before.split(b"\n")[:-1]  # the window starts a line: data ends with "\n"
        if cut.start > PROBE_BYTES:
            lines = lines[1:]  # the first piece may be the tail of a longer line
        before = lines[-margin:]
    after: list[bytes] = []
    if cut.end < cut.size:
        lines = data_after.split(b"\n")
        if cut.end + len(data_after) < cut.size:
            lines = lines[:-1]
        after = list(lines[:margin])
    return before, after


__all__ = ["DEFAULT_CAP", "Selector", "WindowCut", "cut_window"]
