"""The tracefs parser on real trace lines and format files, and the kernel.resets verdicts.

The lines below were recorded on the development machine (Debian 12, kernel 6.18) by
enabling tcp/tcp_send_reset, tcp/tcp_receive_reset and skb/kfree_skb (filtered to reasons)
in a private tracefs instance and then: connecting to a closed port on 127.0.0.1 and ::1,
closing a socket with 5 unread bytes, closing with SO_LINGER 0, closing a listener with a
connection still queued (all on loopback), and sending a SYN into an nft `tcp dport drop`
rule inside a network namespace. Pointers are the kernel's hashed values.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.unit.fakes import FakeHost, make_ctx
from wizard.diag.kernel.checks.resets import KernelResetsCheck, KernelTraceParams, judge
from wizard.diag.kernel.io.tracing import TraceCapture
from wizard.diag.kernel.parse.tracelines import (
    Endpoint,
    drop_filter,
    format_fields,
    format_symbols,
    parse_line,
    parse_trace,
)
from wizard.engine.probes import ExchangeOutcome
from wizard.model import Status

RECORDED = """\
# tracer: nop
#
# entries-in-buffer/entries-written: 10/10   #P:2
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
          python-30081   [000] ..s1.  1376.766700: tcp_send_reset: skbaddr=000000004205ebae skaddr=0000000000000000 src=127.0.0.1:47001 dest=127.0.0.1:38638 state=UNKNOWN reason=NO_SOCKET
          python-30081   [000] .....  1376.766747: tcp_receive_reset: family=AF_INET sport=38638 dport=47001 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=100f
          python-30081   [000] ..s1.  1376.766893: tcp_send_reset: skbaddr=000000004205ebae skaddr=0000000000000000 src=[::1]:47001 dest=[::1]:41064 state=UNKNOWN reason=NO_SOCKET
          python-30081   [000] .....  1376.766899: tcp_receive_reset: family=AF_INET6 sport=41064 dport=47001 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 sock_cookie=1010
          python-30081   [000] ..s2.  1376.821117: tcp_receive_reset: family=AF_INET sport=54030 dport=47002 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=1011
          python-30081   [000] .....  1376.821128: tcp_send_reset: skbaddr=0000000000000000 skaddr=000000002e5e052d src=127.0.0.1:47002 dest=127.0.0.1:54030 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE
          python-30081   [000] ..s2.  1376.871598: tcp_receive_reset: family=AF_INET sport=54032 dport=47002 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=1012
          python-30081   [000] .....  1376.871603: tcp_send_reset: skbaddr=0000000000000000 skaddr=000000002e5e052d src=127.0.0.1:47002 dest=127.0.0.1:54032 state=TCP_CLOSE reason=TCP_STATE
          python-30081   [000] b..1.  1378.422348: tcp_send_reset: skbaddr=0000000000000000 skaddr=000000004d63bac4 src=127.0.0.1:47003 dest=127.0.0.1:40602 state=TCP_CLOSE reason=TCP_STATE
          python-13534   [001] ..s1.  1557.482442: kfree_skb: skbaddr=000000000fde88ba rx_sk=0000000000000000 protocol=2048 location=nft_do_chain+0x3e8/0x610 reason: NETFILTER_DROP
          pytest-29554   [001] ..s..  1558.484095: kfree_skb: skbaddr=000000000fde88ba rx_sk=0000000000000000 protocol=2048 location=nft_do_chain+0x3e8/0x610 reason: NETFILTER_DROP
"""

# events/tcp/tcp_send_reset/format and (shortened) events/skb/kfree_skb/format of kernel 6.18
SEND_RESET_FORMAT = """\
name: tcp_send_reset
ID: 2280
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;
\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;
\tfield:__u8 daddr[28];\toffset:60;\tsize:28;\tsigned:0;

