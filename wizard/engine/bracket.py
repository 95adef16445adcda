"""Helpers shared by checks: the probe payload, and one probe bracketed by two readings
(``bracket`` for a check's own probe, ``shared_bracket`` for the one probe of a pass that
every server-state check reads around). An area that can see more of that probe (the packet
capture) runs it for the bracket (``runs_bracket_probe``), so the readings, the wire and the
checks that reuse the capture all tell of one connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from wizard.engine.contract import CheckContext, payload_for, probe_address, registered
from wizard.engine.probes import ExchangeOutcome

T = TypeVar("T")


@dataclass
class Bracketed(Generic[T]):
    before: T
    probe: ExchangeOutcome
    after: T


async def bracket(ctx: CheckContext, read: Callable[[], Awaitable[T]]) -> Bracketed[T]:
    """Read server-side state, run one payload probe (no hold), read the state again.

    The two readings bracket the probe tightly, so a counter that moves between them very
    likely moved because of it (on a busy server other traffic moves counters too, which
    the checks say).
    """
    async with ctx.traffic.alone():
        before = await read()
        payload, _ = payload_for(ctx)
        probe = await ctx.probes.tcp.exchange(probe_address(ctx), ctx.target.port, payload,
                                              ctx.answers.timeout_s)
        after = await read()
    return Bracketed(before, probe, after)


class Probed(NamedTuple):
    """A probe runner's answer while it still works on the probe: the outcome, and what it
    still reads of it (the capture's TCP counters after it), awaited before the bracket's
    window closes but beside the readings after the probe. What goes on after the window
    (a capture's grace for late packets) is the runner's to keep apart from later probes."""

    outcome: ExchangeOutcome
    rest: Awaitable[Any]


#: how the bracket's probe may be run by an area that sees more of it (the packet capture):
#: each returns the outcome (or a ``Probed``), or None when it cannot here (then the plain
#: exchange runs). It is called beside the readings before the probe, so that what it sets
#: up (a sniffer) is ready as they end; it sends nothing before the event it is given is set.
ProbeRunner = Callable[[CheckContext, asyncio.Event], Awaitable["ExchangeOutcome | Probed | None"]]
_PROBE_RUNNERS: list[ProbeRunner] = []


def runs_bracket_probe(runner: ProbeRunner) -> ProbeRunner:
    """Decorator: ``runner`` runs the shared bracket's probe when it can (the engine imports
    no area, so the area registers itself)."""
    if runner not in _PROBE_RUNNERS:
        _PROBE_RUNNERS.append(runner)
    return runner


async def _bracket_probe(ctx: CheckContext, go: asyncio.Event) -> tuple[ExchangeOutcome, Awaitable[Any] | None]:
    """The shared bracket's probe: an area's (the captured exchange), else a plain one, and
    what the area still does with it (``Probed.rest``). A runner that fails leaves the plain
    exchange to answer (it reports its failure itself). Nothing is sent before ``go``."""
    for runner in _PROBE_RUNNERS:
        try:
            got = await runner(ctx, go)
        except Exception:
            got = None
        if isinstance(got, Probed):
            return got.outcome, got.rest
        if got is not None:
            return got, None
    await go.wait()
    payload, _ = payload_for(ctx)
    return await ctx.probes.tcp.exchange(probe_address(ctx), ctx.target.port, payload, ctx.answers.timeout_s), None


#: what an area watches the bracket's probe with (the kernel trace), by the id of the check
#: that reads it: ``start(ctx)`` begins watching and returns the coroutine function that
#: ends it and returns what was seen
Stop = Callable[[], Awaitable[Any]]
_WATCHERS: dict[str, Callable[[CheckContext], Awaitable[Stop]]] = {}


def watches_bracket_probe(check_id: str) -> Callable[[Callable[[CheckContext], Awaitable[Stop]]],
                                                     Callable[[CheckContext], Awaitable[Stop]]]:
    """Decorator: ``start`` watches the shared bracket's probe for the check ``check_id``
    (``watched_probe`` hands it what was seen)."""
    def register_watch(start: Callable[[CheckContext], Awaitable[Stop]]) -> Callable[[CheckContext], Awaitable[Stop]]:
        _WATCHERS[check_id] = start
        return start
    return register_watch


@dataclass
class _Shared:
    probe: ExchangeOutcome
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    watched: dict[str, Any] = field(default_factory=dict)


def _watchers(ctx: CheckContext) -> dict[str, Callable[[CheckContext], Awaitable[Stop]]]:
    """The watches of the checks in the checklist that may run here (server root where
    they need it, the server context reachable)."""
    known = registered()
    found = {}
    for step in ctx.checklist.steps:
        for spec in step.checks:
            cls = known.get(spec.check)
            if cls is None or cls.id not in _WATCHERS:
                continue
            if (cls.needs_root == "server" and not ctx.server_root) or ctx.server.unavailable():
                continue
            found[cls.id] = _WATCHERS[cls.id]
    return found


async def _start_watches(ctx: CheckContext, stops: dict[str, Stop], errors: dict[str, BaseException]) -> None:
    """Start every watch that can start here: each one's stop in ``stops`` as it starts (so
    a cancelled bracket still stops it), a watch that failed in ``errors``."""
    for name, start in _watchers(ctx).items():
        try:
            stops[name] = await start(ctx)
        except Exception as exc:
            errors[name] = exc


async def _stop_watches(stops: dict[str, Stop], errors: dict[str, BaseException], watched: dict[str, Any]) -> None:
    """Stop the started watches; what each saw in ``watched``, a stop that failed in ``errors``."""
    for name, stop in stops.items():
        try:
            watched[name] = await asyncio.shield(stop())
        except Exception as exc:
            errors[name] = exc


Reads = dict[str, Callable[[CheckContext], Awaitable[Any]]]


def _bracket_parts(ctx: CheckContext, asking: str) -> tuple[Reads, Reads]:
    """The readings before the probe (``read_before``) and after it (``read_state``) of each
    check in the checklist that declares them and may run here (server root where it needs
    it), and always the asking check's."""
    known = registered()
    before: Reads = {}
    after: Reads = {}
    for step in ctx.checklist.steps:
        for spec in step.checks:
            cls = known.get(spec.check)
            if cls is None or not cls.reads_state():
                continue
            if cls.id == asking or not (cls.needs_root == "server" and not ctx.server_root):
                before[cls.id], after[cls.id] = cls.read_before, cls.read_state
    return before, after


