"""tcpdump inside a lab namespace (I/O): started once it listens, stopped so that it writes out
what it holds.

The lab's captures are the evidence a person would bring to `analyze`: tcpdump's own pcap
files, taken at the client's interface and at the server's.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from wizard.lab.netns import LabError, stop_process

READY_S = 5.0
SNAPLEN = 200  # headers and the first bytes of a payload, as `tcpdump -s` is used in the field


def start(ns: str, path: Path, bpf: str, dev: str = "eth0", snaplen: int = SNAPLEN) -> subprocess.Popen[str]:
    """tcpdump writing ``path`` from ``dev`` in ``ns``, returned once it says it listens."""
    dump = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "-nn", "-U", "-s", str(snaplen),
                             "--immediate-mode", "-w", str(path), bpf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert dump.stderr is not None
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        line = dump.stderr.readline()
        if "listening on" in line:
            return dump
        if not line and dump.poll() is not None:
            break
    stop(dump)
    raise LabError(f"tcpdump did not start in {ns}")


@contextmanager
def recording(captures: Iterable[tuple[str, Path, str]], snaplen: int = SNAPLEN) -> Iterator[None]:
    """tcpdump on each (namespace, file, filter) while the block runs, every one stopped after
    it (also those started before one that failed to start)."""
    taken: list[subprocess.Popen[str]] = []
    try:
        for ns, path, bpf in captures:
            taken.append(start(ns, path, bpf, snaplen=snaplen))
        yield
    finally:
        for dump in taken:
            stop(dump)


def stop(dump: subprocess.Popen[str]) -> None:
    """Stop a tcpdump so that it writes out what it holds (SIGINT), killing it if it hangs."""
    stop_process(dump, signal.SIGINT, timeout=5)
    if dump.stderr is not None:
        dump.stderr.close()
