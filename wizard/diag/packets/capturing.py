"""The run's packet probe and its one capture of the payload exchange, shared by the capture
check (which attributes its resets) and the exchange check (which times its ladder by it)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from typing import Any

from pydantic import Field

from wizard.diag.packets.io.capture import PacketProbe
from wizard.diag.packets.parse.attribution import counter_deltas, flows, parse_counters
from wizard.engine.bracket import Probed, runs_bracket_probe
from wizard.engine.contract import CheckContext, CheckParams, PacketProbing, payload_for, probe_address
from wizard.engine.probes import Capture, ExchangeOutcome, PacketEvent
from wizard.hosts.base import HostError

COUNTER_FILES = ("/proc/net/snmp", "/proc/net/netstat")


def packet_probe(ctx: CheckContext) -> PacketProbing:
    """The run's packet probe; made on first use so one raw socket serves every check."""
    if ctx.probes.packets is None:
        ctx.probes.packets = PacketProbe(ctx.client)
    return ctx.probes.packets


async def server_counters(ctx: CheckContext) -> dict[str, int] | None:
    values: dict[str, int] = {}
    try:
        for path in COUNTER_FILES:
            values.update(parse_counters(await ctx.server.read_text(path)))
    except HostError:
        return None
    return values


class _Cut:
    """When the bracket's probe was over, on the monotonic clock and the capture's: the
    bracket's window closes soon after, while the capture's grace for late packets goes on,
    so the flows that begin after it (the next step's burst) are not the capture's."""

    def __init__(self) -> None:
        self.called = 0.0  # when the capture called its action (its action_ms, before any wait)
        self.waited = 0.0  # how long the action waited for the bracket's go
        self.over = 0.0  # when the probe's connection was over (0: not cut)

    def capture_ms(self, cap: Capture[Any], at: float) -> float:
        return cap.action_ms + (at - self.called) * 1000

    def apply(self, cap: Capture[Any]) -> Capture[Any]:
        """The capture with the action's start when it went, and without the flows first
        seen after the cut."""
        action_ms = round(cap.action_ms + self.waited * 1000, 2)
        events = cap.events
        if self.over:
            cut_ms = self.capture_ms(cap, self.over)
            seen = {e.client_port for e in events if e.ms <= cut_ms}
            events = [e for e in events if e.ms <= cut_ms or e.client_port in seen]
        return dataclasses.replace(cap, action_ms=action_ms, events=events)


async def _capture_probe(ctx: CheckContext, params: CaptureParams,
                         answered: asyncio.Future[ExchangeOutcome] | None = None,
                         go: asyncio.Event | None = None,
                         counted: asyncio.Future[Any] | None = None) -> tuple[Capture[Any], dict[str, int] | None]:
    """The capture around the payload probe (and its burst), and how the server's counters
    moved meanwhile (None when the server context does not own the target). ``answered``
    gets the probe's outcome once its connection is over, before the capture's grace for
    late packets and its stop; the counters after it are read then, and ``counted`` is
    resolved once they are (the bracket's window may close: the flows that begin later are
    left out of the capture). With ``go``, the counters are read and the sniffer started at
    once, and the probe waits for it (the bracket's readings end meanwhile); the action's
    start on the capture's clock is then when it went."""
    addr, port = probe_address(ctx), ctx.target.port
    payload, _ = payload_for(ctx)
    hold = ctx.answers.hold_s if params.hold_s is None else params.hold_s
    owns = await ctx.server_has_target()
    before = await server_counters(ctx) if owns else None
    done: list[ExchangeOutcome] = []
    cut = _Cut()
    reading: asyncio.Future[dict[str, int] | None] | None = None  # the counters after the probe

    async def action() -> Any:
        cut.called = time.monotonic()
        if go is not None:
            await go.wait()
            cut.waited = time.monotonic() - cut.called
        probe = ctx.probes.packets
        if probe is not None:
            # The raw-socket probes of the handshake need scapy: imported while this waits.
            probe.warm()
        outcome = await ctx.probes.tcp.exchange(addr, port, payload, ctx.answers.timeout_s, hold=hold)
        for _ in range(params.burst):
            await ctx.probes.tcp.connect(addr, port, ctx.answers.timeout_s)
        done.append(outcome)
        return outcome

    def over() -> None:  # the probe's connection is over: the capture's grace needs no one else
        nonlocal reading
        if answered is not None and done and not answered.done():
            cut.over = time.monotonic()
            if before is not None:
                reading = asyncio.ensure_future(server_counters(ctx))
            if counted is not None:
                _chain(reading, counted)
            answered.set_result(done[0])

    pcap = ""
    if params.pcap_dir:
        pcap = f"{params.pcap_dir.rstrip('/')}/handshake-{addr.replace(':', '_')}-{port}-{int(time.time())}.pcap"
    cap = cut.apply(await packet_probe(ctx).capture(addr, port, action, max_packets=params.max_packets,
                                                    max_s=params.max_s, pcap_path=pcap, over=over))
    if reading is not None:
        after = await reading
    else:
        after = await server_counters(ctx) if before is not None else None
    deltas = counter_deltas(before, after) if before is not None and after is not None else None
    return cap, deltas


