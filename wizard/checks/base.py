"""The check contract: declared metadata, strict parameters, one async run per check."""

from __future__ import annotations

import asyncio
import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from wizard.model import Answers, Checklist, CheckResult, Evidence, Signal, Status, StepId, Target
from wizard.probes.hosts import Host, HostError


class CheckParams(BaseModel):
    """Parameters of a check as written in the checklist; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(CheckParams):
    """For checks that take no parameters."""


P = TypeVar("P", bound=CheckParams)


@dataclass(frozen=True)
class Tool:
    """An external program a check needs, where it must exist and how to get it."""

    name: str
    where: Literal["client", "server"] = "server"
    package: str = ""

    def fix(self) -> str:
        return f"apt install {self.package or self.name}"


@dataclass
class CheckContext:
    """What a check may use: the inputs and the probes. Checks do no I/O themselves."""

    target: Target
    answers: Answers
    checklist: Checklist
    client: Host  # where the wizard runs: client-side processes, ping
    server: Host  # the --server context: listeners, counters, rules, logs
    probes: Any  # wizard.probes.Probes-like bundle: .tcp, .dns, .packets (may be None)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    client_root: bool = False
    server_root: bool = False
    resolution: Any = None  # the probes.dns Resolution made when the run was prepared
    #: bumped when a step or check is run again: work shared per pass (the probe bracketed
    #: by server readings) is then done afresh, work shared per run (``once``) is not
    generation: int = 0
    started: datetime | None = None  # when the run's first step began (set by the runner)
    marks: dict[str, datetime] = field(default_factory=dict)  # times checks leave for later ones
    _cache: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    async def once(self, key: str, factory: Callable[[], Any]) -> Any:
        """Run ``factory()`` once per run and share its result between checks."""
        fut = self._cache.get(key)
        if fut is None:
            fut = asyncio.ensure_future(factory())
            self._cache[key] = fut
        return await asyncio.shield(fut)

    async def cancel_shared(self, timeout: float = 5.0) -> None:
        """End the shared work of ``once`` that no check awaits any more (a run cancelled
        mid-way): it is shielded from each check's cancellation, so it must be ended here or
        it would outlive the run (and hold, say, the packet probe's RST guard table)."""
        pending = [f for f in self._cache.values() if not f.done()]
        for fut in pending:
            fut.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def server_has_target(self) -> bool | None:
        """Whether the server context owns one of the target's addresses (None: unknown).

        Server-side evidence about another machine would mislead: checks that read the
        server context say so instead of pretending.
        """

        async def look() -> bool | None:
            try:
                mine = {a.lower() for a in await self.server.addresses()}
            except HostError:
                return None
            targets = {a.lower() for a in self.target.addresses}
            if not targets:
                return None
            if mine & targets:
                return True
            # All of 127.0.0.0/8 is this host's, though only 127.0.0.1 is listed; a
            # namespace's loopback is its own, so this holds for the local context only.
            return self.server.spec == "local" and all(
                ipaddress.ip_address(a).is_loopback for a in targets)

        return await self.once("server_has_target", look)


class Findings:
    """Collects evidence and signals while a check runs; ``result`` turns them into a CheckResult."""

    def __init__(self) -> None:
        self.evidence: list[Evidence] = []
        self.signals: list[Signal] = []

    def add(self, title: str, *, kind: str = "fact", source: str = "", text: str = "",
            highlight: list[int] | None = None, data: dict[str, Any] | None = None) -> Evidence:
        ev = Evidence(kind=kind, title=title, source=source, text=text,  # type: ignore[arg-type]
                      highlight=highlight or [], data=data or {})
        self.evidence.append(ev)
        return ev

    def signal(self, signal_id: str, fact: str, strength: float = 1.0) -> None:
        self.signals.append(Signal(id=signal_id, fact=fact, strength=strength))

    def result(self, status: Status, summary: str, **extra: Any) -> CheckResult:
        return CheckResult(id="", status=status, summary=summary, evidence=self.evidence,
                           signals=self.signals, **extra)


class Check(ABC, Generic[P]):
    """One small diagnostic. Subclasses declare their metadata as class attributes."""

    id: ClassVar[str]
    title: ClassVar[str]
    step: ClassVar[StepId]
    Params: ClassVar[type[CheckParams]] = CheckParams
    needs_root: ClassVar[Literal["", "client", "server"]] = ""
    needs_tools: ClassVar[tuple[Tool, ...]] = ()
    reads_server: ClassVar[bool] = False
    emits: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: a check that reads server state around the shared probe (checks.common.shared_bracket)
    #: says how: ``read_state(ctx)``, awaited before and after the one probe of a pass
    read_state: ClassVar[Callable[[CheckContext], Awaitable[Any]] | None] = None

    @staticmethod
    def time_budget(ctx: CheckContext, params: Any) -> float | None:
        """Seconds this check needs with these inputs, when more than the checklist allows
        (a burst of N attempts, a hold); None: the checklist's timeout_s is enough."""
        return None

    @abstractmethod
    async def run(self, ctx: CheckContext, params: P) -> CheckResult: ...
