"""watch (I/O): the real traffic to a port observed for a bounded time, every reset an event.

A kernel-filtered live capture of the port's TCP headers feeds the same tracker and the
same attribution as `analyze`; the kernel's own reset events (tracefs, where it can be had)
give each reset its reason; the machine's TCP counters are sampled every second; optional
low-rate probes keep idle resets visible when the real traffic is quiet. Each event is
handed to ``emit`` as it is attributed. Everything the watch made (the packet socket, the
tracefs instance) is removed on every exit, a cancellation (Ctrl-C, SIGTERM) included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wizard import __version__
from wizard.analysis import conclude
from wizard.diag.kernel.io.counters import read_counters
from wizard.diag.kernel.io.tracepipe import TracePipe
from wizard.diag.kernel.io.tracing import WATCH_EVENTS, KernelTrace, TraceUnavailable
from wizard.diag.logs.checks.excerpt import DEFAULT_LOGS, MAX_DEFAULT_LOGS
from wizard.diag.logs.io.follow import MAX_LINES, LogFollower
from wizard.diag.logs.io.journal import is_journal_file
from wizard.diag.logs.io.journalfollow import JournalFollower, journald_fix, journald_runs
from wizard.diag.packets.io.live import CaptureError, LiveCapture
from wizard.diag.packets.parse.flows import Sighting, Tracker
from wizard.diag.packets.parse.sightings import to_event
from wizard.engine.observe import observed_result
from wizard.hosts.base import Host, HostError
from wizard.hosts.local import LocalHost
from wizard.model import Session, ToolInfo
from wizard.model.cancel import within
from wizard.model.checklist import Checklist
from wizard.model.eventlog import EventLog
from wizard.model.observed import CaptureSummary, Observation, ResetEvent
from wizard.model.session import Context
from wizard.model.target import Target

SETTLE_S = 0.3  # an RST waits this long for the kernel's trace line about it
#: flows a watch tracks at once (the ended ones are forgotten first): its memory's bound,
#: whatever the traffic (about 4 KB a flow with its ring of packets)
WATCH_FLOWS = 4096
SAMPLE_S = 1.0


@dataclass
class WatchPlan:
    target: Target
    duration_s: float = 600.0
    probe_every_s: float = 0.0
    allow_mount: bool = False
    server: Host = field(default_factory=LocalHost)  # where the counters and the logs are read
    logs: list[str] = field(default_factory=list)  # --log's files (globs); none: the server's own, the usual ones
    #: the log files the server owning the port names (step 3's discovery, made by the caller)
    server_logs: Callable[[], Awaitable[list[str]]] | None = None
    #: --journal's units and journal files; none: the unit of the process owning the port, if any
    journal: list[str] = field(default_factory=list)
    server_units: Callable[[], Awaitable[list[str]]] | None = None  # that unit (the caller's discovery)
    clean: Callable[[str], str] = lambda text: text  # the redaction of each log line kept
    emit: Callable[[dict[str, object]], None] = lambda event: None
    on_reset: Callable[[ResetEvent], None] = lambda event: None  # the TUI's live view
    on_sample: Callable[[dict[str, int]], None] = lambda moved: None  # each second's counters (the TUI)


def _observation() -> Observation:
    obs = Observation()
    obs.events = EventLog()  # assigned, not validated: pydantic would make a list-backed copy of it
    return obs


@dataclass
class WatchState:
    """What a watch has gathered so far (the caller may read it after a cancellation)."""

    observation: Observation = field(default_factory=_observation)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    counters: dict[str, int] = field(default_factory=dict)  # the last second's deltas
    probes: int = 0
    interrupted: bool = False
    lost: int = 0  # packets the kernel dropped from the capture's full queue so far (each second)


async def watch(plan: WatchPlan, state: WatchState) -> None:
    """Observe until ``plan.duration_s`` passes or the task is cancelled."""
    port = plan.target.port
    hosts = plan.target.addresses or [plan.target.host]
    expression = f"tcp port {port} and ({' or '.join(f'host {h}' for h in hosts)})"
    capture = LiveCapture(expression)
    try:
        capture.open()
    except CaptureError as exc:
        raise TraceUnavailable(str(exc), "run as root with libpcap installed (apt install libpcap0.8)") from None
    summary = CaptureSummary(source="live", reader=f"packet socket, kernel BPF '{expression}', headers only")
    state.observation.sources.append(summary)
    run = _Run(plan, state, Tracker(server_port=port, max_flows=WATCH_FLOWS))
    try:
        run.trace, run.pipe = await _kernel(plan, state)
        run.logs = await _logs(plan, state)
        run.journal = await _journal(plan, state)
        run.before = await _counters(plan.server)
        plan.emit({"type": "start", "at": state.started.isoformat(), "target": plan.target.display(),
                   "filter": expression, "for_s": plan.duration_s, "kernel": state.observation.kernel,
                   "logs": state.observation.logs})
        await run.loop(capture)
    finally:
        # Also when cancelled: what the socket still holds, and every reset seen, count.
        for seg in capture.read(0.0):
            if (sighting := run.tracker.feed(seg)) is not None:
                run.pending.append((0.0, sighting))
        _flush(run.pending, float("inf"), state, run.pipe, plan, run.lines)
        capture.close()
        await run.close()
        summary.packets, summary.flows = run.tracker.packets, run.tracker.flows_seen
        if lost := capture.tally.dropped:
            summary.lost = lost
            summary.notes.append(f"the kernel dropped {lost} of the {capture.tally.kept} packets its filter kept "
                                 "for the capture (its queue was full: the watch read them too slowly); "
                                 "resets among them were not seen")
        summary.resets = run.resets + len(run.tracker.sightings)
        state.observation.count()


@dataclass
class _Run:
    """One watch's moving parts: the tracker, the kernel's pipe, the logs, the held probe."""

    plan: WatchPlan
    state: WatchState
    tracker: Tracker
    trace: KernelTrace | None = None
    pipe: TracePipe | None = None
    logs: LogFollower | None = None
    journal: JournalFollower | None = None
    pending: list[tuple[float, Sighting]] = field(default_factory=list)
    before: dict[str, int] = field(default_factory=dict)
    base: dict[int, dict[str, int]] = field(default_factory=dict)  # a pending reset's counters before it
    last_moved: tuple[dict[str, int], dict[str, int], dict[str, int]] | None = None  # (base, after, moved)
    resets: int = 0  # RSTs the tracker has seen (its list is emptied as they are taken)
    probe: asyncio.Task[None] | None = None

    async def loop(self, capture: LiveCapture) -> None:
        plan, state = self.plan, self.state
        end = time.monotonic() + plan.duration_s
        # the held connection is opened at once: an idle timeout is met one interval in
        next_sample, next_probe = 0.0, time.monotonic() if plan.probe_every_s else float("inf")
        while (now := time.monotonic()) < end:
            for seg in await asyncio.to_thread(capture.read, 0.1):
                sighting = self.tracker.feed(seg)
                if sighting is not None:
                    self.pending.append((now, sighting))
                    self.base[id(sighting)] = self.before  # the counters as they were before it
            self.resets += len(self.tracker.sightings)
            self.tracker.sightings.clear()  # each is pending now: the tracker need not keep them all
            if self.pipe is not None:
                self.pipe.poll()
            due = any(now - seen >= SETTLE_S for seen, _ in self.pending)
            if now >= next_sample or due:
                await self.poll_logs()  # the lines of the reset's second, before it is emitted
            if now >= next_sample or due:
                after = await _counters(plan.server)
                state.lost = capture.stats().dropped
                state.counters = _moved(self.before, after)
                self.before, next_sample = after, now + SAMPLE_S
                plan.on_sample(state.counters)
            self.pending = _flush(self.pending, now, state, self.pipe, plan, self.lines,
                                  self.moved_since)
            if now >= next_probe and (self.probe is None or self.probe.done()):
                state.probes += 1
                self.probe = asyncio.ensure_future(_held_probe(plan.target, plan.probe_every_s))
            next_probe = now + plan.probe_every_s if now >= next_probe else next_probe

    def moved_since(self, sighting: Sighting) -> dict[str, int]:
        """What moved from the sample before the RST to the last one; the resets of one
        burst share their two samples, so the difference is made once for all of them."""
        base = self.base.pop(id(sighting), {})
        last = self.last_moved
        if last is None or last[0] is not base or last[1] is not self.before:
            last = self.last_moved = (base, self.before, _moved(base, self.before))  # held: no id is reused
        return dict(last[2])

    async def poll_logs(self) -> None:
        for follower in (self.logs, self.journal):
            if follower is not None:
                await follower.poll()

    def lines(self, at: float) -> list[str]:
        """The log files' and the journal's lines of the second of ``at``."""
        out = [*(self.logs.near(at) if self.logs else []), *(self.journal.near(at) if self.journal else [])]
        return out[-MAX_LINES:]

    async def close(self) -> None:
        if self.journal is not None:
            await self.journal.close()
            self.state.observation.logs += self.journal.notes
            self.journal.notes.clear()
        if self.probe is not None:
            self.probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.probe
        if self.pipe is not None:
            self.pipe.close()
        if self.trace is not None:
            await asyncio.shield(self.trace.close())
        if self.logs is not None:
            self.state.observation.logs += self.logs.notes
            if self.logs.skipped:
                self.state.observation.logs.append(f"{self.logs.skipped} bytes of log bursts skipped")


async def _kernel(plan: WatchPlan, state: WatchState) -> tuple[KernelTrace | None, TracePipe | None]:
    trace = KernelTrace(LocalHost(), ports=(plan.target.port,), allow_mount=plan.allow_mount, events=WATCH_EVENTS)
    try:
        await trace.start()
        pipe = TracePipe(trace)
    except (TraceUnavailable, OSError, HostError) as exc:
        await trace.close()
        why = getattr(exc, "reason", None) or str(exc)
        fix = getattr(exc, "fix", "")
        # A source skipped, said as such: the watch goes on without the kernel's reasons.
        state.observation.kernel.append(f"skipped: no kernel reasons or drops: {why}"
                                        + (f"; fix: {fix}" if fix else ""))
        return None, None
    mounted = " (tracefs mounted for this watch, unmounted at its end)" if trace.mounted else ""
    state.observation.kernel.append("tracefs instance " + trace.path.rsplit("/", 1)[-1] + mounted + ": "
                                    + ", ".join(f"{k} [{v}]" if v else k for k, v in trace.enabled.items()))
    state.observation.kernel += [f"not traced: {k}: {v}" for k, v in trace.missing.items()]
    return trace, pipe


async def _logs(plan: WatchPlan, state: WatchState) -> LogFollower | None:
    """Step 3's files, followed from where they end: --log's, else the usual ones that exist."""
    host = plan.server
    paths: list[str] = []
    if not plan.logs and plan.server_logs is not None:
        paths = await plan.server_logs()
        if paths:
            state.observation.logs.append(f"the logs the server owning port {plan.target.port} names: "
                                          + ", ".join(paths))
    for pattern in [v for v in plan.logs if not is_journal_file(v)] if plan.logs else DEFAULT_LOGS:
        found = await host.glob(pattern) if any(c in pattern for c in "*?[") else \
            [pattern] if plan.logs or await host.exists(pattern) else []
        paths += [p for p in found if p not in paths]
    paths = paths if plan.logs else paths[:MAX_DEFAULT_LOGS]
    if not paths:
        if not plan.logs:
            state.observation.logs.append(f"skipped: no log followed: none of the usual log files exists in "
                                          f"{host.spec}; fix: --log PATH")
        return None
    follower = LogFollower(host, plan.clean)
    await follower.start(paths)
    if follower.followed:
        state.observation.logs.append(f"followed from their end in {host.spec}: " + ", ".join(follower.followed))
    state.observation.logs += follower.notes
    follower.notes.clear()
    return follower if follower.followed else None


async def _journal(plan: WatchPlan, state: WatchState) -> JournalFollower | None:
    """--journal's units and files, else the unit of the process owning the port, followed
    from their end (a journal is one more source of the reset's lines, as the files are)."""
    host, notes = plan.server, state.observation.logs
    values = list(plan.journal) + [v for v in plan.logs if is_journal_file(v)]
    units = [v for v in values if not is_journal_file(v)]
    files = [v for v in values if is_journal_file(v)]
    if not values:
        if not await journald_runs(host):
            notes.append(f"skipped: no journal followed: {journald_fix(host.spec)}")
            return None
        units = await plan.server_units() if plan.server_units is not None else []
        if not units:
            notes.append(f"skipped: no journal followed: the process owning port {plan.target.port} in "
                         f"{host.spec} is not a systemd unit; fix: --journal UNIT")
            return None
        notes.append(f"the unit of the process owning port {plan.target.port}: {', '.join(units)}")
    follower = JournalFollower(host, plan.clean)
    await follower.start(units, files)
    if follower.followed:
        notes.append(f"journal followed from its end in {host.spec}: " + ", ".join(
            [f"{u} (journalctl -f)" for u in [x.name for x in follower.units]]
            + [f"{f} (polled by cursor)" for f in [x.path for x in follower.files]]))
    notes += follower.notes
    follower.notes.clear()
    return follower if follower.followed else None


def _moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before[k] for k, v in after.items() if k in before and v != before[k]}