def _chain(reading: asyncio.Future[Any] | None, counted: asyncio.Future[Any]) -> None:
    """Resolve ``counted`` once ``reading`` (None: nothing to read) has ended, whatever its end."""
    def resolve(_: object = None) -> None:
        if not counted.done():
            counted.set_result(None)
    if reading is None:
        resolve()
    else:
        reading.add_done_callback(resolve)


async def shared_capture(ctx: CheckContext, params: CaptureParams) -> tuple[Capture[Any], dict[str, int] | None]:
    """``_capture_probe`` once per pass: the payload exchange's check times its own ladder by
    the same capture (one connection, seen by the socket and on the wire)."""
    return await ctx.once(_capture_key(ctx, params), lambda: _capture_probe(ctx, params))


def _capture_key(ctx: CheckContext, params: CaptureParams) -> str:
    return f"packets.capture:{ctx.generation}:{params.model_dump_json()}"


def exchange_captured(ctx: CheckContext) -> bool:
    """Whether this pass's payload exchange is captured already (the shared bracket's probe,
    over, its capture still in its grace for late packets or ended well): the handshake's
    exchange and capture checks then send nothing of their own."""
    params = _run_captures(ctx)
    if params is None:
        return False
    key = _capture_key(ctx, params)
    return ctx.shared_done(key) or (ctx.shared_done(f"{key}:over") and not ctx.shared_failed(key))


def _run_captures(ctx: CheckContext) -> CaptureParams | None:
    """The capture check's parameters when this run captures its payload exchange: root,
    libpcap, packets.capture in the checklist, and the capture's hold the exchange's."""
    spec = next((c for step in ctx.checklist.steps for c in step.checks if c.check == "packets.capture"), None)
    probe = ctx.probes.packets
    if spec is None or not ctx.client_root or probe is None or probe.capture_unavailable():
        return None
    params = CaptureParams.model_validate(spec.params)
    return params if params.hold_s in (None, ctx.answers.hold_s) else None


async def captured_exchange(ctx: CheckContext) -> tuple[Capture[Any], list[PacketEvent]] | None:
    """The run's captured payload exchange and its connection's packets, or None when this
    run captures nothing (no root, no libpcap, no packets.capture in the checklist) or the
    capture's hold is not the exchange's."""
    params = _run_captures(ctx)
    if params is None:
        return None
    cap, _ = await shared_capture(ctx, params)
    groups = flows(cap.events)
    mine = probe_port(cap, groups)
    return cap, groups.get(mine, []) if mine is not None else []


@runs_bracket_probe
async def bracket_probe(ctx: CheckContext, go: asyncio.Event) -> ExchangeOutcome | Probed | None:
    """The shared bracket's probe as the run's captured exchange, when the run captures one
    with no hold and nothing after it (the bracket's probe has neither): the rule counters,
    the TCP counters, the capture and the exchange check then all see one connection."""
    params = _run_captures(ctx)
    if params is None or params.burst or ctx.answers.hold_s:
        return None
    answered: asyncio.Future[ExchangeOutcome] = asyncio.get_running_loop().create_future()
    key = _capture_key(ctx, params)
    counted = ctx.flag(f"{key}:over")
    capture = ctx.begin_once(key, lambda: _capture_probe(ctx, params, answered, go, counted))
    # The outcome once the probe's connection is over (an RST, or FIN both ways): the
    # bracket's readings after it then start beside the reading of the TCP counters after it,
    # which the bracket awaits before its window closes; the capture's grace for late packets
    # and its stop go on beside what follows (the flows that begin then are left out of it).
    try:
        await asyncio.wait([answered, capture], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        if not go.is_set():  # the bracket ended before its probe: no sniffer is left waiting for it
            capture.cancel()
        raise
    if answered.done():
        return Probed(answered.result(), counted)
    answered.cancel()
    await go.wait()  # the plain probe sends only then
    cap, _ = capture.result()  # the probe failed (the capture's check says why): a plain one then
    return cap.result if isinstance(cap.result, ExchangeOutcome) else None


def probe_port(cap: Capture[Any], groups: dict[int, list[PacketEvent]]) -> int | None:
    """The client port of the probe's own connection among the captured flows."""
    m = re.search(r":(\d+)$", getattr(cap.result, "local", "") or "")
    mine = int(m.group(1)) if m else None
    if mine not in groups:
        # A refused connect has no local address in the outcome: take the first flow
        # that started with the action (other checks of the step may probe concurrently).
        starts = sorted((fl[0].ms, p) for p, fl in groups.items()
                        if fl[0].is_syn and fl[0].ms >= cap.action_ms - 1)
        mine = starts[0][1] if starts else None
    return mine


class CaptureParams(CheckParams):
    hold_s: float | None = Field(default=None, ge=0, le=600, description="idle before the 2nd send; default --hold")
    burst: int = Field(default=0, ge=0, le=50, description="extra handshakes after the exchange")
    max_packets: int = Field(default=500, ge=10, le=20000)
    max_s: float = Field(default=80.0, gt=0, le=600)
    pcap_dir: str | None = None
