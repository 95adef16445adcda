"""A local file's window cut in one worker thread (I/O): the binary search's probes read
where they are asked for, without a trip through the event loop and a thread each.

A cut makes a few dozen small reads (the order check's samples, two searches' probes,
the edges) and one of the window's bytes; through ``LocalHost`` each is a hop to a thread
and back (a fraction of a millisecond on a busy machine), which made a 10-minute cut of a
gigabyte cost more than reading its window. Here the whole cut runs in one thread, its
reads plain ``pread`` calls on one descriptor, bounded by one timeout as a whole.
"""

from __future__ import annotations

import asyncio
import os
import stat as statmod
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from wizard.hosts.base import READ_TIMEOUT, FileInfo, HostError, in_thread
from wizard.hosts.local import LocalHost

R = TypeVar("R")
CUT_TIMEOUT = 4 * READ_TIMEOUT  # the whole cut: a cold disk reads its 32 MiB within it


class DirectLocal(LocalHost):
    """``LocalHost`` whose file reads run in the calling thread (only inside a worker)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def _fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        return fd

    def close_files(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    async def read(self, path: str, offset: int = 0, max_bytes: int = 1 << 20) -> bytes:
        try:
            return os.pread(self._fd(path), max_bytes, offset) if max_bytes > 0 else b""
        except OSError as exc:
            raise HostError(f"cannot read {path}: {exc.strerror or exc}") from None

    async def read_many(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        try:
            fd = self._fd(path)
            return [os.pread(fd, n, off) if n > 0 else b"" for off, n in ranges]
        except OSError as exc:
            raise HostError(f"cannot read {path}: {exc.strerror or exc}") from None

    async def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise HostError(f"cannot read {path}: {exc.strerror or exc}") from None
        return FileInfo(path, st.st_size, st.st_mtime, statmod.S_ISREG(st.st_mode))


async def in_one_thread(path: str, make: Callable[[DirectLocal], Coroutine[Any, Any, R]]) -> R:
    """``make(host)`` (a coroutine reading ``path`` through ``host``) run to its end in a
    worker thread with its own event loop and a DirectLocal host."""

    def work() -> R:
        host = DirectLocal()
        try:
            return asyncio.run(make(host))
        finally:
            host.close_files()

    return await in_thread(work, path, CUT_TIMEOUT)


__all__ = ["CUT_TIMEOUT", "DirectLocal", "in_one_thread"]
