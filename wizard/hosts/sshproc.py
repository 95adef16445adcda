"""One remote command over an asyncssh connection (I/O): its session opened despite sshd's
MaxSessions lag, its output read up to a cap, and the command stopped."""

from __future__ import annotations

import asyncio
from typing import Any


async def read_capped(stream: Any, cap: int) -> tuple[bytes, bool]:
    """Read until EOF or ``cap`` bytes; stop reading (True) when more is coming."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await stream.read(min(65536, cap - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    # Exactly at the cap: more only if another byte comes before EOF.
    more = await stream.read(1)
    return b"".join(chunks), bool(more)


async def open_process(conn: Any, command: str) -> Any:
    """Open a session channel; sshd may still count a just-closed session against
    MaxSessions for a moment, so a refused open is retried (the caller's timeout bounds it)."""
    import asyncssh

    for attempt in range(1, 1000):
        try:
            return await conn.create_process(command, encoding=None)
        except asyncssh.ChannelOpenError:
            if attempt >= 20:
                raise
            await asyncio.sleep(0.02 * attempt)
    raise AssertionError("unreachable")


def stop_process(proc: Any) -> None:
    """Kill the remote command (OpenSSH honours signal requests) and close its channel."""
    try:
        proc.send_signal("KILL")
    except Exception:
        pass
    try:
        proc.close()
    except Exception:
        pass
