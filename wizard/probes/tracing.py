"""The kernel's own account of resets and drops, read from tracefs (I/O).

A ``KernelTrace`` makes its own tracefs instance (``instances/rw-<pid>-<random>``), enables
``tcp:tcp_send_reset``, ``tcp:tcp_receive_reset`` and ``skb:kfree_skb`` (filtered to the drop
reasons that explain resets and lost handshakes) only while active probes run, reads ``trace``
and always removes the instance. Nothing touches the global buffer or other instances.

What the tracepoints offer is read from their ``format`` files (fields, the reason symbol
tables), never hard-coded: older kernels lack ``reason`` or whole tracepoints, and the trace
says what it could not enable and why. Tracefs is global across network namespaces, so
events are matched to flows by address and port by the caller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from wizard.probes.commands import CommandOutput, run_command
from wizard.probes.hosts import WRITE_TIMEOUT, Host, HostError, LocalHost

TRACEFS_PATHS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PREFIX = "rw-"
BUFFER_KB = 512  # per CPU; a probe's handful of events never needs more
STALE_REMOTE_S = 600  # a remote instance untouched this long belongs to a dead run

#: the tracepoints, in the order they are enabled
EVENTS = ("tcp/tcp_send_reset", "tcp/tcp_receive_reset", "skb/kfree_skb")

#: kfree_skb reasons worth reporting: each explains a reset or a lost handshake
DROP_REASONS = ("NETFILTER_DROP", "TCP_LISTEN_OVERFLOW", "SOCKET_BACKLOG", "PROTO_MEM",
                "TCP_INVALID_SEQUENCE", "TCP_RESET", "IP_RPFILTER", "XFRM_POLICY",
                "SECURITY_HOOK", "BPF_CGROUP_EGRESS")
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD


# -- format files ---------------------------------------------------------------------------
_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]+);", re.M)
_SYMBOLIC = re.compile(r"__print_symbolic\(REC->(\w+),((?:\s*\{[^}]*\},?)+)\)")
_PAIR = re.compile(r"\{\s*([^,]+?)\s*,\s*\"([^\"]*)\"\s*\}")


def format_fields(text: str) -> dict[str, str]:
    """The event's own fields (name -> C type) from its ``format`` file, common_* left out."""
    found: dict[str, str] = {}
    for m in _FIELD.finditer(text):
        decl = m.group("decl").strip()
        name = re.sub(r"\[.*\]$", "", decl.split()[-1]).lstrip("*")
        if not name.startswith("common_"):
            found[name] = decl[: decl.rfind(decl.split()[-1])].strip()
    return found


def format_symbols(text: str, field_name: str) -> dict[int, str]:
    """The numeric -> symbol table ``__print_symbolic`` prints for ``field_name`` (numeric keys only)."""
    for m in _SYMBOLIC.finditer(text):
        if m.group(1) != field_name:
            continue
        table: dict[int, str] = {}
        for key, name in _PAIR.findall(m.group(2)):
            try:
                table[int(key, 0)] = name
            except ValueError:
                continue  # a C name such as TCP_ESTABLISHED: its value is not in the file
        return table
    return {}


def drop_filter(symbols: dict[int, str], reasons: tuple[str, ...] = DROP_REASONS,
                ip_only: bool = True) -> str:
    """A kfree_skb filter for the wanted reasons this kernel knows ("" when it knows none)."""
    wanted = sorted(num for num, name in symbols.items() if name in reasons)
    if not wanted:
        return ""
    expr = " || ".join(f"reason == {n}" for n in wanted)
    if ip_only:
        expr = f"({expr}) && (protocol == {ETH_P_IP} || protocol == {ETH_P_IPV6})"
    return expr