def _flush(pending: list[tuple[float, Sighting]], now: float, state: WatchState, pipe: TracePipe | None,
           plan: WatchPlan, lines: Callable[[float], list[str]] | None = None,
           counters: Callable[[Sighting], dict[str, int]] | None = None) -> list[tuple[float, Sighting]]:
    """Attribute the sightings old enough for the kernel's line to have come."""
    keep = []
    for seen, sighting in pending:
        if now - seen < SETTLE_S:
            keep.append((seen, sighting))
            continue
        obs = state.observation
        ev = to_event(len(obs.events) + 1, sighting, "live")
        # what moved from the sample before the RST to the one after it (its second)
        ev.counters = counters(sighting) if counters is not None else dict(state.counters)
        if pipe is not None:
            pipe.poll()
            view = pipe.view(ev.client, ev.server, ev.toward, seen if seen else time.monotonic())
            ev.kernel_reason, ev.drops, ev.states = view.reason, view.drops, view.states
            if ev.kernel_reason:
                ev.reasons.append(ev.kernel_reason)
        if lines is not None:
            ev.logs = lines(ev.at.timestamp())
        obs.events.append(ev)  # type: ignore[attr-defined]  # an EventLog: stored compactly, kept whole
        plan.emit({"type": "reset", **ev.model_dump(mode="json")})
        plan.on_reset(ev)
    return keep


