"""The kernel's own account in real namespaces: each server-side cause is seen in the server
namespace's kernel with its reason, tied to the probe's flow; no tracefs instance outlives a
run, even one that was SIGKILLed or cancelled; tracefs is left mounted or not as it was found."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.lab.netns import LabNet
from wizard.lab.tracestate import left_behind, tracefs_mounted, wizard_instances

ROOT = str(Path(__file__).resolve().parents[2])
PY = sys.executable
TRACEFS = "/sys/kernel/tracing"
PORT = 8080

RUN_CHECK = textwrap.dedent("""
    import asyncio, sys
    from wizard.model import Answers
    from wizard.hosts.local import NetnsHost
    from wizard.engine.runner import prepare
    from wizard.diag.kernel.checks.resets import KernelResetsCheck, KernelTraceParams
    async def main(target, server_ns):
        answers = Answers(payload="GET / HTTP/1.0\\r\\nHost: lab\\r\\n\\r\\n", timeout_s=2)
        _, ctx = await prepare(target, answers, server=NetnsHost(server_ns))
        result = await KernelResetsCheck().run(ctx, KernelTraceParams(allow_mount=True))
        print(result.model_dump_json())
    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")

SERVER = textwrap.dedent("""
    import socket, sys, time
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    BACKLOG = 2
    l = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port)); l.listen(BACKLOG if mode == "backlog" else 16)
    print("ready", flush=True)
    while True:
        if mode == "backlog":
            time.sleep(1); continue      # never accepts: the queue fills
        c, _ = l.accept()
        time.sleep(0.3)                  # the request has arrived, unread
        c.close()                        # close with unread data: RST
""")

BACKLOG = 2  # the backlog server's: its accept queue holds BACKLOG + 1 connections

# The late connection: its SYN reaches the server while the accept queue has room (a request
# sock waits in the SYN queue), its ACK is held back by the nft table rwtr_ack in the client
# namespace; then BACKLOG + 1 fillers complete their handshakes and fill the accept queue. On
# "release" (sent by the test once the trace is on) the table goes and the late socket sends
# ACK-bearing segments: the server cannot create the child, kfree_skb says TCP_LISTEN_OVERFLOW.
LATE_ACK = textwrap.dedent("""
    import select, socket, subprocess, sys, time
    addr, port, fill = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    late = socket.socket(); late.bind(("0.0.0.0", 40001)); late.setblocking(False)
    late.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try: late.connect((addr, port))
    except BlockingIOError: pass
    assert select.select([], [late], [], 5)[1], "no SYN-ACK for the late connection"
    assert late.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    fillers = [socket.create_connection((addr, port), timeout=5) for _ in range(fill)]
    print("full", flush=True)
    sys.stdin.readline()
    subprocess.run(["nft", "delete", "table", "inet", "rwtr_ack"], check=True, timeout=10)
    for i in range(10):                  # bounded: ~1 s of ACKs the full queue refuses
        late.send(b"x")
        if i == 0: print("sent", flush=True)
        time.sleep(0.1)
    sys.stdin.readline()                 # hold the sockets until the test is done
""")

# The check as RUN_CHECK runs it, but its probe waits (trace on) until the test says "go".
RUN_GATED = RUN_CHECK.replace(
    "    result = await",
    "    probe = ctx.probes.tcp.exchange\n"
    "    async def gated(*a, **k):\n"
    "        print('tracing', flush=True)\n"
    "        await asyncio.to_thread(sys.stdin.readline)\n"
    "        return await probe(*a, **k)\n"
    "    ctx.probes.tcp.exchange = gated\n"
    "    result = await", 1)
assert RUN_GATED != RUN_CHECK


