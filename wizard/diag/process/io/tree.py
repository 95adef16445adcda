"""The workers under a server's master, read in the server context (I/O).

A master (nginx, gunicorn, uvicorn, Apache, HAProxy in master-worker mode, PostgreSQL's
postmaster) keeps its pid while its workers die and are replaced; the children of the
master, read before and after the probes, show that churn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wizard.hosts.base import Host, HostError

MAX_ROLES = 128  # children whose command line is read


@dataclass(frozen=True)
class Tree:
    master: int
    alive: bool  # whether the master itself was there
    children: frozenset[int]
    source: str  # how the children were listed
    #: the command line of the master and of each child (pid -> text) where it could be read
    roles: dict[int, str] = field(default_factory=dict, compare=False)


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
            return Tree(pid, True, frozenset(kids), f"/proc/{pid}/task/*/children", await _roles(host, pid, kids))
    except HostError:
        pass
    out = await host.run(["pgrep", "-P", str(pid)], timeout=3, max_bytes=65536)
    kids = {int(w) for w in out.text.split() if w.isdigit()}
    return Tree(pid, True, frozenset(kids), f"pgrep -P {pid}", await _roles(host, pid, kids))


async def _roles(host: Host, master: int, kids: set[int]) -> dict[int, str]:
    """The command lines of the master and its first MAX_ROLES children; one that cannot be
    read (gone meanwhile, no permission) is left out."""
    roles: dict[int, str] = {}
    for pid in [master, *sorted(kids)[:MAX_ROLES]]:
        try:
            text = (await host.read(f"/proc/{pid}/cmdline", 0, 4096)).replace(b"\0", b" ")
        except HostError:
            continue
        if text.strip():
            roles[pid] = text.decode("utf-8", "replace").strip()
    return roles