async def _counters(host: Host) -> dict[str, int]:
    try:
        return await read_counters(host)
    except HostError:
        return {}


async def _held_probe(target: Target, idle_s: float) -> None:
    """One held connection, as a keep-alive client holds one: TCP keepalives after
    ``idle_s`` of quiet (no bytes of the application's protocol), so an idle timeout on the
    path or at the server shows as a reset in the capture. Returns when the connection ends."""
    address = target.addresses[0] if target.addresses else target.host
    with contextlib.suppress(OSError, TimeoutError):
        reader, writer = await within(asyncio.open_connection(address, target.port), 3)
        sock = writer.get_extra_info("socket")
        idle = max(1, int(idle_s))
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        try:
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass  # whatever the server says unasked is read and dropped
        finally:
            writer.close()


def watch_session(plan: WatchPlan, state: WatchState, checklist: Checklist) -> Session:
    """The session of a finished (or interrupted) watch."""
    state.observation.count()
    session = Session(tool=ToolInfo(version=__version__), started_at=state.started, target=plan.target,
                      context=Context(client=socket.gethostname(), server=plan.server.spec), mode="watch",
                      observation=state.observation, interrupted=state.interrupted)
    session.step("handshake").checks.append(observed_result(state.observation, "live capture", checklist))
    conclude(checklist, session)
    session.finished_at = datetime.now(UTC)
    return session
