"""Log reading (I/O through a Host): the lines of a file inside a time window, bounded in bytes.

A file's timestamp format is detected from its first lines; the window is found by a search
over byte offsets (``Host.stat`` + ``Host.read_many``: each step reads FANOUT - 1 probes in
one request and narrows FANOUT-fold), so a window of a huge file costs kilobytes. Files
whose timestamps are out of order are scanned instead, within a byte cap. Lines without a
timestamp (traceback continuation lines) belong to the line before them: they are in the
window exactly when that line is. Journald units are read with ``journalctl -o json``
(wizard.diag.logs.io.journal). Rotated siblings (``.1``, ``.2.gz``, ``-20261122``) are found next
to a file and read when their time range reaches the window (wizard.diag.logs.io.rotated);
gzip files are stream-decompressed through the Host in chunks, scanned (no search is
possible inside a compressed stream) within a byte cap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from wizard.diag.logs.io.journal import JournalEntry, JournalWindow, journal_window  # noqa: F401
from wizard.diag.logs.io.scan import ScanResult, required_literals, scan_file  # noqa: F401
from wizard.diag.logs.parse.timestamps import TimeContext, TimeFormat, detect
from wizard.hosts.base import FileInfo, Host, HostError

DEFAULT_CAP = 32 << 20  # bytes read per file at most
HEAD_BYTES = 16 << 10  # what format detection reads
PROBE_BYTES = 8 << 10  # one binary-search probe
MAX_PROBE = 1 << 20  # a probe grown for long lines reads at most this much
CHUNK = 256 << 10  # sequential reads
SMALL_FILE = 512 << 10  # below this, read the whole file: exact line numbers, no search
COUNT_PREFIX = 1 << 20  # count lines before the window only when the prefix is this small
DISORDER_S = 60.0  # timestamps may step back this much (threads, request-start times)
SAMPLES = 8
FANOUT = 8  # the search's branching: FANOUT - 1 probes a step


@dataclass(frozen=True)
class LogLine:
    """One line of a log: where it is, its text and the time of the entry it belongs to."""

    number: int | None  # 1-based line number; None when the prefix was not counted
    offset: int  # byte offset of the line in the file
    text: str
    ts: float | None  # its own timestamp, or that of the line it continues
    stamped: bool  # whether the line carries its own timestamp
    in_window: bool
    sigs: tuple[int, ...] | None = None  # the signatures it matched, once matched (indices)


@dataclass
class LogWindow:
    """What was read of one file: its window's lines (plus context margins) and how."""

    path: str
    size: int = 0
    mtime: float = 0.0
    format: str | None = None
    format_has_zone: bool = True
    lines: list[LogLine] = field(default_factory=list)
    bytes_read: int = 0
    capped: bool = False
    method: Literal["whole", "bisect", "bisect+remote", "scan", "none"] = "none"
    notes: list[str] = field(default_factory=list)
    error: str = ""  # why the file could not be read (then nothing else is set)
    # the matches past the ``keep`` an excerpt made lines of: (time, signatures) each
    more: list[tuple[float | None, tuple[int, ...]]] = field(default_factory=list)


