"""One TCP segment as the wire showed it (pure: types only): what the packet probes, the live
capture and a capture file's reading all give attribution, and the initial TTL it started
from. Apart from the probes' other value types (wizard.engine.probes, which names these
too), so that reading a capture file's resets builds none of those."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["out", "in"]


@dataclass(frozen=True)
class PacketEvent:
    """One TCP segment seen on the wire, ``ms`` after the capture started."""

    ms: float
    direction: Direction  # out: towards the target port; in: from it
    src: str
    dst: str
    sport: int
    dport: int
    ttl: int  # TTL (IPv4) or hop limit (IPv6) as received
    ip_id: int | None  # None for IPv6
    df: bool
    flags: str  # scapy's letters: S, SA, A, PA, FA, R, RA ...
    seq: int
    ack: int
    window: int
    options: tuple[str, ...] = ()
    ts_val: int | None = None
    ts_ecr: int | None = None
    payload_len: int = 0

    @property
    def is_rst(self) -> bool:
        return "R" in self.flags

    @property
    def is_syn(self) -> bool:
        return "S" in self.flags and "A" not in self.flags

    @property
    def is_synack(self) -> bool:
        return "S" in self.flags and "A" in self.flags

    @property
    def is_fin(self) -> bool:
        return "F" in self.flags

    @property
    def has_timestamps(self) -> bool:
        return "Timestamp" in self.options

    @property
    def client_port(self) -> int:
        return self.sport if self.direction == "out" else self.dport


def initial_ttl(ttl: int) -> int:
    """The usual initial TTL a received one started from (Linux 64, Windows 128, others 255)."""
    return next(i for i in (32, 64, 128, 255) if ttl <= i)


__all__ = ["Direction", "PacketEvent", "initial_ttl"]
