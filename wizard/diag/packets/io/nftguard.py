"""The nftables guard (I/O) that keeps the local kernel from resetting a raw SYN probe.

A SYN sent with scapy has no socket behind it, so when the SYN-ACK comes back the local
kernel answers it with a RST and the probe would disturb the very server it measures. The
guard adds one rule, in its own uniquely named table, that drops only outgoing RSTs from
the probe's source port(s) to the probe's address, and removes the table again when the
probe ends: normally, on an error, on a timeout and on cancellation (Ctrl-C). A table left
by a run that was killed outright (SIGKILL) is removed by the next run's guard.

``SharedGuard`` lets the probes of one run share one table (one nft add and one delete
instead of two calls per probe): it covers a small pool of reserved source ports, lives
while any probe uses it plus a short linger, and goes at once on an error, on
cancellation, at ``remove_now()`` (end of the run) and when the event loop shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import re
import socket
from collections.abc import AsyncIterator, Iterable
from types import TracebackType

from wizard.hosts.base import Host
from wizard.hosts.local import LocalHost

TABLE_PREFIX = "reset_wizard_rstguard_"
_TABLE_RE = re.compile(rf"^{TABLE_PREFIX}(\d+)_(\d+)$")
_counter = itertools.count(1)
_swept: set[str] = set()  # contexts whose stale tables this process has already removed
NFT_TIMEOUT = 5.0


class GuardError(Exception):
    """The guard rule could not be installed (nft missing or refused); one-line message."""


def table_name(pid: int | None = None, serial: int | None = None) -> str:
    """A table name unique to this process and guard: concurrent probes never share one."""
    return f"{TABLE_PREFIX}{pid if pid is not None else os.getpid()}_{serial if serial is not None else next(_counter)}"


def guard_ruleset(table: str, address: str, sports: Iterable[int]) -> str:
    """The nft script: one table, one output chain, one rule matching only the probe's RSTs."""
    ports = sorted({int(p) for p in sports})
    if not ports:
        raise ValueError("the guard needs at least one source port")
    family = "ip6" if ipaddress.ip_address(address).version == 6 else "ip"
    port_set = str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"
    # Priority -300 runs before any ordinary filter chain, so nothing else sees these RSTs.
    # Only bare RSTs (what the kernel answers to a SYN-ACK it has no socket for): the probe
    # closes its half-open connections itself with RST+ACK, which must pass.
    return (f"add table inet {table}; "
            f"add chain inet {table} out {{ type filter hook output priority -300; policy accept; }}; "
            f"add rule inet {table} out {family} daddr {address} tcp sport {port_set} "
            f"tcp flags & (rst | ack) == rst counter drop")


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


async def list_guard_tables(host: Host) -> list[str]:
    out = await host.run(["nft", "list", "tables", "inet"], timeout=NFT_TIMEOUT, max_bytes=1 << 20)
    if not out.ok:
        return []
    names = []
    for line in out.text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(TABLE_PREFIX):
            names.append(parts[2])
    return names


async def remove_stale(host: Host) -> list[str]:
    """Delete guard tables whose process is gone (a run killed before it could clean up)."""
    removed = []
    for name in await list_guard_tables(host):
        m = _TABLE_RE.match(name)
        if m and not _alive(int(m.group(1))):
            out = await host.run(["nft", "delete", "table", "inet", name], timeout=NFT_TIMEOUT)
            if out.ok:
                removed.append(name)
    return removed


class RstGuard:
    """``async with RstGuard(host, address, [sport]):`` - the rule exists only inside the block."""

    def __init__(self, address: str, sports: Iterable[int], host: Host | None = None) -> None:
        self.host = host or LocalHost()
        self.address = address
        self.sports = tuple(sports)
        self.table = table_name()
        self.installed = False
        self.stale_removed: list[str] = []

    async def __aenter__(self) -> RstGuard:
        # Stale tables can only come from earlier processes: sweeping once per run is enough.
        if self.host.spec not in _swept or not isinstance(self.host, LocalHost):
            self.stale_removed = await remove_stale(self.host)
            if isinstance(self.host, LocalHost):
                _swept.add(self.host.spec)
        script = guard_ruleset(self.table, self.address, self.sports)
        try:
            out = await self.host.run(["nft", script], timeout=NFT_TIMEOUT)
        except BaseException:
            # Cancelled while nft ran: it may have committed, so remove whatever exists.
            await self._remove()
            raise
        if not out.ok:
            await self._remove()
            raise GuardError(f"cannot install the RST guard rule: {out.problem()}")
        self.installed = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._remove()

    async def _remove(self) -> None:
        # Shielded so that a second Ctrl-C cannot interrupt the cleanup half-way.
        task = asyncio.ensure_future(
            self.host.run(["nft", "delete", "table", "inet", self.table], timeout=NFT_TIMEOUT))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task}, timeout=NFT_TIMEOUT)
            raise
        finally:
            self.installed = False


