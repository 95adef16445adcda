"""tcpdump inside a lab namespace (I/O): started once it listens, stopped so that it writes out
what it holds.

The lab's captures are the evidence a person would bring to `analyze`: tcpdump's own pcap
files, taken at the client's interface and at the server's.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from wizard.lab.netns import LabError, stop_process

READY_S = 5.0
SNAPLEN = 200  # headers and the first bytes of a payload, as `tcpdump -s` is used in the field
# tcpdump's ring (`-B`, KiB). Its default, 2 MiB, holds 32 packets at a 64 KiB frame (a veth
# with offloads), so eight short connections in a row overflowed it while tcpdump waited for
# a core: the server's capture then missed flows the client's had, which reads as injection.
BUFFER_KIB = 32768
SETTLE_S, SETTLE_MAX_S = 0.2, 3.0  # the files stop growing before tcpdump is stopped
_STATS = re.compile(r"^(\d+) packets? (captured|received by filter|dropped by kernel)", re.M)


def start(ns: str, path: Path, bpf: str, dev: str = "eth0", snaplen: int = SNAPLEN) -> subprocess.Popen[str]:
    """tcpdump writing ``path`` from ``dev`` in ``ns``, returned once it says it listens."""
    dump = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "-nn", "-U", "-s", str(snaplen),
                             "-B", str(BUFFER_KIB), "--immediate-mode", "-w", str(path), bpf],
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
def recording(captures: Iterable[tuple[str, Path, str]], snaplen: int = SNAPLEN, dev: str = "eth0") -> Iterator[None]:
    """tcpdump on each (namespace, file, filter) while the block runs, every one stopped after
    it (also those started before one that failed to start)."""
    taken: list[tuple[str, Path, subprocess.Popen[str]]] = []
    try:
        for ns, path, bpf in captures:
            taken.append((ns, path, start(ns, path, bpf, dev=dev, snaplen=snaplen)))
        yield
        settle([path for _ns, path, _dump in taken])
    except BaseException:
        for _ns, _path, dump in taken:
            stop(dump)
        raise
    lost = [f"{ns}: {path.name} {why}" for ns, path, dump in taken if (why := incomplete(stop(dump)))]
    if lost:
        raise LabError("tcpdump lost packets, the capture is not the traffic: " + "; ".join(lost))


def settle(paths: list[Path]) -> None:
    """Wait until no file has grown for SETTLE_S (tcpdump has written what it read), at most
    SETTLE_MAX_S: a stop discards what is still in tcpdump's ring."""
    deadline, last, quiet = time.monotonic() + SETTLE_MAX_S, None, time.monotonic()
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size if p.exists() else -1 for p in paths]
        if sizes != last:
            last, quiet = sizes, time.monotonic()
        elif time.monotonic() - quiet >= SETTLE_S:
            return
        time.sleep(0.05)


def incomplete(stats: dict[str, int]) -> str:
    """Why tcpdump's closing counts say its file lacks packets its filter kept, or ''."""
    if stats.get("dropped by kernel", 0):
        return f"{stats['dropped by kernel']} dropped by the kernel (ring full)"
    if stats.get("captured", 0) < stats.get("received by filter", 0):
        return f"{stats['captured']} of {stats['received by filter']} written"
    return ""


def stop(dump: subprocess.Popen[str]) -> dict[str, int]:
    """Stop a tcpdump so that it writes out what it holds (SIGINT), killing it if it hangs;
    its closing counts (captured, received by filter, dropped by kernel), empty if none."""
    stop_process(dump, signal.SIGINT, timeout=5)
    said = ""
    if dump.stderr is not None:
        said = dump.stderr.read()  # it has ended: the pipe is at its end
        dump.stderr.close()
    return parse_stats(said)


def parse_stats(said: str) -> dict[str, int]:
    """tcpdump's closing counts from what it wrote to stderr."""
    return {what: int(n) for n, what in _STATS.findall(said)}
