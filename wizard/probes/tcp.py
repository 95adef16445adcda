"""TCP probes through plain sockets (I/O): connect outcomes and payload exchanges, timed.

Everything a person would otherwise learn from ``nc`` or ``curl``: did the handshake
complete, was the first data answered, reset or ignored, and how long each stage took.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

OutcomeKind = Literal["ok", "refused", "reset", "eof", "timeout", "unreachable", "error"]
Stage = Literal["connect", "send", "first-data", "response", "after-hold"]

MAX_READ = 64 * 1024


@dataclass(frozen=True)
class ConnectOutcome:
    address: str
    port: int
    kind: OutcomeKind
    ms: float
    errno: int | None = None
    message: str = ""
    local: str = ""  # local address:port of the attempt, when it got one

    @property
    def family(self) -> str:
        return "IPv6" if ":" in self.address else "IPv4"


@dataclass(frozen=True)
class ProbeEvent:
    """One thing that happened on a probe connection, ``ms`` after the connect began."""

    ms: float
    what: Literal["syn", "connected", "sent", "received", "eof", "reset", "timeout", "refused",
                  "idle", "error", "closed"]
    detail: str = ""
    size: int = 0


@dataclass(frozen=True)
class ExchangeOutcome:
    """A connection that sends a payload, reads the answer, optionally idles and sends again."""

    address: str
    port: int
    kind: OutcomeKind  # how it ended: ok (answer or quiet), reset, eof, timeout, refused, ...
    stage: Stage  # the stage the ending happened in
    events: list[ProbeEvent] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    first_bytes: bytes = b""
    local: str = ""
    attempt: int = 0
    message: str = ""

    @property
    def connect(self) -> ProbeEvent | None:
        return next((e for e in self.events if e.what in ("connected", "refused", "timeout", "error")), None)

    @property
    def ms(self) -> float:
        return self.events[-1].ms if self.events else 0.0


def _classify(exc: BaseException) -> tuple[OutcomeKind, int | None, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", exc.errno, "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "reset", exc.errno, "connection reset by peer"
    if isinstance(exc, BrokenPipeError):
        return "reset", exc.errno, "broken pipe (the peer had reset or closed)"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", errno.ETIMEDOUT, "no answer before the timeout"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return "unreachable", exc.errno, exc.strerror or str(exc)
        if exc.errno == errno.ECONNRESET:
            return "reset", exc.errno, "connection reset by peer"
        return "error", exc.errno, exc.strerror or str(exc)
    return "error", None, str(exc)


def _sockaddr(address: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    if ":" in address:
        return socket.AF_INET6, (address, port, 0, 0)
    return socket.AF_INET, (address, port)


def _local(sock: socket.socket) -> str:
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TcpProbe:
    """Connects and exchanges data with plain non-blocking sockets; every wait is bounded."""

    async def connect(self, address: str, port: int, timeout: float) -> ConnectOutcome:
        family, sockaddr = _sockaddr(address, port)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), timeout)
        except BaseException as exc:  # noqa: BLE001 - every failure is an outcome
            if isinstance(exc, asyncio.CancelledError):
                sock.close()
                raise
            kind, num, message = _classify(exc)
            return ConnectOutcome(address, port, kind, _ms(started), num, message, _local(sock))
        finally:
            local = _local(sock)
            sock.close()
        return ConnectOutcome(address, port, "ok", _ms(started), None, "handshake completed", local)

    async def exchange(self, address: str, port: int, payload: bytes, timeout: float,
                       hold: float = 0.0, attempt: int = 0, read_limit: int = MAX_READ) -> ExchangeOutcome:
        """Connect, send ``payload`` (if any), read until EOF/reset/quiet, idle ``hold``
        seconds and send it again. The outcome says how and in which stage it ended."""
        family, sockaddr = _sockaddr(address, port)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        events: list[ProbeEvent] = [ProbeEvent(0.0, "syn")]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sent = received = 0
        first = bytearray()
        local = ""

        def done(kind: OutcomeKind, stage: Stage, message: str = "") -> ExchangeOutcome:
            return ExchangeOutcome(address, port, kind, stage, events, sent, received, bytes(first),
                                   local, attempt, message)

        try:
            try:
                await asyncio.wait_for(loop.sock_connect(sock, sockaddr), timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                kind, _, message = _classify(exc)
                events.append(ProbeEvent(_ms(started), "timeout" if kind == "timeout" else
                                         "refused" if kind == "refused" else "error", message))
                return done(kind, "connect", message)
            local = _local(sock)
            events.append(ProbeEvent(_ms(started), "connected"))

            rounds: list[Stage] = ["first-data"] + (["after-hold"] if hold > 0 else [])
            for stage in rounds:
                if stage == "after-hold":
                    events.append(ProbeEvent(_ms(started), "idle", f"{hold:g}s"))
                    await asyncio.sleep(hold)
                if payload:
                    try:
                        await asyncio.wait_for(loop.sock_sendall(sock, payload), timeout)
                    except (OSError, asyncio.TimeoutError) as exc:
                        kind, _, message = _classify(exc)
                        events.append(ProbeEvent(_ms(started), "reset" if kind == "reset" else kind
                                                  if kind in ("timeout", "error") else "error", message))
                        return done(kind, stage, message)
                    sent += len(payload)
                    events.append(ProbeEvent(_ms(started), "sent", size=len(payload)))
                # Read what comes back: stop at EOF, reset, a quiet period or the cap.
                quiet = timeout if received == 0 or stage == "after-hold" else min(timeout, 0.5)
                got_any = False
                while received < read_limit:
                    try:
                        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), quiet)
                    except asyncio.TimeoutError:
                        if not got_any and payload:
                            events.append(ProbeEvent(_ms(started), "timeout", "no answer to the data"))
                        break
                    except OSError as exc:
                        kind, _, message = _classify(exc)
                        events.append(ProbeEvent(_ms(started), "reset" if kind == "reset" else "error",
                                                 message))
                        return done(kind, stage if got_any or stage == "after-hold" else stage, message)
                    if not chunk:
                        events.append(ProbeEvent(_ms(started), "eof", "the peer closed (FIN)"))
                        if stage == "first-data" and hold > 0:
                            return done("eof", stage, "the peer closed the connection before the hold")
                        return done("eof" if not got_any and payload else "ok", stage,
                                    "the peer closed the connection (FIN)")
                    got_any = True
                    received += len(chunk)
                    if len(first) < 512:
                        first.extend(chunk[: 512 - len(first)])
                    events.append(ProbeEvent(_ms(started), "received", size=len(chunk)))
                    quiet = min(timeout, 0.5)
            events.append(ProbeEvent(_ms(started), "closed", "closed by the probe"))
            return done("ok", rounds[-1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unexpected socket failure is still an outcome
            kind, _, message = _classify(exc)
            events.append(ProbeEvent(_ms(started), "error", message))
            return done(kind, "connect" if not local else "first-data", message)
        finally:
            sock.close()


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
