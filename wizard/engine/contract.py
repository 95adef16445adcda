"""The check contract: declared metadata, strict parameters, one async run per check."""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from wizard.engine.probes import (
    Capture,
    ConnectOutcome,
    ExchangeOutcome,
    Hop,
    ProcessSockets,
    ProtocolFacts,
    Resolution,
    SizeEcho,
    SynFingerprint,
)
from wizard.engine.traffic import Traffic
from wizard.hosts.base import Host, HostError
from wizard.model import (
    Answers,
    Checklist,
    CheckResult,
    Evidence,
    Signal,
    Status,
    StepId,
    Target,
)
from wizard.model.payload import default_payload, payload_bytes


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

    def fix(self, spec: str, root: bool) -> str:
        """How to install it in the context ``spec`` where it is missing (wizard.model.contexts)."""
        from wizard.model.contexts import command_in

        return command_in(spec, ["apt", "install", self.package or self.name], root=root, in_netns=False)


# -- what checks may call: the probes' Protocols (the real ones live in the areas' io) ---
R = TypeVar("R")


class TcpProbing(Protocol):
    """Plain TCP connections: a handshake, or an exchange of data with an optional idle hold."""

    async def connect(self, address: str, port: int, timeout: float) -> ConnectOutcome: ...

    async def exchange(self, address: str, port: int, payload: bytes, timeout: float,
                       hold: float = 0.0, attempt: int = 0, read_limit: int = ...,
                       on_connect: Callable[[], None] | None = None) -> ExchangeOutcome: ...


class DnsProbing(Protocol):
    """Name resolution as the system resolver and DNS see it."""

    async def resolve(self, name: str, timeout: float = 3.0) -> Resolution: ...


class ProcessProbing(Protocol):
    """The client's sockets to the target and the processes holding them."""

    async def connections_to(self, addresses: list[str], port: int,
                             timeout: float = 5.0) -> ProcessSockets: ...


class ProtocolProbing(Protocol):
    """What a port speaks (banner, TLS, HTTP)."""

    async def identify(self, address: str, port: int, host: str, timeout: float) -> ProtocolFacts: ...


class PacketProbing(Protocol):
    """Raw-socket probes (root): capture around an action, a bare SYN, traceroute, DF echoes."""

    def warm(self) -> None: ...

    async def aclose(self) -> None: ...

    def capture_unavailable(self) -> str | None:
        """Why ``capture`` cannot run here (libpcap missing), or None."""

    async def capture(self, address: str, port: int, action: Callable[[], Awaitable[R]], *,
                      max_packets: int = 500, max_s: float = 60.0, settle_s: float = 0.3,
                      pcap_path: str = "", over: Callable[[], None] | None = None) -> Capture[R]: ...

    async def syn(self, address: str, port: int, timeout: float = 2.0) -> SynFingerprint: ...

    async def traceroute(self, address: str, port: int, max_ttl: int = 16,
                         timeout: float = 2.0) -> list[Hop]: ...

    async def df_echo(self, address: str, sizes: list[int], timeout: float = 2.0) -> list[SizeEcho]: ...


@dataclass
class Probes:
    """The probes of a run, in one bundle that tests replace with scripted fakes. The
    optional ones are made by the area that needs them when absent (a run without root
    has no packet probe)."""

    tcp: TcpProbing
    dns: DnsProbing
    processes: ProcessProbing | None = None  # psutil, client side
    packets: PacketProbing | None = None  # scapy, when root allows raw sockets
    protocol: ProtocolProbing | None = None  # what the port speaks


#: the running check's gate to its step's next stage (set by the runner, per check task)
STAGE_GATE: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("stage_gate", default=None)


