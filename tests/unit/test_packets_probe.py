"""The RST guard's rule and lifetime, and the packet checks driven by scripted packet probes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.fakes import FakeHost, FakeProbes, FakeTcp, make_ctx, output
from wizard.diag.net.checks.protocol import ProtocolParams, TcpProtocolCheck
from wizard.diag.net.io.protocol import Attempt, ProtocolFacts, ProtocolProbe
from wizard.diag.packets.checks import (
    CaptureParams,
    PacketsCaptureCheck,
    PacketsSynprobeCheck,
    PathPmtuCheck,
    PmtuParams,
    SynParams,
)
from wizard.diag.packets.io.nftguard import (
    RstGuard,
    SharedGuard,
    guard_ruleset,
    remove_stale,
)
from wizard.engine.probes import Capture, Hop, PacketEvent, SizeEcho, SynFingerprint
from wizard.engine.runner import Runner
from wizard.model import Answers, Status


def test_guard_rule_matches_only_the_probe_port_address_and_rst():
    script = guard_ruleset("t1", "10.0.0.5", [40001])
    # Bare RSTs only: the kernel's answer to our SYN-ACK; the probe's own RST+ACK must pass.
    assert "ip daddr 10.0.0.5 tcp sport 40001 tcp flags & (rst | ack) == rst counter drop" in script
    assert "hook output" in script
    assert "ip6 daddr 2001:db8::5 tcp sport { 40001, 40002 }" in guard_ruleset("t1", "2001:db8::5",
                                                                              [40002, 40001])
    with pytest.raises(ValueError):
        guard_ruleset("t1", "10.0.0.5", [])


def _nft_host(tables: str = "") -> FakeHost:
    return FakeHost(commands={("nft", "list", "tables"): tables, ("nft",): ""})


def _deleted(host: FakeHost) -> list[str]:
    return [c[-1] for c in host.calls if c[:3] == ("nft", "delete", "table")]


async def test_guard_table_is_removed_when_the_probe_raises():
    host = _nft_host()
    with pytest.raises(RuntimeError):
        async with RstGuard("10.0.0.5", [40001], host) as guard:
            raise RuntimeError("probe failed")
    assert _deleted(host) == [guard.table]


async def test_guard_table_is_removed_when_the_probe_is_cancelled():
    host = _nft_host()
    entered = asyncio.Event()
    holder: dict[str, str] = {}

    async def probe() -> None:
        async with RstGuard("10.0.0.5", [40001], host) as guard:
            holder["table"] = guard.table
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.ensure_future(probe())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _deleted(host) == [holder["table"]]


async def test_guard_that_cannot_install_cleans_up_and_says_why():
    from wizard.diag.packets.io.nftguard import GuardError

    host = FakeHost(commands={("nft", "list", "tables"): "", ("nft", "delete"): "",
                              ("nft",): output(["nft"], "", 1, "Error: Could not process rule")})
    with pytest.raises(GuardError, match="Could not process rule"):
        async with RstGuard("10.0.0.5", [40001], host):
            pass
    assert len(_deleted(host)) == 1


async def test_stale_guard_tables_of_dead_processes_are_removed_and_live_ones_kept():
    mine = f"reset_wizard_rstguard_{os.getpid()}_7"
    host = _nft_host(f"table inet reset_wizard_rstguard_4194303_1\ntable inet {mine}\ntable inet other\n")
    assert await remove_stale(host) == ["reset_wizard_rstguard_4194303_1"]


def _added(host: FakeHost) -> list[tuple[str, ...]]:
    return [c for c in host.calls if c[0] == "nft" and len(c) == 2 and c[1].startswith("add table")]


async def test_probes_of_one_run_share_one_guard_table_over_distinct_ports():
    host = _nft_host()
    guard = SharedGuard("10.0.0.5", host, linger_s=0.2)
    async with guard.port() as (p1, t1):
        async with guard.port() as (p2, t2):
            assert p1 != p2 and t1 == t2 and t1
        async with guard.port() as (p3, _):  # back to back: same table, port reused or not
            pass
    await asyncio.sleep(0.05)
    async with guard.port() as (p4, t4):  # within the linger: still the same table
        assert t4 == t1
    assert guard.installs == 1 and len(_added(host)) == 1
    assert str(p1) in _added(host)[0][1] and str(p2) in _added(host)[0][1]
    assert _deleted(host) == []
    await asyncio.sleep(0.4)  # the linger is over: removed without anyone asking
    assert _deleted(host) == [t1]
    async with guard.port() as (_, t5):  # a later probe installs a fresh one
        assert t5 != t1
    await guard.remove_now()
    assert _deleted(host) == [t1, t5] and guard.installs == 2


async def test_shared_guard_is_removed_at_once_when_its_probe_is_cancelled():
    host = _nft_host()
    guard = SharedGuard("10.0.0.5", host, linger_s=60)
    entered = asyncio.Event()

    async def probe() -> None:
        async with guard.port():
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.ensure_future(probe())
    await asyncio.wait_for(entered.wait(), 5)
    table = guard.table
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _deleted(host) == [table] and guard.table == ""


def test_shared_guard_lingering_at_loop_shutdown_is_removed():
    host = _nft_host()
    guard = SharedGuard("10.0.0.5", host, linger_s=60)

    async def run() -> str:
        async with guard.port() as (_, table):
            return table

    table = asyncio.run(run())  # asyncio.run cancels the linger: it must clean up, not leak
    assert _deleted(host) == [table]


def test_importing_the_packet_checks_does_not_load_scapy():
    code = "import sys, wizard.diag.packets.checks, wizard.diag.packets.parse.attribution; print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- the checks, with scripted packet probes -----------------------------------------------

def ev(ms: float, out: bool, flags: str, *, ttl: int = 63, ip_id: int = 100, window: int = 500,
       ts: bool = True, payload: int = 0, seq: int = 1, cport: int = 40000) -> PacketEvent:
    a, b = ("127.0.0.1", "127.0.0.1")
    return PacketEvent(ms, "out" if out else "in", a, b, cport if out else 8080, 8080 if out else cport,
                       64 if out else ttl, ip_id, True, flags, seq, 1, window,
                       ("Timestamp",) if ts else (), 1 if ts else None, 2 if ts else None, payload)


@dataclass
class FakePackets:
    """Replays packets for capture and answers the active probes from a script."""

    events: list[PacketEvent] = field(default_factory=list)
    on_action: Any = None
    fingerprint: SynFingerprint | None = None
    echoes: list[list[SizeEcho]] = field(default_factory=list)
    hops: list[Any] = field(default_factory=list)

    def warm(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def capture_unavailable(self) -> str | None:
        return None

    async def capture(self, address, port, action, **kw) -> Capture:
        result = await action()
        if self.on_action:
            self.on_action()
        return Capture(self.events, result, "lo", f"tcp and host {address} and port {port}", 0.0)

    syn_calls: int = 0

    async def syn(self, address, port, timeout=2.0) -> SynFingerprint:
        self.syn_calls += 1
        return self.fingerprint or SynFingerprint(address, port, "none")

    async def traceroute(self, address, port, max_ttl=16, timeout=2.0):
        return self.hops

    async def df_echo(self, address, sizes, timeout=2.0):
        return self.echoes.pop(0) if self.echoes else []


SNMP_BEFORE = "Tcp: RtoAlgorithm OutRsts\nTcp: 1 10\n"
NETSTAT = "TcpExt: TCPAbortOnData TCPAbortOnClose\nTcpExt: 0 0\n"


def _server() -> FakeHost:
    return FakeHost(files={"/proc/net/snmp": SNMP_BEFORE, "/proc/net/netstat": NETSTAT})


async def test_capture_names_a_path_reset_when_the_server_counters_stay_still():
    from wizard.engine.probes import Hop

    server = _server()
    packets = FakePackets(events=[
        ev(0, True, "S", cport=40000), ev(0.5, False, "SA", ip_id=0, cport=40000),
        ev(0.6, True, "A", cport=40000), ev(1.0, True, "PA", payload=18, cport=40000),
        ev(1.2, False, "R", ttl=64, ip_id=0, window=0, ts=False, cport=40000)],
        hops=[Hop(1, "10.77.1.1", "time-exceeded", 0.3, 64), Hop(2, "127.0.0.1", "syn-ack", 0.5, 63)])
    tcp = FakeTcp(exchanges={"*": ("reset", "first-data")})
    ctx = make_ctx(server=server, probes=FakeProbes(tcp=tcp, packets=packets))
    result = await PacketsCaptureCheck().run(ctx, CaptureParams())
    assert result.status == Status.FAIL
    ids = {s.id for s in result.signals}
    assert {"rst.from_path", "rst.ttl_mismatch", "rst.no_timestamps", "timing.reset_after_first_data",
            "rst.path_hop"} <= ids
    kinds = [e.kind for e in result.evidence]
    assert "ladder" in kinds and "packets" in kinds and "counters" in kinds
    ladder = next(e for e in result.evidence if e.kind == "ladder").data
    assert ladder["events"][-1]["src"] == "path"
    assert tcp.calls[0][0] == "exchange"


async def test_capture_credits_the_server_application_when_abort_counters_move():
    server = _server()
    packets = FakePackets(events=[
        ev(0, True, "S"), ev(0.5, False, "SA", ip_id=0), ev(0.6, True, "A"),
        ev(1.0, True, "PA", payload=18), ev(1.1, False, "A", ip_id=101),
        ev(3.0, False, "RA", ip_id=102, window=501)],
        on_action=lambda: server.files.update({
            "/proc/net/snmp": b"Tcp: RtoAlgorithm OutRsts\nTcp: 1 11\n",
            "/proc/net/netstat": b"TcpExt: TCPAbortOnData TCPAbortOnClose\nTcpExt: 1 0\n"}))
    ctx = make_ctx(server=server, probes=FakeProbes(packets=packets))
    result = await PacketsCaptureCheck().run(ctx, CaptureParams())
    assert "rst.from_server_app" in {s.id for s in result.signals}
    counters = next(e for e in result.evidence if e.kind == "counters")
    assert counters.data["deltas"] == {"TcpOutRsts": 1, "TcpExtTCPAbortOnData": 1}


async def test_capture_without_a_reset_passes_and_says_none_was_seen():
    packets = FakePackets(events=[ev(0, True, "S"), ev(0.5, False, "SA", ip_id=0), ev(0.6, True, "A"),
                                  ev(1.0, True, "PA", payload=18), ev(1.5, False, "FA", payload=40)])
    ctx = make_ctx(server=_server(), probes=FakeProbes(packets=packets))
    result = await PacketsCaptureCheck().run(ctx, CaptureParams())
    assert result.status == Status.PASS
    assert {s.id for s in result.signals} == {"rst.none_seen"}


async def test_synprobe_reports_a_refusal_with_its_ttl():
    fp = SynFingerprint("127.0.0.1", 8080, "rst", ttl=64, initial_ttl=64, hops=0, window=0)
    ctx = make_ctx(probes=FakeProbes(packets=FakePackets(fingerprint=fp)))
    result = await PacketsSynprobeCheck().run(ctx, SynParams())
    assert result.status == Status.FAIL
    assert [s.id for s in result.signals] == ["syn.refused"]


async def test_packet_checks_are_skipped_without_root_with_the_fix():
    ctx = make_ctx(root=False)
    for cls in (PacketsCaptureCheck, PacketsSynprobeCheck, PathPmtuCheck):
        skip = await Runner(ctx).preflight(cls)
        assert skip is not None and skip.status == Status.SKIP and "sudo" in (skip.fix or "")
    assert "cannot see who sent a reset" in PacketsCaptureCheck.description


async def test_large_packets_vanishing_without_icmp_is_a_pmtu_black_hole():
    small = [SizeEcho(576, True), SizeEcho(1000, True), SizeEcho(1400, False), SizeEcho(1500, False)]
    packets = FakePackets(echoes=[small, [SizeEcho(1400, False), SizeEcho(1500, False)]])
    result = await PathPmtuCheck().run(make_ctx(probes=FakeProbes(packets=packets)), PmtuParams())
    assert result.status == Status.FAIL
    assert [s.id for s in result.signals] == ["pmtu.blackhole"]
    assert "not a reset" in result.summary


async def test_a_single_lost_echo_answered_on_retry_is_not_a_black_hole():
    packets = FakePackets(echoes=[[SizeEcho(576, True), SizeEcho(1500, False)], [SizeEcho(1500, True)]])
    result = await PathPmtuCheck().run(make_ctx(probes=FakeProbes(packets=packets)), PmtuParams())
    assert [s.id for s in result.signals] == ["pmtu.ok"]


async def test_no_echo_answered_leaves_pmtu_unknown():
    packets = FakePackets(echoes=[[SizeEcho(576, False)], [SizeEcho(576, False)]])
    result = await PathPmtuCheck().run(make_ctx(probes=FakeProbes(packets=packets)), PmtuParams())
    assert result.status == Status.WARN and not result.signals


@dataclass
class FakeProtocol:
    facts: ProtocolFacts

    async def identify(self, address, port, host, timeout):
        return self.facts


@dataclass
class ProbesWithProtocol(FakeProbes):
    protocol: Any = None


async def test_plain_http_to_a_tls_port_is_a_protocol_mismatch():
    facts = ProtocolFacts("127.0.0.1", 8080, Attempt(False, "nothing first", "ok"),
                          Attempt(True, "TLSv1.3 TLS_AES_256_GCM_SHA384", "ok"),
                          Attempt(False, "connection reset by peer", "reset"))
    ctx = make_ctx("http://127.0.0.1:8443/", probes=ProbesWithProtocol(protocol=FakeProtocol(facts)))
    result = await TcpProtocolCheck().run(ctx, ProtocolParams())
    assert result.status == Status.FAIL
    assert [s.id for s in result.signals] == ["protocol.mismatch"]


async def test_a_tls_port_refusing_plain_http_in_band_is_a_protocol_mismatch():
    # nginx with `listen ... ssl`: plain HTTP gets "400 Bad Request" ("The plain HTTP request
    # was sent to HTTPS port") and a FIN, no reset; the port speaks TLS.
    async def run(http: Attempt) -> Any:
        facts = ProtocolFacts("127.0.0.1", 8443, Attempt(False, "no answer before the timeout", "timeout"),
                              Attempt(True, "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384", "ok"), http)
        ctx = make_ctx("127.0.0.1:8443", answers=Answers(payload="GET / HTTP/1.1\r\nHost: lab\r\n\r\n"),
                       probes=ProbesWithProtocol(protocol=FakeProtocol(facts)))
        return await TcpProtocolCheck().run(ctx, ProtocolParams())

    refused = await run(Attempt(True, "HTTP/1.1 400 Bad Request", "ok"))
    assert refused.status == Status.FAIL and [s.id for s in refused.signals] == ["protocol.mismatch"]
    assert "400 Bad Request, an in-band refusal" in refused.signals[0].fact
    # A port that really serves both (200 to plain HTTP) is no mismatch.
    both = await run(Attempt(True, "HTTP/1.1 200 OK", "ok"))
    assert [s.id for s in both.signals] == ["protocol.matches"]


async def test_tls_to_a_plain_http_port_is_a_protocol_mismatch():
    facts = ProtocolFacts("127.0.0.1", 443, Attempt(False, "nothing first", "ok"),
                          Attempt(False, "wrong version number", "error"), Attempt(True, "HTTP/1.1 200 OK", "ok"))
    ctx = make_ctx("https://127.0.0.1:443/", probes=ProbesWithProtocol(protocol=FakeProtocol(facts)))
    result = await TcpProtocolCheck().run(ctx, ProtocolParams())
    assert [s.id for s in result.signals] == ["protocol.mismatch"]


async def test_protocol_probe_recognises_a_real_http_server_on_loopback():
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"HTTP/1.0 204 No Content\r\n\r\n")
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ctx = make_ctx(f"http://127.0.0.1:{port}/", answers=Answers(timeout_s=2),
                       probes=ProbesWithProtocol(protocol=ProtocolProbe()))
        result = await TcpProtocolCheck().run(ctx, ProtocolParams())
    finally:
        server.close()
        await server.wait_closed()
    assert result.status == Status.PASS, result
    assert [s.id for s in result.signals] == ["protocol.matches"]
    assert any("HTTP/1.0 204" in e.title for e in result.evidence)


async def _identify_served(handler, timeout: float):  # type: ignore[no-untyped-def]
    """ProtocolProbe.identify against a loopback server running ``handler``, and how long it took."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        started = asyncio.get_running_loop().time()
        facts = await ProtocolProbe().identify("127.0.0.1", server.sockets[0].getsockname()[1],
                                               "127.0.0.1", timeout)
        return facts, asyncio.get_running_loop().time() - started
    finally:
        server.close()


