"""Who sent each RST and when (pure): attribution, timing classes and the ladder from packets.

Input is what the packet probe saw (PacketEvents), the server's fingerprint (its SYN-ACK)
and, when the server context owns the target, the server's counter deltas around the
probe. The reasoning follows the RST shapes of the domain reference (section 0.2): a live
socket's abort, the kernel's stateless reply, a netfilter reject and an injected RST differ
in TTL, window, options and IP ID, and in which of the sender's counters move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wizard.diag.kernel.parse.counters import parse_proc_counters
from wizard.engine.wire import PacketEvent, initial_ttl
from wizard.model.wording import plural

Sender = Literal["server-kernel", "server-app", "server-firewall", "server-host", "path", "beyond", "unknown"]
TimingClass = Literal["reset-to-syn", "reset-before-data", "reset-after-first-data", "reset-after-bytes",
                      "reset-after-hold", "reset-after-server-fin", "reset-beyond-nth", "no-answer",
                      "closed", "ok"]

ABORT_COUNTERS = ("TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnMemory",
                  "TcpExtTCPAbortOnTimeout", "TcpExtTCPAbortOnLinger")
OUT_RSTS = "TcpOutRsts"
IDLE_GAP_S = 1.0  # a pause this long before the fatal segment counts as an idle hold


@dataclass(frozen=True)
class ServerShape:
    """What genuine packets from the server look like on this flow."""

    ttl: int
    has_timestamps: bool
    window: int
    last_ip_id: int | None = None  # the server's last IP ID on this flow (IPv4)
    source: str = "SYN-ACK"
    # Compare hop distances, not TTLs: the shape comes from another protocol (an ICMP echo
    # reply), whose initial TTL may differ from TCP's on some systems.
    by_hops: bool = False

    @classmethod
    def from_event(cls, ev: PacketEvent, source: str = "SYN-ACK") -> ServerShape:
        return cls(ev.ttl, ev.has_timestamps, ev.window, ev.ip_id, source)

    @property
    def hops(self) -> int:
        return initial_ttl(self.ttl) - self.ttl

    def same_distance(self, ttl: int) -> bool:
        return initial_ttl(ttl) - ttl == self.hops if self.by_hops else ttl == self.ttl


@dataclass(frozen=True)
class Attribution:
    rst: PacketEvent
    sender: Sender
    reasons: tuple[str, ...]
    signals: tuple[str, ...] = ()
    hop_distance: int | None = None  # routers between us and the RST's sender
    compared: bool = True  # whether a server shape (a SYN-ACK, here or elsewhere) was at hand

    def note(self) -> str:
        if self.sender == "unknown" and not self.compared:
            return "unattributed: no SYN-ACK to compare with"
        return f"sent by {SENDER_WORDS[self.sender]}"


# The signal each sender raises (the live capture's and an observation's alike).
SENDER_SIGNAL: dict[str, str] = {
    "server-kernel": "rst.from_server_kernel", "server-app": "rst.from_server_app",
    "server-firewall": "rst.from_server_firewall", "server-host": "rst.from_server_host", "path": "rst.from_path",
    "beyond": "rst.from_beyond", "unknown": "rst.unattributed"}
SENDER_WORDS: dict[str, str] = {
    "server-kernel": "the server's kernel (no socket matched)",
    "server-app": "the server's application (a live socket aborted)",
    "server-firewall": "the server host's firewall (the server's TCP stack sent nothing)",
    # Without the server's counters a closed port's reply and a reject rule's are one packet.
    "server-host": "the server's host: its kernel (no socket matched) or a reject rule of its firewall",
    "path": "something on the path, not the server",
    "beyond": "a host beyond the target (farther than it: a port forward, a DNAT or a load "
              "balancer's backend), not by the target nor by a device on the path",
    "unknown": "an undetermined sender",
}


def parse_counters(text: str) -> dict[str, int]:
    """``/proc/net/snmp`` or ``/proc/net/netstat`` text as nstat names: {"TcpOutRsts": n, ...}."""
    return parse_proc_counters(text)


def counter_deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if k in before and after[k] != before[k]}


def flows(events: list[PacketEvent]) -> dict[int, list[PacketEvent]]:
    """Events grouped by the client's port (one probe connection each), in time order."""
    out: dict[int, list[PacketEvent]] = {}
    for ev in sorted(events, key=lambda e: e.ms):
        out.setdefault(ev.client_port, []).append(ev)
    return out


def server_shape(flow: list[PacketEvent]) -> ServerShape | None:
    synack = next((e for e in flow if e.direction == "in" and e.is_synack), None)
    return ServerShape.from_event(synack) if synack else None


