"""Network-namespace lab (I/O): a client and a server namespace joined by a veth pair, servers
and nftables rules inside them, and a teardown that removes everything it made.

Used by tests/lab now and by `reset-wizard lab` later. Root only. Every command is an argv
list with a timeout; nothing here touches the root namespace's addresses or ruleset.
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

COMMAND_TIMEOUT = 10.0
READY_TIMEOUT = 10.0


class LabError(Exception):
    """The lab could not be built (a command failed); the message names the command."""


def lab_unavailable() -> str:
    """Why namespaces cannot be built here ("" when they can)."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veths, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            return f"{tool} is not installed (apt install {'iproute2' if tool == 'ip' else 'nftables'})"
    probe = f"rwcl-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if made.returncode != 0:
        return f"ip netns add fails here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=COMMAND_TIMEOUT)
    return ""


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout: float = 3.0) -> None:
    """End ``proc`` with ``sig``, killing it if it has not ended ``timeout`` seconds later."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def run(argv: list[str], *, stdin: str | None = None, timeout: float = COMMAND_TIMEOUT,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[:500]}")
    return done


@dataclass
class LabNet:
    """Two namespaces, ``client`` and ``server``, joined by one veth pair (IPv4 and IPv6).

    Names are ``<tag>-<name>-<random>`` so concurrent runs never collide; addresses live
    only inside the two namespaces, so they cannot collide with anything either.
    """

    name: str
    tag: str = "rwcl"
    client_v4: str = "10.213.1.1"
    server_v4: str = "10.213.1.2"
    client_v6: str = "fd13:1::1"
    server_v6: str = "fd13:1::2"
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    _made: list[str] = field(default_factory=list)

    @property
    def client(self) -> str:
        return f"{self.tag}-{self.name}-c-{self.suffix}"

    @property
    def server(self) -> str:
        return f"{self.tag}-{self.name}-s-{self.suffix}"

    def up(self) -> LabNet:
        veth_c, veth_s = f"rwc{self.suffix}c", f"rwc{self.suffix}s"  # <= 15 characters
        try:
            for ns in (self.client, self.server):
                run(["ip", "netns", "add", ns])
                self._made.append(ns)
                run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # Created inside the client namespace, so the root namespace never holds it.
            run(["ip", "-n", self.client, "link", "add", veth_c, "type", "veth", "peer", "name", veth_s,
                 "netns", self.server])
            for ns, dev, v4, v6 in ((self.client, veth_c, self.client_v4, self.client_v6),
                                    (self.server, veth_s, self.server_v4, self.server_v6)):
                run(["ip", "-n", ns, "addr", "add", f"{v4}/30", "dev", dev])
                run(["ip", "-n", ns, "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad"])
                run(["ip", "-n", ns, "link", "set", dev, "up"])
            self.wait_reachable()
        except BaseException:
            self.down()
            raise
        return self

    def wait_reachable(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if run(["ip", "netns", "exec", self.client, "ping", "-c", "1", "-W", "1", self.server_v4],
                   check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise LabError(f"{self.server_v4} is not reachable from {self.client}")

    def exec(self, ns: str, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *argv], **kw)  # type: ignore[arg-type]

    def nft(self, ns: str, ruleset: str) -> None:
        """Load nftables rules (``nft -f -``) inside ``ns``; they go away with the namespace."""
        self.exec(ns, ["nft", "-f", "-"], stdin=ruleset)

    def serve(self, mode: str, address: str, port: int) -> subprocess.Popen[str]:
        """Start a lab server (see ``serve`` below) in the server namespace; wait until it listens."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.server, sys.executable, "-m", "wizard.lab.netns", "serve", mode,
             address, str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            proc.kill()
            raise LabError(f"lab server {mode} did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        return proc

    def down(self) -> None:
        for proc in self.processes:
            stop_process(proc)
        self.processes.clear()
        for ns in reversed(self._made):
            # Anything still running inside (a stray child) goes with its namespace.
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "delete", ns], check=False)
        self._made.clear()

    def __enter__(self) -> LabNet:
        return self.up()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()


# -- the servers the lab runs inside the server namespace ----------------------------------
def serve(mode: str, address: str, port: int) -> int:
    """``listen``: accept, read and answer; ``linger0``: read the request, then abort with
    SO_LINGER 0 (RST after data, TCPAbortOnData). Runs until SIGTERM."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if address == "::":
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # both families
    listener.bind((address, port))
    listener.listen(128)
    listener.settimeout(0.5)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while not stopping:
        try:
            conn, _ = listener.accept()
        except (TimeoutError, InterruptedError):
            continue
        conn.settimeout(0.5)
        try:
            data = conn.recv(65536)
        except (TimeoutError, OSError):
            data = b""
        if mode == "linger0" and data:
            # Everything sent was read, so close() counts TCPAbortOnData, not TCPAbortOnClose.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif data:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            except OSError:
                pass
        conn.close()
    listener.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        raise SystemExit(serve(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    print("usage: python -m wizard.lab.netns serve listen|linger0 ADDRESS PORT", file=sys.stderr)
    raise SystemExit(2)


def _kill_inside(ns: str) -> None:
    pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(int(pid), sig)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        while pids and time.monotonic() < deadline:
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            if pids:
                time.sleep(0.05)
        if not pids:
            return


NETNS_DIR = Path("/run/netns")
DELETE_TRIES = 5


def delete_netns(ns: str) -> str:
    """Delete one namespace; "" when it is gone, else why not (after a few tries).

    Whether it exists is read from /run/netns itself, not from `ip netns list`, which races
    with concurrent deletes. A namespace whose file is still mounted in another mount
    namespace (a short-lived private one, say) cannot be unlinked yet: retried with backoff.
    """
    problem = ""
    for attempt in range(DELETE_TRIES):
        if not (NETNS_DIR / ns).exists():
            return ""
        _kill_inside(ns)
        done = run(["ip", "netns", "delete", ns], check=False)
        if done.returncode == 0 and not (NETNS_DIR / ns).exists():
            return ""
        problem = done.stderr.strip()[:300] or "still present after ip netns delete"
        time.sleep(0.2 * (attempt + 1))
    return problem