async def test_a_banner_ends_the_protocol_probe_without_waiting_for_tls_and_http():
    async def speak_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        await asyncio.sleep(10)  # then silent, as an SSH server waiting for the client's banner
        writer.close()

    facts, took = await _identify_served(speak_first, 5)
    assert facts.speaks == "banner" and facts.banner.detail.startswith("SSH-2.0")
    assert took < 2.5, took  # not the 5 s timeout of the TLS and HTTP attempts
    assert {facts.tls.outcome, facts.http.outcome} <= {"skipped", "ok", "error", "eof", "reset"}


async def test_a_silent_port_is_probed_in_parallel_and_bounded_by_the_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)
        writer.close()

    facts, took = await _identify_served(silent, 1.0)
    assert facts.speaks == "unknown"
    assert facts.banner.detail == "the server sent nothing first"
    assert facts.http.outcome == "timeout" and not facts.tls.ok  # asyncio: an abort, not a timeout
    # In parallel: about one timeout (plus TLS's own margin), not the sum of three.
    assert took < 2.6, took


# -- a reset to the SYN (a router's reject): the server's shape comes from elsewhere --------

ROUTER_HOPS = [Hop(1, "10.77.1.1", "time-exceeded", 0.3, 64), Hop(2, "127.0.0.1", "rst", 0.5, 64)]


