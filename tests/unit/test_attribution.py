"""RST attribution, timing classes and the ladder, on packet sequences built with scapy here."""

from __future__ import annotations

import pytest

scapy = pytest.importorskip("scapy.all")
from scapy.all import IP, TCP, IPv6  # noqa: E402

from wizard.diag.packets.io.capture import event_from_packet  # noqa: E402
from wizard.diag.packets.parse.attribution import (  # noqa: E402
    ServerShape,
    attribute,
    burst_timing,
    counter_deltas,
    flows,
    ladder,
    packet_table,
    parse_counters,
    server_shape,
    timing,
)
from wizard.engine.probes import PacketEvent  # noqa: E402

T0 = 1_700_000_000.0
CLIENT, SERVER, PORT = "10.77.1.2", "10.77.2.2", 8080
TS = [("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000))]


class Flow:
    """Builds one connection's packets with scapy, as they would arrive at the client."""

    def __init__(self, cport: int = 40000, client: str = CLIENT, server: str = SERVER,
                 server_ttl: int = 63) -> None:
        self.cport, self.client, self.server, self.server_ttl = cport, client, server, server_ttl
        self.events: list[PacketEvent] = []
        self.cseq, self.sseq, self.cid, self.sid = 1000, 5000, 100, 3000

    def _ip(self, out: bool, ttl: int, ip_id: int, df: bool):
        src, dst = (self.client, self.server) if out else (self.server, self.client)
        if ":" in self.client:
            return IPv6(src=src, dst=dst, hlim=ttl)
        return IP(src=src, dst=dst, ttl=ttl, id=ip_id, flags="DF" if df else 0)

    def add(self, ms: float, out: bool, flags: str, *, payload: bytes = b"", ttl: int | None = None,
            ip_id: int | None = None, window: int = 502, options=None, seq: int | None = None,
            ack: int | None = None, df: bool = True) -> PacketEvent:
        if ip_id is None:
            if out:
                self.cid += 1
                ip_id = self.cid
            else:
                self.sid += 1
                ip_id = self.sid
        ttl = ttl if ttl is not None else (64 if out else self.server_ttl)
        sport, dport = (self.cport, PORT) if out else (PORT, self.cport)
        tcp = TCP(sport=sport, dport=dport, flags=flags, window=window,
                  seq=self.cseq if seq is None and out else self.sseq if seq is None else seq,
                  ack=ack if ack is not None else (self.sseq if out else self.cseq),
                  options=TS if options is None else options)
        pkt = self._ip(out, ttl, ip_id, df) / tcp / payload
        pkt = pkt.__class__(bytes(pkt))  # exactly what a capture would decode
        pkt.time = T0 + ms / 1000
        if out:
            self.cseq += len(payload)
        else:
            self.sseq += len(payload)
        ev = event_from_packet(pkt, PORT, T0)
        assert ev is not None
        self.events.append(ev)
        return ev

    def handshake(self, ms: float = 0.0) -> Flow:
        self.add(ms, True, "S", ip_id=self.cid)
        self.cseq += 1
        self.add(ms + 0.5, False, "SA", ip_id=0, window=65160)
        self.sseq += 1
        self.add(ms + 0.6, True, "A")
        return self

    def rst(self, ms: float, **kw) -> PacketEvent:
        return self.add(ms, False, kw.pop("flags", "R"), **kw)


def test_rst_to_syn_from_closed_port_is_the_server_kernel_and_a_refusal():
    f = Flow()
    f.add(0.0, True, "S")
    rst = f.rst(0.4, flags="RA", seq=0, ack=1001, window=0, ip_id=0, options=[])
    att = attribute(rst, f.events, None, {"TcpOutRsts": 1})
    assert att.sender == "server-kernel"
    assert att.signals[0] == "rst.from_server_kernel"
    t = timing(f.events)
    assert t.kind == "reset-to-syn"
    assert "refused" in t.detail


def test_linger0_abort_with_timestamps_and_abort_counter_is_the_server_application():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"GET / HTTP/1.1\r\n\r\n")
    f.add(1.5, False, "A")
    rst = f.rst(3.0, flags="RA", window=501)  # IP ID continues, timestamps, window > 0
    deltas = {"TcpExtTCPAbortOnData": 1, "TcpOutRsts": 1}
    att = attribute(rst, f.events, server_shape(f.events), deltas)
    assert att.sender == "server-app"
    assert "rst.ttl_mismatch" not in att.signals
    assert any("TCPAbortOnData +1" in r for r in att.reasons)
    assert timing(f.events).kind == "reset-after-first-data"


def test_rst_from_router_is_attributed_to_path_by_ttl_and_missing_timestamps():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"GET /BLOCKME HTTP/1.1\r\n\r\n")
    rst = f.rst(1.2, ttl=64, window=0, ip_id=0, options=[])
    att = attribute(rst, f.events, server_shape(f.events), {})
    assert att.sender == "path"
    assert {"rst.from_path", "rst.ttl_mismatch", "rst.no_timestamps"} <= set(att.signals)
    assert att.hop_distance == 0
    assert any("did not move" in r for r in att.reasons)


