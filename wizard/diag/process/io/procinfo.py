"""Process evidence in a Host context (I/O through the Host interface).

Everything is read from /proc through ``Host.read`` / ``Host.glob``, so it works in the
local, netns and SSH contexts alike: a process's name, command line and start time, its
open file descriptors against its limit. (The running server's configuration: io.running.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wizard.diag.kernel.io.counters import parse_btime, parse_start_ticks
from wizard.hosts.base import Host, HostError

USER_HZ = 100


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    name: str = ""
    cmdline: str = ""
    started: float | None = None  # epoch seconds
    fds: int | None = None  # open file descriptors (None: not readable)
    fd_soft: int | None = None  # Max open files (None: unlimited or unreadable)
    fd_hard: int | None = None
    error: str = ""  # why nothing could be read (the process is gone, no permission)

    @property
    def fd_ratio(self) -> float | None:
        if self.fds is None or not self.fd_soft:
            return None
        return self.fds / self.fd_soft


def parse_comm(stat: str) -> str:
    """The command name in /proc/PID/stat: between the first "(" and the last ")"."""
    lo, hi = stat.find("("), stat.rfind(")")
    return stat[lo + 1:hi] if 0 <= lo < hi else ""


def parse_limits(text: str) -> tuple[int | None, int | None]:
    """Soft and hard ``Max open files`` of /proc/PID/limits (None: unlimited/absent)."""
    m = re.search(r"^Max open files\s+(\S+)\s+(\S+)", text, re.M)
    if not m:
        return None, None
    return tuple(int(v) if v.isdigit() else None for v in m.groups())  # type: ignore[return-value]


async def process_info(host: Host, pid: int) -> ProcessInfo:
    """What /proc says of ``pid`` in ``host``; unreadable parts stay None."""
    try:
        stat = (await host.read(f"/proc/{pid}/stat", 0, 4096)).decode("utf-8", "replace")
    except HostError as exc:
        return ProcessInfo(pid, error=exc.message)
    started = None
    ticks = parse_start_ticks(stat)
    try:
        btime = parse_btime((await host.read("/proc/stat", 0, 1 << 20)).decode("ascii", "replace"))
        if ticks is not None and btime is not None:
            started = btime + ticks / USER_HZ
    except HostError:
        pass
    cmdline = ""
    try:
        raw = await host.read(f"/proc/{pid}/cmdline", 0, 4096)
        cmdline = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    except HostError:
        pass
    soft = hard = None
    try:
        soft, hard = parse_limits((await host.read(f"/proc/{pid}/limits", 0, 8192)).decode())
    except HostError:
        pass
    fds = None
    try:
        entries = await host.glob(f"/proc/{pid}/fd/*")
        # an empty listing of a live process means we may not look (it has 0, 1, 2 at least)
        fds = len(entries) if entries else None
    except HostError:
        pass
    return ProcessInfo(pid, parse_comm(stat), cmdline, started, fds, soft, hard)