def _reset_to_syn(cport: int = 40000) -> list[PacketEvent]:
    return [ev(0, True, "S", cport=cport),
            ev(0.3, False, "RA", ttl=64, ip_id=0, window=0, ts=False, seq=0, cport=cport)]


async def _capture_reset_to_syn(packets: FakePackets):
    tcp = FakeTcp(exchanges={"*": ("refused", "connect")})
    ctx = make_ctx(server=_server(), probes=FakeProbes(tcp=tcp, packets=packets))
    result = await PacketsCaptureCheck().run(ctx, CaptureParams())
    att = next(e for e in result.evidence if "sender" in e.data)
    return result, att, {s.id for s in result.signals}


async def test_router_reset_to_syn_is_the_path_by_the_syn_probes_fingerprint():
    fp = SynFingerprint("127.0.0.1", 8080, "syn-ack", ttl=63, initial_ttl=64, hops=1, window=65160,
                        options=("MSS", "Timestamp"))
    packets = FakePackets(events=_reset_to_syn(), fingerprint=fp, hops=ROUTER_HOPS)
    result, att, ids = await _capture_reset_to_syn(packets)
    assert att.data["sender"] == "path"
    assert "TTL 64 vs the server's SYN probe's SYN-ACK TTL 63" in att.text
    assert {"rst.from_path", "rst.ttl_mismatch", "rst.path_hop", "timing.reset_to_syn"} <= ids
    hop = next(e for e in result.evidence if "matches hop" in e.title)
    assert "hop 1: 10.77.1.1" in hop.title
    assert packets.syn_calls == 1


