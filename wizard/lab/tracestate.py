"""Tracing state a lab run may leave behind (I/O): the wizard's tracefs instances and tracefs's mount.

Diagnoses in the lab run under `ip netns exec`, which gives each run its own mount namespace:
a tracefs it mounts vanishes with it, but its instances are the kernel's, global, and would
outlive it. So the lab looks at the instances even where tracefs is not mounted here, from a
private mount namespace, leaving this namespace's mounts exactly as they were.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

TRACEFS = "/sys/kernel/tracing"
PREFIX = "rw-"

_LIST = ("import os, subprocess, sys\n"
         "t = sys.argv[1]\n"
         "if not os.path.isdir(t + '/instances'):\n"
         "    subprocess.run(['mount', '-t', 'tracefs', 'nodev', t], check=True, timeout=10)\n"
         "print('\\n'.join(os.listdir(t + '/instances')))\n")


def tracefs_mounted() -> bool:
    """Whether tracefs is mounted in this mount namespace."""
    return os.path.isdir(f"{TRACEFS}/instances")


def wizard_instances() -> set[str]:
    """Names of the ``rw-*`` tracefs instances that exist now (kernel-wide)."""
    if tracefs_mounted():
        names = os.listdir(f"{TRACEFS}/instances")
    else:
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", _LIST,
                              TRACEFS], capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise RuntimeError(f"cannot list tracefs instances: {out.stderr.strip()[-500:]}")
        names = out.stdout.split()
    return {n for n in names if n.startswith(PREFIX)}


def owner(name: str) -> int | None:
    m = re.fullmatch(rf"{PREFIX}(\d+)-[0-9a-f]+", name)
    return int(m.group(1)) if m else None


def left_behind(before: set[str], pids: frozenset[int] | set[int] = frozenset()) -> list[str]:
    """Instances made since ``before`` that no live run owns any more, or that belong to one
    of ``pids`` (runs that have finished): what a run left behind. A live run's own instance
    (another engineer's, concurrently) is not a leftover."""
    out = []
    for name in sorted(wizard_instances() - before):
        pid = owner(name)
        if pid is None or pid in pids or not os.path.exists(f"/proc/{pid}"):
            out.append(name)
    return out
