"""watch and analyze in a real lab: client ns <-> router ns <-> server ns (root only).

Three intermittent resets, each caught by `watch --for` (run in the client namespace, with
its kernel events: tracefs mounted in the watcher's own mount namespace) within its time:
- one request in three reset: the server's application aborts it (SO_LINGER 0) and logs so;
- resets only after idle: the router forgets a quiet connection (conntrack's established
  timeout cut to 3 s) and answers its next packet with a reset; the traffic is quiet, so
  only `--probe-every`'s held connection meets it (its TCP keepalive after 4 s of quiet);
- resets from the router only during a window of time: a reject rule that lives for a
  second and a half while the client makes a request every 100 ms.
Each is checked on the wire first (tcpdump at the client: the RSTs the scenario claims, and
no others), then the NDJSON events: every reset caught, the sender right, the kernel's line
and the server's log line where they exist. tcpdump captures at both ends give `analyze` the
two-ended proof. Everything made here (namespaces with their nft tables, processes, the
watcher's tracefs instance, captures in tmp_path) is removed, and that is checked.
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
from datetime import datetime
from pathlib import Path

import pytest

from wizard.lab import dumps
from wizard.lab.netns import stop_process

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SERVER, CLIENT = "10.78.2.2", "10.78.1.2"
APP_PORT, PATH_PORT, IDLE_PORT, WINDOW_PORT = 9090, 9091, 9092, 9093
EVERY = 3
IDLE_TIMEOUT_S, PROBE_EVERY_S = 3, 4
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"  # writes a journal file from export-format entries

SERVERS = textwrap.dedent(f"""
    import socket, struct, subprocess, sys, threading, time
    from datetime import datetime, timezone
    log = open(sys.argv[1], "a", buffering=1)
    def journal(message):  # the same line as a journal entry, appended to a journal file (no journald here)
        us = int(time.time() * 1e6)
        entry = (f"__REALTIME_TIMESTAMP={{us}}\\n__MONOTONIC_TIMESTAMP={{us}}\\n_BOOT_ID={'0123456789abcdef' * 2}\\n"
                 f"_SYSTEMD_UNIT=app.service\\n_PID=4242\\nSYSLOG_IDENTIFIER=app\\nMESSAGE={{message}}\\n\\n")
        subprocess.run(["{JOURNAL_REMOTE}", "--output=" + sys.argv[2], "-"], input=entry.encode(),
                       capture_output=True, timeout=10)
    def serve(port, abort_every):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64); n = 0
        while True:
            c, peer = s.accept(); n += 1; c.settimeout(1.0)
            try:
                c.recv(4096)
                if abort_every and n % abort_every == 0:
                    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                    log.write(f"{{stamp}} ERROR worker aborting request {{n}} from {{peer[0]}}:{{peer[1]}}\\n")
                    journal(f"worker aborting request {{n}} from {{peer[0]}}:{{peer[1]}}")
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    c.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\nok")
            except OSError:
                pass
            c.close()
    def hold(port):  # a keep-alive server: a connection stays open as long as its client wants
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64)
        def one(c):
            try:
                while c.recv(4096):
                    pass
            except OSError:
                pass
            c.close()
        while True:
            threading.Thread(target=one, args=(s.accept()[0],), daemon=True).start()
    for port, every in (({APP_PORT}, {EVERY}), ({PATH_PORT}, 0), ({WINDOW_PORT}, 0)):
        threading.Thread(target=serve, args=(port, every), daemon=True).start()
    threading.Thread(target=hold, args=({IDLE_PORT},), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")

CLIENT_LOOP = textwrap.dedent("""
    import json, socket, sys, time
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resets = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=3)
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            while s.recv(4096):
                pass
        except ConnectionResetError:
            resets.append(time.time())
        except OSError:
            pass
        time.sleep(0.1)
    print(json.dumps(resets))
""")

ROUTER_RULES = f"""
table inet rwwt_router {{
  chain rwwt_fwd {{
    type filter hook forward priority 0; policy accept;
    # one request in three to PATH_PORT is answered by the router with a reset
    tcp dport {PATH_PORT} ct state established tcp flags & psh == psh numgen inc mod {EVERY} == 0 \\
        counter reject with tcp reset
    # a connection the router no longer knows (idle past its timeout) is reset at its next packet
    tcp dport {IDLE_PORT} ct state new tcp flags & (syn | ack) == ack counter reject with tcp reset
  }}
}}"""
WINDOW_RULE = f"""
table inet rwwt_window {{
  chain rwwt_window {{
    type filter hook forward priority -1; policy accept;
    tcp dport {WINDOW_PORT} tcp flags & psh == psh counter reject with tcp reset
  }}
}}"""


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
    log: Path  # the server's application log
    journal: Path  # the same lines as a journal file's entries
    watchers: list[int]  # the pids of the watchers run: their tracefs instances must be gone

    def ex(self, ns: str, *argv: str, **kw) -> str:
        return sh("ip", "netns", "exec", ns, *argv, **kw)


def tracefs_instances() -> list[str]:
    """The kernel's tracefs instances, read through a mount of our own that nothing else sees."""
    out = sh("unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mount -t tracefs nodev /sys/kernel/tracing && ls /sys/kernel/tracing/instances")
    return out.split()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0 or not all(map(shutil.which, ("nft", "tcpdump", "unshare", "journalctl"))) \
            or not os.path.exists(JOURNAL_REMOTE):
        reason = "the watch lab needs root, nft, tcpdump, unshare, journalctl and systemd-journal-remote"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    srv = tmp_path_factory.mktemp("srv")
    lab = Lab(f"rwwt-c-{tag}", f"rwwt-r-{tag}", f"rwwt-s-{tag}", srv / "app.log", srv / "app.journal", [])
    lab.log.write_text("")
    # the journal file exists, with one entry, before any watch starts: followed from its end
    subprocess.run([JOURNAL_REMOTE, f"--output={lab.journal}", "-"], check=True, capture_output=True,
                   input=b"__REALTIME_TIMESTAMP=1\n__MONOTONIC_TIMESTAMP=1\n_BOOT_ID=" + b"0123456789abcdef" * 2
                   + b"\nMESSAGE=before any watch\n\n")
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
        lab.ex(lab.router, "nft", "-f", "-", input=ROUTER_RULES)
        # The router's conntrack (loaded by the rules above, in its namespace only) forgets an
        # established connection after IDLE_TIMEOUT_S of quiet.
        lab.ex(lab.router, "sysctl", "-qw", f"net.netfilter.nf_conntrack_tcp_timeout_established={IDLE_TIMEOUT_S}")
        proc = subprocess.Popen(["ip", "netns", "exec", lab.server, PY, "-c", SERVERS, str(lab.log), str(lab.journal)],
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
    # Nothing left behind: the namespaces (and the nft tables and conntrack that lived in them),
    # the watchers' tracefs instances, no tracefs mount outside the watchers' own namespaces.
    assert not [n for n in sh("ip", "netns", "list").split() if n.endswith(tag)]
    assert "rwwt" not in sh("nft", "list", "tables")
    assert not [i for i in tracefs_instances() if any(i.startswith(f"rw-{pid}-") for pid in lab.watchers)]
    assert "tracefs" not in Path("/proc/self/mounts").read_text()


@dataclass
class Watched:
    events: list[dict]
    resets_at: list[float]  # when the client's requests met a reset
    caps: dict[str, Path]
    start: dict
    end: dict

    @property
    def resets(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "reset"]

    def toward_client(self) -> list[dict]:
        return [e for e in self.resets if e["toward"] == "client"]


def wire_rsts(cap: Path, port: int) -> list[float]:
    """The RSTs toward the client in a capture, as tcpdump reads them (their times)."""
    out = sh("tcpdump", "-r", str(cap), "-n", "-tt", f"tcp src port {port} and tcp[tcpflags] & tcp-rst != 0")
    return [float(line.split()[0]) for line in out.splitlines() if line.strip()]


def watch_while(lab: Lab, port: int, tmp: Path, traffic, *extra: str, logs: tuple[str, ...] = ()) -> Watched:
    """Run watch in the client namespace and tcpdump at both ends while ``traffic()`` runs
    (it returns the times of the resets the client met); the NDJSON events, the captures."""
    caps = {"client": tmp / f"client-{port}.pcap", "server": tmp / f"server-{port}.pcap"}
    with dumps.recording([(ns, path, f"tcp port {port}") for ns, path in ((lab.client, caps["client"]),
                                                                          (lab.server, caps["server"]))], dev="any"):
        watcher = subprocess.Popen(["ip", "netns", "exec", lab.client, PY, "-m", "wizard", "watch",
                                    f"{SERVER}:{port}", "--for", "90s", "--json", "-", "--allow-tracefs-mount",
                                    *(logs or ("--log", str(lab.log))), *extra],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        lab.watchers.append(watcher.pid)
        try:
            assert watcher.stdout is not None
            ready, _, _ = select.select([watcher.stdout], [], [], 30)
            first = watcher.stdout.readline() if ready else ""
            assert first and json.loads(first)["type"] == "start", first + (watcher.stderr.read() if watcher.stderr else "")
            resets_at = traffic()
            time.sleep(1.0)
            watcher.terminate()  # SIGTERM: a clean end, with its end event
            rest, err = watcher.communicate(timeout=30)
            assert watcher.returncode == 3, err  # interrupted by a signal
        finally:
            stop_process(watcher, timeout=10)
    events = [json.loads(first)] + [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert events[-1]["type"] == "end" and events[-1]["signal"] == "SIGTERM"
    assert events[-1]["resets"] == len([e for e in events if e["type"] == "reset"])
    return Watched(events, resets_at, caps, events[0], events[-1])


def requests(lab: Lab, port: int, n: int):
    def run() -> list[float]:
        return json.loads(lab.ex(lab.client, PY, "-c", CLIENT_LOOP, SERVER, str(port), str(n), timeout=120))
    return run


def kernel_traced(w: Watched) -> bool:
    """Whether the watch had the kernel's events (its start event says which, or why not)."""
    return any(line.startswith("tracefs instance") for line in w.start["kernel"])


def test_watch_catches_the_servers_intermittent_aborts_and_names_the_application(lab: Lab, tmp_path: Path):
    # The server's counters, log and journal file read in its own context (its namespace); the
    # journal file is appended to while the watch runs.
    w = watch_while(lab, APP_PORT, tmp_path, requests(lab, APP_PORT, 12),
                    logs=("--server", f"netns:{lab.server}", "--log", str(lab.log), "--journal", str(lab.journal)))
    assert w.start["logs"] == [f"followed from their end in netns:{lab.server}: {lab.log}",
                               f"journal followed from its end in netns:{lab.server}: {lab.journal} (polled by cursor)"]
    assert len(w.resets_at) == 12 // EVERY
    assert len(wire_rsts(w.caps["client"], APP_PORT)) == len(w.resets_at)  # on the wire, as claimed
    caught = w.resets
    assert len(caught) == len(w.resets_at), w.events
    assert {e["sender"] for e in caught} == {"server-app"}
    # The server's kernel sent each (the lab's server shares this kernel), with its reason,
    # and the application's log line of that second comes with it.
    assert kernel_traced(w), w.start["kernel"]
    for e in caught:
        assert e["kernel_reason"] and e["kernel_reason"].startswith("the kernel sent it (tcp_send_reset"), e
        if not any("tcp_send_reset:reason" in line for line in w.start["kernel"]):
            assert ", reason " in e["kernel_reason"], e["kernel_reason"]
        client_port = e["client"].rsplit(":", 1)[1]
        assert any("worker aborting request" in line and line.endswith(f":{client_port}") for line in e["logs"]), e
        # and its journal entry, of that second (the entry before the watch is never quoted)
        assert any(line.startswith(f"journal {lab.journal}: ") and " app[4242]: worker aborting request" in line
                   and line.endswith(f":{client_port}") for line in e["logs"]), e["logs"]
        assert not any("before any watch" in line for line in e["logs"])
        assert any("TCP_CLOSE" in s for s in e["states"]), e["states"]
        assert e["counters"].get("TcpOutRsts", 0) >= 1, e["counters"]  # the server's kernel counted it sent
    session = analyze(w.caps)
    assert [e["proof"] for e in session["observation"]["events"]] == ["sent"] * len(w.resets_at)


def test_watch_catches_the_routers_injected_resets_and_names_the_path(lab: Lab, tmp_path: Path):
    w = watch_while(lab, PATH_PORT, tmp_path, requests(lab, PATH_PORT, 12))
    # no journald here and no journal file given: a skipped source, with its reason and fix
    assert any(line.startswith("skipped: no journal followed: journald is not running in local")
               and "fix: --journal FILE.journal" in line for line in w.start["logs"]), w.start["logs"]
    assert len(w.resets_at) == 12 // EVERY
    assert len(wire_rsts(w.caps["client"], PATH_PORT)) == len(w.resets_at)
    caught = w.toward_client()
    assert len(caught) == len(w.resets_at), w.events
    assert {e["sender"] for e in caught} == {"path"}
    # The server, whose request never came, closes later; the client's kernel, whose socket
    # is gone, answers with resets of its own: those are the client's.
    assert {e["sender"] for e in w.resets if e["toward"] == "server"} <= {"client"}
    assert all(e["hop_distance"] == 0 for e in caught)  # the router is the client's first hop
    _path_kernel(w, caught)
    session = analyze(w.caps)
    proofs = [(e["proof"], e["sender"]) for e in session["observation"]["events"] if e["toward"] == "client"]
    assert proofs == [("injected", "path")] * len(w.resets_at)


def _path_kernel(w: Watched, caught: list[dict]) -> None:
    """A reset the router made: no kernel here sent it from a socket, the client's kernel got
    it, and the router's rule dropped the packet it answered (a NETFILTER_DROP that second)."""
    assert kernel_traced(w), w.start["kernel"]
    for e in caught:
        assert e["kernel_reason"] and e["kernel_reason"].startswith("the kernel received it"), e
        assert any("NETFILTER_DROP" in d for d in e["drops"]), e["drops"]
        assert not any("worker aborting" in line for line in e["logs"])


def test_watch_with_probes_catches_the_routers_idle_timeout_when_the_traffic_is_quiet(lab: Lab, tmp_path: Path):
    def quiet() -> list[float]:
        time.sleep(3 * PROBE_EVERY_S + 1)  # no traffic of the application's at all
        return []

    w = watch_while(lab, IDLE_PORT, tmp_path, quiet, "--probe-every", f"{PROBE_EVERY_S}s")
    on_wire = wire_rsts(w.caps["client"], IDLE_PORT)
    assert len(on_wire) >= 2, on_wire  # each held connection met the router's reset after its quiet
    caught = w.toward_client()
    assert len(caught) == len(on_wire), w.events
    assert {e["sender"] for e in caught} == {"path"}
    assert all(e["hop_distance"] == 0 for e in caught)
    _path_kernel(w, caught)
    # each was met after its connection's quiet (the keepalive's), not at its start
    assert all(e["ladder"]["events"][-1]["label"] == "RST" for e in caught)
    assert all(e["ladder"]["events"][-1]["ms"] >= PROBE_EVERY_S * 1000 - 50 for e in caught), caught


def test_watch_catches_the_routers_resets_only_inside_their_window_of_time(lab: Lab, tmp_path: Path):
    window: list[float] = []

    def traffic() -> list[float]:
        client = subprocess.Popen(["ip", "netns", "exec", lab.client, PY, "-c", CLIENT_LOOP, SERVER,
                                   str(WINDOW_PORT), "40"], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            lab.ex(lab.router, "nft", "-f", "-", input=WINDOW_RULE)
            window.append(time.time())
            time.sleep(1.5)
            lab.ex(lab.router, "nft", "delete", "table", "inet", "rwwt_window")
            window.append(time.time())
            out, _ = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(5)
        return json.loads(out)

    w = watch_while(lab, WINDOW_PORT, tmp_path, traffic)
    start, end = window
    # On the wire: resets only inside the window, and some outside requests did pass.
    on_wire = wire_rsts(w.caps["client"], WINDOW_PORT)
    assert len(on_wire) == len(w.resets_at) >= 3, (on_wire, w.resets_at)
    assert all(start <= t <= end + 0.5 for t in on_wire), (window, on_wire)
    caught = w.toward_client()
    assert len(caught) == len(on_wire), w.events
    assert {e["sender"] for e in caught} == {"path"}
    assert all(start <= datetime.fromisoformat(e["at"]).timestamp() <= end + 0.5 for e in caught)
    _path_kernel(w, caught)


def analyze(caps: dict[str, Path]) -> dict:
    out = subprocess.run([PY, "-m", "wizard", "analyze", str(caps["client"]), str(caps["server"]), "--json", "-"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)