def read_until(proc: subprocess.Popen, want: str, timeout: float = 20) -> None:
    """Read ``proc``'s stdout up to a line starting with ``want`` (bounded wait)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(want):
            return
    raise AssertionError(f"no {want!r} from {proc.args[-4:]} within {timeout} s")


def say(proc: subprocess.Popen, line: str = "go") -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def accept_queue(net: LabNet, port: int = PORT) -> int:
    out = subprocess.run(["ip", "netns", "exec", net.server, "ss", "-Htln", f"sport = :{port}"],
                         capture_output=True, text=True, timeout=10).stdout.split()
    return int(out[1]) if len(out) > 1 else -1


@pytest.fixture
def tracefs_as_found() -> Iterator[None]:
    """No ``rw-*`` instance outlives the test (listed even where tracefs is not mounted here),
    and tracefs is left mounted or not as it was found."""
    was = tracefs_mounted()
    before = wizard_instances()
    try:
        yield
    finally:
        if tracefs_mounted() and not was:
            subprocess.run(["umount", TRACEFS], capture_output=True, timeout=10)
        assert tracefs_mounted() == was
        assert left_behind(before) == []


@pytest.fixture
def net(tracefs_as_found: None, request: pytest.FixtureRequest) -> Iterator[LabNet]:
    from tests.lab.conftest import _require_lab

    _require_lab()
    lab = LabNet(request.node.name.removeprefix("test_").replace("_", "")[:10], tag="rwtr")
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def start_server(net: LabNet, mode: str, port: int = PORT) -> None:
    proc = subprocess.Popen(["ip", "netns", "exec", net.server, PY, "-c", SERVER, mode, "0.0.0.0", str(port)],
                            stdout=subprocess.PIPE, text=True)
    net.processes.append(proc)  # stopped by net.down()
    assert proc.stdout is not None and proc.stdout.readline().startswith("ready")


def run_check(net: LabNet, address: str | None = None, port: int = PORT) -> dict:
    target = f"{address or net.server_v4}:{port}"
    if ":" in (address or ""):
        target = f"[{address}]:{port}"
    out = subprocess.run(["ip", "netns", "exec", net.client, PY, "-c", RUN_CHECK, target, net.server],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def signals(result: dict) -> set[str]:
    return {s["id"] for s in result["signals"]}


def reasons(result: dict) -> list[dict]:
    return [r for e in result["evidence"] for r in e.get("data", {}).get("rst_reasons", [])]


def test_closed_port_reset_is_no_socket_for_the_probe_flow(net: LabNet) -> None:
    result = run_check(net)
    assert "ktrace.rst_no_socket" in signals(result), result
    (r,) = reasons(result)
    assert r["reason"] == "NO_SOCKET" and r["flow"].startswith(f"{net.server_v4}:{PORT}->{net.client_v4}:")


def test_closed_port_over_ipv6_is_tied_to_the_v6_flow(net: LabNet) -> None:
    result = run_check(net, net.server_v6)
    (r,) = reasons(result)
    assert r["reason"] == "NO_SOCKET" and r["flow"].startswith(f"[{net.server_v6}]:{PORT}->[{net.client_v6}]:")


def test_close_with_unread_data_is_abort_on_close_in_the_server_process(net: LabNet) -> None:
    start_server(net, "unread")
    result = run_check(net)
    assert "ktrace.rst_abort_on_close" in signals(result), result
    (r,) = reasons(result)
    assert r["reason"] == "TCP_ABORT_ON_CLOSE" and r["comm"].startswith("python") and r["pid"] > 0
    assert "TCP_ABORT_ON_CLOSE" in result["summary"]


def test_zero_linger_close_is_an_abortive_disconnect(net: LabNet) -> None:
    net.serve("linger0", "0.0.0.0", PORT)
    result = run_check(net)
    assert "ktrace.rst_disconnect" in signals(result), result
    assert [r["reason"] for r in reasons(result)] == ["TCP_STATE"]
    assert "ktrace.no_server_rst" not in signals(result)


def test_netfilter_drop_is_named_and_a_reject_is_not_the_servers_tcp_reset(net: LabNet) -> None:
    start_server(net, "unread")
    net.nft(net.server, f"table inet rwtr_f {{\n chain input {{\n type filter hook input priority 0;\n"
                        f" tcp dport {PORT} drop\n tcp dport {PORT + 1} reject with tcp reset\n }}\n}}\n")
    dropped = run_check(net)
    assert "ktrace.drop_netfilter" in signals(dropped), dropped
    assert reasons(dropped) == []
    rejected = run_check(net, port=PORT + 1)
    assert "ktrace.netfilter_reject" in signals(rejected), rejected
    assert "ktrace.rst_sent" not in signals(rejected)


def test_full_accept_queue_drop_is_listen_overflow(net: LabNet) -> None:
    start_server(net, "backlog")
    net.nft(net.client, "table inet rwtr_ack {\n chain output {\n type filter hook output priority 0;\n"
                        " tcp sport 40001 tcp flags & (syn | ack) == ack drop\n }\n}\n")
    helper = subprocess.Popen(["ip", "netns", "exec", net.client, PY, "-c", LATE_ACK, net.server_v4, str(PORT),
                               str(BACKLOG + 1)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    net.processes.append(helper)
    read_until(helper, "full")
    assert accept_queue(net) == BACKLOG + 1  # full: the late ACK cannot become a connection
    check = subprocess.Popen(["ip", "netns", "exec", net.client, PY, "-c", RUN_GATED, f"{net.server_v4}:{PORT}",
                              net.server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    net.processes.append(check)
    read_until(check, "tracing", timeout=60)
    say(helper, "release")
    read_until(helper, "sent")
    say(check)
    out, _ = check.communicate(timeout=60)
    assert check.returncode == 0
    result = json.loads(out.strip().splitlines()[-1])
    # The probe's own SYN meets the full queue too: consumed without a drop reason, a timeout.
    (probe,) = [e["data"] for e in result["evidence"] if "stage" in e.get("data", {})]
    assert (probe["kind"], probe["stage"]) == ("timeout", "connect")
    (drops,) = [e["data"]["drops"] for e in result["evidence"] if "drops" in e.get("data", {})]
    assert drops["TCP_LISTEN_OVERFLOW"] >= 1, drops
    (sig,) = [s for s in result["signals"] if s["id"] == "ktrace.drop_listen_overflow"]
    n = drops['TCP_LISTEN_OVERFLOW']
    assert f"{n} packet{'s' if n != 1 else ''} because TCP_LISTEN_OVERFLOW" in sig["fact"]
    assert "kfree_skb:" in next(e["text"] for e in result["evidence"] if "drops" in e.get("data", {}))


HOLD = textwrap.dedent("""
    import asyncio, sys
    from wizard.hosts.local import LocalHost
    from wizard.diag.kernel.io.tracing import KernelTrace
    async def main():
        t = KernelTrace(LocalHost(), ports=(9,), allow_mount=True)
        await t.start()
        print(t.path, flush=True)
        try:
            await asyncio.sleep(60)
        finally:
            await t.close()
    asyncio.run(main())
