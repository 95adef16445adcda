"""watch and analyze in a real lab: client ns <-> router ns <-> server ns (root only).

Two intermittent resets: the server's application aborts one request in three (SO_LINGER
0), and the router injects a reset into one request in three on another port (nft numgen,
reject with tcp reset). `watch`, run in the client namespace, must catch each within its
time and name the right sender; tcpdump captures at both ends must give `analyze` the
two-ended proof: the router's resets injected, the server's sent. Everything made here
(namespaces, processes, captures in tmp_path) is removed, also on failure.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SERVER, CLIENT = "10.78.2.2", "10.78.1.2"
APP_PORT, PATH_PORT = 9090, 9091
EVERY = 3

SERVERS = textwrap.dedent(f"""
    import socket, struct, threading
    def serve(port, abort_every):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64); n = 0
        while True:
            c, _ = s.accept(); n += 1; c.settimeout(1.0)
            try:
                c.recv(4096)
                if abort_every and n % abort_every == 0:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    c.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\nok")
            except OSError:
                pass
            c.close()
    threading.Thread(target=serve, args=({APP_PORT}, {EVERY}), daemon=True).start()
    threading.Thread(target=serve, args=({PATH_PORT}, 0), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")

CLIENT_LOOP = textwrap.dedent("""
    import socket, sys, time
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resets = 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=3)
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            while s.recv(4096):
                pass
        except ConnectionResetError:
            resets += 1
        except OSError:
            pass
        time.sleep(0.1)
    print(resets)
""")


def sh(*argv: str, check: bool = True, timeout: float = 20, input: str | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr.strip()}")
    return out.stdout


@dataclass
class Lab:
    client: str
    router: str
    server: str

    def ex(self, ns: str, *argv: str, **kw) -> str:
        return sh("ip", "netns", "exec", ns, *argv, **kw)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("tcpdump"):
        reason = "the watch lab needs root, nft and tcpdump"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    lab = Lab(f"rwwt-c-{tag}", f"rwwt-r-{tag}", f"rwwt-s-{tag}")
    proc = None
    try:
        for ns in (lab.client, lab.router, lab.server):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"rwwc{tag}", "netns", lab.client, "type", "veth", "peer", "name", "r0",
           "netns", lab.router)
        sh("ip", "link", "add", f"rwws{tag}", "netns", lab.server, "type", "veth", "peer", "name", "r1",
           "netns", lab.router)
        for ns, dev, addr in ((lab.client, f"rwwc{tag}", f"{CLIENT}/24"), (lab.router, "r0", "10.78.1.1/24"),
                              (lab.router, "r1", "10.78.2.1/24"), (lab.server, f"rwws{tag}", f"{SERVER}/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", lab.client, "route", "add", "default", "via", "10.78.1.1")
        sh("ip", "-n", lab.server, "route", "add", "default", "via", "10.78.2.1")
        lab.ex(lab.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # One request in three to PATH_PORT is answered by the router with a reset.
        lab.ex(lab.router, "nft", "-f", "-", input=textwrap.dedent(f"""
            table inet rwwt_router {{
              chain rwwt_fwd {{
                type filter hook forward priority 0; policy accept;
                tcp dport {PATH_PORT} ct state established tcp flags & psh == psh numgen inc mod {EVERY} == 0 \\
                    counter reject with tcp reset
              }}
            }}"""))
        proc = subprocess.Popen(["ip", "netns", "exec", lab.server, PY, "-c", SERVERS],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        lab.ex(lab.client, "ping", "-c", "1", "-W", "2", SERVER)
        yield lab
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(5)
        for ns in (lab.client, lab.router, lab.server):
            sh("ip", "netns", "del", ns, check=False)


def watch_while(lab: Lab, port: int, requests: int, tmp: Path) -> tuple[list[dict], int, dict[str, Path]]:
    """Run watch in the client namespace and tcpdump at both ends while the client makes
    ``requests`` requests; the NDJSON events, the resets the client saw, the captures."""
    caps = {"client": tmp / f"client-{port}.pcap", "server": tmp / f"server-{port}.pcap"}
    dumps = [subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-U", "-s", "200", "-w", str(path),
                               "-i", "any", f"tcp port {port}"], stderr=subprocess.DEVNULL)
             for ns, path in ((lab.client, caps["client"]), (lab.server, caps["server"]))]
    watcher = subprocess.Popen(["ip", "netns", "exec", lab.client, PY, "-m", "wizard", "watch",
                                f"{SERVER}:{port}", "--for", "90s", "--json", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert watcher.stdout is not None
        ready, _, _ = select.select([watcher.stdout], [], [], 30)
        first = watcher.stdout.readline() if ready else ""
        assert json.loads(first)["type"] == "start", first + (watcher.stderr.read() if watcher.stderr else "")
        time.sleep(0.5)  # tcpdump is up long before the watcher
        out = lab.ex(lab.client, PY, "-c", CLIENT_LOOP, SERVER, str(port), str(requests), timeout=120)
        time.sleep(1.0)
        watcher.terminate()  # SIGTERM: a clean end, with its end event
        rest, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 3, err  # interrupted by a signal
    finally:
        for p in (watcher, *dumps):
            if p.poll() is None:
                p.terminate()
                p.wait(10)
    events = [json.loads(first)] + [json.loads(line) for line in rest.splitlines() if line.strip()]
    return events, int(out.strip()), caps


def resets(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "reset"]


def test_watch_catches_the_servers_intermittent_aborts_and_names_the_application(lab: Lab, tmp_path: Path):
    events, seen, caps = watch_while(lab, APP_PORT, 12, tmp_path)
    assert seen == 12 // EVERY
    caught = resets(events)
    assert len(caught) == seen, events
    assert {e["sender"] for e in caught} == {"server-app"}
    assert events[-1]["type"] == "end" and events[-1]["signal"] == "SIGTERM" and events[-1]["resets"] == seen
    session = analyze(caps)
    assert [e["proof"] for e in session["observation"]["events"]] == ["sent"] * seen


def test_watch_catches_the_routers_injected_resets_and_names_the_path(lab: Lab, tmp_path: Path):
    events, seen, caps = watch_while(lab, PATH_PORT, 12, tmp_path)
    assert seen == 12 // EVERY
    caught = [e for e in resets(events) if e["toward"] == "client"]
    assert len(caught) == seen, events
    assert {e["sender"] for e in caught} == {"path"}
    # The server, whose request never came, closes later; the client's kernel, whose socket
    # is gone, answers with resets of its own: those are the client's.
    assert {e["sender"] for e in resets(events) if e["toward"] == "server"} <= {"client"}
    assert all(e["hop_distance"] == 0 for e in caught)  # the router is the client's first hop
    session = analyze(caps)
    proofs = [(e["proof"], e["sender"]) for e in session["observation"]["events"] if e["toward"] == "client"]
    assert proofs == [("injected", "path")] * seen


def analyze(caps: dict[str, Path]) -> dict:
    out = subprocess.run([PY, "-m", "wizard", "analyze", str(caps["client"]), str(caps["server"]), "--json", "-"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)
