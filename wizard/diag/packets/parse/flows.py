"""Flows of a packet stream, bounded, and every RST in them attributed (pure).

The same tracker serves a capture file and a live socket: it keeps per flow only the
handshake, a ring of the last packets and the next sequence number of each side, and at
most ``max_flows`` flows (the oldest ended ones go first), so memory stays bounded
whatever the traffic. Each RST becomes a Sighting: the flow as it was when the RST came.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from wizard.diag.packets.parse.frames import Segment

RING = 12  # packets kept per flow before each RST: enough for a ladder and the last data
MAX_FLOWS = 50_000

FlowKey = tuple[str, int, str, int]  # client, client port, server, server port


@dataclass
class Flow:
    key: FlowKey
    first_ts: float
    syn: Segment | None = None
    synack: Segment | None = None
    ring: deque[Segment] = field(default_factory=lambda: deque(maxlen=RING))
    packets: int = 0
    next_seq: dict[str, int] = field(default_factory=dict)  # "client"/"server" -> next seq
    ended: bool = False
    fins: set[str] = field(default_factory=set)
    resets: int = 0

    @property
    def client_isn(self) -> int | None:
        return self.syn.seq if self.syn else None

    @property
    def server_isn(self) -> int | None:
        return self.synack.seq if self.synack else None


@dataclass(frozen=True)
class Sighting:
    """An RST and its flow as they stood when it was seen."""

    rst: Segment
    flow: Flow
    before: tuple[Segment, ...]  # the ring before the RST, oldest first
    toward: str  # "client" or "server"
    expected_seq: int | None  # the sender's next sequence number before the RST


class Tracker:
    """Feeds segments in, keeps flows bounded, collects sightings of RSTs."""

    def __init__(self, server_port: int | None = None, max_flows: int = MAX_FLOWS) -> None:
        self.server_port = server_port
        self.max_flows = max_flows
        self.flows: dict[tuple[str, int, str, int], Flow] = {}
        self._ended: deque[FlowKey] = deque()  # flows that ended, oldest first: evicted first
        self.sightings: list[Sighting] = []
        self.packets = 0
        self.flows_seen = 0
        self.servers: Counter[tuple[str, int]] = Counter()  # server endpoints by flows opened
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def _orient(self, seg: Segment) -> tuple[FlowKey, str] | None:
        """(flow key, "client"/"server" side of the sender), or None when outside --port."""
        fwd = (seg.src, seg.sport, seg.dst, seg.dport)
        rev = (seg.dst, seg.dport, seg.src, seg.sport)
        if fwd in self.flows:
            return fwd, "client"
        if rev in self.flows:
            return rev, "server"
        if self.server_port is not None:
            if seg.dport == self.server_port:
                return fwd, "client"
            if seg.sport == self.server_port:
                return rev, "server"
            return None
        bits = seg.flag_bits
        if bits & 0x12 == 0x02:  # a SYN opens from the client
            return fwd, "client"
        if bits & 0x12 == 0x12:
            return rev, "server"
        # Mid-flow: the lower port is the service's, most of the time.
        return (fwd, "client") if seg.dport < seg.sport else (rev, "server")

    def feed(self, seg: Segment) -> Sighting | None:
        oriented = self._orient(seg)
        if oriented is None:
            return None
        key, side = oriented
        self.packets += 1
        self.first_ts = seg.ts if self.first_ts is None else self.first_ts
        self.last_ts = seg.ts
        flow = self.flows.get(key)
        bits = seg.flag_bits
        if flow is None or (bits & 0x12 == 0x02 and flow.ended):  # a new connection, or a port reused
            flow = self._new(key, seg.ts)
        flow.packets += 1
        if bits & 0x12 == 0x02:
            flow.syn = seg
        elif bits & 0x12 == 0x12:
            flow.synack = seg
        sighting = None
        if bits & 0x04:
            flow.resets += 1
            if not flow.ended:
                self._end(key)
            flow.ended = True
            sighting = Sighting(seg, flow, tuple(flow.ring), "server" if side == "client" else "client",
                                flow.next_seq.get(side))
            self.sightings.append(sighting)
        elif bits & 0x01:
            flow.fins.add(side)
            if len(flow.fins) == 2 and not flow.ended:
                flow.ended = True
                self._end(key)
        advance = seg.payload_len + (1 if bits & 0x03 else 0)
        if not bits & 0x04:
            flow.next_seq[side] = (seg.seq + advance) & 0xFFFFFFFF
        flow.ring.append(seg)
        return sighting

    def _end(self, key: FlowKey) -> None:
        self._ended.append(key)
        if len(self._ended) > 2 * self.max_flows:
            # A port reused before any flow was evicted leaves its old entry behind: the
            # queue is remade from the flows that are ended, oldest first, so it stays bounded.
            self._ended = deque(k for k, f in self.flows.items() if f.ended)

    def _new(self, key: FlowKey, ts: float) -> Flow:
        while len(self.flows) >= self.max_flows:
            # The oldest ended flow goes first; with none ended, the oldest of all.
            victim = self._ended.popleft() if self._ended else next(iter(self.flows))
            gone = self.flows.get(victim)
            if gone is not None and (gone.ended or not self._ended):
                del self.flows[victim]
        self.flows.pop(key, None)
        flow = self.flows[key] = Flow(key, ts)
        self.flows_seen += 1
        self.servers[(key[2], key[3])] += 1
        return flow


def opened_only(syn: Segment) -> Flow:
    """A flow known only by its SYN (a capture's flows that ended without a reset)."""
    flow = Flow((syn.src, syn.sport, syn.dst, syn.dport), syn.ts, syn=syn)
    flow.packets = 1
    return flow
