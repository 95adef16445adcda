"""A socket probe's events timed by the packets of its own connection (pure).

The socket sees a SYN-ACK only when ``connect()`` returns, a reset only when ``recv()``
fails: on a busy event loop that can be milliseconds after the packet. When the probe ran
inside a capture, each event takes the time of the packet that caused it, counted from the
SYN on the wire, so the ladder says what the capture says.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.engine.probes import PacketEvent, ProbeEvent


@dataclass(frozen=True)
class Timed:
    """An event's time in ms after the SYN, and whether a captured packet gives it."""

    ms: float
    on_wire: bool


def _packet_for(what: str, ev: PacketEvent) -> bool:
    out = ev.direction == "out"
    if what == "syn":
        return out and ev.is_syn
    if what == "connected":
        return not out and ev.is_synack
    if what in ("refused", "reset"):
        return not out and ev.is_rst
    if what == "sent":
        return out and ev.payload_len > 0 and not ev.is_rst
    if what == "received":
        return not out and ev.payload_len > 0 and not ev.is_rst
    if what == "eof":
        return not out and ev.is_fin
    if what == "closed":
        return out and ev.is_fin
    return False  # an idle, a timeout, a local error: no packet of its own


def _past_burst(flow: list[PacketEvent], hit: int) -> int:
    """The packet after a burst of data that starts at ``hit``: the socket reports one
    send or one read for what the wire carries as several segments (and their ACKs)."""
    way = flow[hit].direction
    at = hit + 1
    while at < len(flow):
        p = flow[at]
        more = p.direction == way and p.payload_len > 0 and not (p.is_fin or p.is_rst)
        ack = p.direction != way and p.payload_len == 0 and p.flags == "A"
        if not (more or ack):
            break
        at += 1
    return at


def retime(events: list[ProbeEvent], flow: list[PacketEvent]) -> list[Timed] | None:
    """The wire's time of each of ``events`` (in order), or None when the capture holds no
    SYN of this connection to count from. Packets are matched in order, each used once; an
    event no packet shows keeps its distance from the event before it, and says so."""
    syn = next((p for p in flow if p.direction == "out" and p.is_syn), None)
    if syn is None:
        return None
    out: list[Timed] = []
    at = 0  # the next packet that may match
    prev_socket, prev_wire = 0.0, 0.0
    for ev in events:
        hit = next((i for i in range(at, len(flow)) if _packet_for(ev.what, flow[i])), None)
        if hit is not None:
            timed = Timed(round(flow[hit].ms - syn.ms, 3), True)
            at = _past_burst(flow, hit) if ev.what in ("sent", "received") else hit + 1
        else:
            timed = Timed(round(prev_wire + max(0.0, ev.ms - prev_socket), 3), False)
        prev_socket, prev_wire = ev.ms, timed.ms
        out.append(timed)
    return out