print fmt: "skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s", REC->skbaddr, REC->skaddr, REC->saddr, REC->daddr, REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, "TCP_ESTABLISHED" }, { TCP_CLOSE, "TCP_CLOSE" }) : "UNKNOWN", __print_symbolic(REC->reason, { 0, "NOT_SPECIFIED" }, { 1, "NO_SOCKET" }, { 2, "TCP_INVALID_ACK_SEQUENCE" }, { 8, "TCP_ABORT_ON_DATA" }, { 11, "TCP_ABORT_ON_CLOSE" }, { 12, "TCP_ABORT_ON_LINGER" }, { 13, "TCP_ABORT_ON_MEMORY" }, { 14, "TCP_STATE" }, { 15, "TCP_KEEPALIVE_TIMEOUT" }, { 25, "MAX" })
"""
KFREE_FORMAT = """\
name: kfree_skb
format:
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:void * rx_sk;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;

print fmt: "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s", REC->skbaddr, REC->rx_sk, REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { 12, "NETFILTER_DROP" }, { 29, "SOCKET_BACKLOG" }, { 40, "TCP_LISTEN_OVERFLOW" }, { 128, "MAX" })
"""
# kfree_skb of a 5.15 kernel: reason exists, with a different numbering
KFREE_OLD_FORMAT = """\
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:28;\tsize:4;\tsigned:0;
print fmt: "skbaddr=%p protocol=%u location=%p reason: %s", REC->skbaddr, REC->protocol, REC->location, __print_symbolic(REC->reason, { 1, "NOT_SPECIFIED" }, { 2, "NO_SOCKET" }, { 3, "PKT_TOO_SMALL" }, { 4, "TCP_CSUM" }, { 5, "SOCKET_FILTER" }, { 6, "UDP_CSUM" }, { 7, "NETFILTER_DROP" }, { 8, "MAX" })
"""


def test_send_reset_line_gives_reason_state_and_both_endpoints() -> None:
    events = parse_trace(RECORDED)
    first = events[0]
    assert (first.event, first.reason, first.state) == ("tcp_send_reset", "NO_SOCKET", "UNKNOWN")
    assert first.local == Endpoint("127.0.0.1", 47001) and first.remote == Endpoint("127.0.0.1", 38638)
    assert first.ts == 1376.7667 and first.comm == "python" and first.pid == 30081 and first.cpu == 0


def test_ipv6_endpoints_are_parsed_from_brackets_and_v6_fields() -> None:
    events = parse_trace(RECORDED)
    assert events[2].local == Endpoint("::1", 47001)
    received = events[3]
    assert received.event == "tcp_receive_reset"
    assert received.local == Endpoint("::1", 41064) and received.remote == Endpoint("::1", 47001)


def test_receive_reset_on_ipv4_uses_the_v4_fields_not_the_mapped_ones() -> None:
    received = parse_trace(RECORDED)[1]
    assert received.local == Endpoint("127.0.0.1", 38638)
    assert received.local.same("::ffff:127.0.0.1", 38638)


def test_softirq_events_do_not_name_a_process_but_syscall_ones_do() -> None:
    events = parse_trace(RECORDED)
    assert not events[0].in_process_context  # NO_SOCKET is sent from softirq
    abort = events[5]
    assert abort.reason == "TCP_ABORT_ON_CLOSE" and abort.in_process_context


def test_kfree_skb_lines_give_the_drop_reason_and_location() -> None:
    drops = [e for e in parse_trace(RECORDED) if e.event == "kfree_skb"]
    assert [d.reason for d in drops] == ["NETFILTER_DROP", "NETFILTER_DROP"]
    assert drops[0].fields["location"].startswith("nft_do_chain") and drops[0].local is None


def test_headers_and_garbage_are_not_events() -> None:
    assert parse_line("# tracer: nop") is None
    assert parse_line("no trace line here") is None
    assert len(parse_trace(RECORDED)) == 11


def test_format_file_gives_fields_and_the_reason_table() -> None:
    fields = format_fields(SEND_RESET_FORMAT)
    assert set(fields) == {"skbaddr", "skaddr", "state", "reason", "saddr", "daddr"}
    table = format_symbols(SEND_RESET_FORMAT, "reason")
    assert table[11] == "TCP_ABORT_ON_CLOSE" and table[1] == "NO_SOCKET"
    # the state table uses C names, whose values are not in the file
    assert format_symbols(SEND_RESET_FORMAT, "state") == {}


def test_drop_filter_uses_this_kernels_numbers() -> None:
    new = drop_filter(format_symbols(KFREE_FORMAT, "reason"))
    assert "reason == 12" in new and "reason == 40" in new and "reason == 29" in new
    assert "protocol == 2048" in new
    old = drop_filter(format_symbols(KFREE_OLD_FORMAT, "reason"))
    assert old.startswith("(reason == 7)")  # NETFILTER_DROP is 7 there; no overflow reason
    assert drop_filter({1: "NOT_SPECIFIED"}) == ""


def _probe(kind: str, local: str, port: int = 47002, stage: str = "response") -> ExchangeOutcome:
    return ExchangeOutcome(address="127.0.0.1", port=port, kind=kind, stage=stage,  # type: ignore[arg-type]
                           local=local)


def _cap(text: str = RECORDED, **kw: Any) -> TraceCapture:
    return TraceCapture("rw-1-ab", parse_trace(text), {"tcp/tcp_send_reset": "", "skb/kfree_skb": "x"},
                        kw.pop("missing", {}), text, 1376.0, **kw)


def _ids(result: Any) -> set[str]:
    return {s.id for s in result.signals}


def test_reset_of_the_probe_flow_quotes_the_reason_and_the_process() -> None:
    ctx = make_ctx("127.0.0.1:47002")
    result = judge(ctx, _probe("reset", "127.0.0.1:54030"), _cap())
    assert {"ktrace.rst_sent", "ktrace.rst_abort_on_close"} <= _ids(result)
    assert "ktrace.rst_disconnect" not in _ids(result)  # the other flow's TCP_STATE reset
    assert "TCP_ABORT_ON_CLOSE" in result.summary and "python[30081]" in result.summary
    notes = [e.data["rst_reasons"] for e in result.evidence if "rst_reasons" in e.data]
    assert notes == [[{"flow": "127.0.0.1:47002->127.0.0.1:54030", "ms": 821.1, "reason": "TCP_ABORT_ON_CLOSE",
                       "state": "TCP_CLOSE", "comm": "python", "pid": 30081}]]


def test_zero_linger_close_is_an_abortive_disconnect() -> None:
    result = judge(make_ctx("127.0.0.1:47002"), _probe("reset", "127.0.0.1:54032"), _cap())
    assert "ktrace.rst_disconnect" in _ids(result) and "ktrace.rst_abort_on_close" not in _ids(result)


def test_refused_probe_with_no_socket_reset_points_at_the_closed_port() -> None:
    result = judge(make_ctx("127.0.0.1:47001"), _probe("refused", "127.0.0.1:38638", 47001, "connect"), _cap())
    assert "ktrace.rst_no_socket" in _ids(result) and "ktrace.no_server_rst" not in _ids(result)


def test_reset_the_server_did_not_send_is_decisive_for_the_path() -> None:
    result = judge(make_ctx("127.0.0.1:47009"), _probe("reset", "127.0.0.1:50000", 47009), _cap(RECORDED[:400]))
    assert _ids(result) == {"ktrace.no_server_rst"}


def test_refused_probe_with_netfilter_drops_and_no_kernel_reset_is_a_reject_rule() -> None:
    result = judge(make_ctx("127.0.0.1:47009"), _probe("refused", "127.0.0.1:50000", 47009, "connect"), _cap())
    assert "ktrace.netfilter_reject" in _ids(result) and "ktrace.no_server_rst" not in _ids(result)


def test_drops_do_not_explain_a_probe_that_succeeded() -> None:
    result = judge(make_ctx("127.0.0.1:47009"), _probe("ok", "127.0.0.1:50000", 47009), _cap())
    assert _ids(result) == set()
    timed_out = judge(make_ctx("127.0.0.1:47009"), _probe("timeout", "127.0.0.1:50000", 47009, "connect"), _cap())
    assert "ktrace.drop_netfilter" in _ids(timed_out)


def test_an_overflowed_buffer_is_never_read_as_no_reset_sent() -> None:
    result = judge(make_ctx("127.0.0.1:47009"), _probe("reset", "127.0.0.1:50000", 47009),
                   _cap(RECORDED[:400], lost=True))
    assert "ktrace.no_server_rst" not in _ids(result)
    assert any("overflowed" in e.title for e in result.evidence)


class _NoTracefs(FakeHost):
    async def stat(self, path: str):  # type: ignore[override]
        from wizard.hosts.base import HostError

        raise HostError(f"cannot read {path}: No such file or directory")


def test_missing_tracefs_is_a_skip_with_the_mount_command_when_mounting_is_not_allowed() -> None:
    ctx = make_ctx("127.0.0.1:47002", server=_NoTracefs("local"))
    result = asyncio.run(KernelResetsCheck().run(ctx, KernelTraceParams()))
    assert result.status == Status.SKIP
    assert "tracefs is not mounted" in result.summary or "tracefs is not mounted" in str(result.model_dump())
    assert "mount -t tracefs" in str(result.model_dump())


async def _trace_over_ssh(uid: int, sudo_ok: bool) -> tuple[Any, Any]:
    from tests.unit.test_ssh_unit import ScriptedSsh
    from wizard.diag.kernel.io.tracing import KernelTrace

    host = ScriptedSsh(uid=uid, sudo_ok=sudo_ok)  # every command "succeeds", format files say little
    trace = KernelTrace(host, ports=(47002,))
    await trace.start()
    capture = await trace.stop()
    return host, capture


def _by_program(host: Any, *programs: str) -> list[tuple[tuple[str, ...], bool]]:
    return [(argv, sudo) for argv, sudo in host.sent if argv[0] in programs]


async def test_ordinary_ssh_login_creates_writes_and_removes_the_instance_through_sudo() -> None:
    host, capture = await _trace_over_ssh(uid=1000, sudo_ok=True)
    root_work = _by_program(host, "test", "find", "mkdir", "tee", "rmdir")
    assert {argv[0] for argv, _ in root_work} == {"test", "find", "mkdir", "tee", "rmdir"}
    assert all(sudo for _, sudo in root_work), root_work
    enable = f"/sys/kernel/tracing/instances/{capture.instance}/events/tcp/tcp_send_reset/enable"
    assert host.stdin[("tee", "--", enable)] == b"1"
    # The instance is removed last, after tracing was switched off.
    assert root_work[-1][0][0] == "rmdir"


async def test_root_ssh_login_does_the_same_without_sudo() -> None:
    host, capture = await _trace_over_ssh(uid=0, sudo_ok=True)
    root_work = _by_program(host, "test", "find", "mkdir", "tee", "rmdir")
    assert root_work and not any(sudo for _, sudo in root_work)
    assert all(argv[0] != "sudo" for argv, _ in host.sent)
    assert "tcp/tcp_send_reset" in capture.enabled


def test_drop_facts_read_as_sentences_with_the_reason_and_the_probe_outcome() -> None:
    timed_out = judge(make_ctx("127.0.0.1:47009"), _probe("timeout", "127.0.0.1:50000", 47009, "connect"), _cap())
    (fact,) = [s.fact for s in timed_out.signals if s.id == "ktrace.drop_netfilter"]
    assert re.fullmatch(r"the server's kernel dropped \d+ packets? because NETFILTER_DROP while the probe "
                        r"timed out", fact), fact
    assert "NETFILTER_DROP ×" in timed_out.summary
    refused = judge(make_ctx("127.0.0.1:47009"), _probe("refused", "127.0.0.1:50000", 47009, "connect"), _cap())
    (fact,) = [s.fact for s in refused.signals if s.id == "ktrace.netfilter_reject"]
    assert fact.startswith("netfilter reset 127.0.0.1:50000 -> 127.0.0.1:47009, the server's kernel sent none")


def test_a_timed_out_handshake_without_an_overflow_drop_says_why_none_was_traced() -> None:
    result = judge(make_ctx("127.0.0.1:47009"), _probe("timeout", "127.0.0.1:50000", 47009, "connect"),
                   _cap(RECORDED[:400]))
    assert any(e.title.startswith("no TCP_LISTEN_OVERFLOW drop traced") for e in result.evidence)
    answered = judge(make_ctx("127.0.0.1:47009"), _probe("reset", "127.0.0.1:50000", 47009), _cap(RECORDED[:400]))
    assert not any("TCP_LISTEN_OVERFLOW" in e.title for e in answered.evidence)


# Recorded (kernel 6.18, loopback in a namespace): a process that accepted a connection and
# then died by SIGSEGV with 12 request bytes unread, and one that close()d it while running.
DIED = """\
          python-29154   [000] .....  2744.672133: sched_process_exit: comm=python pid=29154 prio=120 group_dead=true
          python-29154   [000] ..s2.  2744.672845: tcp_receive_reset: family=AF_INET sport=46638 dport=47123 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=96
          python-29154   [000] .....  2744.672854: tcp_send_reset: skbaddr=0000000000000000 skaddr=0000000097bdf997 src=127.0.0.1:47123 dest=127.0.0.1:46638 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE
