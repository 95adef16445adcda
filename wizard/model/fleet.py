"""A fleet: many hosts' sessions merged into one (`reset-wizard merge`), JSON schema ``fleet/1``."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

FLEET_SCHEMA: Final = "fleet/1"

Role = Literal["client", "server"]
PointerKind = Literal["no-resets", "everywhere", "everywhere-mixed", "some-hosts", "interrupted"]


class HostView(BaseModel):
    """What one host's session says, reduced to what can be compared across hosts."""

    model_config = ConfigDict(extra="forbid")

    label: str  # the name the fleet knows it by (its session file's stem: Ansible's inventory name)
    file: str
    client: str  # the machine's own name, as its session recorded it
    server_context: str
    role: Role
    target: str
    addresses: list[str] = Field(default_factory=list)  # what the target resolved to there
    sources: list[str] = Field(default_factory=list)  # the probe's own address(es)
    first_hop: str = ""  # the first router on its path to the target, when traced
    verdict: str
    title: str = ""
    confidence: float = 0.0
    summary: str = ""
    saw_reset: bool = False
    resets: int = 0  # probe connections that ended in a reset
    attempts: int = 0  # probe connections made
    server_said: list[str] = Field(default_factory=list)  # server-side facts about resets sent or not
    interrupted: bool = False
    started_at: datetime | None = None


class Difference(BaseModel):
    """One attribute on which the hosts that saw resets differ from those that did not."""

    attribute: str  # "source subnet", "target address", "first hop", "server context", "verdict"
    with_resets: list[str]
    without_resets: list[str]


class Pointer(BaseModel):
    """What the differences between hosts point to: the merged report leads with it."""

    kind: PointerKind
    headline: str
    hosts: list[str] = Field(default_factory=list)  # the hosts the pointer names
    differences: list[Difference] = Field(default_factory=list)


class TimelineEvent(BaseModel):
    at: datetime
    host: str
    role: Role
    what: str
    flow: str = ""  # "client:port -> server:port" for a reset seen in real traffic (watch, analyze)
    matched: str = ""  # for a client's reset: what the other end (or another host) saw then


class Fleet(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_version: Literal["fleet/1"] = Field(default=FLEET_SCHEMA, alias="schema")
    merged_at: datetime
    hosts: list[HostView]
    pointer: Pointer
    timeline: list[TimelineEvent] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
