"""Hosts on this machine (I/O): ``LocalHost``, and ``NetnsHost`` inside a network namespace
(files are the host's, except the per-namespace ``/proc/net`` and ``/proc/sys/net``)."""

from __future__ import annotations

import asyncio
import glob as globmod
import os
import re
import shutil
import stat as statmod

from wizard.hosts.base import (
    READ_TIMEOUT,
    WRITE_TIMEOUT,
    FileInfo,
    Host,
    HostError,
    in_thread,
)
from wizard.hosts.commands import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    CommandOutput,
    run_command,
)
from wizard.hosts.streams import LineStream, local_stream
from wizard.model import WizardError
from wizard.model.contexts import parse_context


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/run/netns", name))


class LocalHost(Host):
    spec = "local"

    @classmethod
    def from_spec(cls, rest: str) -> LocalHost:
        return cls()

    async def run(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> CommandOutput:
        return await run_command(argv, timeout, max_bytes, where=self.spec)

    async def read(self, path: str, offset: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        def _read() -> bytes:
            with open(path, "rb") as handle:
                if offset:
                    handle.seek(offset)
                return handle.read(max_bytes)

        return await in_thread(_read, path, READ_TIMEOUT)

    async def read_many(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        def _read() -> list[bytes]:
            fd = os.open(path, os.O_RDONLY)
            try:
                return [os.pread(fd, n, off) if n > 0 else b"" for off, n in ranges]
            finally:
                os.close(fd)

        return await in_thread(_read, path, READ_TIMEOUT)

    async def write(self, path: str, data: bytes, timeout: float = WRITE_TIMEOUT, *,
                    root: bool = False) -> None:
        # The wizard's own rights decide here: there is no other user to switch to.
        def _write() -> None:
            with open(path, "wb", buffering=0) as handle:
                handle.write(data)

        await in_thread(_write, path, timeout, writing=True)

    async def stat(self, path: str) -> FileInfo:
        try:
            st = await asyncio.to_thread(os.stat, path)
        except OSError as exc:
            raise HostError(f"cannot read {path}: {exc.strerror or exc}") from None
        return FileInfo(path, st.st_size, st.st_mtime, statmod.S_ISREG(st.st_mode))

    async def glob(self, pattern: str) -> list[str]:
        return sorted(await asyncio.to_thread(globmod.glob, pattern))

    async def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

    async def is_privileged(self) -> bool:
        return os.geteuid() == 0

    async def stream(self, argv: list[str]) -> LineStream:
        # the watch stops it (close()); it dies with the wizard should the wizard be killed
        return await local_stream(self._command(argv), self.spec)

    def _command(self, argv: list[str]) -> list[str]:
        return argv


#: files whose content depends on the network namespace of the reader
PER_NETNS = re.compile(r"^/proc/(self/)?(net|sys/net)/")


class NetnsHost(LocalHost):
    """Commands run under ``ip netns exec NAME``; per-namespace files are read there too."""

    def __init__(self, name: str) -> None:
        parse_context(f"netns:{name}")
        self.name = name
        self.spec = f"netns:{name}"

    @classmethod
    def from_spec(cls, rest: str) -> NetnsHost:
        """The Host of ``netns:REST``; raises WizardError when that namespace does not exist."""
        if not netns_exists(rest):
            raise WizardError("unknown context", f"network namespace {rest!r} does not exist (ip netns list)")
        return cls(rest)

    async def run(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> CommandOutput:
        out = await run_command(["ip", "netns", "exec", self.name, *argv], timeout, max_bytes,
                                where=self.spec)
        if out.returncode is not None and out.returncode != 0 and b"exec of" in out.stderr:
            # ip netns exec reports a missing program itself; keep it recognisable.
            return CommandOutput(tuple(argv), 127, b"", out.stderr, out.duration_ms, missing=True,
                                 where=self.spec)
        return CommandOutput(tuple(argv), out.returncode, out.stdout, out.stderr, out.duration_ms,
                             out.timed_out, out.truncated, out.missing, self.spec)

    def _command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    async def read(self, path: str, offset: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        if not PER_NETNS.match(path):
            return await super().read(path, offset, max_bytes)
        return await self._read_by_cat(path, offset, max_bytes)

    async def read_many(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        if not PER_NETNS.match(path):
            return await super().read_many(path, ranges)
        return await Host.read_many(self, path, ranges)

    async def write(self, path: str, data: bytes, timeout: float = WRITE_TIMEOUT, *,
                    root: bool = False) -> None:
        if not PER_NETNS.match(path):
            return await super().write(path, data, timeout, root=root)
        # /proc/sys/net is the namespace's own: write it from inside (tee writes what it reads
        # in one go; its echo on stdout is capped and dropped).
        out = await run_command(["ip", "netns", "exec", self.name, "tee", "--", path], timeout,
                                len(data) + 1, stdin=data, where=self.spec)
        if not out.ok:
            raise HostError(f"cannot write {path} in {self.spec}: {out.problem()}")

    async def stat(self, path: str) -> FileInfo:
        if PER_NETNS.match(path):
            return await self._stat_by_read(path)
        return await super().stat(path)
