"""Local processes holding TCP sockets to a target, read with psutil (I/O).

psutil is called in a worker thread bounded by a timeout, and its objects never leave this
module: callers get frozen value types.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time

from wizard.engine.probes import ProcessSockets, SocketHolder
from wizard.model.cancel import within

CMDLINE_CAP = 200
MAX_SOCKETS = 2000  # a host with more matching sockets than this is already the finding


def normalize_address(text: str) -> str:
    """The canonical form of an address; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4."""
    try:
        addr = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return text.lower()
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def endpoint(ip: str, port: int) -> str:
    ip = normalize_address(ip)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class ProcessProbe:
    """Finds the local sockets whose remote end is one of the target's addresses and port."""

    async def connections_to(self, addresses: list[str], port: int,
                             timeout: float = 5.0) -> ProcessSockets:
        wanted = {normalize_address(a) for a in addresses}
        started = time.monotonic()
        try:
            result = await within(asyncio.to_thread(_scan, wanted, port), timeout)
        except TimeoutError:
            # The thread cannot be killed; it ends on its own and its answer is dropped.
            return ProcessSockets(error=f"psutil did not answer within {timeout:g}s",
                                  privileged=_is_root(), ms=_ms(started))
        return ProcessSockets(result.holders, result.privileged, result.hidden, result.truncated,
                              result.error, _ms(started), result.source, result.states)


def _is_root() -> bool:
    return os.geteuid() == 0


def _scan(wanted: set[str], port: int) -> ProcessSockets:
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return ProcessSockets(error="psutil was denied the socket table (needs root on this OS)",
                              privileged=False)
    except OSError as exc:
        return ProcessSockets(error=f"cannot read the socket table: {exc}", privileged=_is_root())
    cache: dict[int, tuple[str, str, str, float | None]] = {}

    def describe(pid: int) -> tuple[str, str, str, float | None]:
        if pid not in cache:
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    name = proc.name()
                    try:
                        cmdline = " ".join(proc.cmdline())
                    except (psutil.AccessDenied, psutil.ZombieProcess):
                        cmdline = ""
                    try:
                        user = proc.username()
                    except (psutil.AccessDenied, KeyError):
                        user = ""
                    created = proc.create_time()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                cache[pid] = ("?", "", "", None)
            else:
                if len(cmdline) > CMDLINE_CAP:
                    cmdline = cmdline[:CMDLINE_CAP - 1] + "…"
                cache[pid] = (name, cmdline, user, created)
        return cache[pid]

    holders: list[SocketHolder] = []
    states: dict[str, int] = {}
    hidden = 0
    truncated = False
    for conn in conns:
        raddr = conn.raddr
        if not raddr or raddr.port != port or normalize_address(raddr.ip) not in wanted:
            continue
        if len(holders) >= MAX_SOCKETS:
            truncated = True
            break
        state = str(conn.status)
        states[state] = states.get(state, 0) + 1
        if conn.pid is None:
            name, cmdline, user, created = "", "", "", None
            if state != "TIME_WAIT":
                hidden += 1
        else:
            name, cmdline, user, created = describe(conn.pid)
        holders.append(SocketHolder(conn.pid, name, cmdline, user, created, state,
                                    endpoint(conn.laddr.ip, conn.laddr.port) if conn.laddr else "",
                                    endpoint(raddr.ip, raddr.port)))
    holders.sort(key=lambda h: (h.pid is None, h.pid or 0, h.state, h.local))
    return ProcessSockets(tuple(holders), _is_root(), hidden, truncated, states=states)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
