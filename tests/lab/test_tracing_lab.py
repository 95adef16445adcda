"""The kernel's own account in real namespaces: each server-side cause is seen in the server
namespace's kernel with its reason, tied to the probe's flow; no tracefs instance outlives a
run, even one that was SIGKILLed or cancelled; tracefs is left mounted or not as it was found."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.lab.netns import LabNet

ROOT = str(Path(__file__).resolve().parents[2])
PY = sys.executable
TRACEFS = "/sys/kernel/tracing"
PORT = 8080

RUN_CHECK = textwrap.dedent("""
    import asyncio, sys
    from wizard.model import Answers
    from wizard.probes.hosts import NetnsHost
    from wizard.runner import prepare
    from wizard.checks.kernel_trace import KernelResetsCheck, KernelTraceParams
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
    l = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port)); l.listen(0 if mode == "backlog" else 16)
    print("ready", flush=True)
    while True:
        if mode == "backlog":
            time.sleep(1); continue      # never accepts: the queue fills
        c, _ = l.accept()
        time.sleep(0.3)                  # the request has arrived, unread
        c.close()                        # close with unread data: RST
""")

# A connection whose handshake the server cannot finish while the queue is full: its ACKs are
# held back by an nft rule in the client namespace until the probe has filled the queue.
LATE_ACK = textwrap.dedent("""
    import socket, subprocess, sys, time
    addr, port, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    c = socket.socket(); c.bind(("0.0.0.0", 40001)); c.setblocking(False)
    try: c.connect((addr, port))
    except BlockingIOError: pass
    print("ready", flush=True)
    time.sleep(1.2)                      # the probe connects meanwhile and fills the queue
    subprocess.run(["nft", "delete", "table", "inet", "rwtr_ack"], check=True)
    c.send(b"x")                         # the delayed ACK: the server cannot take the child
    time.sleep(1.5)
""")


@pytest.fixture
def tracefs_as_found() -> Iterator[None]:
    was = os.path.exists(f"{TRACEFS}/instances")
    try:
        yield
    finally:
        now = os.path.exists(f"{TRACEFS}/instances")
        if now and not was:
            subprocess.run(["umount", TRACEFS], capture_output=True, timeout=10)
        assert not [n for n in _instances() if n.startswith(f"rw-{os.getpid()}-")]


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


def _instances() -> list[str]:
    try:
        return os.listdir(f"{TRACEFS}/instances")
    except OSError:
        return []


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
    net.nft(net.client, f"table inet rwtr_ack {{\n chain output {{\n type filter hook output priority 0;\n"
                        " tcp sport 40001 tcp flags & (syn | ack) == ack drop\n }\n}\n")
    helper = subprocess.Popen(["ip", "netns", "exec", net.client, PY, "-c", LATE_ACK, net.server_v4, str(PORT),
                               net.client], stdout=subprocess.PIPE, text=True)
    net.processes.append(helper)
    assert helper.stdout is not None and helper.stdout.readline().startswith("ready")
    result = run_check(net)
    assert "ktrace.drop_listen_overflow" in signals(result), result
    drops = [e["data"]["drops"] for e in result["evidence"] if "drops" in e.get("data", {})]
    assert drops and drops[0].get("TCP_LISTEN_OVERFLOW", 0) >= 1


HOLD = textwrap.dedent("""
    import asyncio, sys
    from wizard.probes.hosts import LocalHost
    from wizard.probes.tracing import KernelTrace
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

        from wizard.probes.hosts import LocalHost
        from wizard.probes.tracing import KernelTrace

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

    from wizard.probes.hosts import LocalHost
    from wizard.probes.tracing import KernelTrace

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
