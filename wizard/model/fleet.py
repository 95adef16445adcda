"""A fleet: many hosts' sessions merged into one (`reset-wizard merge`), JSON schema ``fleet/2``."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from wizard.model.factories import new_list
from wizard.model.session import VerdictKind

FLEET_SCHEMA: Final = "fleet/2"  # 2: the verdict and its diagnosis (the one-verdict contract)

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
    addresses: list[str] = Field(default_factory=new_list)  # what the target resolved to there
    sources: list[str] = Field(default_factory=new_list)  # the probe's own address(es)
    first_hop: str = ""  # the first router on its path to the target, when traced
    kind: VerdictKind = "no-cause"  # the kind of the session's own verdict
    verdict: str = ""  # the session's verdict.cause: a cause, no-reset-observed, or "" (no cause, interrupted)
    title: str = ""
    confidence: float = 0.0
    summary: str = ""
    saw_reset: bool = False  # its verdict is a cause, or its probes or watch saw a reset
    resets: int = 0  # probe connections that ended in a reset
    attempts: int = 0  # probe connections made
    server_said: list[str] = Field(default_factory=new_list)  # server-side facts about resets sent or not
    rules: list[str] = Field(default_factory=new_list)  # its firewall's rules that reject or drop the target's port
    traced: bool = False  # its kernel trace of resets ran (so "no reset sent" was looked for)
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
    hosts: list[str] = Field(default_factory=new_list)  # the hosts the pointer names
    differences: list[Difference] = Field(default_factory=new_list)
    rules: list[str] = Field(default_factory=new_list)  # "HOST: rule" that names the sources of those hosts only


class TimelineEvent(BaseModel):
    at: datetime
    host: str
    role: Role
    what: str
    flow: str = ""  # "client:port -> server:port" for a reset seen in real traffic (watch, analyze)
    matched: str = ""  # for a client's reset: what the other end (or another host) saw then


class FleetFinding(BaseModel):
    """A cause as the hosts' own verdicts name it: which hosts, how sure the surest was."""

    cause: str
    hosts: list[str]
    confidence: float
    diagnosed: bool  # a diagnosed cause on those hosts (no-reset-observed never is)


class FleetVerdict(BaseModel):
    """The merged verdict, decided once by the merge and read by the report, the console line
    and the exit status (the one-verdict contract of a session, for a fleet).

    ``kind``: ``cause`` (a host's verdict is a cause: ``diagnosis[0]``, the one most hosts
    name), ``no-reset`` (every host's verdict is no-reset-observed), ``no-cause`` (no host
    diagnosed a cause, but not every host came out clean: resets unexplained, or weak leads)
    or ``interrupted`` (no host saw a reset, and one did not finish).
    """

    model_config = ConfigDict(extra="forbid")

    kind: VerdictKind
    cause: str | None = Field(default=None, description="diagnosis[0].cause for kind cause and no-reset, else null")
    confidence: float | None = None
    hosts: list[str] = Field(default_factory=new_list, description="the hosts the verdict rests on")
    statement: str = Field(description="what the differences point to, as the report and the console say it")
    exit_status: int = Field(description="what `reset-wizard merge` exits with: 1 cause, 3 interrupted, else 0")


class Fleet(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_version: Literal["fleet/2"] = Field(default=FLEET_SCHEMA, alias="schema")
    merged_at: datetime
    verdict: FleetVerdict
    diagnosis: list[FleetFinding] = Field(default_factory=new_list)  # diagnosis[0] is the verdict's cause
    hosts: list[HostView]
    pointer: Pointer
    timeline: list[TimelineEvent] = Field(default_factory=new_list)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
