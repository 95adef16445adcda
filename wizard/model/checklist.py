"""The checklist as data: steps, guidance, checks, log signatures, cause rules.

Loading is strict: unknown keys, unknown check ids, bad parameters and rules that name
signals no check emits all fail with the YAML path of the offending entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wizard.model.errors import WizardError
from wizard.model.factories import new_dict, new_list
from wizard.model.results import SIGNAL_ID, STEP_IDS, StepId
from wizard.model.yamlcache import parsed


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(Strict):
    check: str = Field(description="a check id, e.g. tcp.burst")
    params: dict[str, Any] = Field(default_factory=new_dict)
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    stage: int = Field(default=0, ge=0, le=9, description=(
        "checks of a step run concurrently within a stage, stages one after another: a probe "
        "whose evidence others would disturb (a burst against a rate limit, counters bracketing "
        "a probe) gets a stage of its own"))


class Step(Strict):
    id: StepId
    title: str
    guidance: str
    checks: list[CheckSpec]


class Weight(Strict):
    signal: str = Field(pattern=SIGNAL_ID)
    weight: float = Field(gt=0, le=10)
    why: str = ""
    group: str = Field(default="", description=(
        "signals of one group observe the same fact through different checks (a refusal seen "
        "by connect, burst, exchange and SYN probe): within a cause's list a group counts once, "
        "with its strongest member, so correlated evidence is not counted several times"))


class CauseRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    summary: str
    remedy: str
    prior: float = Field(default=-3.0, description="log-odds before any evidence")
    supports: list[Weight] = Field(default_factory=new_list)
    contradicts: list[Weight] = Field(default_factory=new_list)
    separate_from: dict[str, str] = Field(
        default_factory=new_dict, description="other cause id -> the check that tells them apart")


#: the validation context's key that leaves the signatures' regexes uncompiled (load_checklist)
UNCOMPILED = "signatures_uncompiled"

SignatureClass = Literal["rst_certain", "eof_or_rst", "not_reset", "kernel_event", "crash",
                         "resource", "proxy_state", "protocol"]


class Signature(Strict):
    id: str
    cls: SignatureClass = Field(alias="class")
    ecosystem: str
    regex: str
    meaning: str = ""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str, info: ValidationInfo) -> str:
        if info.context is not None and info.context.get(UNCOMPILED):
            return value  # the loader matches no line with it (load_checklist's compile_signatures)
        try:
            re.compile(value, re.I)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from None
        return value

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.I)


class Checklist(Strict):
    id: str
    title: str
    version: int
    steps: list[Step]
    signatures: list[Signature]
    causes: list[CauseRule]
    threshold: float = Field(default=0.5, gt=0, lt=1,
                             description="confidence at which a cause counts as diagnosed")
    close_call: float = Field(default=0.1, ge=0, lt=1,
                              description="confidence gap under which two causes are a close call")
    observed_reset: list[str] = Field(default_factory=new_list, description=(
        "signals that mean this run itself saw a reset (a probe's RST, a captured or traced "
        "one): a verdict with none of them says that it rests on other evidence"))

    @model_validator(mode="after")
    def _six_steps_in_order(self) -> Checklist:
        ids = tuple(s.id for s in self.steps)
        if ids != STEP_IDS:
            raise ValueError(f"steps must be exactly {', '.join(STEP_IDS)} in that order, got {', '.join(ids)}")
        for step in self.steps:
            ids_in_step = [c.check for c in step.checks]
            if len(set(ids_in_step)) != len(ids_in_step):
                raise ValueError(f"step {step.id} lists a check twice; a step runs each check once")
        causes = [c.id for c in self.causes]
        if len(set(causes)) != len(causes):
            raise ValueError("a cause id appears twice")
        for cause in self.causes:
            for other in cause.separate_from:
                if other not in causes:
                    raise ValueError(f"cause {cause.id}: separate_from names unknown cause {other!r}")
        return self

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def cause(self, cause_id: str) -> CauseRule | None:
        return next((c for c in self.causes if c.id == cause_id), None)


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic error location as a YAML path, naming steps and causes by id."""
    out: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and 0 <= part < len(node) and isinstance(node[part], dict):
                ident = node[part].get("id") or node[part].get("check")
                if ident:
                    label = f"{part}:{ident}"
            out.append(f"[{label}]")
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
        else:
            out.append(f".{part}" if out else str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(out)


def _parse_yaml(path: Path, text: str) -> Any:
    """The YAML's data. PyYAML is imported here, only for a text not parsed before
    (wizard.model.yamlcache): its import and the parse are on the start-up path of every
    run and of the TUI."""
    import yaml

    try:
        # libyaml's loader reads the checklist ~10x faster than the pure-Python one.
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise WizardError("bad checklist", f"{path}: not YAML: {exc}") from None


def load_checklist(
    path: Path,
    check_params: Mapping[str, type[BaseModel]] | None = None,
    emitted_signals: set[str] | None = None,
    *,
    compile_signatures: bool = True,
) -> Checklist:
    """Read and validate a checklist file.

    ``check_params`` maps every known check id to its parameter model (from the check
    registry); ``emitted_signals`` is every signal some check can raise. Both are given by
    the caller so that this leaf module needs no knowledge of the checks themselves.
    ``compile_signatures=False`` is for a caller that matches no log line with the
    signatures (analyze: a capture's resets come with none): their regexes are not compiled
    to check them, ~7 ms of CPU for the shipped checklist's 63, which its tests compile.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WizardError("unreadable checklist", f"{path}: {exc.strerror}") from None
    data = parsed(text, lambda t: _parse_yaml(path, t))
    try:
        checklist = Checklist.model_validate(data, context=None if compile_signatures else {UNCOMPILED: True})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise WizardError("bad checklist", f"{path}: {_where(first['loc'], data)}: {first['msg']}") from None
    if check_params is not None:
        for s_index, step in enumerate(checklist.steps):
            for c_index, spec in enumerate(step.checks):
                where = f"steps[{s_index}:{step.id}].checks[{c_index}:{spec.check}]"
                model = check_params.get(spec.check)
                if model is None:
                    raise WizardError("bad checklist", f"{path}: {where}: unknown check id {spec.check!r}")
                try:
                    model.model_validate(spec.params)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    key = ".".join(str(p) for p in first["loc"])
                    raise WizardError("bad checklist", f"{path}: {where}.params.{key}: {first['msg']}") from None
    if emitted_signals is not None:
        for index, signal in enumerate(checklist.observed_reset):
            if signal not in emitted_signals:
                raise WizardError("bad checklist", f"{path}: observed_reset[{index}]: no check emits signal {signal!r}")
        for c_index, cause in enumerate(checklist.causes):
            for kind in ("supports", "contradicts"):
                for w_index, weight in enumerate(getattr(cause, kind)):
                    if weight.signal not in emitted_signals:
                        raise WizardError(
                            "bad checklist",
                            f"{path}: causes[{c_index}:{cause.id}].{kind}[{w_index}]: "
                            f"no check emits signal {weight.signal!r}")
    return checklist
