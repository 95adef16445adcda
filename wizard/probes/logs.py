"""Log reading (I/O through a Host): the lines of a file inside a time window, bounded in bytes.

A file's timestamp format is detected from its first lines; the window is found by binary
search over byte offsets (``Host.stat`` + ``Host.read(path, offset, n)``), so a window of a
huge file costs kilobytes. Files whose timestamps are out of order are scanned instead,
within a byte cap. Lines without a timestamp (traceback continuation lines) belong to the
line before them: they are in the window exactly when that line is. Journald units are read
with ``journalctl -o json``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from wizard.probes.hosts import Host, HostError
from wizard.probes.timestamps import TimeContext, TimeFormat, detect

DEFAULT_CAP = 32 << 20  # bytes read per file at most
HEAD_BYTES = 16 << 10  # what format detection reads
PROBE_BYTES = 8 << 10  # one binary-search probe
CHUNK = 256 << 10  # sequential reads
SMALL_FILE = 512 << 10  # below this, read the whole file: exact line numbers, no search
COUNT_PREFIX = 1 << 20  # count lines before the window only when the prefix is this small
DISORDER_S = 60.0  # timestamps may step back this much (threads, request-start times)
SAMPLES = 8


@dataclass(frozen=True)
class LogLine:
    """One line of a log: where it is, its text and the time of the entry it belongs to."""

    number: int | None  # 1-based line number; None when the prefix was not counted
    offset: int  # byte offset of the line in the file
    text: str
    ts: float | None  # its own timestamp, or that of the line it continues
    stamped: bool  # whether the line carries its own timestamp
    in_window: bool


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
    method: Literal["whole", "bisect", "scan", "none"] = "none"
    notes: list[str] = field(default_factory=list)
    error: str = ""  # why the file could not be read (then nothing else is set)


class _Budget:
    def __init__(self, host: Host, path: str, cap: int) -> None:
        self.host, self.path, self.cap = host, path, cap
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

    async def window(self, path: str, start: float, end: float, margin: int = 2) -> LogWindow:
        """Lines of ``path`` whose entries fall in [start, end] (epoch seconds), with up to
        ``margin`` lines before and after them for context."""
        win = LogWindow(path)
        budget = _Budget(self.host, path, self.cap)
        try:
            info = await self.host.stat(path)
            if not info.is_file:
                win.error = f"{path} is not a regular file"
                return win
            win.size, win.mtime = info.size, info.mtime
            head = await budget.read(0, min(HEAD_BYTES, info.size))
            ctx = TimeContext(tz=self.tz,  # type: ignore[arg-type]
                              year_ref=datetime.fromtimestamp(info.mtime or 0, timezone.utc))
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

    def _ts(self, text: str) -> float | None:
        return self.fmt.parse(text, self.ctx) if self.fmt else None

    async def _first_stamp(self, offset: int) -> tuple[int, float | None]:
        """The offset and time of the first stamped line starting after ``offset``."""
        data = await self.budget.read(offset, PROBE_BYTES)
        lines, _ = _split(data, offset, offset + len(data) >= self.size)
        if offset > 0 and lines:
            lines = lines[1:]  # the first one is (probably) the tail of an earlier line
        for off, text in lines:
            ts = self._ts(text)
            if ts is not None:
                return off, ts
        return offset + len(data), None

    async def ordered(self) -> bool:
        """Sample the file at evenly spaced offsets: are the timestamps non-decreasing?"""
        last = None
        for i in range(SAMPLES + 1):
            _, ts = await self._first_stamp(self.size * i // (SAMPLES + 1))
            if ts is None:
                continue
            if last is not None and ts < last - DISORDER_S:
                return False
            last = ts if last is None else max(last, ts)
        return True

    async def bisect(self, target: float) -> int:
        """An offset at or before the first line stamped at or after ``target``."""
        lo, hi = 0, self.size
        while hi - lo > PROBE_BYTES:
            mid = (lo + hi) // 2
            pos, ts = await self._first_stamp(mid)
            if ts is None or ts >= target:
                hi = mid
            else:
                lo = mid
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


@dataclass(frozen=True)
class JournalEntry:
    ts: float
    text: str  # "2026-11-22T03:48:08.123456+00:00 ident[pid]: message"


@dataclass
class JournalWindow:
    unit: str
    command: str = ""
    entries: list[JournalEntry] = field(default_factory=list)
    error: str = ""
    truncated: bool = False


async def journal_window(host: Host, unit: str, start: float, end: float,
                         max_bytes: int = 16 << 20, timeout: float = 10.0) -> JournalWindow:
    """The journal entries of ``unit`` in [start, end], through ``journalctl -o json``."""
    win = JournalWindow(unit)
    if not any([await host.exists("/run/systemd/journal"), await host.exists("/var/log/journal"),
                await host.exists("/run/log/journal")]):
        win.error = f"journald is not running in {host.spec} and there are no journal files"
        return win
    argv = ["journalctl", "-o", "json", "--since", f"@{int(start)}", "--until", f"@{int(end) + 1}",
            "-u", unit, "--no-pager"]
    out = await host.run(argv, timeout=timeout, max_bytes=max_bytes)
    win.command, win.truncated = out.command_line, out.truncated
    if not out.ok:
        win.error = out.problem()
        return win
    for raw in out.text.splitlines():
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        stamp = rec.get("_SOURCE_REALTIME_TIMESTAMP") or rec.get("__REALTIME_TIMESTAMP")
        try:
            ts = int(stamp) / 1e6
        except (TypeError, ValueError):
            continue
        msg = rec.get("MESSAGE", "")
        if isinstance(msg, list):  # binary messages come as byte arrays
            msg = bytes(b & 0xFF for b in msg if isinstance(b, int)).decode("utf-8", "replace")
        ident = rec.get("SYSLOG_IDENTIFIER") or rec.get("_COMM") or unit
        pid = f"[{rec['_PID']}]" if rec.get("_PID") else ""
        when = datetime.fromtimestamp(ts, timezone.utc).isoformat()
        for i, part in enumerate(str(msg).splitlines() or [""]):
            win.entries.append(JournalEntry(ts, f"{when} {ident}{pid}: {part}" if i == 0 else part))
    return win
