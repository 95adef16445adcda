"""What a port really speaks (I/O, plain sockets): a banner, a TLS handshake, an HTTP answer.

Three short connections at once, each bounded by the timeout: one that only listens for a
few hundred milliseconds (servers such as SSH, SMTP or MySQL speak first), one that attempts
a TLS handshake (certificates are not verified: the question is only whether TLS is spoken),
and one that sends a plain HTTP HEAD request. The first conclusive answer (a TLS handshake,
an HTTP status line, a banner) ends the others, which are reported as not needed.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from wizard.model import is_ip

MAX_READ = 4096
BANNER_WAIT_S = 0.3  # servers that speak first do so at once; longer only delays the run


@dataclass(frozen=True)
class Attempt:
    ok: bool
    detail: str  # the TLS version, the HTTP status line, the banner, or what went wrong
    outcome: str = ""  # ok, reset, eof, timeout, refused, error


@dataclass(frozen=True)
class ProtocolFacts:
    address: str
    port: int
    banner: Attempt
    tls: Attempt
    http: Attempt

    @property
    def speaks(self) -> str:
        """tls, http, banner or unknown: what the port answered to."""
        if self.tls.ok:
            return "tls"
        if self.http.ok:
            return "http"
        if self.banner.ok:
            return "banner"
        return "unknown"


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
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        pass


class ProtocolProbe:
    async def banner(self, address: str, port: int, wait: float) -> Attempt:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), wait)
        except (OSError, asyncio.TimeoutError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        try:
            data = await asyncio.wait_for(reader.read(MAX_READ), wait)
        except asyncio.TimeoutError:
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
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, ssl=ctx, server_hostname=server_name or "",
                                        ssl_handshake_timeout=timeout), timeout + 1)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        obj = writer.get_extra_info("ssl_object")
        detail = f"{obj.version()} {obj.cipher()[0]}" if obj is not None else "TLS"
        await _close(writer)
        return Attempt(True, detail, "ok")

    async def http(self, address: str, port: int, host: str, timeout: float) -> Attempt:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
            writer.write(f"HEAD / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: reset-wizard\r\n\r\n".encode())
            await asyncio.wait_for(writer.drain(), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            kind, msg = _outcome(exc)
            return Attempt(False, msg, kind)
        try:
            data = await asyncio.wait_for(reader.read(MAX_READ), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
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
                conclusive = next((n for n in ("tls", "http", "banner") if n in done and done[n].ok), None)
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


