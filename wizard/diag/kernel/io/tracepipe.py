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
from collections import Counter, deque
from dataclasses import dataclass

from wizard.diag.kernel.io.tracing import KernelTrace
from wizard.diag.kernel.parse.tracelines import TraceEvent, parse_line

RING = 256  # trace events of each kind kept to match resets against
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
        self.rest = b""
        self.recent: deque[TraceEvent] = deque(maxlen=RING)  # resets sent and received
        self.drops: deque[TraceEvent] = deque(maxlen=RING)
        self.states: deque[str] = deque(maxlen=RING)  # the lines, unparsed
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
            self.states.append(line)
            return
        ev = parse_line(line)
        if ev is None:
            return
        self.seen[ev.event] += 1
        if ev.event in ("tcp_send_reset", "tcp_receive_reset"):
            self.recent.append(ev)
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
        for t in reversed(self.recent):
            if not (t.local and t.remote and {t.local.port, t.remote.port} == ports):
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
        mark = f"port={_port(client)} "  # the client's port, as sport or dport: most lines fail this cheaply
        out = []
        for line in self.states:
            t = parse_line(line) if mark in line else None
            if t and t.local and t.remote and {t.local.port, t.remote.port} == ports:
                out.append(f"{t.local.display} {t.fields.get('oldstate', '?')} -> {t.fields.get('newstate', '?')}")
        return out[-MAX_STATES:]

    def close(self) -> None:
        os.close(self.fd)
