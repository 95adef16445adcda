"""Async orchestration: runs each step's checks concurrently, bounded, and emits events.

No check's failure or hang stops the run: an exception becomes an ``error`` result with
its traceback, a timeout an ``error`` saying so, a missing privilege or tool a ``skip``
with the fix. Results land in the Session as they finish, so Ctrl-C keeps them.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wizard import __version__, analysis
from wizard.engine.bracket import begin_shared_bracket
from wizard.engine.contract import STAGE_GATE, Check, CheckContext, Probes
from wizard.engine.discovery import get_check, load
from wizard.engine.stages import run_stages
from wizard.hosts.base import Host
from wizard.hosts.contexts import host_for, local_hostname
from wizard.hosts.local import LocalHost
from wizard.model import (
    STEP_IDS,
    Answers,
    Checklist,
    CheckResult,
    CheckSpec,
    Context,
    Evidence,
    Session,
    Status,
    Step,
    StepResult,
    ToolInfo,
    WizardError,
    parse_target,
)
from wizard.model.cancel import within
from wizard.model.contexts import root_fix


@dataclass(frozen=True)
class StepStarted:
    step: str


@dataclass(frozen=True)
class CheckStarted:
    step: str
    index: int
    check: str
    title: str


@dataclass(frozen=True)
class CheckFinished:
    step: str
    index: int
    result: CheckResult


@dataclass(frozen=True)
class StepFinished:
    step: str
    result: StepResult


Event = StepStarted | CheckStarted | CheckFinished | StepFinished


#: steps whose checks may run side by side: they read the server or probe it through
#: ``ctx.traffic`` (a probe bracketed by readings has the target to itself). The handshake's
#: burst and probes come after them all: its flood would trip a rate limit under them.
OVERLAP = frozenset({"connectivity", "server-logs", "firewall", "app-errors"})


def overlapping(steps: Iterable[str]) -> list[list[str]]:
    """The steps in order, consecutive ones of ``OVERLAP`` grouped to run together."""
    groups: list[list[str]] = []
    for step_id in steps:
        if groups and step_id in OVERLAP and groups[-1][-1] in OVERLAP:
            groups[-1].append(step_id)
        else:
            groups.append([step_id])
    return groups


class Runner:
    def __init__(self, ctx: CheckContext, emit: Callable[[Event], None] | None = None) -> None:
        self.ctx = ctx
        self.checklist = ctx.checklist
        self.emit = emit or (lambda event: None)
        self._ran: set[str] = set()  # steps run in this pass
        self._held_for: set[str] = set()  # checks whose end step 1's hold on probes waits for
        self._left: set[tuple[str, int]] = set()  # checks of the running group the next one waits for
        self._ready = asyncio.Event()  # set once they have ended

    async def preflight(self, cls: type[Check[Any]]) -> CheckResult | None:
        """A skip result when the check cannot run here, else None."""
        ctx = self.ctx
        # A check that depends on the server context cannot say anything when that context
        # is unreachable (an SSH failure): name the real reason once, not a traceback each.
        # Client-side checks that need client root read the server only in passing.
        needs_server = (cls.needs_root == "server" or any(t.where == "server" for t in cls.needs_tools)
                        or (cls.reads_server and cls.needs_root != "client"))
        why = ctx.server.unavailable()
        if needs_server and why:
            return CheckResult.skipped(f"the server context {ctx.server.spec} cannot be reached: {why}",
                                       "fix the access named above (try ssh -v), then rerun")
        if cls.needs_root == "client" and not ctx.client_root:
            return CheckResult.skipped(
                "needs root on this machine (raw sockets or privileged reads)",
                "run as root: sudo reset-wizard ... (or grant cap_net_raw,cap_net_admin)")
        if cls.needs_root == "server" and not ctx.server_root:
            # The fix for where the run reads the server: sudo over ssh applies to ssh only.
            return CheckResult.skipped(f"needs root in the server context {ctx.server.spec}",
                                       root_fix(ctx.server.spec))
        for tool in cls.needs_tools:
            host = ctx.client if tool.where == "client" else ctx.server
            if await host.which(tool.name) is None:
                root = ctx.client_root if tool.where == "client" else ctx.server_root
                return CheckResult.skipped(f"{tool.name} is not installed in {host.spec}", tool.fix(host.spec, root))
        return None

    async def run_check(self, step_id: str, index: int, spec: CheckSpec) -> CheckResult:
        cls = get_check(spec.check)
        self.emit(CheckStarted(step_id, index, cls.id, cls.title))
        started = time.monotonic()
        started_at = datetime.now(UTC)
        # --hold adds its own length to any check that probes; a check may need more still.
        timeout = spec.timeout_s + self.ctx.answers.hold_s
        try:
            result = await self.preflight(cls)
            if result is None:
                params = cls.Params.model_validate(spec.params)
                timeout = max(timeout, cls.time_budget(self.ctx, params) or 0.0)
                result = await within(cls().run(self.ctx, params), timeout)
        except TimeoutError:
            result = CheckResult(id=cls.id, status=Status.ERROR,
                                 summary=f"did not finish within {timeout:g}s",
                                 reason=f"timed out after {timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = CheckResult(
                id=cls.id, status=Status.ERROR, summary=f"failed unexpectedly: {type(exc).__name__}: {exc}",
                reason=str(exc),
                evidence=[Evidence(kind="traceback", title="traceback", text=traceback.format_exc())])
        result = result.model_copy(update={
            "id": cls.id, "title": cls.title, "started_at": started_at,
            "duration_ms": int((time.monotonic() - started) * 1000)})
        await self._looked(cls.id)
        self.emit(CheckFinished(step_id, index, result))
        return result

    async def run_step(self, session: Session, step_id: str, only: int | None = None) -> StepResult:
        """Run a step's checks concurrently (or just check ``only``), filling the session."""
        spec = self.checklist.step(step_id)
        step = session.step(step_id)
        if only is not None or step_id in self._ran:
            # Run again: a new pass, whose checks probe afresh (the shared bracket).
            self.ctx.generation += 1
            self._ran.clear()
        self._ran.add(step_id)
        if self.ctx.started is None:
            self.ctx.started = self.ctx.now()
        if step_id == "handshake":
            self._warm_packets()
        step.title = spec.title
        if only is None:
            step.checks = []
        self.emit(StepStarted(step_id))

        async def one(index: int, check: CheckSpec, gate: asyncio.Event) -> None:
            STAGE_GATE.set(gate)  # this task's: the check may let the next stage start early
            try:
                record_result(step, spec, await self.run_check(step_id, index, check))
            finally:
                self._ended(step_id, index)

        indexes = range(len(spec.checks)) if only is None else [only]
        try:
            await run_stages([(spec.checks[i].stage, i) for i in indexes],
                             lambda i, gate: one(i, spec.checks[i], gate))
        finally:
            step.refresh_status()
            # A copy: listeners (the TUI's thread) must not see the live object change.
            self.emit(StepFinished(step_id, step.model_copy(deep=True)))
        return step

    async def run_group(self, session: Session, step_ids: list[str]) -> list[StepResult]:
        """Run steps side by side (a group of ``overlapping``); their results in that order."""
        if len(step_ids) == 1:
            return [await self.run_step(session, step_ids[0])]
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(self.run_step(session, step_id)) for step_id in step_ids]
        return [task.result() for task in running]

    async def run_groups(self, session: Session, groups: list[list[str]]) -> None:
        """Groups of steps (``overlapping``'s) one after another, each as the checks of the one
        before that it waits for have ended (``Check.beside_next_steps``: the ping's echoes
        go on beside the next group); step 1 followed by steps that overlap runs beside them
        (``_identify_beside``). The one order of a whole run, headless and in the TUI alike;
        it returns when every step has ended."""
        rest = list(groups)
        async with asyncio.TaskGroup() as tasks:
            if len(rest) > 1 and rest[0] == ["identify"] and set(rest[1]) <= OVERLAP:
                await self._identify_beside(session, rest[1], tasks)
                rest = rest[2:]
            for group in rest:
                await self._until_ready(session, group, tasks)

    async def _until_ready(self, session: Session, step_ids: list[str], tasks: asyncio.TaskGroup,
                           also: Coroutine[Any, Any, None] | None = None) -> None:
        """Start the steps (and ``also``) as tasks of ``tasks``; return once every check of
        theirs that the next group waits for has ended (they may still be running others)."""
        self._left = {(step_id, index) for step_id in step_ids
                      for index, spec in enumerate(self.checklist.step(step_id).checks)
                      if not get_check(spec.check).beside_next_steps}
        self._ready = ready = asyncio.Event()
        if not self._left:
            ready.set()
        if also is not None:
            tasks.create_task(also)
        running = [tasks.create_task(self.run_step(session, step_id)) for step_id in step_ids]
        # a step that ends without running all its checks (an error) must not keep the run here
        waits = [asyncio.ensure_future(ready.wait()), asyncio.ensure_future(asyncio.wait(running))]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _ended(self, step_id: str, index: int) -> None:
        """A check of the running group has ended: the last one the next group waits for lets it start."""
        self._left.discard((step_id, index))
        if not self._left:
            self._ready.set()

    async def _identify_beside(self, session: Session, group: list[str], tasks: asyncio.TaskGroup) -> None:
        """Step 1 beside the group after it: the group's readings (logs, rules, listeners)
        start at once, its probes wait until step 1 has looked at the client's sockets to
        the target (``ctx.traffic`` held until its ``before_probes`` checks end), so the run's
        own connections never show there. The shared bracket, when a check of the group asks
        for it first thing, begins right after step 1's checks, ahead of the group's."""
        self.ctx.traffic.hold()
        self._held_for = {s.check for s in self.checklist.step("identify").checks
                          if get_check(s.check).before_probes}

        async def identify() -> None:
            try:
                await self.run_step(session, "identify")
            finally:
                self._held_for = set()
                await asyncio.shield(self.ctx.traffic.release())

        tasks.create_task(identify())
        await self._until_ready(session, group, tasks, also=self._open_bracket(group))

    async def _looked(self, check_id: str) -> None:
        """A check that step 1's hold waits for has ended: the last of them lets probes go."""
        if check_id in self._held_for:
            self._held_for.discard(check_id)
            if not self._held_for:
                await asyncio.shield(self.ctx.traffic.release())

    async def _open_bracket(self, step_ids: list[str]) -> None:
        """Begin the pass's shared bracket if a first-stage check of these steps that will run
        asks for it first thing (``Check.opens_bracket``): the other checks' first steps (their
        imports, parsing and process starts) would otherwise all come before its readings."""
        for step_id in step_ids:
            for spec in self.checklist.step(step_id).checks:
                cls = get_check(spec.check)
                try:
                    opens = spec.stage == 0 and cls.opens_bracket(cls.Params.model_validate(spec.params))
                    runs = opens and await self.preflight(cls) is None
                except Exception:  # its own run_check says what is wrong (bad params, a host error)
                    continue
                if runs:
                    begin_shared_bracket(self.ctx, cls.id)
                    return

    def _warm_packets(self) -> None:
        """Start importing scapy in a thread, if the shared bracket's captured probe has not
        (it does as its probe goes out, so the import overlaps the wait for the answer
        instead of competing with the readings of steps 2-5): the handshake's raw-socket
        probes need it; begun here it overlaps the burst. Never before the TUI's first frame."""
        packets = self.ctx.probes.packets
        if self.ctx.client_root and packets is not None:
            packets.warm()

    async def run_all(self, session: Session, steps: Iterable[str] = STEP_IDS) -> Session:
        try:
            await self.run_groups(session, overlapping(steps))
        finally:
            self.conclude(session)
            await self.close()
        return session

    async def close(self) -> None:
        """Release what the probes hold (the packet probe's kernel-RST guard table) now,
        not a second later or at loop shutdown; shared work a cancelled run left behind is
        ended first, since it may hold the guard."""
        await asyncio.shield(self.ctx.cancel_shared())
        packets = self.ctx.probes.packets
        if packets is not None:
            await asyncio.shield(packets.aclose())

    def conclude(self, session: Session) -> None:
        conclude(self.checklist, session)


