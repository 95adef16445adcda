"""Work on the second half of a big local file in a forked child process (I/O), so the two
halves of a whole-file scan run on two cores at once, each with its own interpreter lock:
the dense logs' scan is Python handling Hyperscan's reports, which one process cannot
spread over two threads.

The child gets the parent's compiled matcher by the fork (nothing is compiled twice),
runs ``work`` in an event loop of its own and sends what it returns, pickled, through a
pipe; it ends with the parent (it looks at its parent id twice a second), at its deadline,
or when killed. Whatever goes wrong in the child (an exception, a signal, a garbled
answer) gives None, and the caller does the work itself: the answer never depends on the
split. The child writes nothing anywhere but the pipe.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import select
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

WATCH_S = 0.5  # how often the child looks whether its parent is still there
PROBE = 64 << 10  # a read looking for the end of the line at the middle


@dataclass
class Child:
    pid: int
    fd: int  # the read end of the pipe the answer comes through
    lock: threading.Lock = field(default_factory=threading.Lock)
    reaped: bool = False
    reading: bool = False  # a collect owns ``fd`` (and closes it)


def can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= 2


def _line_after(path: str, at: int, size: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        while at < size:
            nl = os.pread(fd, PROBE, at).find(b"\n")
            if nl >= 0:
                return at + nl + 1
            at += PROBE
        return size
    finally:
        os.close(fd)


async def middle(path: str, size: int) -> int:
    """The start of the first line after the middle of a local file: where its second half
    starts (``size`` when that line runs to the end, or when this machine cannot fork)."""
    if not can_fork():
        return size
    try:
        return await asyncio.to_thread(_line_after, path, size // 2, size)
    except OSError:
        return size


def start(work: Callable[[], Awaitable[Any]]) -> Child:
    """A child that runs ``work()`` in a new event loop and pipes back its pickled result."""
    rfd, wfd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: measured by the tests through its answer
        code = 1
        try:
            os.close(rfd)
            _alone(parent)
            data = memoryview(pickle.dumps(asyncio.run(_run(work)), pickle.HIGHEST_PROTOCOL))
            while data:
                data = data[os.write(wfd, data):]
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    return Child(pid, rfd)


async def _run(work: Callable[[], Awaitable[Any]]) -> Any:
    return await work()


def _alone(parent: int) -> None:
    """The child's start: the parent's signal handling and running loop left behind, and a
    watch that ends the child once its parent is gone."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)  # a signal here must not wake the parent's loop
    gc.freeze()  # the parent's objects left alone: no collection copies their pages
    asyncio.events._set_running_loop(None)  # the forked thread was running the parent's loop

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _collect(child: Child, timeout: float) -> Any:
    """The child's answer (waiting up to ``timeout``), or None; the child is reaped."""
    parts: list[bytes] = []
    try:
        until = time.monotonic() + timeout
        while (left := until - time.monotonic()) > 0:
            ready, _, _ = select.select([child.fd], [], [], left)
            if not ready:
                break
            got = os.read(child.fd, 1 << 20)
            if not got:
                break
            parts.append(got)
        status = _reap(child, kill=time.monotonic() >= until)
        return pickle.loads(b"".join(parts)) if status == 0 else None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return None
    finally:
        os.close(child.fd)


def _reap(child: Child, kill: bool) -> int | None:
    """The child's exit status (killed first if ``kill``); None when already reaped."""
    with child.lock:
        if child.reaped:
            return None
        if kill:
            os.kill(child.pid, signal.SIGKILL)
        _, status = os.waitpid(child.pid, 0)
        child.reaped = True
        return status


async def collect(child: Child, timeout: float) -> Any:
    """What the child answered within ``timeout`` seconds, or None."""
    child.reading = True
    return await asyncio.to_thread(_collect, child, max(0.0, timeout))


def end(child: Child) -> None:
    """Kill the child unless it has ended and been reaped; close the pipe if no collect has it."""
    try:
        _reap(child, kill=True)
    except OSError:
        pass
    if not child.reading:
        os.close(child.fd)


__all__ = ["Child", "can_fork", "collect", "end", "middle", "start"]
