"""What a check returns: a status, a summary, evidence with its source, and signals."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wizard.model.factories import new_dict, new_list

if TYPE_CHECKING:
    from wizard.model.evidence import Body

STEP_IDS = ("identify", "connectivity", "server-logs", "firewall", "app-errors", "handshake")
StepId = Literal["identify", "connectivity", "server-logs", "firewall", "app-errors", "handshake"]

SIGNAL_ID = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


# Worst first: a step shows the worst status of its checks.
_SEVERITY = {Status.FAIL: 4, Status.ERROR: 3, Status.WARN: 2, Status.PASS: 1, Status.SKIP: 0}


def worst(statuses: list[Status]) -> Status:
    if not statuses:
        return Status.SKIP
    return max(statuses, key=lambda s: _SEVERITY[s])


# How a check records evidence; wizard.model.evidence reads each into its typed member
# (fact, command, file and packets are all facts with verbatim text).
EvidenceKind = Literal["fact", "command", "file", "log", "rules", "counters", "packets",
                       "table", "traceback", "ladder", "histogram"]


class Evidence(BaseModel):
    """One piece of evidence: a fact and where it came from.

    ``text`` holds verbatim material (command output, a log excerpt, firewall rules) that
    the report quotes in a fenced block; ``highlight`` marks 0-based lines of ``text`` that
    matched; ``data`` carries structured values (counter deltas, a table, a ladder). This is
    the record as checks write it and the session JSON holds it; ``typed()`` is what the
    report and the TUI render (:mod:`wizard.model.evidence`).
    """

    model_config = ConfigDict(extra="forbid")

    kind: EvidenceKind = "fact"
    title: str
    source: str = ""
    text: str = ""
    highlight: list[int] = Field(default_factory=new_list)
    data: dict[str, Any] = Field(default_factory=new_dict)

    def typed(self) -> Body:
        """This evidence as its member of the tagged union of kinds."""
        from wizard.model.evidence import body

        return body(self)


class Signal(BaseModel):
    """A stable, named observation the analysis weighs (``listener.absent``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SIGNAL_ID)
    fact: str
    strength: float = Field(default=1.0, ge=0.0, le=1.0)


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str = ""
    status: Status
    summary: str
    evidence: list[Evidence] = Field(default_factory=new_list)
    signals: list[Signal] = Field(default_factory=new_list)
    duration_ms: int = 0
    started_at: datetime | None = None
    reason: str | None = None  # why it was skipped or errored
    fix: str | None = None  # what would make a skipped check run

    @classmethod
    def skipped(cls, reason: str, fix: str | None = None, check_id: str = "") -> CheckResult:
        return cls(id=check_id, status=Status.SKIP, summary=f"skipped: {reason}",
                   reason=reason, fix=fix)


class StepResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StepId
    title: str = ""
    status: Status = Status.SKIP
    checks: list[CheckResult] = Field(default_factory=new_list)
    notes: str = ""

    def refresh_status(self) -> None:
        self.status = worst([c.status for c in self.checks])