def record_result(step: StepResult, spec: Step, result: CheckResult) -> None:
    """Put a check's result in its step (replacing an earlier one of the same check), in
    the checklist's order whatever order the checks finish in; the step's status follows."""
    order = [c.check for c in spec.checks]
    checks = [c for c in step.checks if c.id != result.id] + [result]
    step.checks = sorted(checks, key=lambda c: order.index(c.id) if c.id in order else len(order))
    step.refresh_status()


def conclude(checklist: Checklist, session: Session, now: datetime | None = None) -> None:
    """The end of a run (the CLI's, or the TUI's at the verdict): the findings, the close
    call, the verdict, and when it finished."""
    analysis.conclude(checklist, session)
    session.finished_at = now or datetime.now(UTC)


async def prepare(
    target_text: str,
    answers: Answers,
    server_spec: str = "local",
    *,
    probes: Probes | None = None,
    checklist: Checklist | None = None,
    client: Host | None = None,
    server: Host | None = None,
) -> tuple[Session, CheckContext]:
    """Parse and resolve the target, open the server context, and build an empty session.

    Raises WizardError for bad input (bad target or port, unresolvable host, unknown
    context), before anything is probed or written.
    """
    target = parse_target(target_text)
    probes = probes or real_probes()
    resolution = await probes.dns.resolve(target.host, min(answers.timeout_s, 5.0))
    if not resolution.ok:
        raise WizardError("unresolvable host",
                          f"{target.host}: {resolution.error or 'no IPv4 or IPv6 address'}")
    target.addresses = list(resolution.addresses)
    server = server or host_for(server_spec)
    client = client or LocalHost()
    ctx = CheckContext(
        target=target, answers=answers, checklist=checklist or load(), client=client,
        server=server, probes=probes, client_root=await client.is_privileged(),
        server_root=await server.is_privileged(), resolution=resolution)
    session = Session(
        tool=ToolInfo(version=__version__), started_at=datetime.now(UTC), target=target,
        context=Context(client=local_hostname(), server=server.spec), answers=answers)
    return session, ctx


def real_probes() -> Probes:
    # None of these imports scapy until a packet is actually sent.
    from wizard.diag.net.io.dns import DnsProbe
    from wizard.diag.net.io.protocol import ProtocolProbe
    from wizard.diag.net.io.tcp import TcpProbe
    from wizard.diag.packets.io.capture import PacketProbe
    from wizard.diag.process.io.processes import ProcessProbe

    return Probes(tcp=TcpProbe(), dns=DnsProbe(), processes=ProcessProbe(), packets=PacketProbe(),
                  protocol=ProtocolProbe())
