"""Capture files made to order (I/O: writes them): flows that end in a reset of a known sender.

For tests and the benchmark: Ethernet/IPv4 frames of whole connections, seen from near
the client or near the server, with the shapes the domain reference gives each sender (a
live socket's abort, the kernel's stateless reply, an injected RST from a few routers
away). Hop counts and TTLs are what a capture point at either end would record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
TS_OPTION = b"\x01\x01\x08\x0a" + b"\0" * 8


def _ip(text: str) -> bytes:
    return bytes(int(p) for p in text.split("."))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, *, window: int = 502,
          ttl: int = 64, ip_id: int = 0, payload: int = 0, timestamps: bool = True) -> bytes:
    """One Ethernet frame holding an IPv4 TCP segment (payload of zero bytes)."""
    options = TS_OPTION if timestamps else b""
    tcp_len = 20 + len(options)
    bits = sum(FLAGS[c] for c in flags)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (tcp_len // 4) << 4,
                      bits, window, 0, 0) + options + b"\0" * payload
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ip_id, 0x4000, ttl, 6, 0, _ip(src), _ip(dst))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


def write_pcap(path: str, records: Iterable[tuple[float, bytes]]) -> int:
    """A pcap file (microseconds, Ethernet) of the records; the bytes written."""
    size = 0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in records:
            sec = int(ts)
            out.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data), len(data)))
            out.write(data)
            size += 16 + len(data)
    return size + 24


@dataclass(frozen=True)
class Ends:
    """The two hosts and how many routers lie between them and each capture point."""

    client: str = "10.1.0.2"
    server: str = "10.2.0.2"
    port: int = 8080
    hops: int = 2  # routers between client and server
    middlebox_hops: int = 1  # routers between the client and an injecting middlebox


def conversation(ends: Ends, cport: int, t0: float, ending: str, near: str = "client",
                 exchanges: int = 2, size: int = 1200) -> Iterator[tuple[float, bytes]]:
    """One connection as seen ``near`` the client or the server, ending in ``ending``:
    fin, server-app, server-kernel, path (an RST injected toward the client, which
    only the client-side capture sees) or server-app-then-kernel (the application's abort, the
    client's next bytes already on their way, and the kernel's answer to them: a second RST
    with the same sequence number, as a server that closes at once on accept sends)."""
    c, s, sp = ends.client, ends.server, ends.port
    c_ttl = 64 if near == "client" else 64 - ends.hops  # the client's packets as recorded here
    s_ttl = 64 - ends.hops if near == "client" else 64
    cseq, sseq, sid, t = 1000 + cport * 7, 5000 + cport * 11, 100, t0
    yield t, frame(c, s, cport, sp, "S", cseq, 0, window=64240, ttl=c_ttl, ip_id=1)
    t += 0.001
    yield t, frame(s, c, sp, cport, "SA", sseq, cseq + 1, window=65160, ttl=s_ttl, ip_id=0)
    cseq, sseq = cseq + 1, sseq + 1
    t += 0.001
    yield t, frame(c, s, cport, sp, "A", cseq, sseq, ttl=c_ttl, ip_id=2)
    for i in range(exchanges):
        t += 0.002
        yield t, frame(c, s, cport, sp, "PA", cseq, sseq, ttl=c_ttl, ip_id=3 + i, payload=100)
        cseq += 100
        t += 0.001
        sid += 1
        yield t, frame(s, c, sp, cport, "PA", sseq, cseq, ttl=s_ttl, ip_id=sid, payload=size)
        sseq += size
    t += 0.002
    if ending == "fin":
        yield t, frame(c, s, cport, sp, "FA", cseq, sseq, ttl=c_ttl, ip_id=20)
        yield t + 0.001, frame(s, c, sp, cport, "FA", sseq, cseq + 1, ttl=s_ttl, ip_id=sid + 1)
    elif ending == "server-app":  # a live socket's abort: window, timestamps, IP ID goes on
        yield t, frame(s, c, sp, cport, "RA", sseq, cseq, window=501, ttl=s_ttl, ip_id=sid + 1)
    elif ending == "server-app-then-kernel":
        yield t, frame(s, c, sp, cport, "RA", sseq, cseq, window=501, ttl=s_ttl, ip_id=sid + 1)
        yield t + 0.0002, frame(c, s, cport, sp, "PA", cseq, sseq, ttl=c_ttl, ip_id=21, payload=100)
        yield t + 0.0003, frame(s, c, sp, cport, "R", sseq, 0, window=0, ttl=s_ttl, ip_id=0, timestamps=False)
    elif ending == "server-kernel":  # no socket: window 0, no options, IP ID 0
        yield t, frame(s, c, sp, cport, "R", sseq, 0, window=0, ttl=s_ttl, ip_id=0, timestamps=False)
    elif ending == "path" and near == "client":
        ttl = 64 - ends.middlebox_hops
        yield t, frame(s, c, sp, cport, "R", sseq, 0, window=0, ttl=ttl, ip_id=0, timestamps=False)
    elif ending != "path":
        raise ValueError(f"unknown ending {ending!r}")
