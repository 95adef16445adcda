"""The session: inputs, every step's results and the ranked diagnosis (JSON schema 1)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wizard.model.errors import WizardError
from wizard.model.results import STEP_IDS, Signal, StepResult
from wizard.model.target import Target

SCHEMA_VERSION = 1


class ToolInfo(BaseModel):
    name: str = "reset-wizard"
    version: str


class Context(BaseModel):
    client: str
    server: str = "local"


class Answers(BaseModel):
    """What step 1 asks, field for field the options of `diagnose` (CLI.md)."""

    model_config = ConfigDict(extra="forbid")

    error: str | None = None
    at: datetime | None = None
    window_s: float = Field(default=900.0, gt=0)
    side: Literal["client", "server", "unknown"] = "unknown"
    logs: list[str] = Field(default_factory=list)
    journal: list[str] = Field(default_factory=list)
    payload: str | None = None
    hold_s: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=10, ge=1, le=1000)
    timeout_s: float = Field(default=3.0, gt=0, le=60)
    capture: bool = True


class Finding(BaseModel):
    """One ranked cause with the evidence behind it."""

    cause: str
    title: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str
    evidence: list[str] = Field(default_factory=list)
    against: list[str] = Field(default_factory=list)
    remedy: str = ""


class CloseCall(BaseModel):
    """Two causes too close to call, and the check that would tell them apart."""

    causes: tuple[str, str]
    separate_with: str


class Session(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    tool: ToolInfo
    started_at: datetime
    finished_at: datetime | None = None
    target: Target
    context: Context
    answers: Answers = Field(default_factory=Answers)
    steps: list[StepResult] = Field(default_factory=list)
    diagnosis: list[Finding] = Field(default_factory=list)
    close_call: CloseCall | None = None
    interrupted: bool = False
    notes: str = ""

    def step(self, step_id: str) -> StepResult:
        for step in self.steps:
            if step.id == step_id:
                return step
        new = StepResult(id=step_id)  # type: ignore[arg-type]
        self.steps.append(new)
        self.steps.sort(key=lambda s: STEP_IDS.index(s.id))
        return new

    def signals(self) -> list[tuple[str, Signal]]:
        """Every signal of every check, with the id of the check that raised it."""
        return [(c.id, s) for step in self.steps for c in step.checks for s in c.signals]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "session") -> Session:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WizardError("bad session", f"{source} is not JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            raise WizardError("bad session", f"{source} is not a reset-wizard session (schema {SCHEMA_VERSION})")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WizardError("bad session", f"{source}: {where}: {first['msg']}") from None
