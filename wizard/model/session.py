"""The session: inputs, every step's results, the ranked diagnosis and its verdict (JSON schema 2).

Schema 2 added the verdict (which entry of ``diagnosis`` is the verdict, and in what words)
and ``diagnosed`` on each finding, both decided once by the analysis. A schema 1 session
still loads: :func:`upgrade_v1` derives both from its ranking with the threshold schema 1
runs used (0.5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wizard.model.errors import WizardError
from wizard.model.factories import new_list
from wizard.model.observed import Mode, Observation
from wizard.model.results import STEP_IDS, Signal, StepResult
from wizard.model.target import Target

SCHEMA_VERSION: Final = 2
NO_RESET: Final = "no-reset-observed"  # the cause that says the run saw nothing to explain


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
    logs: list[str] = Field(default_factory=new_list)
    journal: list[str] = Field(default_factory=new_list)
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
    evidence: list[str] = Field(default_factory=new_list)
    against: list[str] = Field(default_factory=new_list)
    remedy: str = ""
    diagnosed: bool = Field(default=False, description=(
        "decided by the analysis: a cause at or above the checklist's threshold (never "
        "no-reset-observed); every output reads this, none compares confidences itself"))


VerdictKind = Literal["cause", "no-reset", "no-cause", "interrupted"]


class Verdict(BaseModel):
    """What the run concluded, decided once by the analysis and read by every output.

    ``kind``: ``cause`` (a cause was diagnosed: ``diagnosis[0]``), ``no-reset`` (nothing
    diagnosed and every probe behaved: ``diagnosis[0]`` is no-reset-observed), ``no-cause``
    (nothing reached the threshold: ``diagnosis[0]`` is only the strongest lead) or
    ``interrupted`` (nothing diagnosed before the run was cut short; nothing is ruled out).
    """

    model_config = ConfigDict(extra="forbid")

    kind: VerdictKind
    cause: str | None = Field(default=None, description="diagnosis[0].cause for kind cause and no-reset, else null")
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    threshold: float = Field(default=0.5, gt=0, lt=1, description="the checklist's threshold for 'diagnosed'")
    reset_observed: bool | None = Field(default=None, description=(
        "whether this run's own probes, capture or kernel trace saw a reset (null: not recorded)"))
    statement: str = Field(description="the verdict in one sentence, as the report, TUI and console say it")

    @property
    def diagnosed(self) -> bool:
        return self.kind == "cause"


class CloseCall(BaseModel):
    """Two causes too close to call, and the check that would tell them apart."""

    causes: tuple[str, str]
    separate_with: str


class Session(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_version: Literal[2] = Field(default=SCHEMA_VERSION, alias="schema")
    tool: ToolInfo
    started_at: datetime
    finished_at: datetime | None = None
    target: Target
    context: Context
    answers: Answers = Field(default_factory=Answers)
    steps: list[StepResult] = Field(default_factory=new_list)
    verdict: Verdict | None = Field(default=None, description="null until the analysis ran")
    diagnosis: list[Finding] = Field(default_factory=new_list, description="the verdict first, then the rest")
    close_call: CloseCall | None = None
    interrupted: bool = False
    notes: str = ""
    # What fed the session: the checklist's probes (diagnose), live traffic (watch) or
    # capture files (analyze); the last two put every reset they saw in ``observation``.
    mode: Mode = "diagnose"
    observation: Observation | None = None

    @model_validator(mode="after")
    def _verdict_leads(self) -> Session:
        v = self.verdict
        if v is not None and v.cause is not None and (not self.diagnosis or self.diagnosis[0].cause != v.cause):
            raise ValueError(f"the verdict {v.cause!r} must be the first entry of diagnosis")
        return self

    def diagnosed(self) -> list[Finding]:
        """The findings the analysis marked diagnosed, the verdict first."""
        return [f for f in self.diagnosis if f.diagnosed]

    def step(self, step_id: str) -> StepResult:
        for step in self.steps:
            if step.id == step_id:
                return step
        new = StepResult(id=step_id)
        self.steps.append(new)
        self.steps.sort(key=lambda s: STEP_IDS.index(s.id))
        return new

    def rerun_argv(self) -> list[str]:
        """This run's `diagnose` command line after the program's name, from its real inputs:
        the same target, context and evidence sources; what every output's fix reruns."""
        t, a = self.target, self.answers
        argv = ["diagnose", f"{t.scheme}://{t.display()}{t.path or ''}" if t.scheme else t.display()]
        if self.context.server != "local":
            argv += ["--server", self.context.server]
        for path in a.logs:
            argv += ["--log", path]
        for unit in a.journal:
            argv += ["--journal", unit]
        return argv

    def signals(self) -> list[tuple[str, Signal]]:
        """Every signal of every check, with the id of the check that raised it."""
        return [(c.id, s) for step in self.steps for c in step.checks for s in c.signals]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) if self._events_listed() else "".join(self.json_parts())

    def _events_listed(self) -> bool:
        return self.observation is None or isinstance(self.observation.events, list)

    def json_parts(self) -> Iterator[str]:
        """The text of ``to_json`` in parts: a watch's events (an EventLog) one at a time, so
        writing the session never holds them all at once; the same bytes as a list's."""
        if self._events_listed():
            yield self.to_json()
            return
        assert self.observation is not None
        text = self.model_dump_json(by_alias=True, indent=2, exclude={"observation": {"events"}})
        # The observation is the last key; its fields at four spaces: the events go back where
        # they were, after its sources (no JSON string holds a raw newline).
        at = text.index('\n    "by_sender": ', text.rindex('\n  "observation": {'))
        yield text[:at]
        first = True
        for ev in self.observation.events:
            yield ("\n    \"events\": [" if first else ",") + "\n      " + \
                ev.model_dump_json(by_alias=True, indent=2).replace("\n", "\n      ")
            first = False
        yield "\n    \"events\": []," if first else "\n    ],"
        yield text[at:]

    @classmethod
    def from_json(cls, text: str, source: str = "session") -> Session:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WizardError("bad session", f"{source} is not JSON: {exc.msg} at line {exc.lineno}") from None
        if isinstance(data, dict) and data.get("schema") == 1:
            data = upgrade_v1(data)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            raise WizardError("bad session", f"{source} is not a reset-wizard session (schema {SCHEMA_VERSION})")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WizardError("bad session", f"{source}: {where}: {first['msg']}") from None


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema 1 session as schema 2: causes at 0.5 or above (no-reset-observed aside) are
    diagnosed and lead, and the verdict says so; whether a reset was observed is unknown."""
    diagnosis = [dict(f) for f in data.get("diagnosis") or [] if isinstance(f, dict)]
    for f in diagnosis:
        f["diagnosed"] = f.get("cause") != NO_RESET and float(f.get("confidence") or 0) >= 0.5
    diagnosis.sort(key=lambda f: not f["diagnosed"])
    verdict: dict[str, Any]
    if diagnosis and diagnosis[0]["diagnosed"]:
        top = diagnosis[0]
        verdict = {"kind": "cause", "cause": top["cause"], "confidence": top["confidence"],
                   "statement": f"{top['cause']} ({float(top['confidence']):.0%}): {top.get('summary', '')}"}
    elif data.get("interrupted"):
        verdict = {"kind": "interrupted", "statement": INTERRUPTED}
    elif diagnosis and diagnosis[0].get("cause") == NO_RESET:
        verdict = {"kind": "no-reset", "cause": NO_RESET, "confidence": diagnosis[0]["confidence"],
                   "statement": f"no cause of resets found: {diagnosis[0].get('summary', '')}"}
    else:
        verdict = {"kind": "no-cause", "statement": "no cause of resets found: no cause reached the threshold"}
    return {**data, "schema": SCHEMA_VERSION, "diagnosis": diagnosis, "verdict": verdict}


INTERRUPTED = ("none: the run was interrupted before its checks could tell; no cause is claimed "
               "and none is ruled out")