async def test_a_syn_ack_on_another_captured_connection_serves_as_the_fingerprint():
    events = [*_reset_to_syn(40000), ev(5.0, True, "S", cport=40002), ev(5.3, False, "SA", ip_id=0, cport=40002)]
    packets = FakePackets(events=events, hops=ROUTER_HOPS)
    _, att, ids = await _capture_reset_to_syn(packets)
    assert att.data["sender"] == "path"
    assert "SYN-ACK on another connection (port 40002)" in att.text
    assert packets.syn_calls == 0


async def test_without_a_syn_ack_the_icmp_echo_distance_tells_the_path_apart():
    refused = SynFingerprint("127.0.0.1", 8080, "rst", ttl=64, initial_ttl=64, hops=0, window=0)
    packets = FakePackets(events=_reset_to_syn(), fingerprint=refused, hops=ROUTER_HOPS,
                          echoes=[[SizeEcho(84, True, reply_ttl=63, replier="127.0.0.1")]])
    result, att, ids = await _capture_reset_to_syn(packets)
    assert att.data["sender"] == "path"
    assert "ICMP echo reply TTL 63" in att.text
    assert any("the SYN probe got no SYN-ACK either (rst, TTL 64)" in e.title for e in result.evidence)


async def test_no_fingerprint_anywhere_leaves_the_reset_unattributed_not_the_server_firewall():
    packets = FakePackets(events=_reset_to_syn(), hops=ROUTER_HOPS)  # SYN unanswered, no echo
    result, att, ids = await _capture_reset_to_syn(packets)
    assert att.data["sender"] == "unknown"
    assert "unattributed: no SYN-ACK to compare with" in result.summary
    assert "rst.unattributed" in ids and "rst.from_server_firewall" not in ids


