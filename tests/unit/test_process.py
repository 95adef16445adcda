"""process.listener: /proc evidence of the listener's process (fds against the limit,
restarts) and client-side sockets. (process.settings: test_server_config.py.)"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from tests.unit.fakes import FakeHost, FakeProbes, make_ctx
from wizard.diag.process.checks.listener import ProcessListenerCheck, ProcessParams
from wizard.diag.process.io.procinfo import parse_comm, parse_limits, process_info
from wizard.hosts.local import LocalHost
from wizard.model import Answers, Status

AT = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC)
BTIME = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max processes             63455                63455                processes
"""


def stat_line(pid: int, comm: str, start_ticks: int) -> str:
    rest = " ".join(["S", "1", str(pid), str(pid), "0", "-1", "4194560"] + ["0"] * 12 + [str(start_ticks)] + ["0"] * 30)
    return f"{pid} ({comm}) {rest}\n"


def ss_line(pid: int, port: int = 8080) -> str:
    return f'LISTEN 0      511    0.0.0.0:{port} 0.0.0.0:* users:(("nginx",pid={pid},fd=6))\n'


def proc_files(pid: int, comm: str, start_ticks: int, fds: int) -> dict[str, str]:
    files = {f"/proc/{pid}/stat": stat_line(pid, comm, start_ticks),
             f"/proc/{pid}/cmdline": "nginx: master process /usr/sbin/nginx\0-g\0daemon off;\0",
             f"/proc/{pid}/limits": LIMITS, "/proc/stat": f"cpu 1 2 3\nbtime {BTIME}\n"}
    files.update({f"/proc/{pid}/fd/{i}": "" for i in range(fds)})
    return files


def test_proc_parsers_handle_odd_names_and_unlimited() -> None:
    assert parse_comm("12 (my (odd) prog) S 1 2") == "my (odd) prog"
    assert parse_limits(LIMITS) == (1024, 524288)
    assert parse_limits("Max open files unlimited unlimited files") == (None, None)


async def test_listener_near_its_fd_limit_is_signalled() -> None:
    server = FakeHost("local", commands={("ss",): ss_line(700)}, files=proc_files(700, "nginx", 1000, 1000))
    result = await ProcessListenerCheck().run(make_ctx(server=server), ProcessParams())
    sig = next(s for s in result.signals if s.id == "process.fd_near_limit")
    assert "1000 open fds of its limit 1024" in sig.fact
    assert result.status == Status.WARN
    ev = next(e for e in result.evidence if e.data.get("pid") == 700)
    assert ev.data["fd_soft"] == 1024 and ev.data["name"] == "nginx"
    assert ev.data["started"] == datetime.fromtimestamp(BTIME + 10, UTC).isoformat(timespec="seconds")
    assert "daemon off;" in ev.text


async def test_listener_with_room_left_is_ok_and_not_restarted() -> None:
    server = FakeHost("local", commands={("ss",): ss_line(700)}, files=proc_files(700, "nginx", 1000, 40))
    result = await ProcessListenerCheck().run(make_ctx(answers=Answers(at=AT), server=server), ProcessParams())
    ids = {s.id for s in result.signals}
    assert ids == {"process.fd_ok"} and result.status == Status.PASS


async def test_listener_started_after_the_reset_is_a_restart() -> None:
    ticks = int((AT.timestamp() + 60 - BTIME) * 100)
    server = FakeHost("local", commands={("ss",): ss_line(701)}, files=proc_files(701, "nginx", ticks, 10))
    result = await ProcessListenerCheck().run(make_ctx(answers=Answers(at=AT), server=server), ProcessParams())
    sig = next(s for s in result.signals if s.id == "process.restarted")
    assert "after the reset" in sig.fact


async def test_listener_pid_changing_during_the_run_is_a_restart() -> None:
    files = proc_files(700, "nginx", 1000, 10) | proc_files(900, "nginx", 5000, 10)
    server = FakeHost("local", commands={("ss",): [ss_line(700), ss_line(900)]}, files=files)
    result = await ProcessListenerCheck().run(make_ctx(server=server), ProcessParams())
    facts = [s.fact for s in result.signals if s.id == "process.restarted"]
    assert any("new listener pids [900]" in f for f in facts)


async def test_real_listener_of_this_test_is_read_from_proc(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        port = sock.getsockname()[1]
        info = await process_info(LocalHost(), os.getpid())
        assert info.fds and info.fds >= 3 and info.fd_soft and info.started
        ctx = make_ctx(f"127.0.0.1:{port}", server=LocalHost(), client=LocalHost())
        result = await ProcessListenerCheck().run(ctx, ProcessParams())
        ev = next(e for e in result.evidence if e.data.get("pid") == os.getpid())
        assert ev.data["fds"] == info.fds or abs(ev.data["fds"] - info.fds) < 5
    finally:
        sock.close()


class FakeProcessProbe:
    def __init__(self, holders: list) -> None:
        self.holders = holders

    async def connections_to(self, addresses: list[str], port: int, timeout: float = 5.0):
        from wizard.diag.process.io.processes import ProcessSockets

        return ProcessSockets(tuple(self.holders), states={"ESTABLISHED": len(self.holders)})


async def test_client_side_socket_owner_fds_are_read_in_the_client_context() -> None:
    from wizard.diag.process.io.processes import SocketHolder

    holder = SocketHolder(4242, "python3", "python3 app.py", "app", None, "ESTABLISHED",
                          "127.0.0.1:50000", "127.0.0.1:8080")
    client = FakeHost("local", files=proc_files(4242, "python3", 100, 1020))
    server = FakeHost("local", commands={("ss",): ""}, files={})
    ctx = make_ctx(server=server, client=client, probes=FakeProbes(processes=FakeProcessProbe([holder])))
    result = await ProcessListenerCheck().run(ctx, ProcessParams())
    sig = next(s for s in result.signals if s.id == "process.fd_near_limit")
    assert sig.fact.startswith("client pid 4242")
