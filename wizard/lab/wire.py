"""What a real client meets on the wire in a lab scenario (I/O): the client's own words and a
capture in the client namespace of the resets that reached it.

Used by the real-server lab tests before `diagnose` runs, so that each incident is shown to
happen for real (an RST reaches the client, or, for the healthy and in-band cases, none
does) with the client a person would use: curl, or Python's http.client for keep-alive
reuse, a raw socket for Redis, psql for PostgreSQL.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from wizard.lab import dumps
from wizard.lab.build import Lab

# Python's own HTTP client, reusing one connection after an idle hold (a pooled connection).
_KEEPALIVE = """\
import http.client, sys, time
host, port, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection(host, port, timeout=5)
try:
    for i in range(2):
        if i:
            time.sleep(hold)
        c.request("GET", "/", headers={"Host": "lab"})
        r = c.getresponse(); r.read()
        print("status", r.status, flush=True)
except Exception as exc:
    print(type(exc).__name__ + ": " + str(exc), flush=True)
"""
# Its replies and its error on one line: "reply +PONG | reply +PONG", "reply -ERR ... | BrokenPipeError: ..."
_REDIS = """\
import socket, sys, time
host, port, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
said = []
try:
    s = socket.create_connection((host, port), timeout=5)
    for i in range(2):
        if i:
            time.sleep(hold)
        s.sendall(b"*1\\r\\n$4\\r\\nPING\\r\\n")
        got = s.recv(100)
        if not got:
            raise ConnectionError("Connection closed by server")
        said.append("reply " + got.decode().strip())
except Exception as exc:
    said.append(type(exc).__name__ + ": " + str(exc))
print(" | ".join(said), flush=True)
"""
# A client that connects and stays quiet (``idle``) or sends a request's first lines and
# stalls (``stall``) for ``hold`` seconds, then sends (the rest of) its request.
_QUIET = """\
import socket, sys, time
host, port, hold, kind = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
head, tail = b"GET / HTTP/1.1\\r\\nHost: lab\\r\\n", b"\\r\\n"
try:
    s = socket.create_connection((host, port), timeout=5)
    if kind == "stall":
        s.sendall(head)
    time.sleep(hold)
    s.sendall(tail if kind == "stall" else head + tail)
    got = s.recv(200)
    print(got.decode(errors="replace").splitlines()[0] if got else "EOF: closed by server", flush=True)
except Exception as exc:
    print(type(exc).__name__ + ": " + str(exc), flush=True)
"""
# A burst of fresh connections, one request each, as a client without a pool makes them.
_BURST = """\
import http.client, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[4]
seen = []
for i in range(8):
    c = http.client.HTTPConnection(host, port, timeout=5)
    try:
        c.request("GET", path, headers={"Host": "lab", "Connection": "close"})
        r = c.getresponse(); r.read()
        seen.append(str(r.status))
    except Exception as exc:
        seen.append(type(exc).__name__)
    finally:
        c.close()
print("burst " + " ".join(seen), flush=True)
"""


@dataclass
class Wire:
    """One real client's run against the scenario, seen from the client namespace."""

    said: str          # the client's last line: an HTTP status, a reply, or its error
    resets: int        # RSTs from the target's port that reached the client
    packets: int       # packets of the port captured
    fins: int = 0      # FINs from the target's port (the server closed its side)
    captures: tuple[Path, ...] = ()  # tcpdump's files, near the client and near the server, when kept


def _url(lab: Lab, tls: bool) -> str:
    addr = f"[{lab.server_address}]" if lab.scenario.family == 6 else lab.server_address
    return f"{'https' if tls else 'http'}://{addr}:{lab.scenario.port}{lab.scenario.path or '/'}"


def client_argv(lab: Lab) -> list[str]:
    s = lab.scenario
    kind = s.client or "curl"
    if kind in ("curl", "curl-tls"):
        return ["curl", "-sS", "-k", "-m", "5", "-o", "/dev/null", "-w", "status %{http_code}\\n",
                _url(lab, kind == "curl-tls")]
    if kind == "psql":
        # PostgreSQL's own client, over TCP, no password prompt, no ~/.psqlrc
        return ["env", "PGCONNECT_TIMEOUT=5", "psql", "-X", "-w", "-h", lab.server_address, "-p", str(s.port),
                "-U", "postgres", "-d", "postgres", "-At", "-c", "select 'ok'"]
    if kind == "pg-killed":
        return [sys.executable, "-m", "wizard.lab.holder", lab.server_address, str(s.port), "1", "postgres-killed"]
    if kind == "pg-idle":
        return [sys.executable, "-m", "wizard.lab.holder", lab.server_address, str(s.port), "1", "postgres-idle",
                f"{s.hold:g}"]
    script = {"keepalive": _KEEPALIVE, "redis": _REDIS, "idle": _QUIET, "stall": _QUIET, "burst": _BURST}[kind]
    return [sys.executable, "-c", script, lab.server_address, str(s.port), f"{s.hold:g}",
            s.path or "/" if kind == "burst" else kind]


def observe(lab: Lab, keep: Path | None = None) -> Wire:
    """Run the scenario's real client in the client namespace under tcpdump at both ends (the
    client's interface, the server's); count the resets that reached the client. ``keep``: a
    directory the two captures are copied into (the lab's own is removed with it)."""
    st, port = lab.state, lab.scenario.port
    pcap, near_server = Path(st.dir) / "wire.pcap", Path(st.dir) / "wire-server.pcap"
    with dumps.recording([(st.client, pcap, f"tcp port {port}"), (st.server, near_server, "tcp")], snaplen=262144):
        done = subprocess.run(["ip", "netns", "exec", st.client, *client_argv(lab)], capture_output=True,
                              text=True, timeout=lab.scenario.hold + 20, stdin=subprocess.DEVNULL)
        time.sleep(1.0)  # the last packets (a reset after the client gave up) reach the capture
    lines = (done.stdout + done.stderr).strip().splitlines()
    said = lines[-1] if lines else f"exit {done.returncode}"
    if done.returncode:
        said += f" (exit {done.returncode})"
    resets, packets, fins = count_resets(pcap, port)
    kept: tuple[Path, ...] = ()
    if keep is not None:
        into = keep / st.name
        into.mkdir(parents=True)
        kept = tuple(Path(shutil.copy(p, into / p.name)) for p in (pcap, near_server))
    return Wire(said=said, resets=resets, packets=packets, fins=fins, captures=kept)


def count_resets(pcap: Path, port: int) -> tuple[int, int, int]:
    """RSTs sent from ``port``, all packets of the port, and FINs sent from it, read from the capture."""
    from scapy.layers.inet import TCP
    from scapy.utils import PcapReader

    resets = packets = fins = 0
    if not pcap.exists() or pcap.stat().st_size == 0:
        return 0, 0, 0
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            if TCP not in pkt:
                continue
            packets += 1
            if pkt[TCP].sport == port and pkt[TCP].flags & 0x04:
                resets += 1
            if pkt[TCP].sport == port and pkt[TCP].flags & 0x01:
                fins += 1
    return resets, packets, fins