class _Budget:
    def __init__(self, host: Host, path: str, cap: int, probe: int = PROBE_BYTES) -> None:
        self.host, self.path, self.cap = host, path, cap
        self.probe = probe  # the first read of a probe; grown to PROBE_BYTES when too short
        self.used = 0
        self.capped = False

    async def read(self, offset: int, n: int) -> bytes:
        if n <= 0:
            return b""
        n = min(n, self.cap - self.used)
        if n <= 0:
            self.capped = True
            return b""
        data = await self.host.read(self.path, offset, n)
        self.used += len(data)
        return data

    async def read_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Several reads in one request to the Host; the cap applies to them in order."""
        asked: list[tuple[int, int]] = []
        left = self.cap - self.used
        for off, wanted in ranges:
            n = max(0, min(wanted, left))
            if n == 0 and left <= 0:
                self.capped = True
            asked.append((off, n))
            left -= n
        got = await self.host.read_many(self.path, [(o, n) for o, n in asked if n > 0])
        self.used += sum(len(d) for d in got)
        it = iter(got)
        return [next(it) if n > 0 else b"" for _, n in asked]


def _split(data: bytes, base: int, at_eof: bool) -> tuple[list[tuple[int, str]], int]:
    """Complete lines of ``data`` (starting at file offset ``base``) and the offset of the
    unfinished tail, which the next read starts from."""
    out: list[tuple[int, str]] = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        out.append((base + pos, data[pos:nl].rstrip(b"\r").decode("utf-8", "replace")))
        pos = nl + 1
    if at_eof and pos < len(data):
        out.append((base + pos, data[pos:].rstrip(b"\r").decode("utf-8", "replace")))
        pos = len(data)
    return out, base + pos


class LogReader:
    """Reads time windows of log files in one server context."""

    def __init__(self, host: Host, *, cap_bytes: int = DEFAULT_CAP, tz: object = None) -> None:
        self.host = host
        self.cap = cap_bytes
        self.tz = tz  # a tzinfo for naive timestamps; None: the wizard's local zone

    def time_context(self, mtime: float | None) -> TimeContext:
        """How a file's timestamps are read: this reader's zone, and the file's mtime for
        the year that classic syslog lines leave out."""
        return TimeContext(tz=self.tz,  # type: ignore[arg-type]
                           year_ref=datetime.fromtimestamp(mtime or 0, UTC))

    async def regular_file(self, path: str, win: LogWindow) -> FileInfo | None:
        """``path``'s size and mtime, put into ``win``; None (and win.error) when it is not a
        regular file. Raises HostError when it cannot be read."""
        info = await self.host.stat(path)
        if not info.is_file:
            win.error = f"{path} is not a regular file"
            return None
        win.size, win.mtime = info.size, info.mtime
        return info

    async def window(self, path: str, start: float, end: float, margin: int = 2) -> LogWindow:
        """Lines of ``path`` whose entries fall in [start, end] (epoch seconds), with up to
        ``margin`` lines before and after them for context."""
        if is_gzip(path):
            # gzipped.py builds on this module's scanner, hence imported here
            from wizard.diag.logs.io.gzipped import gz_window

            return await gz_window(self, path, start, end, margin)
        win = LogWindow(path)
        budget = _Budget(self.host, path, self.cap)
        try:
            info = await self.regular_file(path, win)
            if info is None:
                return win
            head = await budget.read(0, min(HEAD_BYTES, info.size))
            ctx = self.time_context(info.mtime)
            lines, _ = _split(head, 0, len(head) >= info.size)
            fmt = detect([t for _, t in lines], ctx)
            if fmt is None:
                win.notes.append("no known timestamp format in its first lines: the whole "
                                 "file (up to the cap) is searched, without a time window")
            else:
                win.format, win.format_has_zone = fmt.name, fmt.has_zone
            scanner = _Scanner(budget, fmt, ctx, info.size, start, end, margin)
            if fmt is None or info.size <= SMALL_FILE:
                win.method = "whole" if info.size <= self.cap else "scan"
                from_ = max(0, info.size - self.cap)
                if from_:
                    win.notes.append(f"only the last {self.cap >> 20} MiB were read")
                win.lines = await scanner.collect(from_, 1 if from_ == 0 else None,
                                                  filter_time=fmt is not None)
            else:
                ordered = await scanner.ordered()
                if ordered:
                    win.method = "bisect"
                    pos = await scanner.bisect(start - DISORDER_S)
                    number = 1 if pos == 0 else None
                    if 0 < pos <= COUNT_PREFIX:
                        # The first line read follows the newline at or after pos - 1.
                        number = (await budget.read(0, pos - 1)).count(b"\n") + 2
                    win.lines = await scanner.collect(pos, number, filter_time=True)
                else:
                    win.method = "scan"
                    win.notes.append("timestamps are out of order: scanned instead of searched")
                    from_ = max(0, info.size - self.cap)
                    if from_:
                        win.notes.append(f"only the last {self.cap >> 20} MiB were scanned")
                    win.lines = await scanner.collect(from_, 1 if from_ == 0 else None,
                                                      filter_time=True, stop_after_end=False)
        except HostError as exc:
            win.error = exc.message
        win.bytes_read, win.capped = budget.used, budget.capped
        if budget.capped:
            win.notes.append(f"stopped after reading {budget.cap >> 20} MiB (the per-file cap)")
        return win


class _Scanner:
    def __init__(self, budget: _Budget, fmt: TimeFormat | None, ctx: TimeContext, size: int,
                 start: float, end: float, margin: int) -> None:
        self.budget, self.fmt, self.ctx, self.size = budget, fmt, ctx, size
        self.start, self.end, self.margin = start, end, margin
        self.samples: list[tuple[int, float | None]] = []  # (offset, first stamp after it)

    def _ts(self, text: str) -> float | None:
        return self.fmt.parse(text, self.ctx) if self.fmt else None

    def _stamp_in(self, data: bytes, offset: int) -> tuple[int, float] | None:
        """The first stamped whole line of ``data`` (read at file ``offset``; a line cut by
        the read's start is skipped), parsed line by line until one is found."""
        at_eof = offset + len(data) >= self.size
        pos = 0
        if offset > 0:  # the first piece is (probably) the tail of an earlier line
            nl = data.find(b"\n")
            if nl < 0:
                return None
            pos = nl + 1
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0 and not at_eof:
                return None
            end = len(data) if nl < 0 else nl
            ts = self._ts(data[pos:end].rstrip(b"\r").decode("utf-8", "replace"))
            if ts is not None:
                return offset + pos, ts
            pos = end + 1
        return None

    async def _first_stamps(self, offsets: list[int]) -> list[tuple[int, float | None]]:
        """For each offset, the offset and time of the first stamped line starting after it
        (the offset where the search gave up and None when there is none): one request for
        all, and a second, with full-size probes, for those a small probe (SSH) fell short for."""
        n = min(self.budget.probe, PROBE_BYTES)
        datas = await self.budget.read_many([(off, n) for off in offsets])
        out: list[tuple[int, float | None]] = []
        again: list[int] = []
        for i, (off, data) in enumerate(zip(offsets, datas, strict=True)):
            found = self._stamp_in(data, off)
            if found is None and len(data) == n:
                again.append(i)
            out.append(found if found is not None else (off + len(data), None))
        # Lines longer than a probe: read again, larger each time (a stampless probe would
        # otherwise count as "after the target" and misplace the window's edge).
        n = max(n * 4, PROBE_BYTES)
        while again and n <= MAX_PROBE:
            more = await self.budget.read_many([(offsets[i], n) for i in again])
            still = []
            for i, data in zip(again, more, strict=True):
                found = self._stamp_in(data, offsets[i])
                out[i] = found if found is not None else (offsets[i] + len(data), None)
                if found is None and len(data) == n:
                    still.append(i)
            again, n = still, n * 4
        return out

    async def ordered(self) -> bool:
        """Sample the file at evenly spaced offsets: are the timestamps non-decreasing?"""
        last = None
        offsets = [self.size * i // (SAMPLES + 1) for i in range(SAMPLES + 1)]
        found = await self._first_stamps(offsets)
        self.samples = [(off, ts) for off, (_, ts) in zip(offsets, found, strict=False)]
        for _, ts in found:
            if ts is None:
                continue
            if last is not None and ts < last - DISORDER_S:
                return False
            last = ts if last is None else max(last, ts)
        return True

    async def bisect(self, target: float) -> int:
        """An offset at or before the first line stamped at or after ``target``: a search
        with FANOUT - 1 probes a step, read together (a step costs one request, so the
        search needs a quarter of a binary search's round trips over SSH)."""
        lo, hi = 0, self.size
        for off, ts in self.samples:  # the order check's samples: a first step for free
            if ts is None or ts >= target:
                hi = off if off > lo else hi
                break
            lo = off
        while hi - lo > self.budget.probe:
            mids = sorted({lo + (hi - lo) * j // FANOUT for j in range(1, FANOUT)} - {lo})
            found = await self._first_stamps(mids)
            nxt_hi = hi
            for mid, (_, ts) in zip(mids, found, strict=False):
                if ts is None or ts >= target:
                    nxt_hi = mid
                    break
                lo = mid
            hi = nxt_hi
        return lo

    async def _lines(self, offset: int) -> AsyncIterator[tuple[int, str]]:
        """Complete lines from the first one starting at or after ``offset``. Reading starts
        one byte early so that a line starting exactly at ``offset`` is not skipped."""
        pos = offset - 1 if offset > 0 else 0
        skip_partial = offset > 0
        while pos < self.size:
            data = await self.budget.read(pos, CHUNK)
            if not data:
                return
            lines, nxt = _split(data, pos, pos + len(data) >= self.size)
            if skip_partial and lines:
                lines = lines[1:]
                skip_partial = False
            for item in lines:
                yield item
            if nxt == pos:  # one line longer than a chunk: take it as it is
                nxt = pos + len(data)
            pos = nxt

    async def collect(self, offset: int, first_number: int | None, filter_time: bool,
                      stop_after_end: bool = True) -> list[LogLine]:
        """The window's lines from ``offset`` on, with ``margin`` context lines each side.
        ``first_number`` is the line number of the first line read (None: unknown)."""
        out: list[LogLine] = []
        before: deque[LogLine] = deque(maxlen=self.margin)
        after_left = 0  # context lines still to take after the last line in the window
        number = first_number
        current: float | None = None
        async for off, text in self._lines(offset):
            ts = self._ts(text)
            if ts is not None:
                current = ts
            inside = (not filter_time) or (current is not None and self.start <= current <= self.end)
            line = LogLine(number, off, text, current, ts is not None, inside)
            if number is not None:
                number += 1
            if inside:
                out.extend(before)
                before.clear()
                out.append(line)
                after_left = self.margin
            elif after_left > 0:
                out.append(line)
                after_left -= 1
            else:
                before.append(line)
                if stop_after_end and current is not None and current > self.end + DISORDER_S:
                    break
        return out


# --- gzip files: a stream, so a scan ------------------------------------------------------

def is_gzip(path: str) -> bool:
    return path.endswith(".gz")