def _ip_id_continues(rst: PacketEvent, flow: list[PacketEvent]) -> bool | None:
    """Whether the RST's IP ID continues the server's IP IDs on the flow (None: can't tell)."""
    if rst.ip_id is None:
        return None
    ids = [e.ip_id for e in flow if e.direction == "in" and not e.is_rst and e.ms <= rst.ms
           and e.ip_id not in (None, 0)]
    if not ids:
        return None
    step = (rst.ip_id - ids[-1]) % 65536
    return 0 < step <= 64


def attribute(rst: PacketEvent, flow: list[PacketEvent], shape: ServerShape | None,
              deltas: dict[str, int] | None) -> Attribution:
    """Classify one received RST: server kernel, server application, server firewall or path."""
    reasons: list[str] = []
    signals: list[str] = []
    stateless = rst.window == 0 and not rst.options and rst.ip_id in (0, None)
    ip_id_cont = _ip_id_continues(rst, flow)
    live = rst.window > 0 and (rst.has_timestamps or not (shape and shape.has_timestamps)) \
        and ip_id_cont is not False
    reasons.append(_shape_reason(rst, stateless, live, ip_id_cont))
    hop_distance = initial_ttl(rst.ttl) - rst.ttl
    ttl_match = _compare_with_server(rst, shape, hop_distance, reasons, signals)
    moved_abort = {k: v for k, v in (deltas or {}).items() if k in ABORT_COUNTERS and v > 0}
    out_rsts = (deltas or {}).get(OUT_RSTS, 0)
    reasons += _counters_reasons(deltas, moved_abort, out_rsts)
    sender = _sender(ttl_match, deltas, bool(moved_abort), out_rsts, live, stateless, shape, reasons,
                     hop_distance)
    signals.insert(0, SENDER_SIGNAL[sender])
    return Attribution(rst, sender, tuple(reasons), tuple(dict.fromkeys(signals)), hop_distance,
                       compared=shape is not None)


def _shape_reason(rst: PacketEvent, stateless: bool, live: bool, ip_id_cont: bool | None) -> str:
    options = ("timestamps" if rst.has_timestamps else "no TCP options" if not rst.options
               else "options " + ",".join(rst.options))
    shape_words = (f"window {rst.window}, {options}, "
                   f"IP ID {rst.ip_id if rst.ip_id is not None else 'n/a (IPv6)'}")
    if stateless:
        return f"stateless shape ({shape_words}): no live socket produced it"
    if live:
        return (f"socket-abort shape ({shape_words}"
                f"{', IP ID continues the flow' if ip_id_cont else ''}): a live socket aborted")
    return f"mixed shape ({shape_words})"


def _compare_with_server(rst: PacketEvent, shape: ServerShape | None, hop_distance: int,
                         reasons: list[str], signals: list[str]) -> bool | None:
    """The RST's TTL and options against the server's SYN-ACK; whether the distance matches
    (None: nothing to compare with)."""
    if shape is None:
        reasons.append("no SYN-ACK from the server to compare with, on this connection or elsewhere "
                       "in the run (TTL and options unknown)")
        return None
    ttl_match = shape.same_distance(rst.ttl)
    if ttl_match:
        reasons.append(f"TTL {rst.ttl} vs the server's {shape.source} TTL {shape.ttl}: "
                       f"same distance as the server ({plural(hop_distance, 'router')})")
    else:
        reasons.append(f"TTL {rst.ttl} vs the server's {shape.source} TTL {shape.ttl}: "
                       f"sent {plural(hop_distance, 'router')} away, the server is {shape.hops}")
        signals.append("rst.ttl_mismatch")
    if shape.has_timestamps and not rst.has_timestamps and not _answers_syn(rst):
        reasons.append("no timestamp option although the server uses timestamps on this flow")
        if not ttl_match:
            signals.append("rst.no_timestamps")
    return ttl_match


def _counters_reasons(deltas: dict[str, int] | None, moved_abort: dict[str, int], out_rsts: int) -> list[str]:
    if deltas is None:
        return ["server counters not available (the server context does not own the target)"]
    parts = []
    if moved_abort:
        parts.append("server counters moved: " + ", ".join(f"{k} +{v}" for k, v in moved_abort.items()))
    if out_rsts:
        parts.append(f"server {OUT_RSTS} +{out_rsts}: the server's TCP stack sent "
                     f"{'a reset' if out_rsts == 1 else 'resets'}")
    if not moved_abort and not out_rsts:
        parts.append(f"server {OUT_RSTS} and TCPAbortOn* did not move: the server's TCP stack sent no reset")
    return parts


