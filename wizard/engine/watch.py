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
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wizard import __version__
from wizard.analysis import conclude
from wizard.diag.kernel.io.counters import read_counters
from wizard.diag.kernel.io.tracing import KernelTrace, TraceUnavailable
from wizard.diag.kernel.parse.tracelines import TraceEvent, parse_line
from wizard.diag.packets.io.live import CaptureError, LiveCapture
from wizard.diag.packets.parse.flows import Sighting, Tracker
from wizard.diag.packets.parse.sightings import to_event
from wizard.engine.observe import MAX_EVENTS, observed_result
from wizard.hosts.base import HostError
from wizard.hosts.local import LocalHost
from wizard.model import Session, ToolInfo
from wizard.model.checklist import Checklist
from wizard.model.observed import CaptureSummary, Observation, ResetEvent
from wizard.model.session import Context
from wizard.model.target import Target

SETTLE_S = 0.3  # an RST waits this long for the kernel's trace line about it
KERNEL_RING = 256  # recent trace events kept to match resets against
SAMPLE_S = 1.0


@dataclass
class WatchPlan:
    target: Target
    duration_s: float = 600.0
    probe_every_s: float = 0.0
    allow_mount: bool = False
    emit: Callable[[dict[str, object]], None] = lambda event: None
    on_reset: Callable[[ResetEvent], None] = lambda event: None  # the TUI's live view


@dataclass
class WatchState:
    """What a watch has gathered so far (the caller may read it after a cancellation)."""

    observation: Observation = field(default_factory=Observation)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    counters: dict[str, int] = field(default_factory=dict)  # the last second's deltas
    probes: int = 0
    interrupted: bool = False


class TracePipe:
    """The kernel's reset events from our tracefs instance, read without blocking."""

    def __init__(self, trace: KernelTrace) -> None:
        self.fd = os.open(f"{trace.path}/trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        self.rest = b""
        self.recent: deque[TraceEvent] = deque(maxlen=KERNEL_RING)

    def poll(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            lines = (self.rest + chunk).split(b"\n")
            self.rest = lines.pop()
            for raw in lines:
                ev = parse_line(raw.decode("utf-8", "replace"))
                if ev is not None and ev.event in ("tcp_send_reset", "tcp_receive_reset"):
                    self.recent.append(ev)

    def reason_for(self, ev: ResetEvent) -> str | None:
        """The kernel's line about this reset: a tcp_send_reset or tcp_receive_reset of its ports."""
        ports = {int(ev.client.rsplit(":", 1)[1]), int(ev.server.rsplit(":", 1)[1])}
        for t in reversed(self.recent):
            if t.local and t.remote and {t.local.port, t.remote.port} == ports:
                what = "sent" if t.event == "tcp_send_reset" else "received"
                reason = f", reason {t.reason}" if t.reason else ""
                state = f", state {t.state}" if t.state else ""
                return f"the kernel {what} it ({t.event}{reason}{state}): {t.line.strip()}"
        return None

    def close(self) -> None:
        os.close(self.fd)


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
    trace, pipe = await _kernel(plan, state)
    tracker = Tracker(server_port=port)
    pending: list[tuple[float, Sighting]] = []
    end = time.monotonic() + plan.duration_s
    next_sample, next_probe = 0.0, time.monotonic() + plan.probe_every_s if plan.probe_every_s else float("inf")
    before = await _counters()
    plan.emit({"type": "start", "at": state.started.isoformat(), "target": plan.target.display(),
               "filter": expression, "for_s": plan.duration_s, "kernel": state.observation.kernel})
    try:
        while (now := time.monotonic()) < end:
            for seg in await asyncio.to_thread(capture.read, 0.1):
                sighting = tracker.feed(seg)
                if sighting is not None:
                    pending.append((now, sighting))
            if pipe is not None:
                pipe.poll()
            pending = _flush(pending, now, state, pipe, plan)
            if now >= next_sample:
                after = await _counters()
                state.counters = {k: after[k] - before[k] for k in after if after[k] != before.get(k, after[k])}
                before, next_sample = after, now + SAMPLE_S
            if now >= next_probe:
                next_probe = now + plan.probe_every_s
                state.probes += 1
                asyncio.get_running_loop().create_task(_probe(plan.target))
    finally:
        # Also when cancelled: what the socket still holds, and every reset seen, count.
        for seg in capture.read(0.0):
            if (sighting := tracker.feed(seg)) is not None:
                pending.append((0.0, sighting))
        _flush(pending, float("inf"), state, pipe, plan)
        capture.close()
        if pipe is not None:
            pipe.close()
        if trace is not None:
            await asyncio.shield(trace.close())
        summary.packets, summary.flows, summary.resets = tracker.packets, tracker.flows_seen, len(tracker.sightings)
        state.observation.count()


async def _kernel(plan: WatchPlan, state: WatchState) -> tuple[KernelTrace | None, TracePipe | None]:
    trace = KernelTrace(LocalHost(), ports=(plan.target.port,), allow_mount=plan.allow_mount)
    try:
        await trace.start()
        pipe = TracePipe(trace)
    except (TraceUnavailable, OSError, HostError) as exc:
        await trace.close()
        why = getattr(exc, "reason", None) or str(exc)
        fix = getattr(exc, "fix", "")
        state.observation.kernel.append(f"no kernel reasons: {why}" + (f" (fix: {fix})" if fix else ""))
        return None, None
    state.observation.kernel.append("tracefs instance " + trace.path.rsplit("/", 1)[-1] + ": "
                                    + ", ".join(trace.enabled))
    state.observation.kernel += [f"not traced: {k}: {v}" for k, v in trace.missing.items()]
    return trace, pipe


def _flush(pending: list[tuple[float, Sighting]], now: float, state: WatchState, pipe: TracePipe | None,
           plan: WatchPlan) -> list[tuple[float, Sighting]]:
    """Attribute the sightings old enough for the kernel's line to have come."""
    keep = []
    for seen, sighting in pending:
        if now - seen < SETTLE_S:
            keep.append((seen, sighting))
            continue
        obs = state.observation
        if len(obs.events) >= MAX_EVENTS:
            obs.dropped_events += 1
            continue
        ev = to_event(len(obs.events) + 1, sighting, "live")
        ev.counters = dict(state.counters)
        if pipe is not None:
            pipe.poll()
            ev.kernel_reason = pipe.reason_for(ev)
            if ev.kernel_reason:
                ev.reasons.append(ev.kernel_reason)
        obs.events.append(ev)
        plan.emit({"type": "reset", **ev.model_dump(mode="json")})
        plan.on_reset(ev)
    return keep


async def _counters() -> dict[str, int]:
    try:
        return await read_counters(LocalHost())
    except HostError:
        return {}


async def _probe(target: Target) -> None:
    """One low-rate probe: connect, wait for the server, close; a reset shows in the capture."""
    address = target.addresses[0] if target.addresses else target.host
    with contextlib.suppress(OSError, TimeoutError):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, target.port), 3)
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(reader.read(1), 1)
        writer.close()


def watch_session(plan: WatchPlan, state: WatchState, checklist: Checklist) -> Session:
    """The session of a finished (or interrupted) watch."""
    session = Session(tool=ToolInfo(version=__version__), started_at=state.started, target=plan.target,
                      context=Context(client=socket.gethostname(), server="local"), mode="watch",
                      observation=state.observation, interrupted=state.interrupted)
    session.step("handshake").checks.append(observed_result(state.observation, "live capture"))
    conclude(checklist, session)
    session.finished_at = datetime.now(UTC)
    return session
