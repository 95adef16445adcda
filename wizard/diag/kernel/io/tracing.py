"""The kernel's own account of resets and drops, read from tracefs (I/O).

A ``KernelTrace`` makes its own tracefs instance (``instances/rw-<pid>-<random>``), enables
``tcp:tcp_send_reset``, ``tcp:tcp_receive_reset``, ``skb:kfree_skb`` (filtered to the drop
reasons that explain resets and lost handshakes) and ``sched:sched_process_exit`` only while
active probes run, reads ``trace``
and always removes the instance. Nothing touches the global buffer or other instances.

What the tracepoints offer is read from their ``format`` files (fields, the reason symbol
tables), never hard-coded: older kernels lack ``reason`` or whole tracepoints, and the trace
says what it could not enable and why. Tracefs is global across network namespaces, so
events are matched to flows by address and port by the caller.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from wizard.diag.kernel.parse.tracelines import (
    TraceEvent,
    drop_filter,
    format_fields,
    format_symbols,
    parse_trace,
)
from wizard.hosts.base import WRITE_TIMEOUT, Host, HostError
from wizard.hosts.commands import CommandOutput, run_command
from wizard.hosts.local import LocalHost
from wizard.model.contexts import command_in, root_fix

TRACEFS_PATHS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
MOUNT_TRACEFS = ("mount", "-t", "tracefs", "nodev", TRACEFS_PATHS[0])
PREFIX = "rw-"
BUFFER_KB = 512  # per CPU; a probe's handful of events never needs more
STALE_REMOTE_S = 600  # a remote instance untouched this long belongs to a dead run

#: the tracepoints, in the order they are enabled
#: (sched_process_exit fires in do_exit before the dying task's files are closed, so a reset
#: its exit sends comes after it: a death, not a close the process chose)
EVENTS = ("tcp/tcp_send_reset", "tcp/tcp_receive_reset", "skb/kfree_skb", "sched/sched_process_exit")
#: what a watch follows: no process exits (every exit on a busy machine), the port's TCP states
WATCH_EVENTS = ("tcp/tcp_send_reset", "tcp/tcp_receive_reset", "skb/kfree_skb", "sock/inet_sock_set_state")


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


def _state_filter(fmt: str, fields: dict[str, str], ports: str) -> str:
    """inet_sock_set_state narrowed to TCP's ends on the port: leaving ESTABLISHED or reaching
    CLOSE (not every step of every handshake), by the numbers the format file gives."""
    protocols = {v: k for k, v in format_symbols(fmt, "protocol").items()}
    states = {v: k for k, v in format_symbols(fmt, "newstate").items()}
    flt = ports
    if "TCP_ESTABLISHED" in states and "TCP_CLOSE" in states:
        flt = f"(oldstate == {states['TCP_ESTABLISHED']} || newstate == {states['TCP_CLOSE']}) && ({flt})"
    if "IPPROTO_TCP" in protocols and "protocol" in fields:
        flt = f"protocol == {protocols['IPPROTO_TCP']} && {flt}"
    return flt


class KernelTrace:
    """One traced window: ``await start()``, run the probes, ``await stop()`` -> TraceCapture.

    ``ports`` narrows tcp_receive_reset to the probe's port (the other tracepoints have no
    port field to filter on, or none worth the risk of a wrong filter).
    """

    def __init__(self, host: Host, ports: tuple[int, ...] = (), allow_mount: bool = False,
                 buffer_kb: int = BUFFER_KB, events: tuple[str, ...] = EVENTS) -> None:
        self.host = host
        self.events = events
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
                    f"{await self._mount_fix()} (or let the wizard mount it: --allow-tracefs-mount)")
            out = await self._mount_cmd(list(MOUNT_TRACEFS))
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
                                       root_fix(self.host.spec))
        try:
            await write_file(self.host, f"{self.path}/buffer_size_kb", str(self.buffer_kb))
            await write_file(self.host, f"{self.path}/trace_clock", "mono")
        except HostError as exc:
            self.missing["buffer"] = exc.message  # defaults still work
        for event in self.events:
            await self._enable(event)
        if not self.enabled:
            raise TraceUnavailable("none of the tracepoints can be enabled: "
                                   + "; ".join(f"{k}: {v}" for k, v in self.missing.items()),
                                   "a kernel with CONFIG_FTRACE and the tcp/skb tracepoints")
        self.started = time.monotonic() if isinstance(self.host, LocalHost) else 0.0

    async def _mount_fix(self) -> str:
        """The mount as it is pasted in this context: tracefs is the machine's, not a
        namespace's (NetnsHost reads the host's /sys)."""
        return command_in(self.host.spec, MOUNT_TRACEFS, root=await self.host.is_privileged(), in_netns=False)

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
        elif event in ("tcp/tcp_receive_reset", "sock/inet_sock_set_state") and self.ports \
                and {"sport", "dport"} <= fields.keys():
            flt = " || ".join(f"sport == {p} || dport == {p}" for p in self.ports)
            if event == "sock/inet_sock_set_state":
                flt = _state_filter(fmt, fields, flt)
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