def _sender(ttl_match: bool | None, deltas: dict[str, int] | None, moved_abort: bool, out_rsts: int,
            live: bool, stateless: bool, shape: ServerShape | None, reasons: list[str],
            hop_distance: int = 0) -> Sender:
    """Who sent the RST, from the distance, the server's counters and the RST's shape."""
    if ttl_match is False and shape is not None and hop_distance > shape.hops:
        # Farther than the target: a device on the path is closer, never farther. The target
        # forwards the connection, and its backend answered.
        reasons.append(f"the RST came from farther than the target ({hop_distance} vs {shape.hops} "
                       f"{'router' if shape.hops == 1 else 'routers'}): from beyond it, where the target "
                       "forwards the connection")
        return "beyond"
    if ttl_match is False:
        return "path"
    if deltas is not None:
        if moved_abort or (live and out_rsts):
            return "server-app"
        if out_rsts:
            return "server-kernel"
        if shape is None:
            # The server's stack sent nothing; its host's firewall and a device on the path
            # send the same stateless RST, and only the distance (TTL) would tell them apart.
            reasons.append("unattributed: no SYN-ACK to compare with; the server host's firewall "
                           "or a device on the path sent it, and only the TTL would tell which")
            return "unknown"
        return "server-firewall" if stateless else "path"
    if live:
        return "server-app"
    if stateless and shape is not None:
        reasons.append("the server's kernel (no socket) and a reject rule of its firewall send this same "
                       "packet; the server's TCP and rule counters would tell which (diagnose with --server)")
        return "server-host"
    if shape is None:
        reasons.append("unattributed: no SYN-ACK to compare with and no server counters; the "
                       "server's kernel, its firewall and a device on the path look alike here")
    return "unknown"


def refuses_syn(rst: PacketEvent, flow: list[PacketEvent]) -> bool:
    """Whether the RST is a closed port's answer to the client's SYN: an RST-ACK that
    acknowledges the SYN (ack = its seq + 1), and no SYN-ACK on the connection."""
    if "A" not in rst.flags or any(e.is_synack for e in flow):
        return False
    syn = next((e for e in flow if e.direction != rst.direction and e.is_syn), None)
    return syn is not None and rst.ack == (syn.seq + 1) & 0xFFFFFFFF


def _answers_syn(rst: PacketEvent) -> bool:
    # An RST answering a SYN (seq 0, ACK set) never carries options, whoever sends it.
    return "A" in rst.flags and rst.seq == 0


@dataclass(frozen=True)
class Timing:
    kind: TimingClass
    detail: str
    bytes_before: int = 0
    idle_s: float = 0.0


def timing(flow: list[PacketEvent]) -> Timing:
    """When the connection failed: to the SYN, after the first data, after N bytes, after a hold."""
    rst = next((e for e in flow if e.direction == "in" and e.is_rst), None)
    got_synack = any(e.direction == "in" and e.is_synack for e in flow)
    if rst is None:
        if not got_synack:
            return Timing("no-answer", "the SYN was never answered (dropped: a timeout, not a reset)")
        if any(e.direction == "in" and e.is_fin for e in flow):
            return Timing("closed", "the server closed the connection with FIN; no reset")
        return Timing("ok", "no reset on this connection")
    if not got_synack:
        return Timing("reset-to-syn", f"RST answered the SYN after {rst.ms:.1f} ms: the client sees "
                      "'connection refused', not 'reset by peer'")
    before = [e for e in flow if e.ms <= rst.ms and e is not rst]
    data_out = [e for e in before if e.direction == "out" and e.payload_len > 0]
    sent = sum(e.payload_len for e in data_out)
    if not data_out:
        return Timing("reset-before-data", f"RST {rst.ms:.1f} ms after the handshake, before any data was sent")
    last_data = data_out[-1]
    fin = next((e for e in before if e.direction == "in" and e.is_fin and e.ms < last_data.ms), None)
    if fin is not None and data_out[0].ms < fin.ms:
        # An exchange passed, the server closed its side, and the client wrote into the closed
        # connection later: a pooled keep-alive connection reused after the server let it go.
        return Timing("reset-after-server-fin", f"the server closed the connection (FIN at {fin.ms / 1000:.1f} s); "
                      f"the client wrote {(last_data.ms - fin.ms) / 1000:.1f} s later and that was reset", sent,
                      round((last_data.ms - fin.ms) / 1000, 2))
    # The silence before the segment that drew the RST: an idle hold if long enough.
    earlier = [e for e in before if e.ms < last_data.ms]
    gap = (last_data.ms - earlier[-1].ms) / 1000 if earlier else 0.0
    if gap >= IDLE_GAP_S and len(data_out) > 1:
        return Timing("reset-after-hold", f"RST answered the first segment after {gap:.1f} s idle "
                      f"(the earlier exchange passed)", sent, round(gap, 2))
    if len(data_out) == 1:
        return Timing("reset-after-first-data", f"RST {rst.ms - last_data.ms:.1f} ms after the first "
                      f"data segment ({sent} B)", sent)
    return Timing("reset-after-bytes", f"RST after {sent} bytes from the client", sent)


