"""The workers under a server's master, read in the server context (I/O).

A master (nginx, gunicorn, uvicorn, Apache, HAProxy in master-worker mode, PostgreSQL's
postmaster) keeps its pid while its workers die and are replaced; the children of the
master, read before and after the probes, show that churn.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.hosts.base import Host, HostError


@dataclass(frozen=True)
class Tree:
    master: int
    alive: bool  # whether the master itself was there
    children: frozenset[int]
    source: str  # how the children were listed


async def children(host: Host, pid: int) -> Tree:
    """The master's children: /proc/PID/task/*/children where the kernel offers it, else
    ``pgrep -P``."""
    try:
        await host.read(f"/proc/{pid}/stat", 0, 512)
    except HostError:
        return Tree(pid, False, frozenset(), f"/proc/{pid}")
    kids: set[int] = set()
    try:
        tasks = await host.glob(f"/proc/{pid}/task/*/children")
        for path in tasks[:64]:
            kids |= {int(w) for w in (await host.read(path, 0, 65536)).split() if w.isdigit()}
        if tasks:
            return Tree(pid, True, frozenset(kids), f"/proc/{pid}/task/*/children")
    except HostError:
        pass
    out = await host.run(["pgrep", "-P", str(pid)], timeout=3, max_bytes=65536)
    kids = {int(w) for w in out.text.split() if w.isdigit()}
    return Tree(pid, True, frozenset(kids), f"pgrep -P {pid}")
