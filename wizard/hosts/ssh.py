"""SSH server context (I/O): commands and file reads on the server over one asyncssh connection.

The user's own keys, agent and ``~/.ssh/config`` are used, host keys are verified against
known_hosts, and nothing ever asks for a password (public keys only; ``sudo -n`` only).
The connection is opened lazily on first use and reused for every command, ranged file read
(one SFTP session) and glob of the run; a failure to connect is remembered and raised as a
one-line ``HostError`` by every later call, so server-side checks end quickly with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wizard.hosts.base import READ_TIMEOUT, WRITE_TIMEOUT, FileInfo, Host, HostError
from wizard.hosts.commands import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, CommandOutput
from wizard.hosts.local import PER_NETNS
from wizard.hosts.sshargs import (
    SshTarget,
    describe_failure,
    needs_root,
    parse_ssh_spec,
    remote_command,
    remote_stream_command,
    which_command,
)
from wizard.hosts.sshproc import open_process, read_capped, stop_process
from wizard.hosts.streams import LineStream
from wizard.model.cancel import within

CONNECT_TIMEOUT = 5.0
# OpenSSH allows 10 sessions per connection (MaxSessions); the SFTP session holds one.
MAX_CHANNELS = 6
STDERR_CAP = 64 * 1024

T = TypeVar("T")


class SshHost(Host):
    """A server context over SSH: one connection, one SFTP session, bounded channels."""

    #: every byte read costs transfer: searches (log windows) run on the server instead
    remote_search = True

    def __init__(self, target: SshTarget, *, known_hosts: Any = (), client_keys: Any = (),
                 config: Any = (), connect_timeout: float = CONNECT_TIMEOUT,
                 sudo: str = "auto") -> None:
        self.target = target
        self.spec = target.spec
        # () lets asyncssh use the defaults: ~/.ssh/known_hosts, ~/.ssh/id_*, ~/.ssh/config.
        self._known_hosts = known_hosts
        self._client_keys = client_keys
        self._config = config
        self.connect_timeout = connect_timeout
        self._sudo_mode = sudo  # auto: use sudo -n when not root and it works; never: don't
        self._conn: Any = None
        self._sftp: Any = None
        self._failure = ""
        self._lock = asyncio.Lock()
        self._sftp_lock = asyncio.Lock()
        self._channels = asyncio.Semaphore(MAX_CHANNELS)
        self._uid: int | None = None
        self._sudo: bool | None = None
        self._which: dict[str, str | None] = {}
        self.connects = 0  # connection attempts made (one per run is the contract)

    @classmethod
    def from_spec(cls, rest: str) -> SshHost:
        return cls(parse_ssh_spec(rest))

    def unavailable(self) -> str:
        return self._failure

    # -- the connection -------------------------------------------------------------

    async def _connection(self) -> Any:
        if self._conn is not None:
            return self._conn
        if self._failure:
            raise HostError(self._failure)
        async with self._lock:
            if self._conn is None and not self._failure:
                self._conn = await self._connect()
        if self._conn is None:
            raise HostError(self._failure)
        return self._conn

    async def _connect(self) -> Any:
        import asyncssh

        self.connects += 1
        t = self.target
        kwargs: dict[str, Any] = {
            "port": t.port or (), "username": t.user or (), "config": self._config,
            "known_hosts": self._known_hosts, "client_keys": self._client_keys,
            # Never prompt: no passwords, no keyboard-interactive, public keys only.
            "password": None, "kbdint_auth": False, "gss_auth": False, "preferred_auth": "publickey",
            "connect_timeout": self.connect_timeout, "login_timeout": self.connect_timeout,
            "keepalive_interval": 15, "keepalive_count_max": 2}
        try:
            options = await within(asyncssh.SSHClientConnectionOptions.construct(
                None, host=t.host, **kwargs), self.connect_timeout)
            if options.known_hosts is None:
                # `UserKnownHostsFile none` in ~/.ssh/config would make asyncssh accept any key.
                self._failure = (f"{self.spec}: host key checking is disabled by ~/.ssh/config "
                                 f"(UserKnownHostsFile none); refusing an unverified server")
                return None
            return await within(asyncssh.connect(t.host, **kwargs), self.connect_timeout * 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failure = describe_failure(exc, t, self.connect_timeout, self._key_known(exc))
            return None

    def _key_known(self, exc: BaseException) -> bool | None:
        """Whether known_hosts has some key for the host (then a rejection means it changed)."""
        import asyncssh

        if not isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return None
        files = self._known_hosts if isinstance(self._known_hosts, (str, list)) and self._known_hosts \
            else [os.path.expanduser("~/.ssh/known_hosts"), "/etc/ssh/ssh_known_hosts"]
        files = [files] if isinstance(files, str) else files
        port = self.target.port or 22
        for path in files:
            try:
                keys = asyncssh.read_known_hosts(path)
                trusted = keys.match(self.target.host, "", port)[0]
            except (OSError, ValueError, asyncssh.Error):
                continue
            if trusted:
                return True
        return False

    async def _sftp_client(self) -> Any:
        if self._sftp is None:
            conn = await self._connection()
            async with self._sftp_lock:
                if self._sftp is None:
                    try:
                        self._sftp = await within(conn.start_sftp_client(), READ_TIMEOUT)
                    except Exception as exc:
                        raise HostError(f"{self.spec}: cannot open an SFTP session: "
                                        f"{getattr(exc, 'reason', '') or type(exc).__name__}") from None
        return self._sftp

    async def close(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()
            try:
                await within(conn.wait_closed(), 2)
            except (TimeoutError, OSError):
                pass
        if not self._failure:
            self._failure = f"{self.spec}: the connection was closed"

    # -- commands -------------------------------------------------------------------

    async def run(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> CommandOutput:
        sudo = needs_root(argv) and await self._use_sudo()
        return await self._exec(argv, timeout, max_bytes, sudo=sudo)

    async def run_as_root(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT,
                          max_bytes: int = DEFAULT_MAX_BYTES) -> CommandOutput:
        return await self._exec(argv, timeout, max_bytes, sudo=await self._use_sudo())

    async def _exec(self, argv: list[str] | tuple[str, ...], timeout: float, max_bytes: int,
                    *, sudo: bool = False, script: str = "", stdin: bytes = b"") -> CommandOutput:
        argv = tuple(argv)
        conn = await self._connection()
        command = script or remote_command(argv, sudo, limit=timeout + 1)
        started = time.monotonic()
        proc = None
        stdout, stderr, truncated, status, timed_out = b"", b"", False, None, False

        async def drive() -> None:
            nonlocal proc, stdout, stderr, truncated, status
            async with self._channels:
                proc = await open_process(conn, command)
                if stdin:
                    proc.stdin.write(stdin)
                proc.stdin.write_eof()
                errors = asyncio.ensure_future(read_capped(proc.stderr, STDERR_CAP))
                try:
                    stdout, truncated = await read_capped(proc.stdout, max_bytes)
                    if truncated:
                        # Enough was read: stop the remote command rather than transfer the rest.
                        stop_process(proc)
                        status = 0  # like `cmd | head -c N`: what was read is what was asked for
                        return
                    stderr = (await errors)[0]
                finally:
                    if not errors.done():
                        errors.cancel()
                await proc.wait_closed()
                status = proc.exit_status

        try:
            await within(drive(), timeout)
        except TimeoutError:
            timed_out = True
            if proc is not None:
                stop_process(proc)
            stdout, stderr, status = b"", b"", None
        except asyncio.CancelledError:
            if proc is not None:
                stop_process(proc)
            raise
        except Exception as exc:
            import asyncssh

            if isinstance(exc, (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError)):
                self._failure = f"{self.spec}: the SSH connection was lost: {exc}"
                self._conn, self._sftp = None, None
            raise HostError(f"{self.spec}: cannot run {argv[0]}: "
                            f"{getattr(exc, 'reason', '') or exc}") from None
        if status is None and not timed_out:
            status = 255  # killed by a signal or the channel closed without a status
        missing = status == 127 and (b"not found" in stderr or b"No such file" in stderr)
        return CommandOutput(argv, status, stdout, stderr, int((time.monotonic() - started) * 1000),
                             timed_out=timed_out, truncated=truncated, missing=missing,
                             where=self.spec)

    async def stream(self, argv: list[str]) -> LineStream:
        """One session of its own while the command runs: stopped on the server when the
        session closes (its stdin ends: closed by us, or the connection lost)."""
        command = remote_stream_command(argv, needs_root(argv) and await self._use_sudo())
        try:
            proc = await open_process(await self._connection(), command)
        except Exception as exc:
            raise HostError(f"{self.spec}: cannot run {argv[0]}: {getattr(exc, 'reason', '') or exc}") from None

        async def stop() -> None:
            stop_process(proc)
            await proc.wait_closed()

        return LineStream(shlex.join(argv), proc.stdout, proc.stderr, stop)

    async def _use_sudo(self) -> bool:
        await self.is_privileged()
        return bool(self._uid != 0 and self._sudo)

    async def is_privileged(self) -> bool:
        """Remote uid 0, or ``sudo -n true`` works (then root commands go through sudo -n)."""
        if self._uid is None:
            try:
                out = await self._exec(["id", "-u"], 5, 64)
            except HostError:
                return False  # the reason is kept: every server-side call will raise it
            self._uid = int(out.text.strip()) if out.ok and out.text.strip().isdigit() else -1
        if self._uid == 0:
            return True
        if self._sudo is None:
            self._sudo = False
            if self._sudo_mode != "never":
                try:
                    out = await self._exec(["sudo", "-n", "true"], 5, 1024)
                    self._sudo = out.ok
                except HostError:
                    return False
        return bool(self._sudo)

    async def which(self, tool: str) -> str | None:
        # The runner asks before every check that needs a tool, server.context asks again:
        # one round trip per tool and run is enough.
        if tool not in self._which:
            out = await self._exec(("command", "-v", tool), 5, 4096, script=which_command(tool))
            path = out.text.strip().splitlines()
            self._which[tool] = path[0] if out.ok and path and path[0].startswith("/") else None
        return self._which[tool]

    # -- files ----------------------------------------------------------------------

    async def read(self, path: str, offset: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        if PER_NETNS.match(path):
            # /proc files report size 0 and are generated on read: one cat is one round trip.
            return await self._read_by_cat(path, offset, max_bytes)

        async def by_sftp(sftp: Any) -> bytes:
            async with sftp.open(path, "rb") as handle:
                data: bytes = await handle.read(max_bytes, offset)
                return data

        return await self._sftp_or_command("read", path, READ_TIMEOUT, by_sftp,
                                           lambda sudo: self._exec_read(path, offset, max_bytes, sudo=sudo))

    async def read_many(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The reads on one SFTP handle, sent together: one open, the reads pipelined, one
        close (a binary search's step costs one round trip of requests, not one a probe)."""
        if PER_NETNS.match(path):
            return await super().read_many(path, ranges)

        async def by_sftp(sftp: Any) -> list[bytes]:
            async with sftp.open(path, "rb") as handle:
                got = await asyncio.gather(*(handle.read(n, off) for off, n in ranges if n > 0))
            it = iter(got)
            return [next(it) if n > 0 else b"" for _, n in ranges]

        async def by_command(sudo: bool) -> list[bytes]:
            return list(await asyncio.gather(*(self._exec_read(path, off, n, sudo=sudo)
                                               for off, n in ranges)))

        return await self._sftp_or_command("read", path, READ_TIMEOUT, by_sftp, by_command)

    async def _sftp_or_command(self, verb: str, path: str, timeout: float,
                               by_sftp: Callable[[Any], Awaitable[T]],
                               by_command: Callable[[bool], Awaitable[T]]) -> T:
        """``by_sftp(sftp)``; by command where the server has no SFTP subsystem, or through
        sudo -n where SFTP is refused for permissions and sudo works (a ranged read or a
        write by command costs the same bytes)."""
        import asyncssh

        try:
            sftp = await self._sftp_client()
        except HostError:
            if self._failure:
                raise
            return await by_command(False)
        try:
            async with asyncio.timeout(timeout):
                return await by_sftp(sftp)
        except TimeoutError:
            raise HostError(f"cannot {verb} {path} in {self.spec}: no answer within {timeout:g}s") from None
        except asyncssh.SFTPPermissionDenied:
            if await self._use_sudo():
                return await by_command(True)
            raise HostError(f"cannot {verb} {path} in {self.spec}: permission denied "
                            f"(needs root or passwordless sudo)") from None
        except (asyncssh.SFTPError, OSError) as exc:
            raise HostError(f"cannot {verb} {path} in {self.spec}: "
                            f"{getattr(exc, 'reason', '') or exc}") from None

    async def _exec_read(self, path: str, offset: int, max_bytes: int, *, sudo: bool) -> bytes:
        # tail -c +N seeks to byte N (1-based) of a regular file; the output cap stops it.
        out = await self._exec(["tail", "-c", f"+{offset + 1}", "--", path], READ_TIMEOUT,
                               max_bytes, sudo=sudo)
        if not out.ok:
            raise HostError(f"cannot read {path} in {self.spec}: {out.problem()}")
        return out.stdout[:max_bytes]

    async def write(self, path: str, data: bytes, timeout: float = WRITE_TIMEOUT, *,
                    root: bool = False) -> None:
        """SFTP for the user's own files; ``sudo -n tee`` for root's when the login is not root
        (or when SFTP is refused); /proc/sys/net by command, like reads of /proc/net."""
        if root and await self._use_sudo():
            return await self._exec_write(path, data, timeout, sudo=True)
        if PER_NETNS.match(path):
            return await self._exec_write(path, data, timeout, sudo=False)

        async def by_sftp(sftp: Any) -> None:
            async with sftp.open(path, "wb") as handle:
                await handle.write(data, 0)

        await self._sftp_or_command("write", path, timeout, by_sftp,
                                    lambda sudo: self._exec_write(path, data, timeout, sudo=sudo))

    async def _exec_write(self, path: str, data: bytes, timeout: float, *, sudo: bool) -> None:
        # tee writes what it reads in one write (a control file wants one); its echo is dropped.
        out = await self._exec(["tee", "--", path], timeout, len(data) + 1, sudo=sudo, stdin=data)
        if not out.ok:
            raise HostError(f"cannot write {path} in {self.spec}: {out.problem()}")

    async def stat(self, path: str) -> FileInfo:
        if PER_NETNS.match(path):
            return await self._stat_by_read(path)
        import asyncssh

        sftp = await self._sftp_client()
        try:
            attrs = await within(sftp.stat(path), READ_TIMEOUT)
        except TimeoutError:
            raise HostError(f"stat {path} in {self.spec} took longer than {READ_TIMEOUT:g}s") from None
        except (asyncssh.SFTPError, OSError) as exc:
            raise HostError(f"cannot read {path} in {self.spec}: "
                            f"{getattr(exc, 'reason', '') or exc}") from None
        is_file = attrs.type == asyncssh.FILEXFER_TYPE_REGULAR
        return FileInfo(path, attrs.size or 0, float(attrs.mtime or 0), is_file)

    async def glob(self, pattern: str) -> list[str]:
        """Matches on the server (SFTP glob: no shell, so no pattern can run anything)."""
        import asyncssh

        sftp = await self._sftp_client()
        try:
            found = await within(sftp.glob(pattern), READ_TIMEOUT)
        except TimeoutError:
            raise HostError(f"glob {pattern} in {self.spec} took longer than {READ_TIMEOUT:g}s") from None
        except asyncssh.SFTPNoSuchFile:
            return []
        except (asyncssh.SFTPError, OSError) as exc:
            raise HostError(f"cannot list {pattern} in {self.spec}: "
                            f"{getattr(exc, 'reason', '') or exc}") from None
        return sorted(p.decode() if isinstance(p, bytes) else str(p) for p in found)
