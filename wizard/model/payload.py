"""Probe payloads: what to send after the handshake when the user did not say (no I/O).

A TLS ClientHello is produced by the ssl module against memory buffers, so it is the
same hello a real Python client would send, without opening any socket.
"""

from __future__ import annotations

import re
import ssl

HTTP_PORTS = frozenset({80, 591, 3000, 5000, 8000, 8008, 8080, 8081, 8088, 8888, 9000})
TLS_PORTS = frozenset({443, 465, 636, 853, 993, 995, 5986, 6443, 8443, 9443})


def client_hello(server_name: str | None) -> bytes:
    """The bytes of a TLS ClientHello for ``server_name`` (no SNI for an address)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name or None)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def http_get(host: str, path: str = "/", port: int | None = None) -> bytes:
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != 80:
        authority = f"{authority}:{port}"  # RFC 9110 7.2: the port unless it is the default
    return (f"GET {path or '/'} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: reset-wizard\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n\r\n").encode()


def default_payload(host: str, port: int, scheme: str | None, path: str | None,
                    is_address: bool) -> tuple[bytes, str]:
    """The payload and a one-word description of it ("http", "tls", "none")."""
    if scheme in ("https", "wss") or (scheme is None and port in TLS_PORTS):
        return client_hello(None if is_address else host), "tls"
    if scheme in ("http", "ws") or (scheme is None and port in HTTP_PORTS):
        return http_get(host, path or "/", port), "http"
    return b"", "none"


def decode_escapes(text: str) -> str:
    """Honour \\r, \\n, \\t, \\\\ and \\xHH in a --payload given on the command line.

    Other backslashes stay as typed. \\xHH is the character U+00HH; for the exact bytes
    (\\xff as the byte FF, not its UTF-8 form) use ``payload_bytes``.
    """
    return _ESCAPE.sub(lambda m: _SIMPLE.get(m[1]) or chr(int(m[1][1:], 16)), text)


def payload_bytes(text: str) -> bytes:
    """The bytes a --payload stands for: escapes decoded, \\xHH as the byte HH, the rest UTF-8.

    Keeping the typed text (JSON-safe) in the session and turning it into bytes only here
    means a binary payload survives the round trip through the saved session.
    """
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8", "surrogateescape")
        out += _SIMPLE[m[1]].encode() if m[1] in _SIMPLE else bytes([int(m[1][1:], 16)])
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def escape_bytes(data: bytes) -> str:
    """Bytes as --payload text that payload_bytes turns back into exactly these bytes."""
    out: list[str] = []
    for byte in data:
        ch = chr(byte)
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\r\n\t":
            out.append({"\r": "\\r", "\n": "\\n", "\t": "\\t"}[ch])
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[rnt\\])")
_SIMPLE = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\"}
