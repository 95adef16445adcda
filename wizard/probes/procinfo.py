"""Process and server-settings evidence in a Host context (I/O through the Host interface).

Everything is read from /proc and /etc through ``Host.read`` / ``Host.glob``, so it works in
the local, netns and SSH contexts alike: a process's name, command line and start time,
its open file descriptors against its limit; nginx's and HAProxy's keep-alive and timeout
settings with the file and line they come from.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from wizard.probes.hosts import Host, HostError
from wizard.probes.kernel import parse_btime, parse_start_ticks

USER_HZ = 100
MAX_CONFIG_FILES = 64
CONFIG_CAP = 1 << 20


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


# --- server settings ----------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One configuration directive as written, with where it is."""

    server: str  # "nginx" or "haproxy"
    name: str  # keepalive_timeout, lingering_close, "timeout client", ...
    value: str
    seconds: float | None  # durations in seconds, None for non-durations
    path: str
    line: int


_NGINX_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
_HAPROXY_UNITS = {"us": 1e-6, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def nginx_seconds(text: str) -> float | None:
    """nginx time: "75", "75s", "1m30s", "500ms" (no unit means seconds)."""
    parts = re.findall(r"(\d+)(ms|[smhdwMy])?", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * _NGINX_UNITS[u or "s"] for n, u in parts)


def haproxy_seconds(text: str) -> float | None:
    """HAProxy time: "30s", "5000" (no unit means milliseconds), "1m"."""
    m = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", text)
    if not m:
        return None
    return int(m.group(1)) * (_HAPROXY_UNITS[m.group(2)] if m.group(2) else 0.001)


NGINX_DIRECTIVES = ("keepalive_timeout", "lingering_close", "lingering_timeout",
                    "reset_timedout_connection", "keepalive_requests", "client_body_timeout",
                    "send_timeout", "proxy_read_timeout")
_NGINX_RX = re.compile(r"(?:^|[;{}\s])(" + "|".join(NGINX_DIRECTIVES) + r")\s+([^;{}]+);")


def parse_nginx(text: str, path: str) -> tuple[list[Setting], list[str]]:
    """nginx directives of interest in one file and its ``include`` patterns."""
    settings: list[Setting] = []
    includes: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0]
        for m in re.finditer(r"(?:^|[;{}\s])include\s+([^;]+);", line):
            includes.append(m.group(1).strip().strip("'\""))
        for m in _NGINX_RX.finditer(line):
            name, value = m.group(1), " ".join(m.group(2).split())
            secs = nginx_seconds(value.split()[0]) if name.endswith("timeout") else None
            settings.append(Setting("nginx", name, value, secs, path, n))
    return settings, includes


HAPROXY_TIMEOUTS = ("client", "server", "http-keep-alive", "http-request", "tunnel", "client-fin",
                    "server-fin", "connect")


def parse_haproxy(text: str, path: str) -> list[Setting]:
    """``timeout X`` lines and the close options, with their section (``defaults``, ``backend b``)."""
    out: list[Setting] = []
    section = ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if not words:
            continue
        if words[0] in ("global", "defaults", "frontend", "backend", "listen"):
            section = " ".join(words[:2])
            continue
        if words[0] == "timeout" and len(words) >= 3 and words[1] in HAPROXY_TIMEOUTS:
            out.append(Setting("haproxy", f"timeout {words[1]}", words[2], haproxy_seconds(words[2]),
                               path + (f" [{section}]" if section else ""), n))
        elif words[0] == "option" and len(words) >= 2 and words[1] in (
                "http-server-close", "httpclose", "http-keep-alive", "nolinger"):
            out.append(Setting("haproxy", f"option {words[1]}", "on", None,
                               path + (f" [{section}]" if section else ""), n))
    return out


async def nginx_settings(host: Host, main: str = "/etc/nginx/nginx.conf") -> tuple[list[Setting], list[str]]:
    """Directives from nginx.conf and the files it includes (globs, relative to its
    directory), at most MAX_CONFIG_FILES files; and the files read."""
    todo, read, settings = [main], [], []
    base = posixpath.dirname(main)
    while todo and len(read) < MAX_CONFIG_FILES:
        path = todo.pop(0)
        if path in read:
            continue
        try:
            text = (await host.read(path, 0, CONFIG_CAP)).decode("utf-8", "replace")
        except HostError:
            if path == main:
                raise
            continue
        read.append(path)
        found, includes = parse_nginx(text, path)
        settings += found
        for inc in includes:
            pattern = inc if inc.startswith("/") else posixpath.join(base, inc)
            matches = await host.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
            todo += [p for p in matches if p not in read]
    return settings, read


async def haproxy_settings(host: Host, path: str = "/etc/haproxy/haproxy.cfg") -> list[Setting]:
    text = (await host.read(path, 0, CONFIG_CAP)).decode("utf-8", "replace")
    return parse_haproxy(text, path)