def test_ttl_mismatch_alone_points_to_the_path_without_server_counters():
    f = Flow(server_ttl=58).handshake()
    f.add(1.0, True, "PA", payload=b"x" * 100)
    rst = f.rst(1.1, ttl=61, window=0, ip_id=1, options=[], df=False)
    att = attribute(rst, f.events, server_shape(f.events), None)
    assert att.sender == "path"
    assert any("not available" in r for r in att.reasons)


def test_stateless_rst_at_server_distance_with_still_counters_is_a_server_host_firewall():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"hello")
    rst = f.rst(1.2, window=0, ip_id=0, options=[])
    att = attribute(rst, f.events, server_shape(f.events), {"Ip.OutRequests": 3})
    assert att.sender == "server-firewall"


def test_stateless_rst_at_server_distance_without_counters_is_the_server_host_kernel_or_firewall():
    # Without the server's counters the kernel's stateless reply and a reject rule's are one packet.
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"hello")
    rst = f.rst(1.2, window=0, ip_id=0, options=[])
    att = attribute(rst, f.events, server_shape(f.events), None)
    assert att.sender == "server-host"
    assert att.signals[0] == "rst.from_server_host"
    assert any("a reject rule of its firewall send this same packet" in r for r in att.reasons)


def test_ipv6_path_rst_is_told_apart_by_hop_limit():
    f = Flow(client="fd77::2", server="fd77:2::2").handshake()
    f.add(1.0, True, "PA", payload=b"hello")
    rst = f.rst(1.2, ttl=64, window=0, options=[])
    assert rst.ip_id is None
    att = attribute(rst, f.events, server_shape(f.events), {})
    assert att.sender == "path"


def test_reset_on_the_first_send_after_an_idle_hold_is_timed_as_after_hold():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"ping\n")
    f.add(1.5, False, "PA", payload=b"pong\n")
    f.add(1.6, True, "A")
    f.add(7001.0, True, "PA", payload=b"ping\n")
    f.rst(7001.3, ttl=64, window=0, ip_id=0, options=[])
    t = timing(f.events)
    assert t.kind == "reset-after-hold"
    assert t.idle_s == pytest.approx(7.0, abs=0.1)


def test_a_write_into_a_connection_the_server_closed_after_an_exchange_is_the_keep_alive_shape():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"GET / HTTP/1.1\r\n\r\n")
    f.add(1.5, False, "PA", payload=b"HTTP/1.1 200 OK\r\n\r\n")
    f.add(1501.5, False, "FA")  # the server's keep-alive timeout closes the idle connection
    f.add(1502.0, True, "A")
    f.add(3000.0, True, "PA", payload=b"GET / HTTP/1.1\r\n\r\n")
    f.rst(3000.2, ttl=64, window=0, ip_id=0, options=[])
    t = timing(f.events)
    assert t.kind == "reset-after-server-fin"
    assert t.idle_s == pytest.approx(1.5, abs=0.01)
    assert "FIN at 1.5 s" in t.detail


