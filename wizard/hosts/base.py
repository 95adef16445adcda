"""Hosts (I/O): where server-side evidence is read. Commands as argv, file reads bounded.

``LocalHost`` is this machine; ``NetnsHost`` runs commands inside a network namespace
(files are the host's, except the per-namespace ``/proc/net`` and ``/proc/sys/net``);
``SshHost`` (asyncssh) offers the same interface over one reused connection.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from wizard.hosts.commands import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    CommandOutput,
)
from wizard.hosts.streams import LineStream
from wizard.model.cancel import within

READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0


class HostError(Exception):
    """A file or command in a server context could not be read; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_file: bool


class Host(ABC):
    """A place where commands run and files are read. No shell strings, ever."""

    #: the context as written on the command line: local, netns:NAME, ssh:user@host
    spec: str

    @abstractmethod
    async def run(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> CommandOutput: ...

    @abstractmethod
    async def read(self, path: str, offset: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        """Up to ``max_bytes`` of ``path`` from ``offset``; raises HostError."""

    async def read_many(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """``read(path, offset, n)`` for each (offset, n), in order; raises HostError.

        The reads are issued together: over SSH they share one round trip (SFTP pipelines
        them, exec reads are bounded by the connection's channel limit), and LocalHost does
        them all in one worker-thread hop. A binary search asks for several probes at once.
        """
        return list(await asyncio.gather(*(self.read(path, off, n) for off, n in ranges)))

    @abstractmethod
    async def stat(self, path: str) -> FileInfo:
        """Size and mtime of ``path``; raises HostError."""

    @abstractmethod
    async def glob(self, pattern: str) -> list[str]: ...

    @abstractmethod
    async def which(self, tool: str) -> str | None: ...

    @abstractmethod
    async def is_privileged(self) -> bool:
        """Whether commands and reads here run with root rights."""

    async def write(self, path: str, data: bytes, timeout: float = WRITE_TIMEOUT, *,
                    root: bool = False) -> None:
        """Replace the content of ``path`` with ``data``; raises HostError with the one-line reason.

        Meant for control files (tracefs, /proc/sys): ``data`` goes in one write. ``root``
        says the file is root's; where this context's user is not root (ssh) it then goes
        through ``sudo -n``.
        """
        raise HostError(f"cannot write {path}: {self.spec} offers no file writes")

    async def run_as_root(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT,
                          max_bytes: int = DEFAULT_MAX_BYTES) -> CommandOutput:
        """A command that needs root here: through ``sudo -n`` where this context's user is not root."""
        return await self.run(argv, timeout, max_bytes)

    async def stream(self, argv: list[str]) -> LineStream:
        """``argv`` started here and read line by line while it runs (``journalctl -f``) until
        the stream is closed (or the wizard ends); raises HostError when it cannot start."""
        raise HostError(f"{self.spec} offers no commands that stream")

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except HostError:
            return False
        return True

    async def read_text(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
        return (await self.read(path, 0, max_bytes)).decode("utf-8", "replace")

    async def addresses(self) -> list[str]:
        """Every IP address configured in this context (``ip -j addr``)."""
        out = await self.run(["ip", "-j", "addr", "show"], timeout=3, max_bytes=1 << 20)
        if not out.ok:
            raise HostError(f"cannot list addresses in {self.spec}: {out.problem()}")
        try:
            links = json.loads(out.text or "[]")
        except json.JSONDecodeError:
            raise HostError(f"cannot list addresses in {self.spec}: unreadable ip -j output") from None
        return [a["local"] for link in links for a in link.get("addr_info", []) if "local" in a]

    async def _read_by_cat(self, path: str, offset: int, max_bytes: int) -> bytes:
        """Read ``path`` with ``cat`` run here: for files whose content depends on the context."""
        out = await self.run(["cat", path], timeout=READ_TIMEOUT, max_bytes=offset + max_bytes)
        if not out.ok:
            raise HostError(f"cannot read {path} in {self.spec}: {out.problem()}")
        return out.stdout[offset:offset + max_bytes]

    async def _stat_by_read(self, path: str) -> FileInfo:
        # /proc files report size 0 and no useful mtime: their size is what a read gives.
        data = await self.read(path)
        return FileInfo(path, len(data), 0.0, True)

    def unavailable(self) -> str:
        """Why this context cannot be reached, one line ("" when it can or was not tried)."""
        return ""

    async def close(self) -> None:  # noqa: B027 - optional: only hosts with connections override it
        """Release connections (SSH); nothing to do for local contexts."""


R = TypeVar("R")


async def in_thread(work: Callable[[], R], path: str, timeout: float, *, writing: bool = False) -> R:
    """``work()`` (blocking I/O on ``path``) in a worker thread, bounded by ``timeout``; a
    failure becomes the one-line HostError a Host raises ("cannot read PATH: reason")."""
    verb, doing = ("write", "writing") if writing else ("read", "reading")
    try:
        return await within(asyncio.to_thread(work), timeout)
    except TimeoutError:
        raise HostError(f"{doing} {path} took longer than {timeout:g}s") from None
    except OSError as exc:
        raise HostError(f"cannot {verb} {path}: {exc.strerror or exc}") from None
