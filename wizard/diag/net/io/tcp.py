"""TCP probes through plain sockets (I/O): connect outcomes and payload exchanges, timed.

Everything a person would otherwise learn from ``nc`` or ``curl``: did the handshake
complete, was the first data answered, reset or ignored, did the peer close an idle
connection, and how long each stage took. Every wait is bounded; the probe closes politely
(shut down writing, read until the peer's FIN) so that its own kernel does not send a reset
that would show up in the server's counters as if the server had a problem.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable
from typing import Any

from wizard.engine.probes import (
    ConnectOutcome,
    ExchangeOutcome,
    OutcomeKind,
    ProbeEvent,
    Stage,
)
from wizard.model.cancel import within

MAX_READ = 64 * 1024
FIRST_BYTES = 512  # how much of the answer an outcome keeps
QUIET_S = 0.5  # once an answer started, this long without more bytes ends it
# With nothing to send, the probe only listens: a server that speaks first (SSH, SMTP, FTP,
# MySQL) greets at once, one that waits for the client never will. This long after the
# handshake (or the timeout, if shorter) the silence is the answer.
SPEAKS_FIRST_S = 0.5
CLOSE_WAIT_S = 0.5  # after our FIN, how long to read on for the peer's FIN
RST_WAIT_S = 1.0  # after writing to a peer that closed, how long to wait for its RST
# A FIN this soon after the answer means "closes as it answers" (Connection: close), not
# "closed an idle keep-alive connection".
CLOSES_WITH_ANSWER_MS = 50.0


def _classify(exc: BaseException) -> tuple[OutcomeKind, int | None, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", exc.errno, "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "reset", exc.errno, "connection reset by peer"
    if isinstance(exc, BrokenPipeError):
        # EPIPE: the peer had reset (a later write) or reset a half-closed connection.
        return "reset", exc.errno, "broken pipe (the peer had reset the connection)"
    if isinstance(exc, TimeoutError):
        return "timeout", errno.ETIMEDOUT, "no answer before the timeout"
    if isinstance(exc, socket.gaierror):
        return "error", None, f"cannot resolve the address: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return "unreachable", exc.errno, exc.strerror or str(exc)
        if exc.errno == errno.ECONNRESET:
            return "reset", exc.errno, "connection reset by peer"
        return "error", exc.errno, exc.strerror or str(exc)
    return "error", None, str(exc)


async def _resolve(address: str, port: int, timeout: float) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The socket address of ``address``: numeric (IPv6 scope ids included) without I/O, a
    name through the system resolver within ``timeout``."""
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        loop = asyncio.get_running_loop()
        infos = await within(loop.getaddrinfo(address, port, type=socket.SOCK_STREAM), timeout)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _local(sock: socket.socket) -> str:
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


