"""What a port really speaks (I/O, plain sockets): a banner, a TLS handshake, an HTTP answer.

Three short connections at once, each bounded by the timeout: one that only listens for a
few hundred milliseconds (servers such as SSH, SMTP or MySQL speak first), one that attempts
a TLS handshake (certificates are not verified: the question is only whether TLS is spoken),
and one that sends a plain HTTP HEAD request. The first conclusive answer (a TLS handshake,
an HTTP status line, a banner) ends the others, which are reported as not needed.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time

from wizard.engine.probes import Attempt, ProtocolFacts
from wizard.model import is_ip
from wizard.model.cancel import within

MAX_READ = 4096
BANNER_WAIT_S = 0.3  # servers that speak first do so at once; longer only delays the run
# A TLS server answers a ClientHello, an HTTP server a HEAD, within a round trip and a few
# milliseconds of its own work. The wait for either is the timeout, or when shorter, this
# many handshake round trips and never less than ANSWER_FLOOR_S: a port that is silent
# that long after taking the request does not speak that protocol (or too slowly to tell).
# The floor covers a server's own work on a loaded machine (a lab's TLS and HTTP servers
# answer within tens of ms beside stress-ng); on a slow path the round trips decide.
ANSWER_RTTS = 20
ANSWER_FLOOR_S = 0.5


def answer_wait(timeout: float, connect_s: float) -> float:
    """How long to wait for a TLS or HTTP answer, given how long the handshake took."""
    return min(timeout, max(ANSWER_FLOOR_S, ANSWER_RTTS * connect_s))


def _outcome(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset", "connection reset by peer"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", "no answer before the timeout"
    if isinstance(exc, ssl.SSLError):
        return "error", exc.reason or str(exc)
    if isinstance(exc, asyncio.IncompleteReadError):
        return "eof", "the peer closed the connection"
    return "error", str(exc) or type(exc).__name__


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await within(writer.wait_closed(), 1.0)
    except (TimeoutError, OSError, ssl.SSLError):
        pass


def refuses_plain_http(status_line: str) -> bool:
    """An HTTP answer that is the refusal a TLS port gives plain HTTP (nginx: 400 "The plain
    HTTP request was sent to HTTPS port"; 497 is its internal code for it)."""
    return bool(re.match(r"HTTP/\d(?:\.\d)? (400|497)\b", status_line))


class ProtocolProbe:
    async def banner(self, address: str, port: int, wait: float) -> Attempt:
        try:
            reader, writer = await within(asyncio.open_connection(address, port), wait)
        except (TimeoutError, OSError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        try:
            data = await within(reader.read(MAX_READ), wait)
        except TimeoutError:
            return Attempt(False, "the server sent nothing first", "ok")
        except OSError as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        finally:
            await _close(writer)
        if not data:
            return Attempt(False, "the server closed without a word", "eof")
        return Attempt(True, data[:200].decode("utf-8", "replace").strip(), "ok")

    async def tls(self, address: str, port: int, server_name: str | None, timeout: float) -> Attempt:
        # Certificates are not verified (the question is only whether TLS is spoken), so no CA
        # store is loaded: create_default_context() would read it, blocking the loop long
        # enough on a busy machine that the banner attempt's short connect times out.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        started = time.monotonic()
        try:
            _, writer = await within(asyncio.open_connection(address, port), timeout)
        except (TimeoutError, OSError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        wait = answer_wait(timeout, time.monotonic() - started)
        try:
            await within(writer.start_tls(ctx, server_hostname=server_name or "",
                                                    ssl_handshake_timeout=wait), wait + 1)
        except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            kind, msg = _outcome(exc)
            writer.transport.abort()  # a failed handshake leaves nothing to close politely
            return Attempt(False, msg, kind)
        obj = writer.get_extra_info("ssl_object")
        detail = f"{obj.version()} {obj.cipher()[0]}" if obj is not None else "TLS"
        await _close(writer)
        return Attempt(True, detail, "ok")

    async def http(self, address: str, port: int, host: str, timeout: float) -> Attempt:
        started = time.monotonic()
        try:
            reader, writer = await within(asyncio.open_connection(address, port), timeout)
            wait = answer_wait(timeout, time.monotonic() - started)
            writer.write(f"HEAD / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: reset-wizard\r\n\r\n".encode())
            await within(writer.drain(), timeout)
        except (TimeoutError, OSError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        try:
            data = await within(reader.read(MAX_READ), wait)
        except (TimeoutError, OSError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        finally:
            await _close(writer)
        if not data:
            return Attempt(False, "the server closed without answering (FIN)", "eof")
        first = data.split(b"\r\n", 1)[0][:200].decode("utf-8", "replace")
        if first.startswith("HTTP/"):
            return Attempt(True, first, "ok")
        return Attempt(False, f"not HTTP: {first!r}", "ok")

    async def identify(self, address: str, port: int, host: str, timeout: float) -> ProtocolFacts:
        attempts = {
            "banner": asyncio.ensure_future(self.banner(address, port, min(timeout, BANNER_WAIT_S))),
            "tls": asyncio.ensure_future(self.tls(address, port, None if is_ip(host) else host, timeout)),
            "http": asyncio.ensure_future(self.http(address, port, host, timeout)),
        }
        done: dict[str, Attempt] = {}
        conclusive: str | None = None
        try:
            pending = set(attempts.values())
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for name, task in attempts.items():
                    if task in finished:
                        done[name] = task.result()
                # A plain-HTTP "400"/"497" may be a TLS port's in-band refusal: TLS decides then.
                conclusive = next((n for n in ("tls", "http", "banner") if n in done and done[n].ok
                                   and not (n == "http" and refuses_plain_http(done[n].detail))), None)
                if conclusive is not None:
                    break
        finally:
            for task in attempts.values():
                task.cancel()
            await asyncio.gather(*attempts.values(), return_exceptions=True)
        for name in attempts:
            if name not in done:
                done[name] = Attempt(False, f"not needed: the port already answered {conclusive}", "skipped")
        return ProtocolFacts(address, port, done["banner"], done["tls"], done["http"])


