"""Helpers shared by checks: the probe payload, and one probe bracketed by two readings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from wizard.checks.base import CheckContext
from wizard.probes.payloads import default_payload, payload_bytes
from wizard.probes.tcp import ExchangeOutcome

T = TypeVar("T")


def payload_for(ctx: CheckContext) -> tuple[bytes, str]:
    """What the active probe sends: --payload if given, else a default chosen by port."""
    if ctx.answers.payload is not None:
        return payload_bytes(ctx.answers.payload), "custom"
    t = ctx.target
    return default_payload(t.host, t.port, t.scheme, t.path, t.is_address)


def probe_address(ctx: CheckContext) -> str:
    """The address active probes use: the first resolved one (the system resolver's order)."""
    return ctx.target.addresses[0] if ctx.target.addresses else ctx.target.host


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
    before = await read()
    payload, _ = payload_for(ctx)
    probe = await ctx.probes.tcp.exchange(probe_address(ctx), ctx.target.port, payload,
                                          ctx.answers.timeout_s)
    after = await read()
    return Bracketed(before, probe, after)