""")


def test_an_instance_left_by_a_killed_run_is_removed_by_the_next(tracefs_as_found: None) -> None:
    from tests.lab.conftest import _require_lab

    _require_lab()
    proc = subprocess.Popen([PY, "-c", HOLD], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path and os.path.isdir(path)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert os.path.isdir(path)  # SIGKILL leaves it: nothing ran
        import asyncio

        from wizard.diag.kernel.io.tracing import KernelTrace
        from wizard.hosts.local import LocalHost

        async def again() -> tuple[str, ...]:
            t = KernelTrace(LocalHost(), ports=(9,), allow_mount=True)
            await t.start()
            return (await t.stop()).removed_stale

        removed = asyncio.run(again())
        assert path.rsplit("/", 1)[-1] in removed
        assert not os.path.exists(path)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_cancelled_run_removes_its_own_instance(tracefs_as_found: None) -> None:
    from tests.lab.conftest import _require_lab

    _require_lab()
    import asyncio

    from wizard.diag.kernel.io.tracing import KernelTrace
    from wizard.hosts.local import LocalHost

    seen: list[str] = []

    async def run() -> None:
        t = KernelTrace(LocalHost(), ports=(9,), allow_mount=True)
        await t.start()
        seen.append(t.path)
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.shield(t.close())

    async def main() -> None:
        task = asyncio.create_task(run())
        while not seen:
            await asyncio.sleep(0.05)
        assert os.path.isdir(seen[0])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen and not os.path.exists(seen[0])
    time.sleep(0)
