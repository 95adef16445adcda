"""Who may talk to the target while steps overlap (pure asyncio, no I/O).

Steps 2-5 run side by side, so their probes could meet. Probes that only want an answer
(a connect) may share the line; a reading bracketed around one probe (the shared bracket's
rule counters, conntrack statistics and TCP counters, the kernel trace) must see that probe
alone, or the counters would also count a neighbour's connection. ``shared()`` is for the
former, ``alone()`` for the latter; an ``alone()`` that waits goes before later ``shared()``
callers, so a window is never starved by a stream of probes. ``hold()`` keeps every probe
out until ``release()``: step 1 looks at the client's sockets while step 2-5's readings
start beside it, and no probe of theirs may show among those sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Traffic:
    """A readers-writer gate over the run's probes to the target."""

    def __init__(self) -> None:
        self._cond: asyncio.Condition | None = None
        self._shared = 0
        self._alone = False
        self._waiting = 0  # alone() callers waiting
        self._held = False  # no probe at all until release()

    def _condition(self) -> asyncio.Condition:
        # Made on first use, on the loop that runs the checks (the TUI's engine thread).
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Probe the target beside other probes, never inside a window."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: not self._alone and not self._waiting and not self._held)
            self._shared += 1
        try:
            yield
        finally:
            async with cond:
                self._shared -= 1
                cond.notify_all()

    @asynccontextmanager
    async def alone(self, *, while_held: bool = False) -> AsyncIterator[None]:
        """A window in which this caller's probe is the only traffic to the target.
        ``while_held``: the window may open during a ``hold()`` (its first readings send
        nothing to the target); the caller awaits ``unheld()`` before its probe."""
        cond = self._condition()
        async with cond:
            self._waiting += 1
            try:
                await cond.wait_for(lambda: not self._alone and not self._shared
                                    and (while_held or not self._held))
            finally:
                self._waiting -= 1
                cond.notify_all()  # a cancelled wait must not keep shared() callers out
            self._alone = True
        try:
            yield
        finally:
            async with cond:
                self._alone = False
                cond.notify_all()

    def hold(self) -> None:
        """No probe to the target until ``release()``."""
        self._held = True

    async def unheld(self) -> None:
        """Wait until no ``hold()`` keeps probes out (for what connects to the target from the
        server context, outside the probes: it must not show among step 1's sockets either)."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: not self._held)

    async def release(self) -> None:
        cond = self._condition()
        async with cond:
            self._held = False
            cond.notify_all()

    @property
    def busy(self) -> bool:
        return self._alone or self._shared > 0