def test_a_server_fin_before_any_request_is_not_the_keep_alive_shape():
    # The server's own idle timeout closed a connection nothing was sent on yet (idle-timeout's
    # shape): no exchange passed, so nothing was kept alive and reused.
    f = Flow().handshake()
    f.add(1500.0, False, "FA")
    f.add(1500.5, True, "A")
    f.add(3000.0, True, "PA", payload=b"GET / HTTP/1.1\r\n\r\n")
    f.rst(3000.2, ttl=64, window=0, ip_id=0, options=[])
    assert timing(f.events).kind == "reset-after-first-data"


def test_reset_after_several_segments_counts_the_bytes():
    f = Flow().handshake()
    for i in range(3):
        f.add(1.0 + i, True, "PA", payload=b"y" * 1000)
    f.rst(4.5, window=300)
    t = timing(f.events)
    assert (t.kind, t.bytes_before) == ("reset-after-bytes", 3000)


def test_unanswered_syns_are_a_timeout_not_a_reset():
    f = Flow()
    f.add(0.0, True, "S")
    f.add(1000.0, True, "S")
    assert timing(f.events).kind == "no-answer"


def test_only_connections_beyond_the_nth_failing_is_a_burst_limit():
    flow_list = []
    for i in range(6):
        f = Flow(cport=41000 + i)
        if i < 3:
            f.handshake(ms=i * 10)
        else:
            f.add(i * 10, True, "S")
            f.rst(i * 10 + 0.3, flags="RA", seq=0, window=0, ip_id=0, options=[])
        flow_list.append(f.events)
    t = burst_timing(flow_list)
    assert t is not None and t.kind == "reset-beyond-nth"
    assert "first 3" in t.detail
    all_refused = list(flow_list[3:])
    assert burst_timing(all_refused) is None


def test_ladder_puts_a_path_rst_on_the_path_lane_with_its_reasoning():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"GET / HTTP/1.1\r\n\r\n")
    rst = f.rst(1.2, ttl=64, window=0, ip_id=0, options=[])
    att = attribute(rst, f.events, server_shape(f.events), {})
    lad = ladder(f.events, [att]).as_data()
    assert lad["lanes"] == ["client", "path", "server"]
    labels = [e["label"] for e in lad["events"]]
    assert labels == ["SYN", "SYN-ACK", "ACK", "data 18 B", "RST"]
    last = lad["events"][-1]
    assert last["src"] == "path" and last["dst"] == "client"
    assert "ttl 64" in last["note"] and "no TS" in last["note"] and "path" in last["note"]


def test_ladder_of_a_clean_exchange_keeps_two_lanes():
    f = Flow().handshake()
    f.add(1.0, True, "PA", payload=b"hi")
    f.add(1.2, False, "FA", payload=b"ho")
    lad = ladder(f.events, []).as_data()
    assert lad["lanes"] == ["client", "server"]
    assert lad["events"][-1]["label"] == "FIN (data 2 B)"


def test_flows_group_by_client_port_and_table_lists_every_packet():
    a, b = Flow(cport=40001).handshake(), Flow(cport=40002).handshake(ms=5)
    grouped = flows(a.events + b.events)
    assert set(grouped) == {40001, 40002}
    table = packet_table(a.events)
    assert len(table.splitlines()) == 1 + len(a.events)
    assert "SA" in table and "Timestamp" in table


def test_counters_are_parsed_from_proc_net_snmp_and_deltas_keep_what_moved():
    before = parse_counters("Ip: Forwarding InReceives\nIp: 1 10\n"
                            "Tcp: RtoAlgorithm OutRsts AttemptFails\nTcp: 1 5 0\n")
    after = parse_counters("Ip: Forwarding InReceives\nIp: 1 12\n"
                           "Tcp: RtoAlgorithm OutRsts AttemptFails\nTcp: 1 6 0\n")
    assert before["TcpOutRsts"] == 5
    assert counter_deltas(before, after) == {"IpInReceives": 2, "TcpOutRsts": 1}


def test_server_shape_comes_from_the_syn_ack():
    f = Flow(server_ttl=57).handshake()
    shape = server_shape(f.events)
    assert shape == ServerShape(57, True, 65160, 0, "SYN-ACK")


# -- a reset to the SYN: no SYN-ACK on the connection, the server's shape from elsewhere ----