def burst_timing(flow_list: list[list[PacketEvent]]) -> Timing | None:
    """'Only beyond the N-th connection': the first N of a burst passed, later ones failed."""
    outcomes = [timing(f).kind for f in sorted(flow_list, key=lambda f: f[0].ms) if f]
    bad = {"reset-to-syn", "reset-before-data", "reset-after-first-data", "reset-after-bytes", "no-answer"}
    if len(outcomes) < 2 or outcomes[0] in bad:
        return None
    first_bad = next((i for i, k in enumerate(outcomes) if k in bad), None)
    if first_bad is None:
        return None
    failed = sum(k in bad for k in outcomes[first_bad:])
    return Timing("reset-beyond-nth", f"the first {plural(first_bad, 'connection')} passed, then "
                  f"{failed} of the next {len(outcomes) - first_bad} failed")


@dataclass
class Ladder:
    lanes: list[str] = field(default_factory=lambda: ["client", "server"])
    events: list[dict[str, object]] = field(default_factory=list)

    def as_data(self) -> dict[str, object]:
        return {"lanes": self.lanes, "events": self.events}


def _label(ev: PacketEvent) -> str:
    flags = ev.flags  # the is_* properties' tests, on the letters read once (a ladder per reset)
    if "R" in flags:
        return "RST-ACK" if "A" in flags else "RST"
    if "S" in flags:
        return "SYN-ACK" if "A" in flags else "SYN"
    if "F" in flags:
        return f"FIN (data {ev.payload_len} B)" if ev.payload_len else "FIN"
    if ev.payload_len:
        return f"data {ev.payload_len} B"
    return "ACK"


def ladder(flow: list[PacketEvent], attributions: list[Attribution], max_events: int = 40) -> Ladder:
    """The sequence diagram of one connection from real packets; pure ACKs after the handshake
    are left out, so the diagram shows what matters."""
    by_rst = {id(a.rst): a for a in attributions}
    lad = Ladder()
    seen_ack = False
    for ev in flow:
        label = _label(ev)
        if label == "ACK":
            if seen_ack:
                continue
            seen_ack = True
        opts = "TS" if ev.has_timestamps else "no TS"
        note = (f"ttl {ev.ttl}, win {ev.window}, {opts}"
                + (f", ip id {ev.ip_id}" if ev.ip_id is not None else ""))
        src, dst = ("client", "server") if ev.direction == "out" else ("server", "client")
        att = by_rst.get(id(ev))
        if att is not None:
            note += f" — {att.note()}"
            if att.sender == "path":
                src = "path"
        lad.events.append({"ms": ev.ms, "src": src, "dst": dst, "label": label, "note": note})
        if len(lad.events) >= max_events:
            lad.events.append({"ms": ev.ms, "src": "client", "dst": "client", "label": "…",
                               "note": "ladder cut"})
            break
    if any(e["src"] == "path" for e in lad.events):
        lad.lanes = ["client", "path", "server"]
    return lad


def packet_table(events: list[PacketEvent]) -> str:
    """A fixed-width table of the packets, one line each, for the report's fenced block."""
    head = f"{'ms':>9}  {'dir':3}  {'from':>22} {'to':>22}  {'flags':5} {'ttl':>3} {'ipid':>5} " \
           f"{'DF':2} {'seq':>10} {'ack':>10} {'win':>5} {'len':>5}  options"
    lines = [head]
    for e in events:
        lines.append(
            f"{e.ms:9.2f}  {'->' if e.direction == 'out' else '<-':3}  {e.src + ':' + str(e.sport):>22} "
            f"{e.dst + ':' + str(e.dport):>22}  {e.flags:5} {e.ttl:>3} "
            f"{'-' if e.ip_id is None else e.ip_id:>5} {'DF' if e.df else '':2} {e.seq:>10} {e.ack:>10} "
            f"{e.window:>5} {e.payload_len:>5}  {','.join(e.options) or '-'}")
    return "\n".join(lines)
