"""tcpdump inside a lab namespace (I/O): started once it listens, stopped so that it writes out
what it holds.

The lab's captures are the evidence a person would bring to `analyze`: tcpdump's own pcap
files, taken at the client's interface and at the server's.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from wizard.lab.netns import LabError

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


def stop(dump: subprocess.Popen[str]) -> None:
    """Stop a tcpdump so that it writes out what it holds (SIGINT), killing it if it hangs."""
    if dump.poll() is None:
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(timeout=5)
        except subprocess.TimeoutExpired:
            dump.kill()
            dump.wait(timeout=5)
    if dump.stderr is not None:
        dump.stderr.close()