"""
CLOSED = """\
          python-29250   [001] ..s2.  2745.867222: tcp_receive_reset: family=AF_INET sport=46652 dport=47123 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=107c
          python-29250   [001] .....  2745.867234: tcp_send_reset: skbaddr=0000000000000000 skaddr=00000000e13abf85 src=127.0.0.1:47123 dest=127.0.0.1:46652 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE
"""


def test_a_reset_sent_by_a_process_already_exiting_is_its_death_not_its_close() -> None:
    died = judge(make_ctx("127.0.0.1:47123"), _probe("reset", "127.0.0.1:46638", 47123), _cap(DIED))
    assert {"ktrace.rst_abort_on_close", "ktrace.rst_sender_exited"} <= _ids(died)
    (fact,) = [s.fact for s in died.signals if s.id == "ktrace.rst_sender_exited"]
    assert "python[29154] was exiting" in fact and "0.7 ms before the reset" in fact
    closed = judge(make_ctx("127.0.0.1:47123"), _probe("reset", "127.0.0.1:46652", 47123), _cap(CLOSED))
    assert "ktrace.rst_abort_on_close" in _ids(closed) and "ktrace.rst_sender_exited" not in _ids(closed)


def test_a_process_that_closes_and_then_exits_closed_it_itself() -> None:
    # A forking server's child: close() sends the reset, the exit comes after it.
    later = CLOSED + ("          python-29250   [001] .....  2745.901000: sched_process_exit: comm=python "
                      "pid=29250 prio=120 group_dead=true\n")
    result = judge(make_ctx("127.0.0.1:47123"), _probe("reset", "127.0.0.1:46652", 47123), _cap(later))
    assert "ktrace.rst_sender_exited" not in _ids(result)
    # Another task's exit before the reset says nothing about the sender.
    other = DIED.replace("python-29154   [000] .....  2744.672133: sched_process_exit: comm=python pid=29154",
                         "python-29999   [000] .....  2744.672133: sched_process_exit: comm=python pid=29999")
    assert "ktrace.rst_sender_exited" not in _ids(
        judge(make_ctx("127.0.0.1:47123"), _probe("reset", "127.0.0.1:46638", 47123), _cap(other)))


@pytest.mark.parametrize("spec, root, mount", [
    ("local", True, "mount -t tracefs nodev /sys/kernel/tracing"),
    ("local", False, "sudo mount -t tracefs nodev /sys/kernel/tracing"),
    # tracefs is the machine's: no `ip netns exec` (its mount would vanish with the command)
    ("netns:lab", True, "mount -t tracefs nodev /sys/kernel/tracing"),
    ("ssh:ops@web1:2222", True, "ssh -p 2222 ops@web1 'sudo mount -t tracefs nodev /sys/kernel/tracing'"),
])
def test_the_mount_fix_is_the_command_for_the_context_the_run_reads(spec: str, root: bool, mount: str) -> None:
    from wizard.diag.kernel.io.tracing import KernelTrace, TraceUnavailable

    with pytest.raises(TraceUnavailable) as raised:
        asyncio.run(KernelTrace(_NoTracefs(spec, privileged=root), ports=(47002,)).start())
    assert raised.value.fix == f"{mount} (or let the wizard mount it: --allow-tracefs-mount)"
    assert ("ssh " in raised.value.fix) == spec.startswith("ssh:")  # no ssh, no sudo -n for a local run