def reserve_port(address: str) -> socket.socket:
    """Bind (not listen) a socket on an ephemeral port, so no real connection reuses it."""
    v6 = ipaddress.ip_address(address).version == 6
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("::" if v6 else "0.0.0.0", 0))
    return sock


class SharedGuard:
    """One guard table per address for all raw probes of a run, over a pool of reserved ports.

    ``async with guard.port() as (sport, table):`` hands out a source port whose bare RSTs
    are dropped for as long as the block runs.
    """

    POOL = 4

    def __init__(self, address: str, host: Host | None = None, linger_s: float = 1.0) -> None:
        self.address = address
        self.host = host or LocalHost()
        self.linger_s = linger_s
        self._guard: RstGuard | None = None
        self._sockets: list[socket.socket] = []
        self._free: list[int] = []
        self._users = 0
        self._lock = asyncio.Lock()
        self._linger: asyncio.Task[None] | None = None
        self.installs = 0  # how many tables this guard has added (for tests and benchmarks)

    @property
    def table(self) -> str:
        return self._guard.table if self._guard is not None else ""

    @contextlib.asynccontextmanager
    async def port(self) -> AsyncIterator[tuple[int, str]]:
        async with self._lock:
            self._users += 1
            if self._linger is not None:
                self._linger.cancel()  # it sees a user and leaves the table in place
                self._linger = None
            try:
                if self._guard is None:
                    await self._install()
            except BaseException:
                self._users -= 1
                raise
            own = self._free.pop() if self._free else None
        if own is None:  # more concurrent probes than the pool: a guard of their own
            sock = reserve_port(self.address)
            try:
                sport = sock.getsockname()[1]
                async with RstGuard(self.address, [sport], self.host) as single:
                    yield sport, single.table
            finally:
                sock.close()
                await self._release(None, failed=False)
            return
        failed = True
        try:
            yield own, self.table
            failed = False
        finally:
            await self._release(own, failed)

    async def _install(self) -> None:
        self._sockets = [reserve_port(self.address) for _ in range(self.POOL)]
        ports = [s.getsockname()[1] for s in self._sockets]
        guard = RstGuard(self.address, ports, self.host)
        try:
            await guard.__aenter__()
        except BaseException:
            self._close_sockets()
            raise
        self._guard, self._free = guard, ports
        self.installs += 1

    async def _release(self, sport: int | None, failed: bool) -> None:
        async def last_user_gone() -> None:
            async with self._lock:
                self._users -= 1
                if sport is not None:
                    self._free.append(sport)
                if self._users > 0:
                    return
                if failed or self.linger_s <= 0:
                    await self._remove_locked()
                else:
                    self._linger = asyncio.ensure_future(self._expire())

        # Shielded: a cancellation must not leave the user count or the table behind.
        task = asyncio.ensure_future(last_user_gone())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task}, timeout=NFT_TIMEOUT * 2)
            raise

    async def _expire(self) -> None:
        try:
            await asyncio.sleep(self.linger_s)
        finally:
            # Also when cancelled by the loop shutting down: the table must not outlive the run.
            async with self._lock:
                if self._users == 0:
                    await self._remove_locked()

    async def remove_now(self) -> None:
        async with self._lock:
            if self._linger is not None and self._users == 0:
                self._linger.cancel()
                self._linger = None
            if self._users == 0:
                await self._remove_locked()

    async def _remove_locked(self) -> None:
        guard, self._guard = self._guard, None
        try:
            if guard is not None:
                await guard.__aexit__(None, None, None)
        finally:
            self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets, self._free = [], []