# -- trace lines ----------------------------------------------------------------------------
_LINE = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:\S{4,5}\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<rest>.*)$")
_KV = re.compile(r"(\w+)(?:=|: )(\[[^\]]*\]:\d+|\S+)")


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int

    @property
    def display(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    def same(self, address: str, port: int) -> bool:
        return self.port == port and _norm(self.address) == _norm(address)


def _norm(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def parse_endpoint(text: str) -> Endpoint | None:
    """``127.0.0.1:80`` or ``[::1]:80`` as printed by ``%pISpc``."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\s]+):(\d+)", text)
    if not m:
        return None
    addr, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return Endpoint(_norm(addr), int(port))


@dataclass(frozen=True)
class TraceEvent:
    """One parsed trace line. ``local``/``remote`` are seen from the host whose kernel logged it:
    for tcp_send_reset the sender and the receiver of the RST, for tcp_receive_reset the socket
    that got it and its peer. kfree_skb carries no addresses."""

    ts: float
    comm: str
    pid: int
    cpu: int
    event: str
    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    state: str = ""
    local: Endpoint | None = None
    remote: Endpoint | None = None
    line: str = ""

    @property
    def in_process_context(self) -> bool:
        """The event fired in a syscall of ``comm`` (not in softirq, where comm is incidental)."""
        flags = self.fields.get("_flags", "")
        return len(flags) >= 3 and flags[2] not in "sShHT" and self.pid != 0


def parse_line(line: str) -> TraceEvent | None:
    """One line of ``trace`` in the default format; None for headers and unknown shapes."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    m = _LINE.match(line)
    if not m:
        return None
    flags = re.search(r"\]\s+(\S{4,5})\s+\d+\.\d+:", line)
    fields = {k: v for k, v in _KV.findall(m.group("rest"))}
    if flags:
        fields["_flags"] = flags.group(1)
    event = m.group("event")
    local = remote = None
    if event == "tcp_send_reset":
        local = parse_endpoint(fields.get("src", ""))
        remote = parse_endpoint(fields.get("dest", ""))
    elif event == "tcp_receive_reset":
        v6 = fields.get("family") == "AF_INET6"
        la = fields.get("saddrv6" if v6 else "saddr", "")
        ra = fields.get("daddrv6" if v6 else "daddr", "")
        if la and fields.get("sport", "").isdigit():
            local = Endpoint(_norm(la), int(fields["sport"]))
        if ra and fields.get("dport", "").isdigit():
            remote = Endpoint(_norm(ra), int(fields["dport"]))
    return TraceEvent(ts=float(m.group("ts")), comm=m.group("comm").strip(), pid=int(m.group("pid")),
                      cpu=int(m.group("cpu")), event=event, fields=fields,
                      reason=fields.get("reason", ""), state=fields.get("state", ""),
                      local=local, remote=remote, line=line.rstrip())


def parse_trace(text: str) -> list[TraceEvent]:
    return [e for e in (parse_line(line) for line in text.splitlines()) if e is not None]


# -- the session ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TraceCapture:
    """What one traced window saw, and what could not be traced (one line per tracepoint)."""

    instance: str
    events: list[TraceEvent]
    enabled: dict[str, str]  # tracepoint -> its filter ("" for none)
    missing: dict[str, str]  # tracepoint -> why it is not traced
    text: str = ""
    started: float = 0.0  # trace clock (mono) at start when known
    lost: bool = False  # the buffer overflowed (entries-written > entries-in-buffer)
    mounted: bool = False  # the wizard mounted tracefs for this run
    removed_stale: tuple[str, ...] = ()


class TraceUnavailable(Exception):
    """Tracing cannot run here; ``reason`` and ``fix`` are one line each."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


async def write_file(host: Host, path: str, value: str) -> None:
    """Write ``value`` to a tracefs control file (root's: through sudo -n where the login is not
    root); raises HostError with the kernel's complaint."""
    await host.write(path, value.encode(), WRITE_TIMEOUT, root=True)


def _remove_sync(path: str) -> None:
    """Disable and remove an instance (local): plain syscalls, so a cancelled task finishes it."""
    for name in ("tracing_on", "events/enable"):
        try:
            with open(os.path.join(path, name), "w") as handle:
                handle.write("0")
        except OSError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


async def remove_instance(host: Host, path: str) -> None:
    if isinstance(host, LocalHost):
        _remove_sync(path)
        return
    for name in ("tracing_on", "events/enable"):
        try:
            await write_file(host, f"{path}/{name}", "0")
        except HostError:
            pass
    out = await host.run_as_root(["rmdir", path], timeout=WRITE_TIMEOUT)
    # Not there any more is what was wanted (a login that is not root cannot stat it to ask).
    if not out.ok and "No such file" not in out.err:
        raise HostError(f"cannot remove {path}: {out.problem()}")


def _owner_alive(name: str) -> bool | None:
    m = re.fullmatch(rf"{PREFIX}(\d+)-[0-9a-f]+", name)
    if not m:
        return None
    return os.path.exists(f"/proc/{m.group(1)}")


async def remove_stale(host: Host, root: str) -> list[str]:
    """Remove ``rw-*`` instances left by runs that were killed (their process is gone; on a
    remote host: untouched for STALE_REMOTE_S). Live runs' instances are left alone."""
    if isinstance(host, LocalHost):
        stale = [p for p in await host.glob(f"{root}/instances/{PREFIX}*")
                 if _owner_alive(p.rsplit("/", 1)[-1]) is False]
    else:
        # tracefs is root's (mode 0700): list it as root, old ones only, in one round trip.
        out = await host.run_as_root(["find", f"{root}/instances", "-mindepth", "1", "-maxdepth", "1",
                                      "-name", f"{PREFIX}*", "-mmin", f"+{STALE_REMOTE_S // 60}"],
                                     timeout=WRITE_TIMEOUT, max_bytes=1 << 16)
        stale = sorted(line for line in out.text.splitlines() if line.startswith(f"{root}/instances/"))
    removed = []
    for path in stale:
        try:
            await remove_instance(host, path)
            removed.append(path.rsplit("/", 1)[-1])
        except HostError:
            continue
    return removed


async def find_tracefs(host: Host) -> str:
    for root in TRACEFS_PATHS:
        if isinstance(host, LocalHost):
            if await host.exists(f"{root}/instances"):
                return root
        # Elsewhere as root: an ordinary login cannot even stat inside tracefs (mode 0700).
        elif (await host.run_as_root(["test", "-d", f"{root}/instances"], timeout=WRITE_TIMEOUT)).ok:
            return root
    return ""


class KernelTrace:
    """One traced window: ``await start()``, run the probes, ``await stop()`` -> TraceCapture.

    ``ports`` narrows tcp_receive_reset to the probe's port (the other tracepoints have no
    port field to filter on, or none worth the risk of a wrong filter).
    """

    def __init__(self, host: Host, ports: tuple[int, ...] = (), allow_mount: bool = False,
                 buffer_kb: int = BUFFER_KB) -> None:
        self.host = host
        self.ports = ports
        self.allow_mount = allow_mount
        self.buffer_kb = buffer_kb
        self.root = ""
        self.path = ""
        self.mounted = False
        self.enabled: dict[str, str] = {}
        self.missing: dict[str, str] = {}
        self.removed_stale: list[str] = []
        self.started = 0.0

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await asyncio.shield(self.close())
            raise

    async def _start(self) -> None:
        self.root = await find_tracefs(self.host)
        if not self.root:
            if not self.allow_mount:
                raise TraceUnavailable(
                    "tracefs is not mounted in the server context",
                    "mount -t tracefs nodev /sys/kernel/tracing (or let the wizard: --allow-tracefs-mount)")
            out = await self._mount_cmd(["mount", "-t", "tracefs", "nodev", TRACEFS_PATHS[0]])
            if not out.ok or await find_tracefs(self.host) != TRACEFS_PATHS[0]:
                raise TraceUnavailable(f"cannot mount tracefs: {out.problem()}",
                                       "run as root with a kernel built with CONFIG_FTRACE")
            self.mounted, self.root = True, TRACEFS_PATHS[0]
        self.removed_stale = await remove_stale(self.host, self.root)
        self.path = f"{self.root}/instances/{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        if isinstance(self.host, LocalHost):
            try:
                await asyncio.to_thread(os.mkdir, self.path)
            except OSError as exc:
                raise TraceUnavailable(f"cannot create a tracefs instance: {exc.strerror or exc}",
                                       "run as root") from None
        else:
            out = await self.host.run_as_root(["mkdir", self.path], timeout=WRITE_TIMEOUT)
            if not out.ok:
                raise TraceUnavailable(f"cannot create a tracefs instance: {out.problem()}",
                                       "run as root (or with passwordless sudo)")
        try:
            await write_file(self.host, f"{self.path}/buffer_size_kb", str(self.buffer_kb))
            await write_file(self.host, f"{self.path}/trace_clock", "mono")
        except HostError as exc:
            self.missing["buffer"] = exc.message  # defaults still work
        for event in EVENTS:
            await self._enable(event)
        if not self.enabled:
            raise TraceUnavailable("none of the tracepoints can be enabled: "
                                   + "; ".join(f"{k}: {v}" for k, v in self.missing.items()),
                                   "a kernel with CONFIG_FTRACE and the tcp/skb tracepoints")
        self.started = time.monotonic() if isinstance(self.host, LocalHost) else 0.0

    async def _enable(self, event: str) -> None:
        base = f"{self.path}/events/{event}"
        try:
            fmt = (await self.host.read(f"{base}/format", 0, 1 << 18)).decode("utf-8", "replace")
        except HostError:
            self.missing[event] = "this kernel has no such tracepoint"
            return
        fields = format_fields(fmt)
        flt = ""
        if event == "skb/kfree_skb":
            if "reason" not in fields:
                self.missing[event] = "this kernel's kfree_skb has no reason field (before 5.17)"
                return
            flt = drop_filter(format_symbols(fmt, "reason"), ip_only="protocol" in fields)
            if not flt:
                self.missing[event] = "none of the wanted drop reasons exists in this kernel"
                return
        elif event == "tcp/tcp_receive_reset" and self.ports and {"sport", "dport"} <= fields.keys():
            flt = " || ".join(f"sport == {p} || dport == {p}" for p in self.ports)
        elif event == "tcp/tcp_send_reset" and "reason" not in fields:
            # Still useful (who sent a RST to whom), but say why the reason is absent.
            self.missing[f"{event}:reason"] = "this kernel's tcp_send_reset has no reason (before 6.10)"
        try:
            if flt:
                await write_file(self.host, f"{base}/filter", flt)
            await write_file(self.host, f"{base}/enable", "1")
        except HostError as exc:
            self.missing[event] = exc.message
            return
        self.enabled[event] = flt

    async def stop(self) -> TraceCapture:
        """Read what was traced, then remove the instance (also when reading fails)."""
        name = self.path.rsplit("/", 1)[-1]
        try:
            try:
                await write_file(self.host, f"{self.path}/tracing_on", "0")
            except HostError:
                pass
            try:
                raw = await self.host.read(f"{self.path}/trace", 0, 4 << 20)
            except HostError as exc:
                self.missing["trace"] = exc.message
                raw = b""
        finally:
            mounted = self.mounted
            await asyncio.shield(self.close())
        text = raw.decode("utf-8", "replace")
        m = re.search(r"entries-in-buffer/entries-written: (\d+)/(\d+)", text)
        lost = bool(m and int(m.group(1)) < int(m.group(2)))
        return TraceCapture(name, parse_trace(text), dict(self.enabled),
                            dict(self.missing), text, self.started, lost, mounted,
                            tuple(self.removed_stale))

    async def _mount_cmd(self, argv: list[str]) -> CommandOutput:
        # `ip netns exec` gives each command its own mount namespace (and /sys), so a mount made
        # through NetnsHost.run would vanish with it: local contexts mount in the wizard's own.
        if isinstance(self.host, LocalHost):
            return await run_command(argv, 5, 65536)
        return await self.host.run_as_root(argv, timeout=5)

    async def close(self) -> None:
        """Remove the instance (and unmount what this run mounted); safe to call twice."""
        if self.path:
            try:
                await remove_instance(self.host, self.path)
                self.path = ""
            except HostError:
                pass
        if self.mounted:
            await self._mount_cmd(["umount", self.root])
            self.mounted = False

    async def __aenter__(self) -> KernelTrace:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.shield(self.close())