async def _wait_readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` became readable (data, FIN or RST) within ``timeout``; reads nothing."""
    if timeout <= 0:
        return False
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: None if ready.done() else ready.set_result(None))
    try:
        await within(ready, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def _close_gently(sock: socket.socket, wait: float) -> bool:
    """Shut down writing and read (discarding) until the peer's FIN, at most ``wait`` s.

    Closing with unread bytes in the receive queue makes our kernel send an RST, which
    would move the server's reset counters as if the server had a problem. Returns False
    when the peer was still sending when the wait ran out (the close then resets).
    """
    loop = asyncio.get_running_loop()
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return True  # already reset or closed: nothing left to be polite about
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        try:
            chunk = await within(loop.sock_recv(sock, 65536), left)
        except OSError:  # quiet (TimeoutError) or reset: a close now sends no RST of ours
            return True
        if not chunk:
            return True
    for _ in range(64):  # out of time: still take what is already queued, without waiting
        try:
            if not sock.recv(65536, socket.MSG_DONTWAIT):
                return True
        except OSError:  # BlockingIOError: nothing left unread
            return True
    return False


class TcpProbe:
    """Connects and exchanges data with plain non-blocking sockets; every wait is bounded."""

    async def connect(self, address: str, port: int, timeout: float) -> ConnectOutcome:
        started = time.monotonic()
        try:
            family, sockaddr = await _resolve(address, port, timeout)
        except OSError as exc:
            kind, num, message = _classify(exc)
            return ConnectOutcome(address, port, kind, _ms(started), num, message)
        loop = asyncio.get_running_loop()
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            try:
                await within(loop.sock_connect(sock, sockaddr), timeout)
            except OSError as exc:  # TimeoutError included
                kind, num, message = _classify(exc)
                return ConnectOutcome(address, port, kind, _ms(started), num, message, _local(sock))
            outcome = ConnectOutcome(address, port, "ok", _ms(started), None, "handshake completed",
                                     _local(sock))
            # A banner (SSH, SMTP) may arrive before the close: read it away first.
            await _close_gently(sock, min(0.2, timeout))
            return outcome
        finally:
            sock.close()

    async def exchange(self, address: str, port: int, payload: bytes, timeout: float,
                       hold: float = 0.0, attempt: int = 0, read_limit: int = MAX_READ,
                       on_connect: Callable[[], None] | None = None) -> ExchangeOutcome:
        """Connect, send ``payload`` (if any), read until EOF/reset/quiet, idle ``hold``
        seconds watching for the peer's FIN or RST, and send it again. ``on_connect`` is
        called when the handshake has completed.

        Ends within about ``2 * timeout + hold`` seconds (plus a short polite close).
        """
        return await _Exchange(address, port, payload, timeout, hold, attempt, read_limit, on_connect).run()


class _Exchange:
    """The state of one exchange: its socket, its events and its time budget."""

    def __init__(self, address: str, port: int, payload: bytes, timeout: float, hold: float,
                 attempt: int, read_limit: int, on_connect: Callable[[], None] | None = None) -> None:
        self.address, self.port, self.payload = address, port, payload
        self.timeout, self.hold, self.attempt = timeout, max(hold, 0.0), attempt
        self.read_limit = max(read_limit, 1)
        self.started = time.monotonic()
        self.deadline = self.started + 2 * timeout + self.hold
        self.events: list[ProbeEvent] = []
        self.sent = self.received = 0
        self.first = bytearray()
        self.local = ""
        self.sock: socket.socket | None = None
        self.on_connect = on_connect  # called once the handshake has completed

    def event(self, what: str, detail: str = "", size: int = 0) -> ProbeEvent:
        ev = ProbeEvent(_ms(self.started), what, detail, size)  # type: ignore[arg-type]
        self.events.append(ev)
        return ev

    def left(self, wanted: float) -> float:
        return max(0.0, min(wanted, self.deadline - time.monotonic()))

    def done(self, kind: OutcomeKind, stage: Stage, message: str = "") -> ExchangeOutcome:
        return ExchangeOutcome(self.address, self.port, kind, stage, list(self.events), self.sent,
                               self.received, bytes(self.first), self.local, self.attempt, message)

    async def run(self) -> ExchangeOutcome:
        self.event("syn")
        loop = asyncio.get_running_loop()
        try:
            family, sockaddr = await _resolve(self.address, self.port, self.timeout)
        except OSError as exc:
            return self._connect_failed(exc)
        self.sock = sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            try:
                await within(loop.sock_connect(sock, sockaddr), self.timeout)
            except OSError as exc:
                self.local = _local(sock)  # the port the SYN left from, for a capture to match
                return self._connect_failed(exc)
            self.local = _local(sock)
            self.event("connected")
            if self.on_connect is not None:
                self.on_connect()
            ended = await self._round("first-data")
            if ended is not None:
                return ended
            stage: Stage = "first-data"
            if self.hold > 0:
                ended = await self._hold()
                if ended is not None:
                    return ended
                if self.payload:
                    stage = "after-hold"
                    ended = await self._round(stage)
                    if ended is not None:
                        return ended
            return await self._finish("ok", stage, "answered" if self.received else
                                      "the connection stayed open")
        finally:
            sock.close()

    def _connect_failed(self, exc: OSError) -> ExchangeOutcome:
        kind, _, message = _classify(exc)
        what = kind if kind in ("timeout", "refused", "reset") else "error"
        self.event(what, message)
        return self.done(kind, "connect", message)

    async def _finish(self, kind: OutcomeKind, stage: Stage, message: str) -> ExchangeOutcome:
        assert self.sock is not None
        closed = self.event("closed", "closed by the probe")  # our FIN leaves at the shutdown
        if not await _close_gently(self.sock, self.left(CLOSE_WAIT_S)):
            self.events[self.events.index(closed)] = ProbeEvent(
                closed.ms, "closed", "closed while the peer was still sending: our kernel resets it")
        return self.done(kind, stage, message)

    async def _send(self, stage: Stage) -> ExchangeOutcome | None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        try:
            await within(loop.sock_sendall(self.sock, self.payload), self.left(self.timeout))
        except TimeoutError:
            self.event("timeout", "the peer took no more data before the timeout")
            return self.done("timeout", stage, "the peer did not take the data before the timeout")
        except OSError as exc:
            kind, _, message = _classify(exc)
            self.event("reset" if kind == "reset" else "error", message)
            return self.done(kind, stage, message)
        self.sent += len(self.payload)
        self.event("sent", size=len(self.payload))
        return None

    def _took(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if len(self.first) < FIRST_BYTES:
            self.first.extend(chunk[: FIRST_BYTES - len(self.first)])
        last = self.events[-1]
        if last.what == "received":  # one ladder arrow per burst of data, at its start
            self.events[-1] = ProbeEvent(last.ms, "received", last.detail, last.size + len(chunk))
        else:
            self.event("received", size=len(chunk))

    async def _round(self, stage: Stage) -> ExchangeOutcome | None:
        """Send the payload and read the answer; an outcome if the exchange ended here."""
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        if self.payload and (ended := await self._send(stage)) is not None:
            return ended
        got = 0
        last_data = time.monotonic()
        wait = self.timeout if self.payload else min(self.timeout, SPEAKS_FIRST_S)
        while True:
            try:
                chunk = await within(loop.sock_recv(self.sock, 65536), self.left(wait))
            except TimeoutError:
                if got:
                    return None  # the answer is complete as far as anyone can tell
                if not self.payload:
                    return None  # nothing asked, nothing said: an open, quiet connection
                self.event("timeout", f"no answer within {self.timeout:g}s")
                return self.done("timeout", stage, "data sent, the connection stayed open, "
                                 "and nothing came back before the timeout")
            except OSError as exc:
                kind, _, message = _classify(exc)
                self.event("reset" if kind == "reset" else "error", message)
                return self.done(kind, stage, message)
            if not chunk:
                return await self._eof(stage, got, last_data)
            got += len(chunk)
            last_data = time.monotonic()
            self._took(chunk)
            if got >= self.read_limit:
                return await self._finish("ok", stage, f"read {got} bytes, the cap; stopped reading")
            wait = min(self.timeout, QUIET_S)

    async def _eof(self, stage: Stage, got: int, last_data: float) -> ExchangeOutcome:
        gap_ms = round((time.monotonic() - last_data) * 1000, 2)
        if not got:
            self.event("eof", "the peer closed (FIN) without answering")
            return self.done("eof", stage, "the peer closed the connection (FIN) without answering")
        if stage == "first-data" and self.hold > 0 and gap_ms >= CLOSES_WITH_ANSWER_MS:
            # The connection went idle when the answer ended: that is when the hold began.
            self.event("eof", f"the peer closed the idle connection (FIN) {gap_ms:g} ms after its answer")
            self.event("idle", f"{self.hold:g}s")
            await asyncio.sleep(max(0.0, self.hold - gap_ms / 1000))
            return await self._write_after_fin(gap_ms / 1000)
        self.event("eof", "the peer closed (FIN) after answering")
        note = "; the hold could not run" if stage == "first-data" and self.hold > 0 else ""
        return self.done("ok", stage, f"answered, then the peer closed the connection (FIN){note}")

    async def _hold(self) -> ExchangeOutcome | None:
        """Idle ``hold`` seconds, noticing the moment a FIN, an RST or stray data arrives."""
        assert self.sock is not None
        sock = self.sock
        self.event("idle", f"{self.hold:g}s")
        hold_start = time.monotonic()
        end = hold_start + self.hold
        while (left := end - time.monotonic()) > 0:
            if not await _wait_readable(sock, left):
                break
            try:
                peek = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as exc:
                kind, _, message = _classify(exc)
                into = time.monotonic() - hold_start
                self.event("reset" if kind == "reset" else "error",
                           f"{message}, {into:.2f}s into the idle hold, with nothing sent")
                return self.done(kind, "hold", f"{message} {into:.2f}s into the idle hold, "
                                 "while the probe sent nothing")
            if not peek:
                into = time.monotonic() - hold_start
                self.event("eof", f"the peer closed (FIN) {into:.2f}s into the idle hold")
                await asyncio.sleep(max(0.0, end - time.monotonic()))
                return await self._write_after_fin(into)
            try:  # the peer spoke unasked: take it, and keep holding
                self._took(sock.recv(65536, socket.MSG_DONTWAIT))
            except (BlockingIOError, OSError):
                continue
        return None

    async def _write_after_fin(self, into: float) -> ExchangeOutcome:
        """Write as a client reusing the connection would, and see whether an RST answers."""
        assert self.sock is not None
        base = f"the peer closed the idle connection (FIN) {into:.2f}s into the {self.hold:g}s hold"
        if not self.payload:
            return self.done("eof", "hold", base)
        try:
            n = self.sock.send(self.payload)
        except BlockingIOError:
            return self.done("eof", "hold", base)
        except OSError as exc:
            kind, _, message = _classify(exc)
            self.event("reset" if kind == "reset" else "error", f"the write after the hold: {message}")
            return self.done("eof", "hold", f"{base}; the write after it failed: {message}")
        self.sent += n
        self.event("sent", size=n)
        # The peer's socket is gone or half-closed, so its kernel answers the data with an RST;
        # reading would just return the queued EOF, so watch the socket error instead.
        end = time.monotonic() + self.left(RST_WAIT_S)
        while time.monotonic() < end:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (errno.ECONNRESET, errno.EPIPE):
                self.event("reset", "the peer answered the write after its FIN with RST")
                return self.done("eof", "hold", f"{base}; the write after the hold was answered with RST")
            await asyncio.sleep(0.02)
        return self.done("eof", "hold", f"{base}; no RST answered the write after the hold")
