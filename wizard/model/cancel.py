"""A stop token for CPU-bound work run off the event loop (pure).

A thread cannot be cancelled from outside; the work looks at its token between small
pieces (a few hundred lines) and raises once the run is cancelled or its deadline passed,
so Ctrl-C and a check's timeout reach a scan or a match within milliseconds.

``within`` is the one way the tool bounds an await. Python 3.11's ``asyncio.wait_for``
returns the result and drops a cancellation that arrives in the loop turn where its
awaitable ends (CPython gh-86296, fixed in 3.12): a Ctrl-C then goes unseen, and the run waits on
the next probe's full timeout. ``asyncio.timeout`` runs the awaitable in the caller's task,
so a cancellation is never swallowed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(aw: Awaitable[T], timeout: float | None) -> T:
    """``await aw``, raising ``TimeoutError`` once ``timeout`` seconds passed (None: no bound)."""
    async with asyncio.timeout(timeout):
        return await aw


class Stopped(Exception):
    """Raised inside the work when its token says stop."""


class Stop:
    def __init__(self, timeout: float | None = None) -> None:
        self._event = threading.Event()
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Stopped("cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Stopped("deadline passed")


__all__ = ["Stop", "Stopped", "within"]
