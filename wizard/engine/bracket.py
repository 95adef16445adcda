"""Helpers shared by checks: the probe payload, and one probe bracketed by two readings
(``bracket`` for a check's own probe, ``shared_bracket`` for the one probe of a pass that
every server-state check reads around)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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


@dataclass
class _Shared:
    probe: ExchangeOutcome
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)


def _bracket_parts(ctx: CheckContext, asking: str) -> dict[str, Callable[[CheckContext], Awaitable[Any]]]:
    """The ``read_state`` of each check in the checklist that declares one and may run here
    (server root where it needs it), and always the asking check's."""
    known = registered()
    parts: dict[str, Callable[[CheckContext], Awaitable[Any]]] = {}
    for step in ctx.checklist.steps:
        for spec in step.checks:
            cls = known.get(spec.check)
            if cls is None or not cls.reads_state():
                continue
            if cls.id == asking or not (cls.needs_root == "server" and not ctx.server_root):
                parts[cls.id] = cls.read_state
    return parts


async def _read_parts(ctx: CheckContext, parts: dict[str, Callable[[CheckContext], Awaitable[Any]]],
                      into: dict[str, Any], errors: dict[str, BaseException]) -> None:
    names = [n for n in parts if n not in errors]
    got = await asyncio.gather(*(parts[n](ctx) for n in names), return_exceptions=True)
    for name, value in zip(names, got, strict=False):
        if isinstance(value, asyncio.CancelledError):
            raise value
        if isinstance(value, BaseException):
            errors[name] = value
        else:
            into[name] = value


async def shared_bracket(ctx: CheckContext, check_id: str) -> Bracketed[Any]:
    """``bracket`` with one probe for all the checks of a pass that read server state
    (rules, conntrack, counters): all their readings are taken together before and after
    it. Each probe costs the server's answer time (a server that stalls before its reset
    makes it long), so one probe instead of one a check; and the probe is seen by every
    reading, so the rules' counters, the conntrack statistics and the TCP counters tell of
    the same connection. The result belongs to the pass (``ctx.generation``): a rerun probes
    again. Raises what the asking check's own reading raised."""
    async def run() -> _Shared:
        parts = _bracket_parts(ctx, check_id)
        before: dict[str, Any] = {}
        errors: dict[str, BaseException] = {}
        # Steps overlap: no other probe to the target between the two readings.
        async with ctx.traffic.alone():
            await _read_parts(ctx, parts, before, errors)
            payload, _ = payload_for(ctx)
            probe = await ctx.probes.tcp.exchange(probe_address(ctx), ctx.target.port, payload,
                                                  ctx.answers.timeout_s)
            shared = _Shared(probe, before, {}, errors)
            await _read_parts(ctx, parts, shared.after, errors)
        return shared

    shared: _Shared = await ctx.once(f"bracket:{ctx.generation}", run)
    if check_id in shared.errors:
        raise shared.errors[check_id]
    if check_id not in shared.before:  # not a part of this pass's bracket: one of its own
        read = registered()[check_id].read_state
        return await bracket(ctx, lambda: read(ctx))
    return Bracketed(shared.before[check_id], shared.probe, shared.after[check_id])