async def _read_parts(ctx: CheckContext, parts: Reads, into: dict[str, Any], errors: dict[str, BaseException]) -> None:
    names = [n for n in parts if n not in errors]
    got = await asyncio.gather(*(parts[n](ctx) for n in names), return_exceptions=True)
    for name, value in zip(names, got, strict=False):
        if isinstance(value, asyncio.CancelledError):
            raise value
        if isinstance(value, BaseException):
            errors[name] = value
        else:
            into[name] = value


async def _run_shared(ctx: CheckContext, asking: str = "") -> _Shared:
    """The pass's bracket: every part's reading (the watches starting meanwhile), the watched
    probe, every reading again."""
    parts, parts_after = _bracket_parts(ctx, asking)
    before: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}
    # Steps overlap: no other probe to the target between the two readings. The first
    # readings may begin while step 1 holds every probe back (they send nothing to the
    # target); the probe waits for its release.
    async with ctx.traffic.alone(while_held=True):
        stops: dict[str, Stop] = {}
        watched: dict[str, Any] = {}
        # The watches (the kernel trace) start beside the first readings, not after them:
        # neither sends anything to the target, and the probe waits for both.
        starting = asyncio.ensure_future(_start_watches(ctx, stops, errors))
        # The probe's runner sets up (a sniffer) beside them too; it sends once ``go`` is set.
        go = asyncio.Event()
        probing = asyncio.ensure_future(_bracket_probe(ctx, go))
        try:
            await _read_parts(ctx, parts, before, errors)
            await starting
            await ctx.traffic.unheld()
            go.set()
            probe, rest = await probing
        finally:
            if not probing.done():  # the readings failed or were cancelled: nothing was sent
                probing.cancel()
                await asyncio.wait([probing])
            if not starting.done():  # the readings failed or were cancelled: no watch is left on
                starting.cancel()
                await asyncio.wait([starting])
            await _stop_watches(stops, errors, watched)
        shared = _Shared(probe, before, {}, errors, watched)
        # The readings after the probe start as its exchange ends, as they do after a plain
        # exchange; the runner's own reading after it goes on beside them, and ends before
        # the window does (no later probe may land in it). Its failure is its own check's to say.
        await _read_parts(ctx, parts_after, shared.after, errors)
        if rest is not None:
            await asyncio.wait([asyncio.ensure_future(rest)])
    return shared


async def shared_bracket(ctx: CheckContext, check_id: str) -> Bracketed[Any]:
    """``bracket`` with one probe for all the checks of a pass that read server state
    (rules, conntrack, counters): all their readings are taken together before and after
    it. Each probe costs the server's answer time (a server that stalls before its reset
    makes it long), so one probe instead of one a check; and the probe is seen by every
    reading, so the rules' counters, the conntrack statistics and the TCP counters tell of
    the same connection; so is the kernel trace (``watched_probe``). The result belongs to the
    pass (``ctx.generation``): a rerun probes again. Raises what the asking check's own
    reading raised."""
    shared: _Shared = await ctx.once(f"bracket:{ctx.generation}", lambda: _run_shared(ctx, check_id))
    if check_id in shared.errors:
        raise shared.errors[check_id]
    if check_id not in shared.before:  # not a part of this pass's bracket: one of its own
        read = registered()[check_id].read_state
        return await bracket(ctx, lambda: read(ctx))
    return Bracketed(shared.before[check_id], shared.probe, shared.after[check_id])


def begin_shared_bracket(ctx: CheckContext, check_id: str) -> None:
    """Start this pass's shared bracket now, for ``check_id``, which will ask for it first
    thing (``Check.opens_bracket``): its first readings then start ahead of the other checks'
    first steps. It is the very bracket ``shared_bracket(ctx, check_id)`` runs; the checks
    that ask later share it."""
    ctx.begin_once(f"bracket:{ctx.generation}", lambda: _run_shared(ctx, check_id))


async def watched_probe(ctx: CheckContext, check_id: str) -> tuple[ExchangeOutcome, Any] | None:
    """The shared bracket's probe and what ``check_id``'s watch saw of it (the bracket of
    this pass is run if it has not been yet); None when the watch did not run (the check
    then watches a probe of its own). Raises what the watch raised."""
    shared: _Shared = await ctx.once(f"bracket:{ctx.generation}", lambda: _run_shared(ctx))
    if check_id in shared.errors:
        raise shared.errors[check_id]
    if check_id not in shared.watched:
        return None
    return shared.probe, shared.watched[check_id]