async def test_capture_is_skipped_with_the_fix_when_libpcap_is_missing(monkeypatch):
    from wizard.diag.packets.io import capture, libpcap

    # The real probe asks the loader; here the loader finds no libpcap.
    monkeypatch.setattr(libpcap, "libpcap_path", lambda: None)
    monkeypatch.setattr(capture, "libpcap_missing", libpcap.libpcap_missing)
    tcp = FakeTcp(exchanges={"*": ("reset", "first-data")})
    ctx = make_ctx(server=_server(), probes=FakeProbes(tcp=tcp, packets=capture.PacketProbe()))
    result = await PacketsCaptureCheck().run(ctx, CaptureParams())
    assert result.status == Status.SKIP
    assert "libpcap" in (result.reason or "")
    assert result.fix == "apt install libpcap0.8"
    assert tcp.calls == []  # nothing was probed for a capture that cannot be filtered


def test_libpcap_is_found_by_the_loader_when_installed(monkeypatch):
    from wizard.diag.packets.io import libpcap

    monkeypatch.setattr(libpcap, "libpcap_path", lambda: "libpcap.so.0.8")
    assert libpcap.libpcap_missing() is None


def test_the_sniffer_takes_the_kernels_arrival_time_not_the_reading_time() -> None:
    import socket
    import struct

    from wizard.diag.packets.io.live import SO_TIMESTAMPNS, arrival

    stamp = struct.pack("qq", 1_700_000_000, 250_000_000)
    assert arrival([(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)]) == 1_700_000_000.25
    assert abs(arrival([]) - __import__("time").time()) < 5  # no stamp: now
