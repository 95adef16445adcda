"""listen.sockets and kernel.counters: real ss and /proc samples through the fakes, and real
loopback servers (a full accept queue; an abortive close with SO_LINGER 0) on LocalHost."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from datetime import UTC, datetime

from tests.unit.fakes import FakeHost, FakeProbes, FakeTcp, make_ctx, output
from wizard.diag.kernel.checks.counters import KernelCountersCheck, ListenSocketsCheck
from wizard.diag.kernel.io.counters import parse_ss_listeners, parse_start_ticks
from wizard.diag.kernel.parse.counters import parse_proc_counters
from wizard.diag.net.io.tcp import TcpProbe
from wizard.engine.contract import CheckParams
from wizard.hosts.local import LocalHost
from wizard.model import Answers, Status

PARAMS = CheckParams()

# Captured on this machine with `ss -Hltnp` while a test script listened on a dual-stack
# [::] socket (18431), a v6only one (18432), 127.0.0.1 (18433), ::1 (18434) and a
# listen(1) socket that three connects had filled (18435).
SS = """\
LISTEN 0      5      127.0.0.1:18433 0.0.0.0:* users:(("python3",pid=8626,fd=5))
LISTEN 2      1      127.0.0.1:18435 0.0.0.0:* users:(("python3",pid=8626,fd=7))
LISTEN 0      128      0.0.0.0:2024  0.0.0.0:*                                  
LISTEN 0      5           [::]:18432    [::]:* users:(("python3",pid=8626,fd=4))
LISTEN 0      5          [::1]:18434    [::]:* users:(("python3",pid=8626,fd=6))
LISTEN 0      5              *:18431       *:* users:(("python3",pid=8626,fd=3))
"""

# `cat /proc/net/snmp` (Ip and Tcp lines) and `cat /proc/net/netstat` (TcpExt lines), this machine.
SNMP = (
    "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits\n"
    "Ip: 2 64 1275 0 0 0 0 0 1275 900 0 0 0 0 0 0 0 0 0 900\n"
    "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
    "Tcp: 1 200 120000 -1 30 10 0 14 0 1235 861 0 0 27 0\n"
)
NETSTAT = (
    "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery TCPSACKReneging TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery TCPRenoRecoveryFail TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures TCPMemoryPressuresChrono TCPSACKDiscard TCPDSACKIgnoredOld TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue TCPOFODrop TCPOFOMerge TCPChallengeACK TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail TCPFastOpenPassive TCPFastOpenPassiveFail TCPFastOpenListenOverflow TCPFastOpenCookieReqd TCPFastOpenBlackhole TCPSpuriousRtxHostQueues BusyPollRxPackets TCPAutoCorking TCPFromZeroWindowAdv TCPToZeroWindowAdv TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect TCPHystartDelayCwnd TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop TCPRcvQDrop TCPWqueueTooBig TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess TCPMigrateReqFailure TCPPLBRehash TCPAORequired TCPAOBad TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps\n"
    "TcpExt: 0 0 0 0 0 0 0 0 0 0 11 0 0 0 0 0 0 0 0 0 0 0 1 1 10 38 15 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 2 0 0 0 0 0 36 0 0 0 0 15 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 826 0 0 0 0 0 0 0 0 0 0 0 0 2 0 0 58 58 0 0 144 0 0 0 0 0 0 0 0 0 0 0 0 0 0 172 0 0 0 0 0 0 2 0 0 0 0 0 0 0 0 0 0 0\n"
)

# `cat /proc/self/stat` and the btime line of `cat /proc/stat`, this machine.
SELF_STAT = ("8692 (cat) R 8685 8685 4501 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 81345 3133440 390 "
             "18446744073709551615 94025656770560 94025656790441 140737424212240 0 0 0 0 0 0 0 0 0 17 "
             "0 0 0 0 0 0 94025656806448 94025656808064 94025900503040 140737424218846 "
             "140737424218866 140737424218866 140737424220139 0\n")
BTIME = "cpu  1 2 3 4\nbtime 1795472378\nprocesses 9000\n"


def bump(text: str, prefix: str, name: str, by: int) -> str:
    """The same /proc file with one counter moved."""
    lines = text.splitlines()
    for i in range(0, len(lines) - 1):
        if lines[i].startswith(prefix + ":") and lines[i + 1].startswith(prefix + ":"):
            names = lines[i].split()[1:]
            if name in names:
                values = lines[i + 1].split()
                k = names.index(name) + 1
                values[k] = str(int(values[k]) + by)
                lines[i + 1] = " ".join(values)
    return "\n".join(lines) + "\n"


class SequencedHost(FakeHost):
    """A FakeHost whose files change between reads: each path answers its versions in turn."""

    def __init__(self, versions: dict[str, list[str]], **kw) -> None:
        super().__init__("netns:srv", **kw)
        self.versions = versions

    async def read(self, path: str, offset: int = 0, max_bytes: int = 1 << 20) -> bytes:
        if path in self.versions:
            seq = self.versions[path]
            text = seq.pop(0) if len(seq) > 1 else seq[0]
            return text.encode()[offset:offset + max_bytes]
        return await super().read(path, offset, max_bytes)


# ---- parsing ----------------------------------------------------------------------------

def test_ss_lines_parse_into_addresses_queues_and_processes() -> None:
    socks = {s.port: s for s in parse_ss_listeners(SS)}
    assert socks[18433].address == "127.0.0.1" and socks[18433].processes == (("python3", 8626, 5),)
    assert (socks[18435].recv_q, socks[18435].send_q) == (2, 1)
    assert socks[2024].processes == ()
    assert socks[18432].address == "::" and socks[18434].address == "::1"
    assert socks[18431].address == "*"


def test_wildcards_serve_their_families_and_star_serves_both() -> None:
    socks = {s.port: s for s in parse_ss_listeners(SS)}
    assert socks[18431].serves("10.0.0.2") and socks[18431].serves("2001:db8::2")
    assert socks[18432].serves("2001:db8::2") and not socks[18432].serves("10.0.0.2")
    assert socks[2024].serves("10.0.0.2") and not socks[2024].serves("::1")
    assert socks[18433].serves("127.0.0.1") and not socks[18433].serves("10.0.0.2")


def test_interface_suffixes_are_split_off() -> None:
    text = ("LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:* users:((\"systemd-resolve\",pid=5,fd=14))\n"
            "LISTEN 0 4096 [fe80::1%eth0]:8080 [::]:*\n")
    a, b = parse_ss_listeners(text)
    assert (a.address, a.interface, a.port) == ("127.0.0.53", "lo", 53)
    assert (b.address, b.interface, b.port) == ("fe80::1", "eth0", 8080)


async def test_listings_asked_together_share_one_ss_and_a_later_one_lists_again() -> None:
    # listen.sockets, process.listener and the running servers' settings all list the
    # listeners as a run starts: one ss -p (it walks every process's fds) serves them.
    from wizard.diag.kernel.io.counters import listeners

    later = SS.replace("LISTEN 0      5      127.0.0.1:18433", "LISTEN 3      5      127.0.0.1:18433")
    h = FakeHost(commands={("ss", "-Hltnp"): [SS, later]})
    first, second = await asyncio.gather(listeners(h), listeners(h))
    assert first is second and h.calls == [("ss", "-Hltnp")]
    assert [s.port for s in first[1]] == [18433, 18435, 2024, 18432, 18434, 18431]
    _, again = await listeners(h)  # the first listing has ended: a fresh one
    assert len(h.calls) == 2 and next(s for s in again if s.port == 18433).recv_q == 3
    other = FakeHost(commands={("ss", "-Hltnp"): ""})  # another context lists its own
    assert (await asyncio.gather(listeners(h), listeners(other)))[1][1] == [] and len(h.calls) == 3


def test_proc_counter_files_parse_with_nstat_names() -> None:
    c = parse_proc_counters(SNMP + NETSTAT)
    assert c["TcpOutRsts"] == 27 and c["TcpEstabResets"] == 14
    assert c["TcpExtListenOverflows"] == 1 and c["TcpExtTCPAbortOnData"] == 15
    assert "IpForwarding" in c and "TcpExtTCPChallengeACK" in c


def test_process_start_ticks_come_from_field_22_even_with_spaces_in_the_name() -> None:
    assert parse_start_ticks(SELF_STAT) == 81345
    assert parse_start_ticks(SELF_STAT.replace("(cat)", "(my (odd) cmd)")) == 81345


# ---- listen.sockets through the fakes ---------------------------------------------------

def _listen_ctx(target: str, ss: str, **kw):
    server = FakeHost("netns:srv", commands={("ss",): output(["ss", "-Hltnp"], ss)},
                      files={"/proc/sys/net/ipv4/tcp_abort_on_overflow": "0\n",
                             "/proc/sys/net/core/somaxconn": "4096\n",
                             "/proc/8626/stat": SELF_STAT, "/proc/stat": BTIME},
                      addresses=kw.pop("addresses", ["127.0.0.1", "10.0.0.2", "::1"]))
    return make_ctx(target, server=server, **kw)


async def test_listener_on_loopback_only_is_the_wrong_address_for_a_lan_target() -> None:
    ctx = _listen_ctx("10.0.0.2:18433", SS)
    result = await ListenSocketsCheck().run(ctx, PARAMS)
    assert [s.id for s in result.signals] == ["listener.wrong_address"]
    assert "127.0.0.1:18433" in result.signals[0].fact


async def test_nothing_on_the_port_is_absent() -> None:
    result = await ListenSocketsCheck().run(_listen_ctx("10.0.0.2:9999", SS), PARAMS)
    assert [s.id for s in result.signals] == ["listener.absent"] and result.status == Status.FAIL


async def test_full_accept_queue_is_reported_with_the_sysctls() -> None:
    result = await ListenSocketsCheck().run(_listen_ctx("127.0.0.1:18435", SS), PARAMS)
    ids = [s.id for s in result.signals]
    assert "listener.present" in ids and "listener.queue_full" in ids and "listener.queue_ok" not in ids
    titles = [e.title for e in result.evidence]
    assert "net.ipv4.tcp_abort_on_overflow = 0" in titles and "net.core.somaxconn = 4096" in titles


async def test_dual_stack_listener_serves_an_ipv4_target_with_room_in_its_queue() -> None:
    result = await ListenSocketsCheck().run(_listen_ctx("10.0.0.2:18431", SS), PARAMS)
    assert {s.id for s in result.signals} == {"listener.present", "listener.queue_ok"}
    assert result.status == Status.PASS


async def test_v6only_listener_does_not_serve_an_ipv4_target() -> None:
    result = await ListenSocketsCheck().run(_listen_ctx("10.0.0.2:18432", SS), PARAMS)
    assert [s.id for s in result.signals] == ["listener.wrong_address"]


async def test_process_started_after_the_reset_is_a_restart() -> None:
    started = 1795472378 + 81345 / 100
    before = datetime.fromtimestamp(started - 60, UTC)
    after = datetime.fromtimestamp(started + 60, UTC)
    r1 = await ListenSocketsCheck().run(_listen_ctx("127.0.0.1:18433", SS, answers=Answers(at=before)), PARAMS)
    r2 = await ListenSocketsCheck().run(_listen_ctx("127.0.0.1:18433", SS, answers=Answers(at=after)), PARAMS)
    assert "listener.restarted" in {s.id for s in r1.signals}
    assert "listener.restarted" not in {s.id for s in r2.signals}


async def test_server_context_without_the_target_address_skips_both_checks() -> None:
    for check in (ListenSocketsCheck(), KernelCountersCheck()):
        ctx = _listen_ctx("10.9.9.9:443", SS, addresses=["127.0.0.1", "10.0.0.2"])
        result = await check.run(ctx, PARAMS)
        assert result.status == Status.SKIP
        assert "does not have the target's address" in result.reason
        assert result.fix == "--server ssh:HOST or --server netns:NAME"


# ---- kernel.counters through the fakes --------------------------------------------------

def _counters_ctx(after_snmp: str, after_netstat: str, probe: tuple[str, str]):
    server = SequencedHost({"/proc/net/snmp": [SNMP, after_snmp],
                            "/proc/net/netstat": [NETSTAT, after_netstat]},
                           addresses=["10.0.0.2"])
    probes = FakeProbes(tcp=FakeTcp(exchanges={"*": probe}))
    return make_ctx("10.0.0.2:8080", server=server, probes=probes)


async def test_abort_on_data_and_out_rsts_moving_name_the_servers_abort() -> None:
    ctx = _counters_ctx(bump(SNMP, "Tcp", "OutRsts", 1), bump(NETSTAT, "TcpExt", "TCPAbortOnData", 1),
                        ("reset", "first-data"))
    result = await KernelCountersCheck().run(ctx, PARAMS)
    assert {s.id for s in result.signals} == {"server.rst_sent", "server.abort_on_data"}
    assert all(s.strength == 1.0 for s in result.signals)  # another namespace than the client's
    ev = next(e for e in result.evidence if e.kind == "counters")
    assert ev.data["TcpOutRsts"] == {"before": 27, "after": 28, "delta": 1}
    assert ev.data["probe"]["kind"] == "reset"


async def test_reset_with_still_counters_means_the_server_did_not_send_it() -> None:
    ctx = _counters_ctx(SNMP, NETSTAT, ("reset", "first-data"))
    result = await KernelCountersCheck().run(ctx, PARAMS)
    assert [s.id for s in result.signals] == ["server.no_rst_sent"]


async def test_listen_drops_and_abort_on_close_and_memory_each_raise_their_signal() -> None:
    netstat = bump(bump(bump(NETSTAT, "TcpExt", "ListenDrops", 3), "TcpExt", "TCPAbortOnClose", 1),
                   "TcpExt", "TCPAbortOnMemory", 2)
    result = await KernelCountersCheck().run(_counters_ctx(SNMP, netstat, ("ok", "first-data")), PARAMS)
    assert {s.id for s in result.signals} == {"server.listen_overflow", "server.abort_on_close",
                                              "server.abort_on_memory"}


async def test_quiet_counters_and_a_good_probe_raise_nothing() -> None:
    result = await KernelCountersCheck().run(_counters_ctx(SNMP, NETSTAT, ("ok", "first-data")), PARAMS)
    assert result.signals == [] and result.status == Status.PASS


# ---- real loopback servers ---------------------------------------------------------------

async def test_real_full_accept_queue_is_seen_as_queue_full() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    clients: list[socket.socket] = []
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)  # never accepted: the queue fills
        port = srv.getsockname()[1]
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            clients.append(c)
        await asyncio.sleep(0.3)
        ctx = make_ctx(f"127.0.0.1:{port}", server=LocalHost(), client=LocalHost())
        result = await ListenSocketsCheck().run(ctx, PARAMS)
        ids = {s.id for s in result.signals}
        assert "listener.present" in ids and "listener.queue_full" in ids, result
    finally:
        for c in clients:
            c.close()
        srv.close()


async def test_real_linger_zero_close_moves_abort_on_data() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10)
    port = srv.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # SO_LINGER 0: an abortive close, the kernel sends RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        ctx = make_ctx(f"127.0.0.1:{port}", server=LocalHost(), client=LocalHost(),
                       probes=FakeProbes(tcp=TcpProbe()))
        result = await KernelCountersCheck().run(ctx, PARAMS)
    finally:
        srv.close()
        thread.join(5)
    ev = next(e for e in result.evidence if e.kind == "counters")
    assert ev.data["probe"]["kind"] == "reset"
    abort = [s for s in result.signals if s.id == "server.abort_on_data"]
    # Other tests share this namespace and may move more counters; this one must have moved.
    assert abort and abort[0].strength < 1.0
    assert any("client's own network namespace" in e.title for e in result.evidence)