@dataclass
class CheckContext:
    """What a check may use: the inputs and the probes. Checks do no I/O themselves."""

    target: Target
    answers: Answers
    checklist: Checklist
    client: Host  # where the wizard runs: client-side processes, ping
    server: Host  # the --server context: listeners, counters, rules, logs
    probes: Probes
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    client_root: bool = False
    server_root: bool = False
    resolution: Resolution | None = None  # made when the run was prepared
    #: bumped when a step or check is run again: work shared per pass (the probe bracketed
    #: by server readings) is then done afresh, work shared per run (``once``) is not
    generation: int = 0
    started: datetime | None = None  # when the run's first step began (set by the runner)
    #: where the log excerpt's reading ended (now, or the window's end if earlier): the
    #: follow-up check that reads what was written during the probes starts there
    logs_read_until: datetime | None = None
    #: the logs without timestamps step 3 read whole: the follow-up check does not read them again
    logs_untimed: set[str] = field(default_factory=set)
    #: probes to the target while steps overlap: shared, or alone in a bracketed window
    traffic: Traffic = field(default_factory=Traffic)
    _cache: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    async def once(self, key: str, factory: Callable[[], Any]) -> Any:
        """Run ``factory()`` once per run and share its result between checks."""
        return await asyncio.shield(self.begin_once(key, factory))

    def begin_once(self, key: str, factory: Callable[[], Any]) -> asyncio.Future[Any]:
        """``once`` started now, not awaited: the work ``once(key, ...)`` then shares."""
        fut = self._cache.get(key)
        if fut is None:
            fut = asyncio.ensure_future(factory())
            self._cache[key] = fut
        return fut

    def flag(self, key: str) -> asyncio.Future[Any]:
        """A future of this run, made on first use, that one part resolves and others await."""
        fut = self._cache.get(key)
        if fut is None:
            fut = self._cache[key] = asyncio.get_running_loop().create_future()
        return fut

    def shared_failed(self, key: str) -> bool:
        """Whether ``once(key, ...)`` has ended in a failure (or was cancelled) in this run."""
        fut = self._cache.get(key)
        return fut is not None and fut.done() and (fut.cancelled() or fut.exception() is not None)

    def shared_done(self, key: str) -> bool:
        """Whether ``once(key, ...)`` has run to a result (no failure) in this run."""
        fut = self._cache.get(key)
        return fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None

    async def cancel_shared(self, timeout: float = 5.0) -> None:
        """End the shared work of ``once`` that no check awaits any more (a run cancelled
        mid-way): it is shielded from each check's cancellation, so it must be ended here or
        it would outlive the run (and hold, say, the packet probe's RST guard table)."""
        pending = [f for f in self._cache.values() if not f.done()]
        for fut in pending:
            fut.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def let_next_stage_start(self) -> None:
        """Let the step's next stage start before the calling check ends (the burst, once
        its handshakes are done): the runner waits for the check's end only before the
        stage after that one."""
        gate = STAGE_GATE.get()
        if gate is not None:
            gate.set()

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

        owns: bool | None = await self.once("server_has_target", look)
        return owns


class Findings:
    """Collects evidence and signals while a check runs; ``result`` turns them into a CheckResult."""

    def __init__(self) -> None:
        self.evidence: list[Evidence] = []
        self.signals: list[Signal] = []

    def add(self, title: str, *, kind: str = "fact", source: str = "", text: str = "",
            highlight: list[int] | None = None, data: dict[str, Any] | None = None) -> Evidence:
        ev = Evidence(kind=kind, title=title, source=source, text=text,
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
    #: probes to the target wait for this check's end when step 1 runs beside the steps after
    #: it (``Runner.run_groups``): it looks at connections the run's own probes would add to
    before_probes: ClassVar[bool] = False
    #: it sends nothing to the target's TCP port and reads nothing a TCP probe moves (the
    #: ping's ICMP echo): the next group of steps (the handshake's burst) starts without
    #: waiting for its end, which the run still waits for
    beside_next_steps: ClassVar[bool] = False

    @staticmethod
    async def read_state(ctx: CheckContext) -> Any:
        """A check that reads server state around the shared probe (``engine.bracket``)
        overrides this with how it reads it: awaited before and after the one probe of a
        pass. ``reads_state()`` says whether a check does."""
        raise NotImplementedError

    @classmethod
    async def read_before(cls, ctx: CheckContext) -> Any:
        """The reading before the shared probe: ``read_state``, unless the check reads less
        there (what only the reading after the probe is used for)."""
        return await cls.read_state(ctx)

    @classmethod
    def reads_state(cls) -> bool:
        return cls.read_state is not Check.read_state

    @classmethod
    def opens_bracket(cls, params: Any) -> bool:
        """Whether this check, run with ``params``, asks for the pass's shared bracket first
        thing (``engine.bracket.shared_bracket`` before any other work): the runner then begins
        the bracket as the run starts, ahead of the other checks' first steps."""
        return False

    @staticmethod
    def time_budget(ctx: CheckContext, params: Any) -> float | None:
        """Seconds this check needs with these inputs, when more than the checklist allows
        (a burst of N attempts, a hold); None: the checklist's timeout_s is enough."""
        return None

    @abstractmethod
    async def run(self, ctx: CheckContext, params: P) -> CheckResult: ...


_REGISTRY: dict[str, type[Check[Any]]] = {}

C = TypeVar("C", bound="type[Check[Any]]")


def register(cls: C) -> C:
    """Class decorator: make a check known by its id (discovery imports the area modules)."""
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"check id {cls.id} registered twice")
    _REGISTRY[cls.id] = cls
    return cls


def registered() -> dict[str, type[Check[Any]]]:
    """The checks registered so far (``wizard.engine.discovery.all_checks`` imports them all)."""
    return dict(_REGISTRY)


def payload_for(ctx: CheckContext) -> tuple[bytes, str]:
    """What the active probe sends: --payload if given, else a default chosen by port."""
    if ctx.answers.payload is not None:
        return payload_bytes(ctx.answers.payload), "custom"
    t = ctx.target
    return default_payload(t.host, t.port, t.scheme, t.path, t.is_address)


def probe_address(ctx: CheckContext) -> str:
    """The address active probes use: the first resolved one (the system resolver's order)."""
    return ctx.target.addresses[0] if ctx.target.addresses else ctx.target.host
