"""A stop token for CPU-bound work run off the event loop (pure).

A thread cannot be cancelled from outside; the work looks at its token between small
pieces (a few hundred lines) and raises once the run is cancelled or its deadline passed,
so Ctrl-C and a check's timeout reach a scan or a match within milliseconds."""

from __future__ import annotations

import threading
import time


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


__all__ = ["Stop", "Stopped"]
