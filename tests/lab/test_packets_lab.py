"""Step 6 at packet level in a real lab: client ns <-> router ns <-> server ns (root only).

Resets are sent by the server's kernel (closed port), the server's application (SO_LINGER 0),
the router (nft reject with tcp reset in its forward chain: to data, and to every SYN), and
the router again after it forgot an idle flow (short conntrack timeout + ct state invalid
reject). Each must be attributed correctly by the real checks, run from inside the client
namespace, and told apart in the report of a real `reset-wizard diagnose` run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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
SERVER_ADDR, CLIENT_ADDR = "10.77.2.2", "10.77.1.2"


def _require_root() -> None:
    reason = ""
    if os.geteuid() != 0:
        reason = "lab tests need root (network namespaces, raw sockets)"
    elif not shutil.which("ip") or not shutil.which("nft"):
        reason = "lab tests need ip and nft"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"lab tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)


def sh(*argv: str, check: bool = True, timeout: float = 20, input: str | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr.strip()}")
    return out.stdout


SERVERS = textwrap.dedent("""
    import socket, struct, sys, threading
    def serve(port, handler):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(16)
        while True:
            c, _ = s.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()
    def linger0(c):
        c.recv(4096)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
    def echo(c):
        try:
            while True:
                d = c.recv(4096)
                if not d: break
                c.sendall(d)
        except OSError: pass
        c.close()
    for port, h in ((8080, linger0), (8082, echo), (8083, echo), (8084, echo)):
        threading.Thread(target=serve, args=(port, h), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")


@dataclass
class Lab:
    client: str
    router: str
    server: str

    def ex(self, ns: str, *argv: str, **kw) -> str:
        return sh("ip", "netns", "exec", ns, *argv, **kw)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    _require_root()
    tag = uuid.uuid4().hex[:6]
    lab = Lab(f"rwpk-c-{tag}", f"rwpk-r-{tag}", f"rwpk-s-{tag}")
    server_proc = None
    try:
        for ns in (lab.client, lab.router, lab.server):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "rwpkc0", "netns", lab.client, "type", "veth", "peer", "name", "rwpkr0",
           "netns", lab.router)
        sh("ip", "link", "add", "rwpks0", "netns", lab.server, "type", "veth", "peer", "name", "rwpkr1",
           "netns", lab.router)
        for ns, dev, addr in ((lab.client, "rwpkc0", f"{CLIENT_ADDR}/24"), (lab.router, "rwpkr0", "10.77.1.1/24"),
                              (lab.router, "rwpkr1", "10.77.2.1/24"), (lab.server, "rwpks0", f"{SERVER_ADDR}/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", lab.client, "route", "add", "default", "via", "10.77.1.1")
        sh("ip", "-n", lab.server, "route", "add", "default", "via", "10.77.2.1")
        lab.ex(lab.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The router: rejects data to 8082 with a reset; forgets idle flows to 8083 after 2 s.
        lab.ex(lab.router, "nft", "-f", "-", input=textwrap.dedent("""
            table inet rwpk_router {
              chain rwpk_fwd {
                type filter hook forward priority 0; policy accept;
                tcp dport 8082 ct state established tcp flags & psh == psh counter reject with tcp reset
                tcp dport 8083 ct state invalid counter reject with tcp reset
                tcp dport 8084 tcp flags & (syn | ack) == syn counter reject with tcp reset
              }
            }"""))
        lab.ex(lab.router, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_established=2",
               "net.netfilter.nf_conntrack_tcp_loose=0")
        server_proc = subprocess.Popen(["ip", "netns", "exec", lab.server, PY, "-c", SERVERS],
                                       stdout=subprocess.PIPE, text=True)
        assert server_proc.stdout is not None and server_proc.stdout.readline().strip() == "ready"
        lab.ex(lab.client, "ping", "-c", "1", "-W", "2", SERVER_ADDR)
        yield lab
    finally:
        if server_proc is not None:
            server_proc.kill()
            try:
                server_proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for ns in (lab.client, lab.router, lab.server):
            sh("ip", "netns", "del", ns, check=False)


RUN_CHECK = textwrap.dedent("""
    import asyncio, json, sys
    from wizard.model import Answers
    from wizard.hosts.local import NetnsHost
    from wizard.engine.runner import prepare
    import wizard.diag.packets.checks as P
    from wizard.diag.net.checks.protocol import TcpProtocolCheck
    async def main(target, server_ns, check, params, hold):
        answers = Answers(payload="GET / HTTP/1.0\\r\\nHost: lab\\r\\n\\r\\n", hold_s=hold, timeout_s=2)
        _, ctx = await prepare(target, answers, server=NetnsHost(server_ns))
        cls = {c.id: c for c in (P.PacketsCaptureCheck, P.PacketsSynprobeCheck,
                                 P.PacketsTracerouteCheck, P.PathPmtuCheck, TcpProtocolCheck)}[check]
        result = await cls().run(ctx, cls.Params.model_validate(json.loads(params)))
        print(result.model_dump_json())
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])))
""")


def run_check(lab: Lab, port: int, check: str = "packets.capture", params: dict | None = None,
              hold: float = 0.0) -> dict:
    out = subprocess.run(["ip", "netns", "exec", lab.client, PY, "-c", RUN_CHECK, f"{SERVER_ADDR}:{port}",
                          lab.server, check, json.dumps(params or {}), str(hold)],
                         capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def senders(result: dict) -> list[str]:
    return [e["data"]["sender"] for e in result["evidence"] if "sender" in e.get("data", {})]


def signals(result: dict) -> set[str]:
    return {s["id"] for s in result["signals"]}


def test_closed_port_reset_is_attributed_to_the_server_kernel(lab: Lab):
    result = run_check(lab, 8081)
    assert senders(result) == ["server-kernel"], result
    assert {"rst.from_server_kernel", "timing.reset_to_syn"} <= signals(result)


def test_linger0_reset_is_attributed_to_the_server_application(lab: Lab):
    result = run_check(lab, 8080)
    assert senders(result) == ["server-app"], result
    assert "rst.ttl_mismatch" not in signals(result)
    ladder = next(e for e in result["evidence"] if e["kind"] == "ladder")["data"]
    assert [e["label"] for e in ladder["events"]][:3] == ["SYN", "SYN-ACK", "ACK"]
    assert ladder["events"][-1]["label"].startswith("RST") and ladder["events"][-1]["src"] == "server"


def test_router_reject_is_attributed_to_the_path_not_the_server(lab: Lab):
    result = run_check(lab, 8082)
    assert senders(result) == ["path"], result
    assert {"rst.from_path", "rst.ttl_mismatch", "rst.no_timestamps", "rst.path_hop"} <= signals(result)
    ladder = next(e for e in result["evidence"] if e["kind"] == "ladder")["data"]
    assert "path" in ladder["lanes"]
    hop = next(e for e in result["evidence"] if "matches hop" in e["title"])
    assert "10.77.1.1" in hop["title"]


def test_router_that_forgot_an_idle_flow_resets_after_the_hold(lab: Lab):
    result = run_check(lab, 8083, hold=4.0)
    assert senders(result) == ["path"], result
    assert {"timing.reset_after_hold", "rst.after_hold_from_path"} <= signals(result)


def test_synprobe_and_traceroute_see_the_server_one_router_away(lab: Lab):
    syn = run_check(lab, 8082, "packets.synprobe")
    assert syn["status"] == "pass", syn
    fp = syn["evidence"][0]["data"]
    assert (fp["ttl"], fp["hops"]) == (63, 1)
    trace = run_check(lab, 8082, "packets.traceroute")
    hops = trace["evidence"][0]["data"]["hops"]
    assert [h["address"] for h in hops] == ["10.77.1.1", SERVER_ADDR]
    assert trace["status"] == "pass"
    assert "rwpk" not in lab.ex(lab.client, "nft", "list", "tables")
    assert "reset_wizard_rstguard" not in lab.ex(lab.client, "nft", "list", "tables")


GUARD_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from wizard.diag.packets.io.capture import PacketProbe
    from wizard.diag.packets.io import nftguard
    async def main(mode):
        probe = PacketProbe()
        if mode == "cancel":
            # No host answers at .99 (the router's ARP gives up after about 3 s): the probe
            # runs until it is cancelled, once its table is there (scapy loaded, SYN sent).
            task = asyncio.ensure_future(probe.syn("10.77.2.99", 8082, timeout=8))
            tables = 0
            for _ in range(200):
                tables = len(await nftguard.list_guard_tables(probe.client))
                if tables or task.done():
                    break
                await asyncio.sleep(0.05)
            print(tables, "running" if not task.done() else "ended", flush=True)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        elif mode == "raise":
            async def boom(*a, **k):
                raise RuntimeError("probe failed")
            probe._sr = boom
            try:
                await probe.syn("10.77.2.2", 8082)
            except RuntimeError:
                print("raised", flush=True)
        elif mode == "stale":
            await probe.syn("10.77.2.2", 8082)
            print("ok", flush=True)
    asyncio.run(main(sys.argv[1]))
""")


@pytest.mark.parametrize("mode", ["cancel", "raise", "stale"])
def test_rst_guard_table_never_outlives_the_probe(lab: Lab, mode: str):
    if mode == "stale":  # a table left by a run killed with SIGKILL (pid 4194303 is never alive)
        lab.ex(lab.client, "nft", "add", "table", "inet", "reset_wizard_rstguard_4194303_1")
    out = subprocess.run(["ip", "netns", "exec", lab.client, PY, "-c", GUARD_SCRIPT, mode],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    if mode == "cancel":
        assert out.stdout.split()[:2] == ["1", "running"]  # the rule existed while the probe ran
    assert "reset_wizard_rstguard" not in lab.ex(lab.client, "nft", "list", "tables")


def test_router_reset_to_every_syn_is_the_path_matched_to_hop_one(lab: Lab):
    # No connection to 8084 ever gets a SYN-ACK (the SYN probe's is reset too): the server's
    # distance comes from elsewhere in the run, and the RST is one router closer than that.
    result = run_check(lab, 8084)
    assert senders(result) == ["path"], result
    assert {"rst.from_path", "rst.ttl_mismatch", "rst.path_hop", "timing.reset_to_syn"} <= signals(result)
    att = next(e for e in result["evidence"] if "sender" in e.get("data", {}))
    assert "TTL 64 vs the server's" in att["text"] and "TTL 63" in att["text"], att["text"]
    hop = next(e for e in result["evidence"] if "matches hop" in e["title"])
    assert "hop 1: 10.77.1.1" in hop["title"]
    assert "reset_wizard_rstguard" not in lab.ex(lab.client, "nft", "list", "tables")


# -- the report of a real `reset-wizard diagnose` run --------------------------------------

WIZARD = str(Path(sys.executable).with_name("reset-wizard"))  # the venv running the tests
PAYLOAD = "GET / HTTP/1.0\\r\\nHost: lab\\r\\n\\r\\n"


def diagnose_argv(lab: Lab, port: int, report: Path) -> list[str]:
    return ["ip", "netns", "exec", lab.client, WIZARD, "diagnose", f"{SERVER_ADDR}:{port}",
            "--server", f"netns:{lab.server}", "--report", str(report), "--payload", PAYLOAD,
            "--attempts", "3", "--timeout", "2", "--no-redact"]


def handshake_section(report: str) -> str:
    start = report.index("<summary>6. ")  # the handshake step's folded evidence
    end = report.find("\n## ", start)
    return report[start:end if end > 0 else len(report)]


def mermaid_blocks(text: str) -> list[str]:
    blocks, rest = [], text
    while "```mermaid\n" in rest:
        rest = rest.split("```mermaid\n", 1)[1]
        block, rest = rest.split("\n```", 1)
        blocks.append(block)
    return blocks


def rst_arrows(diagram: str) -> list[str]:
    """The participant each RST is drawn from: 'P_server-xP_client: RST-ACK ...' -> 'server'."""
    return [line.strip().split("-x", 1)[0].removeprefix("P_") for line in diagram.splitlines()
            if "-x" in line and "RST" in line]


@pytest.mark.parametrize("port, sender, words", [
    (8081, "server", ["the server's kernel", "TcpOutRsts +"]),
    (8080, "server", ["the server's application", "TTL 63 vs the server's SYN-ACK TTL 63"]),
    (8082, "path", ["something on the path", "TTL 64 vs the server's SYN-ACK TTL 63",
                    "sent 0 routers away, the server is 1", "matches hop 1: 10.77.1.1"]),
], ids=["server-kernel", "server-application", "router"])
def test_report_tells_the_resets_sender_apart_with_a_mermaid_ladder(lab: Lab, tmp_path: Path, port: int,
                                                                    sender: str, words: list[str]):
    report_path = tmp_path / "r.md"
    out = subprocess.run(diagnose_argv(lab, port, report_path), capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode in (0, 1), out.stderr
    report = report_path.read_text()
    section = handshake_section(report)
    # The ladder drawn from the real packets, in the capture's findings (tcp.exchange draws
    # an inferred one from socket outcomes above it).
    capture = section[section.index("#### `packets.capture`"):]
    capture = capture[:capture.find("\n#### ", 1) if "\n#### " in capture[1:] else len(capture)]
    diagrams = [d for d in mermaid_blocks(capture) if d.startswith("sequenceDiagram")]
    assert diagrams, capture
    arrows = rst_arrows(diagrams[0])
    assert arrows and set(arrows) == {sender}, diagrams[0]
    if sender == "path":
        assert "participant P_path as path" in diagrams[0]
    for w in words:
        assert w in capture, f"{w!r} not in the capture's evidence:\n{capture}"
    assert "reset_wizard_rstguard" not in lab.ex(lab.client, "nft", "list", "tables")


def test_a_diagnose_run_interrupted_with_sigint_leaves_no_guard_table(lab: Lab, tmp_path: Path):
    proc = subprocess.Popen(diagnose_argv(lab, 8082, tmp_path / "r.md"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    seen = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if "reset_wizard_rstguard" in lab.ex(lab.client, "nft", "list", "tables"):
                seen = True
                proc.send_signal(signal.SIGINT)  # Ctrl-C while the guard rule is in place
                break
            time.sleep(0.02)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert seen, "the run never installed its guard table"
    assert "reset_wizard_rstguard" not in lab.ex(lab.client, "nft", "list", "tables")


INTERRUPTS = 100


def test_100_interrupts_by_sigint_sigterm_and_sighup_leave_nothing_behind(lab: Lab, tmp_path: Path):
    """SIGINT, SIGTERM and SIGHUP in turn: every run ends with exit 3 within seconds and
    leaves no guard table, no trace instance of its own and no temporary file. Half the
    signals come at a random point from the run's first Python line (start-up included);
    the other half at a random point after its first check finished, and each of those runs
    must write the session it gathered. A run stopped in start-up says so and writes nothing.
    """
    import random

    from wizard.lab.tracestate import left_behind, wizard_instances

    rnd = random.Random(15)
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    instances_before = wizard_instances()
    crash_before = set(Path(tempfile_dir()).glob("reset-wizard-crash-*"))
    problems: list[str] = []
    written = in_run = 0
    slowest = 0.0
    pids: set[int] = set()
    for k in range(INTERRUPTS):
        sig, late = sigs[k % 3], k % 2 == 1
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        argv = [*diagnose_argv(lab, 8082, run_dir / "r.md"), "--json", str(run_dir / "s.json")]
        run = _Watched(argv, run_dir)
        pids.add(run.proc.pid)
        _handlers_installed(run.proc.pid)  # the interpreter's own start-up is not the wizard's
        if late and not run.first_check.wait(60):
            problems.append(f"run {k}: no check finished within 60 s")
        time.sleep(rnd.uniform(0.0, 1.5 if late else 1.2))
        sent = time.monotonic()
        run.proc.send_signal(sig)
        err = run.finish(30)
        if err is None:
            problems.append(f"run {k} ({sig.name}) ignored the signal: {''.join(run.err)[-600:]}")
            continue
        slowest = max(slowest, time.monotonic() - sent)
        problems += _interrupt_problems(k, sig, run.proc.returncode, err, run_dir, lab)
        session = json.loads((run_dir / "s.json").read_text()) if (run_dir / "s.json").exists() else None
        if session is not None:
            written += 1
            if run.proc.returncode == 3 and session.get("interrupted") is not True:
                problems.append(f"run {k}: exit 3 but the session does not say it was interrupted")
        elif late or "during start-up" not in err:
            problems.append(f"run {k} ({sig.name}, {'after a check' if late else 'any time'}) wrote no "
                            f"session and did not stop in start-up: {err[-300:]}")
        in_run += late
    assert problems == [], "\n".join(problems)
    assert left_behind(instances_before, pids) == []
    assert set(Path(tempfile_dir()).glob("reset-wizard-crash-*")) == crash_before
    assert written >= in_run == INTERRUPTS // 2, (written, in_run)
    print(f"\n{INTERRUPTS} interrupts: nothing left behind; {written} wrote a session; "
          f"slowest exit after the signal {slowest:.2f}s")


class _Watched:
    """A diagnose run whose stderr is read as it comes, to know when its first check finished."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        import threading

        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.err: list[str] = []
        self.first_check = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            if line.startswith("== "):  # the header that comes with the first finished check
                self.first_check.set()

    def finish(self, timeout: float) -> str | None:
        """Its whole stderr once it ended, or None (it is killed) if it outlived ``timeout``."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(5)
            return None
        self._reader.join(5)
        return "".join(self.err)


def _interrupt_problems(k: int, sig: signal.Signals, code: int, err: str, run_dir: Path, lab: Lab) -> list[str]:
    problems = []
    if "still running" in err:  # the backstop ended it: say where it was stuck
        crash = err.rsplit("where it was stuck: ", 1)[-1].split(")")[0]
        stacks = Path(crash).read_text()[-3000:] if Path(crash).is_file() else ""
        problems.append(f"run {k} ({sig.name}) was stuck after the signal: {err[-300:]}\n{stacks}")
    if code not in (3, 1, 0):
        problems.append(f"run {k} ({sig.name}): exit {code}: {err[-300:]}")
    if "Traceback" in err:
        problems.append(f"run {k} ({sig.name}): a traceback: {err[-300:]}")
    if "reset_wizard_rstguard" in lab.ex(lab.client, "nft", "list", "tables"):
        problems.append(f"run {k} ({sig.name}) left its guard table")
    left = sorted(p.name for p in run_dir.iterdir() if p.name not in ("r.md", "s.json"))
    if left:
        problems.append(f"run {k} ({sig.name}) left files: {left}")
    return problems


def _handlers_installed(pid: int, timeout: float = 20.0) -> None:
    """Wait until process ``pid`` catches SIGTERM and SIGHUP (its first Python lines ran)."""
    want = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGHUP - 1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & want == want:
            return
        time.sleep(0.005)


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()
