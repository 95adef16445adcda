"""Probe payloads: what to send after the handshake when the user did not say (no I/O).

A TLS ClientHello is produced by the ssl module against memory buffers, so it is the
same hello a real Python client would send, without opening any socket.
"""

from __future__ import annotations

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


def http_get(host: str, path: str = "/") -> bytes:
    authority = f"[{host}]" if ":" in host else host
    return (f"GET {path or '/'} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: reset-wizard\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n\r\n").encode()


def default_payload(host: str, port: int, scheme: str | None, path: str | None,
                    is_address: bool) -> tuple[bytes, str]:
    """The payload and a one-word description of it ("http", "tls", "none")."""
    if scheme in ("https", "wss") or (scheme is None and port in TLS_PORTS):
        return client_hello(None if is_address else host), "tls"
    if scheme in ("http", "ws") or (scheme is None and port in HTTP_PORTS):
        return http_get(host, path or "/"), "http"
    return b"", "none"


def decode_escapes(text: str) -> str:
    """Honour \\r, \\n, \\t, \\\\ and \\xHH in a --payload given on the command line."""
    out: list[str] = []
    i = 0
    simple = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\", "0": "\0"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            if nxt == "x" and i + 3 < len(text) + 0 and all(c in "0123456789abcdefABCDEF" for c in text[i + 2:i + 4]) \
                    and len(text[i + 2:i + 4]) == 2:
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
        out.append(ch)
        i += 1
    return "".join(out)
