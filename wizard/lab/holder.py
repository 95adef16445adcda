"""A client that holds connections open (lab I/O): an application's pool that has taken every
slot a server allows, so that the next client meets the server's connection limit.

`python -m wizard.lab.holder ADDRESS PORT COUNT postgres|redis` opens COUNT connections and
completes each one's start the way the real clients do (PostgreSQL: the startup packet and
authentication up to ReadyForQuery; Redis: a PING answered), prints ``held COUNT`` and then
keeps them, idle, until it is stopped (the lab's teardown kills it by its PID or with its
namespace). A connection the server refuses makes it print why and exit 1.

`python -m wizard.lab.holder ADDRESS PORT 1 postgres-killed` is the pooled connection whose
backend dies, as one does when the OOM killer picks it: it starts a session, asks the backend
for its PID, kills that process with SIGKILL, waits a second as an idle pool would, then sends
its next query on the same connection and prints what it met (libpq's words for an EOF, or the
error), and exits. `... 1 postgres-idle HOLD` is a pooled session left idle for HOLD seconds
before its next query (a pool whose idle time outlasts the server's idle_session_timeout).
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wizard.lab.netns import LabError

HOLD_TIMEOUT = 5.0
READY_TIMEOUT = 15.0


def startup_packet(user: str = "postgres", database: str = "postgres") -> bytes:
    """PostgreSQL's StartupMessage, protocol 3.0."""
    body = struct.pack("!I", 196608) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in (("user", user), ("database", database))) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def _error_text(message: bytes) -> str:
    """An ErrorResponse's body (fields, each a type byte and a string) as psql prints it."""
    fields = {f[:1]: f[1:].decode(errors="replace") for f in message.split(b"\0") if f}
    return f"{fields.get(b'S', 'ERROR')}:  {fields.get(b'M', '')}"


def _postgres(conn: socket.socket) -> None:
    conn.sendall(startup_packet())
    buf = b""
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            got = conn.recv(65536)
            if not got:
                raise ConnectionError("closed by the server before ReadyForQuery")
            buf += got
        kind, size = buf[:1], struct.unpack("!I", buf[1:5])[0]
        message, buf = buf[5:1 + size], buf[1 + size:]
        if kind == b"E":  # ErrorResponse: its fields, each a type byte and a string
            raise ConnectionError(_error_text(message))
        if kind == b"Z":
            return


def _query(conn: socket.socket, sql: str) -> None:
    body = sql.encode() + b"\0"
    conn.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)


def _backend_pid(conn: socket.socket) -> int:
    """The PID of the backend serving ``conn`` (``SELECT pg_backend_pid()``, read from its DataRow)."""
    _query(conn, "SELECT pg_backend_pid()")
    buf = b""
    while True:
        got = conn.recv(65536)
        if not got:
            raise ConnectionError("closed by the server before it answered")
        buf += got
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!I", buf[1:5])[0]:
            kind, size = buf[:1], struct.unpack("!I", buf[1:5])[0]
            message, buf = buf[5:1 + size], buf[1 + size:]
            if kind == b"D":  # DataRow: column count (int16), then each column's length and bytes
                length = struct.unpack("!i", message[2:6])[0]
                return int(message[6:6 + length])
            if kind == b"E":
                raise ConnectionError("the backend refused SELECT pg_backend_pid()")


def _session(address: str, port: int) -> socket.socket:
    """A started session, waiting out a server that is still recovering from an earlier crash
    ("the database system is in recovery mode", "... is starting up")."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        conn = socket.create_connection((address, port), timeout=HOLD_TIMEOUT)
        try:
            _postgres(conn)
            return conn
        except ConnectionError as exc:
            conn.close()
            if "the database system is" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def killed(address: str, port: int) -> int:
    """One pooled session whose backend is killed under it; prints what its next query met,
    then waits until the server accepts sessions again (it is healthy when anyone diagnoses it)."""
    conn = _session(address, port)
    os.kill(_backend_pid(conn), signal.SIGKILL)
    time.sleep(1.0)  # idle in the pool; the postmaster reinitialises meanwhile
    try:
        print(_next_query(conn), flush=True)
    finally:
        conn.close()
    _session(address, port).close()
    return 0


def _next_query(conn: socket.socket) -> str:
    """Send a query on a session that has idled; what it met, in the words a client would print."""
    try:
        _query(conn, "SELECT 1")
        got = conn.recv(65536)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not got:
        return "server closed the connection unexpectedly"
    if got[:1] == b"E":  # the server's ErrorResponse, sent before it closed
        return _error_text(got[5:])
    return f"answered {got[:1]!r}"


def idled(address: str, port: int, hold: float) -> int:
    """One pooled session left idle for ``hold`` seconds; prints what its next query met."""
    conn = socket.create_connection((address, port), timeout=HOLD_TIMEOUT)
    try:
        _postgres(conn)
        time.sleep(hold)
        print(_next_query(conn), flush=True)
    finally:
        conn.close()
    return 0


def _redis(conn: socket.socket) -> None:
    conn.sendall(b"*1\r\n$4\r\nPING\r\n")
    got = conn.recv(1024)
    if not got.startswith(b"+PONG"):
        raise ConnectionError(got.decode(errors="replace").strip() or "closed by the server")


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    address, port, count, kind = args[:4]
    if kind == "postgres-killed":
        return killed(address, int(port))
    if kind == "postgres-idle":
        return idled(address, int(port), float(args[4]))
    start = {"postgres": _postgres, "redis": _redis}[kind]
    held: list[socket.socket] = []
    try:
        for _ in range(int(count)):
            conn = socket.create_connection((address, int(port)), timeout=HOLD_TIMEOUT)
            start(conn)
            held.append(conn)
    except (OSError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
        return 1
    print(f"held {len(held)}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


def start(ns: str, address: str, port: int, count: int, kind: str, out_path: Path, env: dict[str, str],
          record: Callable[[int], None]) -> None:
    """Run the holder in namespace ``ns`` (its PID goes to ``record`` at once, for the
    teardown) and wait until it holds all ``count`` connections."""
    with open(out_path, "w") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "wizard.lab.holder", address,
                                 str(port), str(count), kind], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)
    record(proc.pid)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if out_path.read_text().startswith("held "):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise LabError(f"the holder of {count} connections did not get them: {out_path.read_text()[-500:]}")


if __name__ == "__main__":
    raise SystemExit(main())
