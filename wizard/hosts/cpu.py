"""CPU-bound work (scans, matching) in a worker thread that a cancellation reaches (I/O).

``off_loop(work)`` runs ``work(stop)`` in a thread and awaits it: the event loop stays free
to take Ctrl-C, SIGTERM and SIGHUP, and when the awaiting task is cancelled (a signal, a
check's timeout) the stop token is set and the work, which looks at it between small
pieces, ends within milliseconds; the cancellation then goes on as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from wizard.model.cancel import Stop, Stopped

R = TypeVar("R")
JOIN_S = 2.0  # how long a cancelled caller waits for its thread to notice


async def off_loop(work: Callable[[Stop], R], timeout: float | None = None) -> R:
    """``work(stop)`` in a thread; ``timeout`` (seconds) also ends it, raising TimeoutError."""
    stop = Stop(timeout)
    fut = asyncio.ensure_future(asyncio.to_thread(work, stop))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait({fut}, timeout=JOIN_S)
        if fut.done() and not fut.cancelled():
            fut.exception()  # retrieved: a Stopped raised by the work is expected here
        raise
    except Stopped as exc:
        raise TimeoutError(f"CPU work stopped: {exc}") from None


__all__ = ["Stop", "Stopped", "off_loop"]
