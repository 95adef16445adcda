"""Kernel evidence of a server context (I/O through a Host): TCP counters of /proc/net/snmp
and /proc/net/netstat, listening sockets from ``ss -Hltnp``, sysctls and process start times.

The parsers are pure functions of the text, so tests feed them real captured output.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass

from wizard.diag.kernel.parse.counters import parse_proc_counters
from wizard.hosts.base import Host, HostError
from wizard.hosts.commands import CommandOutput

USER_HZ = 100  # /proc/PID/stat counts clock ticks; USER_HZ is 100 on every Linux ABI


async def read_counters(host: Host) -> dict[str, int]:
    """The TCP and IP counters of the host's network namespace (raises HostError)."""
    counters: dict[str, int] = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        counters.update(parse_proc_counters((await host.read(path, 0, 1 << 20)).decode("ascii", "replace")))
    return counters


@dataclass(frozen=True)
class Listener:
    state: str
    recv_q: int  # for a listener: connections waiting in the accept queue
    send_q: int  # for a listener: the backlog
    address: str  # "0.0.0.0", "::", "*", "127.0.0.1", "::1"
    port: int
    interface: str = ""  # the %iface suffix of a bound-to-device socket
    processes: tuple[tuple[str, int, int], ...] = ()  # (name, pid, fd)
    line: str = ""

    @property
    def family(self) -> str:
        return "any" if self.address == "*" else "IPv6" if ":" in self.address else "IPv4"

    @property
    def display(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}{'%' + self.interface if self.interface else ''}:{self.port}"

    def serves(self, target: str) -> bool:
        """Whether a connection to ``target`` on this port lands on this socket.

        ss prints ``*`` for an IPv6 wildcard that also takes IPv4 and ``[::]`` for a v6only
        one, so ``[::]`` serves only IPv6 targets.
        """
        try:
            addr = ipaddress.ip_address(target)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if self.address == "*":
            return True
        if self.address == "0.0.0.0":
            return addr.version == 4
        if self.address == "::":
            return addr.version == 6
        try:
            return ipaddress.ip_address(self.address) == addr
        except ValueError:
            return False


_USERS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)')
_LOCAL = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<other>[^%\s]+?))(?:%(?P<iface>[^:\s]+))?:(?P<port>\d+|\*)$")


def parse_ss_listeners(text: str) -> list[Listener]:
    """Parse ``ss -Hltnp``: State Recv-Q Send-Q Local:Port Peer:Port [users:((...))]."""
    out: list[Listener] = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        m = _LOCAL.match(parts[3])
        if not m or m.group("port") == "*":
            continue
        address = m.group("v6") or m.group("other") or ""
        if "%" in address:  # [fe80::1%eth0]: the zone inside the brackets
            address, _, iface = address.partition("%")
        else:
            iface = m.group("iface") or ""
        procs = tuple((n, int(p), int(fd)) for n, p, fd in _USERS.findall(parts[5] if len(parts) > 5 else ""))
        out.append(Listener(parts[0], int(parts[1]), int(parts[2]), address, int(m.group("port")),
                            iface, procs, line.strip()))
    return out


#: the listings of listening sockets in flight, by (event loop, host)
_LISTING: dict[tuple[int, int], asyncio.Future[tuple[CommandOutput, list[Listener]]]] = {}


async def listeners(host: Host) -> tuple[CommandOutput, list[Listener]]:
    """The host's listening sockets (``ss -Hltnp``). A call while a listing of the same host
    is in flight shares it (the checks of a run that read them start together, and ss -p
    walks every process's fds); one made after it has ended lists again."""
    key = (id(asyncio.get_running_loop()), id(host))
    listing = _LISTING.get(key)
    if listing is None:
        listing = asyncio.ensure_future(_list(host))
        _LISTING[key] = listing
        listing.add_done_callback(lambda done: _LISTING.pop(key) if _LISTING.get(key) is done else None)
    return await asyncio.shield(listing)


async def _list(host: Host) -> tuple[CommandOutput, list[Listener]]:
    out = await host.run(["ss", "-Hltnp"], timeout=5, max_bytes=4 << 20)
    return out, parse_ss_listeners(out.text) if out.ok else []


async def read_sysctl(host: Host, name: str) -> str | None:
    """A sysctl value (``net.core.somaxconn``) read from /proc/sys; None when unreadable."""
    try:
        return (await host.read("/proc/sys/" + name.replace(".", "/"), 0, 4096)).decode().strip()
    except HostError:
        return None


def parse_start_ticks(stat: str) -> int | None:
    """Field 22 of /proc/PID/stat (start time in ticks after boot); the command name in
    parentheses may hold spaces, so fields are counted after its closing parenthesis."""
    rest = stat.rpartition(")")[2].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def parse_btime(stat: str) -> int | None:
    m = re.search(r"^btime (\d+)$", stat, re.M)
    return int(m.group(1)) if m else None


async def process_start(host: Host, pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None when that cannot be read."""
    try:
        ticks = parse_start_ticks((await host.read(f"/proc/{pid}/stat", 0, 4096)).decode("utf-8", "replace"))
        btime = parse_btime((await host.read("/proc/stat", 0, 1 << 20)).decode("ascii", "replace"))
    except HostError:
        return None
    if ticks is None or btime is None:
        return None
    return btime + ticks / USER_HZ
