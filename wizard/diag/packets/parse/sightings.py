"""An RST sighting as a ResetEvent (pure): who sent it, by the same rules as the live probe.

An RST toward the client is weighed against the server's SYN-ACK (attribution.attribute);
one toward the server against the client's SYN, the same way with the roles turned. The
sequence fit and the delay after the other side's last packet are added to the reasons.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from wizard.diag.packets.parse.attribution import (
    SENDER_WORDS,
    ServerShape,
    attribute,
    ladder,
    refuses_syn,
    timing,
)
from wizard.diag.packets.parse.flows import Sighting
from wizard.diag.packets.parse.frames import Segment, flags_text
from wizard.engine.wire import PacketEvent
from wizard.model.observed import ObservedSender, ResetEvent

CLIENT_WORDS = "the client itself (its TTL and shape match the client's SYN)"
CLOSED_PORT_WORDS = "the server's kernel (a closed port: no socket listened)"
REFUSED_WORDS = ("the server's host refused the connection: nothing listens on the port, or a reject rule of "
                 "its firewall (the same packet)")
REFUSED_REASON = ("an RST-ACK answering the client's SYN (ack = its seq + 1), no SYN-ACK: what a closed port, "
                  "or a rule rejecting with a reset, answers")
# An RST that answers a SYN has no SYN-ACK to be weighed against. Proved sent from the
# server's end by the two-ended proof, it is at the server's distance: the live capture's
# rules then weigh it as they weigh one against a SYN-ACK from elsewhere.
PROVED_SHAPE = "own RST, proved sent from its end by the two-ended proof,"


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def as_event(seg: Segment, t0: float, from_client: bool) -> PacketEvent:
    """A segment as the live probe's PacketEvent (``out``: from the client). The tuple is
    unpacked once and the event built by position: a capture's resets make thousands (~1 us
    less each than by keyword from the segment's fields)."""
    ts, src, dst, sport, dport, bits, seq, ack, window, ttl, ip_id, df, options, ts_val, ts_ecr, payload_len = seg
    return PacketEvent(round((ts - t0) * 1000, 3), "out" if from_client else "in", src, dst, sport, dport, ttl,
                       ip_id, df, flags_text(bits), seq, ack, window, options, ts_val, ts_ecr, payload_len)


def seq_fit(rst: Segment, expected: int | None) -> str:
    if expected is None:
        return "no earlier packet from the RST's side to fit its sequence number to"
    diff = (rst.seq - expected + (1 << 31)) % (1 << 32) - (1 << 31)
    if diff == 0:
        return "its sequence number is exactly the sender's next byte"
    where = "ahead of" if diff > 0 else "behind"
    return f"its sequence number is {abs(diff)} bytes {where} the sender's next byte"


def _gap(rst: Segment, before: tuple[Segment, ...]) -> str:
    last = next((p for p in reversed(before) if p.src == rst.dst and p.sport == rst.dport), None)
    if last is None:
        return ""
    return f"sent {(rst.ts - last.ts) * 1000:.3f} ms after the other side's last packet"


def to_event(n: int, s: Sighting, source: str, from_server_end: bool = False) -> ResetEvent:
    """The ResetEvent for one sighting. ``from_server_end``: the two-ended proof saw this
    RST toward the client leave the server's end (it is the capture near the server's)."""
    client, cport, server, sport = s.flow.key
    from_client = s.toward == "server"
    packets = [*s.before, s.rst]
    t0 = packets[0].ts
    if s.flow.syn is not None and s.flow.syn.ts < t0:
        packets.insert(0, s.flow.syn)
        t0 = s.flow.syn.ts
    if s.flow.synack is not None and s.flow.synack not in packets and s.flow.synack.ts >= t0:
        packets.insert(1 if packets[0] is s.flow.syn else 0, s.flow.synack)
    # The sender's side is "in" for attribute(): turn the roles when the client sent it.
    events = [as_event(p, t0, (p.src == client and p.sport == cport) != from_client) for p in packets]
    rst_ev = events[packets.index(s.rst)]
    opener = s.flow.syn if from_client else s.flow.synack
    # The opener's event as the sender's side ("in"), which it is among the events when it is one of the packets
    at = next((i for i, p in enumerate(packets) if p is opener), -1) if opener is not None else -1
    shape = ServerShape.from_event(events[at] if at >= 0 else as_event(opener, t0, False),
                                   "SYN" if from_client else "SYN-ACK") if opener is not None else None
    refused = not from_client and refuses_syn(rst_ev, events)
    if shape is None and refused and from_server_end:
        shape = ServerShape(rst_ev.ttl, False, 0, None, PROVED_SHAPE, by_hops=True)
    att = attribute(rst_ev, events, shape, None)
    # Compared with the same flow's own opener, a reset from farther than its sender is no
    # backend of a forward (the backend SYN-ACKed too): an anomaly on the way, as for the path.
    sender: ObservedSender = "path" if att.sender == "beyond" else att.sender
    reasons = [r for r in att.reasons if not r.startswith("server counters not available")]
    signals = [sig for sig in att.signals if not sig.startswith("rst.from_") and sig != "rst.unattributed"]
    if from_client:
        reasons = [r.replace("server's SYN", "client's SYN").replace("the server", "the client") for r in reasons]
        if sender != "path" and sender != "unknown":
            sender = "client"
    reasons.append(seq_fit(s.rst, s.expected_seq))
    gap = _gap(s.rst, s.before)
    if gap:
        reasons.append(gap)
    when = timing(events) if not from_client else None
    if when is not None and when.kind not in ("ok", "closed"):
        signals.append(f"timing.{when.kind.replace('-', '_')}")
        if sender == "path" and when.kind == "reset-after-hold":  # as the live capture check says it
            signals.append("rst.after_hold_from_path")
    words = CLIENT_WORDS if sender == "client" else SENDER_WORDS.get(sender, sender)
    if refused:
        reasons.insert(0, REFUSED_REASON)
        words = {"server-kernel": CLOSED_PORT_WORDS, "server-host": REFUSED_WORDS}.get(sender, words)
    if from_client and sender == "path":
        words = "something on the path, not the client (toward the server)"
    lad = ladder([_client_view(e, from_client) for e in events], [])
    return ResetEvent(
        n=n, at=datetime.fromtimestamp(s.rst.ts, UTC), source=source,
        flow=f"{endpoint(client, cport)} -> {endpoint(server, sport)}", client=endpoint(client, cport),
        server=endpoint(server, sport), toward=s.toward, flags=s.rst.flags, sender=sender,
        sender_words=words, reasons=reasons, ttl=s.rst.ttl, hop_distance=att.hop_distance or 0,
        ip_id=s.rst.ip_id, window=s.rst.window, seq_fit=seq_fit(s.rst, s.expected_seq),
        timing=when.kind if when else "client-reset", timing_detail=when.detail if when else "",
        signals=signals, ladder=_mark(lad.as_data(), sender))


def _client_view(ev: PacketEvent, turned: bool) -> PacketEvent:
    """Events back in the client's orientation for the ladder."""
    if not turned:
        return ev
    return replace(ev, direction="in" if ev.direction == "out" else "out")


def _mark(data: dict[str, object], sender: str) -> dict[str, object]:
    """The last ladder arrow (the RST) drawn from the path when the path sent it."""
    events = data.get("events")
    if isinstance(events, list) and events and sender == "path":
        last = events[-1]
        if isinstance(last, dict):
            last["src"] = "path"
            last["note"] = f"{last.get('note', '')} — sent by the path"
        data["lanes"] = ["client", "path", "server"]
    return data
