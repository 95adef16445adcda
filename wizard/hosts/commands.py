"""Runs external commands (I/O): argv lists only, each with a timeout and a byte cap.

This is the one function through which every external command of the wizard runs.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import time
from dataclasses import dataclass

from wizard.model.cancel import within

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class CommandOutput:
    argv: tuple[str, ...]
    returncode: int | None  # None when it was killed on timeout
    stdout: bytes
    stderr: bytes
    duration_ms: int
    timed_out: bool = False
    truncated: bool = False
    missing: bool = False  # the program does not exist
    where: str = ""  # the host context it ran in, for the evidence's source line

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    def problem(self) -> str:
        """One line saying why the command did not give an answer."""
        if self.missing:
            return f"{self.argv[0]} is not installed"
        if self.timed_out:
            return f"{self.argv[0]} did not finish in time"
        first = self.err.splitlines()[0] if self.err else f"exit status {self.returncode}"
        return f"{self.argv[0]} failed: {first}"


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    truncated = False
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        if size < cap:
            chunks.append(chunk[: cap - size])
        if size + len(chunk) > cap:
            truncated = True
        size += len(chunk)
    return b"".join(chunks), truncated


async def run_command(
    argv: list[str] | tuple[str, ...],
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    where: str = "local",
) -> CommandOutput:
    """Run ``argv`` (never through a shell); kill its whole process group on timeout."""
    argv = tuple(argv)
    started = time.monotonic()
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CommandOutput(argv, 127, b"", f"{argv[0]}: not found".encode(), 0, missing=True, where=where)
    except PermissionError as exc:
        return CommandOutput(argv, 126, b"", str(exc).encode(), 0, where=where)

    async def communicate() -> tuple[tuple[bytes, bool], tuple[bytes, bool]]:
        assert proc.stdout is not None and proc.stderr is not None
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        out, err = await asyncio.gather(_read_capped(proc.stdout, max_bytes),
                                        _read_capped(proc.stderr, 64 * 1024))
        await proc.wait()
        return out, err

    timed_out = False
    try:
        (stdout, truncated), (stderr, _) = await within(communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        timed_out = True
        _kill_group(proc.pid)
        try:
            await within(proc.wait(), 2)
        except TimeoutError:
            pass
        if isinstance(exc, asyncio.CancelledError):
            raise
        stdout, stderr, truncated = b"", b"", False
    return CommandOutput(
        argv, None if timed_out else proc.returncode, stdout, stderr,
        int((time.monotonic() - started) * 1000), timed_out=timed_out, truncated=truncated,
        where=where,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
