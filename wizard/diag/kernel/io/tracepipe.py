"""The kernel's events of a watch, read live from its tracefs instance's ``trace_pipe`` (I/O).

A watch keeps bounded rings of what the tracepoints say: the resets the kernel sent or
received (with the reason where the kernel has one), the packets it dropped (``kfree_skb``
with its reason, already narrowed in the kernel to the reasons that explain resets), and the
TCP state changes of the watched port (``inet_sock_set_state``, filtered in the kernel by
port). Each reset the capture sees is matched to them: its own line by its ports and
direction, the drops of the second before it, its flow's last state changes.

Tracefs is one per kernel, not per network namespace: on a host that runs containers, the
drops of every namespace are seen (hence "in that second", never "of this flow").
"""

from __future__ import annotations

import os
import re
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from wizard.diag.kernel.io.tracing import KernelTrace
from wizard.diag.kernel.parse.tracelines import TraceEvent, parse_line

RING = 256  # the kernel's drops kept to match resets against
#: flows whose reset lines and state changes are kept (the oldest flow goes first): as many
#: as watch's flow tracker keeps, seconds of a busy port's connections (a reset is matched
#: some 0.3 s after it)
FLOWS = 4096
T = TypeVar("T")
_PORTS = re.compile(r"\bsport=(\d+) dport=(\d+)")
DROP_BEFORE_S = 1.0  # a drop this long before the RST is "of that second"
DROP_AFTER_S = 0.3
MAX_STATES = 6  # state changes quoted per flow


@dataclass(frozen=True)
class KernelView:
    """What the kernel said about one reset."""

    reason: str | None  # its own tcp_send_reset / tcp_receive_reset line, in words
    drops: list[str]  # "3 x NETFILTER_DROP at nft_do_chain+0x..": the drops of that second
    states: list[str]  # "10.0.0.5:443 TCP_ESTABLISHED -> TCP_CLOSE": its flow's state changes


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


class TracePipe:
    """The instance's ``trace_pipe``, read without blocking into bounded rings."""

    def __init__(self, trace: KernelTrace) -> None:
        self.fd = os.open(f"{trace.path}/trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        self.empty()

    def empty(self) -> None:
        """No line read yet. Reset lines and state changes are kept by their flow's two ports,
        not in one ring of the latest: a busy port makes thousands a second, and a reset is
        matched to them some 0.3 s after it (watch's settle time), when one ring of a few
        hundred would long have let its lines go."""
        self.rest = b""
        self.recent: _ByFlow[str] = _ByFlow(4)  # resets sent and received (a port reused), as lines
        self.drops: deque[TraceEvent] = deque(maxlen=RING)
        self.states: _ByFlow[str] = _ByFlow(MAX_STATES)  # the lines, unparsed
        self.seen: Counter[str] = Counter()  # events read, by tracepoint

    def poll(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            lines = (self.rest + chunk).split(b"\n")
            self.rest = lines.pop()
            for raw in lines:
                self.add(raw.decode("utf-8", "replace"))

    def add(self, line: str) -> None:
        """One line of the pipe. State changes are many (every connection of the port makes
        several): they are kept as text and parsed only when a reset of their ports asks."""
        if " inet_sock_set_state: " in line:
            self.seen["inet_sock_set_state"] += 1
            if m := _PORTS.search(line):
                self.states.add(frozenset((int(m[1]), int(m[2]))), line)
            return
        ev = parse_line(line)
        if ev is None:
            return
        self.seen[ev.event] += 1
        if ev.event in ("tcp_send_reset", "tcp_receive_reset"):
            if ev.local and ev.remote:
                self.recent.add(frozenset((ev.local.port, ev.remote.port)), line)  # a line weighs less
        elif ev.event == "kfree_skb":
            self.drops.append(ev)

    def view(self, client: str, server: str, toward: str, mono: float) -> KernelView:
        """The kernel's account of the RST from one end of ``client``-``server`` to the other,
        read at ``mono`` (the trace clock: CLOCK_MONOTONIC)."""
        return KernelView(self.reason_for(client, server, toward), self.drops_near(mono),
                          self.states_of(client, server))

    def reason_for(self, client: str, server: str, toward: str) -> str | None:
        """This RST's line: the sender's tcp_send_reset (the reason is there) before the
        receiver's tcp_receive_reset, matched by ports and direction."""
        src, dst = (_port(server), _port(client)) if toward == "client" else (_port(client), _port(server))
        ports = {src, dst}
        found = None
        for line in reversed(self.recent.of(frozenset(ports))):
            t = parse_line(line)
            if not (t and t.local and t.remote and {t.local.port, t.remote.port} == ports):
                continue
            if t.event == "tcp_send_reset" and t.local.port == src:
                found = t
                break
            if t.event == "tcp_receive_reset" and t.local.port == dst and found is None:
                found = t
        if found is None:
            return None
        what = "sent" if found.event == "tcp_send_reset" else "received"
        reason = f", reason {found.reason}" if found.reason else ""
        state = f", state {found.state}" if found.state else ""
        return f"the kernel {what} it ({found.event}{reason}{state}): {found.line.strip()}"

    def drops_near(self, mono: float) -> list[str]:
        """The kernel's drops from DROP_BEFORE_S before ``mono`` to DROP_AFTER_S after it, by
        reason and place."""
        counts = Counter((d.reason or "?", d.fields.get("location", "?")) for d in self.drops
                         if mono - DROP_BEFORE_S <= d.ts <= mono + DROP_AFTER_S)
        return [f"{n} x {reason} at {where}" for (reason, where), n in counts.most_common()]

    def states_of(self, client: str, server: str) -> list[str]:
        ports = {_port(client), _port(server)}
        out = []
        for line in self.states.of(frozenset(ports)):
            t = parse_line(line)
            if t and t.local and t.remote and {t.local.port, t.remote.port} == ports:
                out.append(f"{t.local.display} {t.fields.get('oldstate', '?')} -> {t.fields.get('newstate', '?')}")
        return out[-MAX_STATES:]

    def close(self) -> None:
        os.close(self.fd)


class _ByFlow(Generic[T]):
    """Lines by their flow's two ports: the last ``per_flow`` of each flow, of at most FLOWS
    flows (the flow least recently added to goes first), so memory is bounded whatever the rate."""

    def __init__(self, per_flow: int) -> None:
        self.per_flow = per_flow
        self.flows: OrderedDict[frozenset[int], deque[T]] = OrderedDict()

    def add(self, key: frozenset[int], item: T) -> None:
        kept = self.flows.get(key)
        if kept is None:
            if len(self.flows) >= FLOWS:
                self.flows.popitem(last=False)
            kept = self.flows[key] = deque(maxlen=self.per_flow)
        else:
            self.flows.move_to_end(key)
        kept.append(item)

    def of(self, key: frozenset[int]) -> deque[T] | tuple[()]:
        return self.flows.get(key, ())