def _reset_syn(rst_ttl: int) -> tuple[Flow, PacketEvent]:
    """A SYN answered by a stateless RST+ACK (what `reject with tcp reset` sends)."""
    f = Flow(cport=40001)
    f.add(0.0, True, "S")
    rst = f.rst(0.3, flags="RA", seq=0, ack=1001, ttl=rst_ttl, window=0, ip_id=0, options=[])
    return f, rst


def _synack_elsewhere(server_ttl: int = 63) -> ServerShape:
    other = Flow(cport=40002, server_ttl=server_ttl).handshake(5.0)  # e.g. the SYN probe's
    shape = server_shape(other.events)
    assert shape is not None
    return ServerShape(shape.ttl, shape.has_timestamps, shape.window, None, "SYN probe's SYN-ACK")


def test_rst_to_syn_one_router_closer_than_the_servers_syn_ack_elsewhere_is_the_path():
    f, rst = _reset_syn(rst_ttl=64)
    att = attribute(rst, f.events, _synack_elsewhere(63), {})
    assert att.sender == "path"
    assert {"rst.from_path", "rst.ttl_mismatch"} <= set(att.signals)
    assert att.hop_distance == 0
    assert any("TTL 64 vs the server's SYN probe's SYN-ACK TTL 63" in r for r in att.reasons)
    assert timing(f.events).kind == "reset-to-syn"


def test_rst_to_syn_at_the_servers_distance_is_the_server_side():
    f, rst = _reset_syn(rst_ttl=63)
    still = attribute(rst, f.events, _synack_elsewhere(63), {})
    assert still.sender == "server-firewall"  # its TCP stack sent nothing
    moved = attribute(rst, f.events, _synack_elsewhere(63), {"TcpOutRsts": 1})
    assert moved.sender == "server-kernel"
    assert "rst.ttl_mismatch" not in still.signals + moved.signals


def test_rst_to_syn_without_any_fingerprint_is_unattributed_not_the_server_firewall():
    f, rst = _reset_syn(rst_ttl=64)
    att = attribute(rst, f.events, None, {})
    assert att.sender == "unknown"
    assert att.signals[0] == "rst.unattributed"
    assert att.note() == "unattributed: no SYN-ACK to compare with"
    assert any("only the TTL would tell" in r for r in att.reasons)
    # Without counters either, a stateless RST is not pinned on the server's kernel.
    assert attribute(rst, f.events, None, None).sender == "unknown"


def test_counters_still_name_the_server_kernel_when_no_syn_ack_exists():
    f, rst = _reset_syn(rst_ttl=63)  # a closed port: every SYN is refused, no SYN-ACK anywhere
    att = attribute(rst, f.events, None, {"TcpOutRsts": 1})
    assert att.sender == "server-kernel"


def test_icmp_echo_distance_compares_hops_not_ttls():
    f, rst = _reset_syn(rst_ttl=64)
    # A server whose ICMP starts at 255 (some systems) one router away: hop distance 1.
    echo = ServerShape(254, False, 0, None, "ICMP echo reply", by_hops=True)
    assert attribute(rst, f.events, echo, {}).sender == "path"
    f2, rst2 = _reset_syn(rst_ttl=63)
    assert attribute(rst2, f2.events, echo, {}).sender == "server-firewall"


def test_a_reset_from_farther_than_the_target_comes_from_beyond_it_not_the_path():
    # The target (TTL 64: the client's gateway) forwards the port (DNAT) to a backend one hop
    # further, whose kernel resets (TTL 63). A device on the path is never farther than the target.
    f = Flow(server_ttl=64).handshake()
    f.add(1.0, True, "PA", payload=b"GET / HTTP/1.1\r\n\r\n")
    rst = f.rst(1.2, ttl=63, window=0, ip_id=0, options=[])
    att = attribute(rst, f.events, server_shape(f.events), {})
    assert att.sender == "beyond" and att.signals[0] == "rst.from_beyond"
    assert "rst.from_path" not in att.signals
    assert any("farther than the target (1 vs 0 routers)" in r for r in att.reasons)
    assert "a host beyond the target" in att.note()
