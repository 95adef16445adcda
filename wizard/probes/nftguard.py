"""The nftables guard (I/O) that keeps the local kernel from resetting a raw SYN probe.

A SYN sent with scapy has no socket behind it, so when the SYN-ACK comes back the local
kernel answers it with a RST and the probe would disturb the very server it measures. The
guard adds one rule, in its own uniquely named table, that drops only outgoing RSTs from
the probe's source port(s) to the probe's address, and removes the table again when the
probe ends: normally, on an error, on a timeout and on cancellation (Ctrl-C). A table left
by a run that was killed outright (SIGKILL) is removed by the next run's guard.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import re
from collections.abc import Iterable
from types import TracebackType

from wizard.probes.hosts import Host, LocalHost

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
    return (f"add table inet {table}; "
            f"add chain inet {table} out {{ type filter hook output priority -300; policy accept; }}; "
            f"add rule inet {table} out {family} daddr {address} tcp sport {port_set} "
            f"tcp flags & rst == rst counter drop")


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
