"""Resets observed in real traffic, live (watch) or recorded (analyze): the session's observation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, WrapSerializer

from wizard.model.factories import new_dict, new_list

Mode = Literal["diagnose", "watch", "analyze"]
# Who sent an RST, as the packets tell it.
ObservedSender = Literal["server-app", "server-kernel", "server-firewall", "server-host", "path", "client",
                         "unknown"]
# Where the two-ended proof places an RST: seen leaving its sender and arriving (sent),
# seen arriving but never leaving the other end (injected), seen leaving but never arriving
# (lost), or the other capture does not cover that moment of that flow (not-covered).
Proof = Literal["sent", "injected", "lost", "not-covered"]


class ResetEvent(BaseModel):
    """One RST seen, with who sent it and why the packets say so."""

    n: int  # the event's number in this observation, from 1
    at: datetime  # when it was seen (the capture's clock)
    source: str  # the capture file, or "live:IFACE"
    flow: str  # "client:port -> server:port"
    client: str
    server: str
    toward: Literal["client", "server"]  # which end the RST was going to
    flags: str
    sender: ObservedSender
    sender_words: str
    reasons: list[str] = Field(default_factory=new_list)
    ttl: int
    hop_distance: int
    ip_id: int | None = None
    window: int = 0
    seq_fit: str = ""  # how the RST's sequence number fits the sender's stream
    timing: str = ""  # the timing class (reset-before-data, reset-after-hold, ...)
    timing_detail: str = ""
    kernel_reason: str | None = None  # the kernel's reason (watch, through tracefs)
    proof: Proof | None = None  # two captures only
    proof_detail: str = ""
    counters: dict[str, int] = Field(default_factory=new_dict)  # the machine's TCP counters that moved that second
    signals: list[str] = Field(default_factory=new_list)  # the analysis' signal ids this RST raises
    ladder: dict[str, Any] = Field(default_factory=new_dict)
    drops: list[str] = Field(default_factory=new_list)  # the kernel's drops of that second, by reason (watch)
    states: list[str] = Field(default_factory=new_list)  # the flow's last TCP state changes, as the kernel logged them
    logs: list[str] = Field(default_factory=new_list)  # the server's log lines of that second (watch)


class CaptureSummary(BaseModel):
    """One packet source and what was read from it."""

    source: str
    side: Literal["client", "server", "unknown"] = "unknown"
    reader: str = ""  # libpcap with its BPF filter, dpkt, a live socket
    linktype: int | None = None
    packets: int = 0  # packets Python looked at (after the filter)
    lost: int = 0  # a live capture's: packets the kernel kept for it and dropped, its queue full
    flows: int = 0
    resets: int = 0
    first: datetime | None = None
    last: datetime | None = None
    notes: list[str] = Field(default_factory=new_list)


def _as_list(events: Sequence[ResetEvent], handler: SerializerFunctionWrapHandler) -> Any:
    # A watch's events are an EventLog (wizard.model.eventlog): read as a list here, or streamed
    # one at a time by Session.json_parts (what writes a session to a file).
    return handler(events if isinstance(events, list) else list(events))


Events = Annotated[Sequence[ResetEvent], WrapSerializer(_as_list)]


class Observation(BaseModel):
    """Every reset seen in one watch or one analysis, and what was read to see them."""

    sources: list[CaptureSummary] = Field(default_factory=new_list)
    events: Events = Field(default_factory=new_list)  # a list, or a watch's EventLog
    by_sender: dict[str, int] = Field(default_factory=new_dict)
    by_proof: dict[str, int] = Field(default_factory=new_dict)
    dropped_events: int = 0  # events past the cap, counted and not kept
    kernel: list[str] = Field(default_factory=new_list)  # what the kernel's tracepoints gave (watch)
    logs: list[str] = Field(default_factory=new_list)  # the logs followed and what could not be (watch)

    @property
    def lost_packets(self) -> int:
        """Packets the live captures' kernel queues dropped (a capture file loses none)."""
        return sum(src.lost for src in self.sources)

    def count(self) -> None:
        """Recount by_sender and by_proof from the events."""
        counts = getattr(self.events, "counts", None)  # an EventLog keeps them as it is filled
        if counts is not None:
            self.by_sender, self.by_proof = counts()
            return
        self.by_sender, self.by_proof = {}, {}
        for ev in self.events:
            self.by_sender[ev.sender] = self.by_sender.get(ev.sender, 0) + 1
            if ev.proof is not None:
                self.by_proof[ev.proof] = self.by_proof.get(ev.proof, 0) + 1
