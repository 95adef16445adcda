"""Rotated copies of a log (I/O through a Host): logrotate's numbered ``.1``, ``.2.gz`` and
dateext ``-20261122`` siblings found next to a file, each one's time range read cheaply (its
head and tail, or for gzip its mtime), and those whose entries reach into a window chosen."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wizard.diag.logs.io.gzipped import _GzScanner
from wizard.diag.logs.io.reader import (
    DISORDER_S,
    HEAD_BYTES,
    PROBE_BYTES,
    LogReader,
    _Budget,
    _split,
    is_gzip,
)
from wizard.diag.logs.parse.timestamps import detect
from wizard.hosts.base import Host, HostError

MAX_SIBLINGS = 8


@dataclass(frozen=True)
class Sibling:
    """A rotated copy of a log file and the time range of its entries (None: unknown)."""

    path: str
    first: float | None
    last: float | None


def _rotation_key(base: str, path: str) -> tuple[int, int] | None:
    """Sort key, newest first, of a rotated sibling of ``base``; None when it is not one."""
    m = re.fullmatch(re.escape(base) + r"(?:\.(\d{1,3})|-(\d{8})(?:\d{2})?)(\.gz)?", path)
    if not m:
        return None
    if m.group(1) is not None:
        return (0, int(m.group(1)))
    return (1, -int(m.group(2)))


async def rotated_siblings(host: Host, path: str) -> list[str]:
    """The rotated copies of ``path`` in its directory, newest first (logrotate's numbered
    ``.1``, ``.2.gz`` and dateext ``-20261122`` names)."""
    found = set(await host.glob(path + ".*")) | set(await host.glob(path + "-*"))
    keyed = [(k, p) for p in found if (k := _rotation_key(path, p)) is not None]
    return [p for _, p in sorted(keyed)]


async def time_range(reader: LogReader, path: str) -> Sibling:
    """First and last entry times of a log, cheaply: its head, and its tail (or, for gzip,
    its mtime: a rotated file was last written when its last entry was)."""
    info = await reader.host.stat(path)
    ctx = reader.time_context(info.mtime)
    budget = _Budget(reader.host, path, 4 * HEAD_BYTES)
    if is_gzip(path):
        probe = _GzScanner(budget, None, ctx, info.size, 0.0, 0.0, 0)
        head = await probe.head()
    else:
        lines, _ = _split(await budget.read(0, min(HEAD_BYTES, info.size)), 0, True)
        head = [t for _, t in lines]
    fmt = detect(head, ctx)
    if fmt is None:
        return Sibling(path, None, info.mtime or None)
    first = next((ts for t in head if (ts := fmt.parse(t, ctx)) is not None), None)
    last: float | None = info.mtime or None
    if not is_gzip(path) and info.size:
        off = max(0, info.size - PROBE_BYTES)
        tail, _ = _split(await budget.read(off, PROBE_BYTES), off, True)
        stamps = [ts for _, t in tail if (ts := fmt.parse(t, ctx)) is not None]
        if stamps:
            last = stamps[-1]
    return Sibling(path, first, last)


async def rotated_in_window(reader: LogReader, path: str, start: float, end: float,
                            max_siblings: int = MAX_SIBLINGS) -> tuple[list[Sibling], list[str]]:
    """The rotated siblings of ``path`` whose entries reach into [start, end], oldest first,
    and notes. Nothing is looked at when ``path`` itself begins before ``start``."""
    notes: list[str] = []
    try:
        current = await time_range(reader, path)
    except HostError:
        return [], notes
    if current.first is not None and current.first <= start:
        return [], notes
    siblings = await rotated_siblings(reader.host, path)
    if len(siblings) > max_siblings:
        notes.append(f"{len(siblings)} rotated copies: only the newest {max_siblings} were looked at")
        siblings = siblings[:max_siblings]
    chosen: list[Sibling] = []
    for sib in siblings:
        try:
            rng = await time_range(reader, sib)
        except HostError as exc:
            notes.append(f"{sib}: {exc.message}")
            continue
        if rng.last is not None and rng.last < start - DISORDER_S:
            break  # this one ends before the window: the older ones do too
        if rng.first is not None and rng.first > end + DISORDER_S:
            continue
        chosen.append(rng)
        if rng.first is not None and rng.first <= start:
            break  # the window begins inside this one
    return chosen[::-1], notes
