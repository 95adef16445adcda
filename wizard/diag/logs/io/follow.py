"""The server's logs followed while a watch runs (I/O through a Host): from where each file
ends when the watch starts, the lines it gains, each with its time, in a bounded ring.

The files are step 3's (``--log``'s, else the usual files that exist in the server
context); each line is timed as step 3 times it (the format detected from the file's head),
or by when it was read where the file has no timestamps. A file that shrinks was rotated or
truncated: it is read again from its start. A burst larger than READ_MAX a poll is skipped
to its last READ_MAX bytes (counted), so a chatty log cannot stall the watch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wizard.diag.logs.io.reader import HEAD_BYTES, _split
from wizard.diag.logs.parse.timestamps import TimeContext, TimeFormat, detect
from wizard.hosts.base import Host, HostError

READ_MAX = 1 << 20  # bytes read from one file per poll at most
RING = 2000  # lines kept (all files together)
NEAR_S = 1.5  # a line this close to a reset is "of that second"
MAX_LINES = 10  # lines attached to one reset
LINE_CHARS = 400


Ring = deque[tuple[float, str, str]]  # (time, source, text), the lines kept


def lines_near(ring: Ring, at: float) -> list[str]:
    """Up to MAX_LINES of ``ring``'s lines timed within NEAR_S of ``at`` (epoch seconds), as
    ``source: text``."""
    out = [f"{source}: {text}" for ts, source, text in ring if abs(ts - at) <= NEAR_S]
    return out[-MAX_LINES:]


@dataclass
class _File:
    path: str
    offset: int
    fmt: TimeFormat | None
    ctx: TimeContext
    memo: dict[str, float | None] = field(default_factory=dict)


class LogFollower:
    """``await start(paths)``, then ``await poll()`` about once a second; ``near(t)`` gives
    the lines of the second of ``t`` (epoch seconds)."""

    def __init__(self, host: Host, clean: Callable[[str], str] = lambda s: s) -> None:
        self.host = host
        self.clean = clean  # the redaction applied to each line kept
        self.files: list[_File] = []
        self.ring: Ring = deque(maxlen=RING)  # (time, path, text)
        self.notes: list[str] = []  # what could not be followed, what was skipped
        self.skipped = 0  # bytes skipped in bursts
        self.lines = 0

    async def start(self, paths: list[str]) -> None:
        for path in paths:
            try:
                info = await self.host.stat(path)
                if not info.is_file:
                    self.notes.append(f"{path}: not a regular file, not followed")
                    continue
                head = await self.host.read(path, 0, min(HEAD_BYTES, info.size))
            except HostError as exc:
                self.notes.append(f"{path}: cannot be followed: {exc.message}")
                continue
            ctx = TimeContext(year_ref=datetime.fromtimestamp(info.mtime or 0, UTC))
            lines, _ = _split(head, 0, True)
            self.files.append(_File(path, info.size, detect([t for _, t in lines], ctx), ctx))

    async def poll(self) -> None:
        for f in self.files:
            try:
                size = (await self.host.stat(f.path)).size
                if size < f.offset:
                    self.notes.append(f"{f.path}: shrank (rotated or truncated): read again from its start")
                    f.offset = 0
                if size - f.offset > READ_MAX:
                    self.skipped += size - READ_MAX - f.offset
                    f.offset = size - READ_MAX
                if size == f.offset:
                    continue
                data = await self.host.read(f.path, f.offset, size - f.offset)
            except HostError as exc:
                self.notes.append(f"{f.path}: stopped following: {exc.message}")
                f.offset = 1 << 62  # read no more of it
                continue
            lines, f.offset = _split(data, f.offset, False)
            now = time.time()
            for _, text in lines:
                ts = f.fmt.parse(text, f.ctx, f.memo) if f.fmt else None
                self.ring.append((ts if ts is not None else now, f.path, self.clean(text[:LINE_CHARS])))
                self.lines += 1

    def near(self, at: float) -> list[str]:
        """Up to MAX_LINES lines timed within NEAR_S of ``at``, as ``path: text``."""
        return lines_near(self.ring, at)

    @property
    def followed(self) -> list[str]:
        return [f.path for f in self.files]
