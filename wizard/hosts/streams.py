"""A command that keeps writing (``journalctl -f``), read line by line while it runs (I/O).

The Host starts it (locally, in a network namespace, over SSH) and hands its stdout here: a
task reads it into a bounded queue of lines, ``take()`` empties the queue without waiting,
``close()`` stops the command. Past ``max_lines`` waiting lines the oldest are dropped, and
a line longer than ``line_max`` is cut: a chatty source costs bounded memory, counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from wizard.model.cancel import within

MAX_LINES = 4000  # lines waiting to be taken
LINE_MAX = 64 << 10  # bytes of one line kept
ERR_MAX = 4096  # bytes of stderr kept (its reason, when it ends early)


class Reader(Protocol):
    async def read(self, n: int) -> bytes: ...


class LineStream:
    """``take()`` the lines read so far; ``ended`` and ``error`` once the command has stopped."""

    def __init__(self, command: str, out: Reader, err: Reader | None, stop: Callable[[], Awaitable[None]],
                 max_lines: int = MAX_LINES, line_max: int = LINE_MAX) -> None:
        self.command = command
        self.stop = stop
        self.lines: deque[bytes] = deque(maxlen=max_lines)
        self.line_max = line_max
        self.dropped = 0  # lines dropped (the queue full) or cut (too long)
        self.ended = False
        self.stderr = b""
        self._rest = b""
        self._tasks = [asyncio.ensure_future(self._read(out))]
        if err is not None:
            self._tasks.append(asyncio.ensure_future(self._errors(err)))

    async def _read(self, out: Reader) -> None:
        try:
            while chunk := await out.read(65536):
                parts = (self._rest + chunk).split(b"\n")
                self._rest = parts.pop()
                if len(self._rest) > self.line_max:
                    self._rest = self._rest[:self.line_max]
                    self.dropped += 1
                for line in parts:
                    if len(self.lines) == self.lines.maxlen:
                        self.dropped += 1
                    self.lines.append(line[:self.line_max])
        except (OSError, EOFError, ConnectionError):
            pass
        finally:
            self.ended = True

    async def _errors(self, err: Reader) -> None:
        with contextlib.suppress(OSError, EOFError, ConnectionError):
            while chunk := await err.read(4096):
                self.stderr = (self.stderr + chunk)[:ERR_MAX]

    def take(self) -> list[bytes]:
        """The complete lines read since the last call (none waiting: empty)."""
        out = list(self.lines)
        self.lines.clear()
        return out

    @property
    def error(self) -> str:
        """Why the command ended (its first stderr line), "" while it runs."""
        if not self.ended:
            return ""
        first = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return first[0] if first else "it ended"

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await within(self.stop(), 3)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _die_with_parent() -> None:
    """In the child before its exec: killed when the wizard ends, however it ends (even
    SIGKILL), so a follow never outlives the watch."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def local_stream(argv: list[str], where: str) -> LineStream:
    """``argv`` run on this machine in a session of its own (stopped as a group)."""
    from wizard.hosts.base import HostError

    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "LC_ALL": "C"}, start_new_session=True,
            preexec_fn=_die_with_parent)
    except (FileNotFoundError, PermissionError) as exc:
        raise HostError(f"cannot run {argv[0]} in {where}: {exc.strerror or exc}") from None

    async def stop() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()  # reaped: nothing left behind

    assert proc.stdout is not None and proc.stderr is not None
    return LineStream(shlex.join(argv), proc.stdout, proc.stderr, stop)
