"""TCP segments from link-layer frames (pure): Ethernet, Linux cooked (v1, v2), raw IP, BSD loopback.

A capture file hands us bytes and a link type; this turns them into a Segment with just
what attribution reads (addresses, ports, flags, sequence numbers, window, TTL, IP ID,
options, payload length). Anything that is not TCP over IPv4 or IPv6 is None.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from wizard.diag.packets.parse.links import (  # noqa: F401 (the link types are named here too)
    ETHERNET,
    IPV4,
    IPV6,
    KNOWN_LINKTYPES,
    LOOP,
    NULL,
    RAW,
    RAW_OLD,
    SLL,
    SLL2,
    ip_offset,
)

_FLAG_LETTERS = (("F", 0x01), ("S", 0x02), ("R", 0x04), ("P", 0x08), ("A", 0x10), ("U", 0x20),
                 ("E", 0x40), ("C", 0x80))
_OPTION_NAMES = {2: "MSS", 3: "WScale", 4: "SAckOK", 5: "SAck", 8: "Timestamp", 28: "UTO",
                 29: "AO", 30: "MPTCP", 34: "TFO"}
_V6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")


class Segment(NamedTuple):
    """One TCP segment as attribution reads it (a tuple: made by the thousand, cheaply)."""

    ts: float  # seconds since the epoch, as the capture recorded it
    src: str
    dst: str
    sport: int
    dport: int
    flag_bits: int
    seq: int
    ack: int
    window: int
    ttl: int
    ip_id: int | None
    df: bool
    options: tuple[str, ...]
    ts_val: int | None
    ts_ecr: int | None
    payload_len: int

    @property
    def flags(self) -> str:
        """The flags as letters in scapy's order (S, SA, PA, FA, R, RA ...)."""
        return flags_text(self.flag_bits)

    @property
    def is_rst(self) -> bool:
        return bool(self.flag_bits & 0x04)


def _flags_text(bits: int) -> str:
    return "".join(letter for letter, bit in _FLAG_LETTERS if bits & bit)


_FLAGS_TEXT = tuple(_flags_text(bits) for bits in range(256))


def flags_text(bits: int) -> str:
    return _FLAGS_TEXT[bits & 0xFF]


_ADDRESSES: dict[bytes, str] = {}  # IPv4 addresses as text, memoised (a capture has few)


def _a4(raw: bytes) -> str:
    text = _ADDRESSES.get(raw)
    if text is None:
        if len(_ADDRESSES) >= 65536:
            _ADDRESSES.clear()
        text = _ADDRESSES[raw] = "{}.{}.{}.{}".format(*raw)
    return text


def decode(linktype: int, ts: float, frame: bytes) -> Segment | None:
    """The TCP segment in a frame, or None (not TCP over IP, or cut short)."""
    if linktype == ETHERNET and frame[12:14] == b"\x08\x00":  # the usual case, without ip_offset
        off, version = 14, 4
    else:
        where = ip_offset(linktype, frame)
        if where is None:
            return None
        off, version = where
    if version == 4:
        if len(frame) < off + 20:
            return None
        vihl, _tos, total, ip_id, frag, ttl, proto, _sum, s, d = _IP4.unpack_from(frame, off)
        if proto != 6 or frag & 0x1FFF:
            return None
        tcp_off = off + (vihl & 0x0F) * 4
        src, dst = _a4(s), _a4(d)
        ip_len: int | None = total - (vihl & 0x0F) * 4
        ident: int | None = ip_id
        df = bool(frag & 0x4000)
    else:
        if len(frame) < off + 40:
            return None
        plen, nxt, ttl = struct.unpack_from("!HBB", frame, off + 4)
        src = ipaddress.IPv6Address(frame[off + 8:off + 24]).compressed
        dst = ipaddress.IPv6Address(frame[off + 24:off + 40]).compressed
        tcp_off, ip_len, ident, df = off + 40, plen, None, False
        while nxt in _V6_EXTENSIONS and len(frame) >= tcp_off + 8:
            nxt, hdr_len = frame[tcp_off], frame[tcp_off + 1]
            ip_len -= (hdr_len + 1) * 8
            tcp_off += (hdr_len + 1) * 8
        if nxt != 6:
            return None
    return _tcp(frame, tcp_off, ts, src, dst, ttl, ident, df, ip_len)


def _tcp(frame: bytes, off: int, ts: float, src: str, dst: str, ttl: int, ident: int | None,
         df: bool, ip_len: int | None) -> Segment | None:
    if len(frame) < off + 20:
        return None
    sport, dport, seq, ack, doff, bits, window, _sum, _urg = _TCP.unpack_from(frame, off)
    hlen = (doff >> 4) * 4
    names, ts_val, ts_ecr = _options(frame[off + 20:off + hlen]) if hlen > 20 else ((), None, None)
    payload = (ip_len - hlen) if ip_len is not None else len(frame) - off - hlen
    return Segment(ts, src, dst, sport, dport, bits, seq, ack, window, ttl, ident, df, names,
                   ts_val, ts_ecr, max(payload, 0))


_TS_ONLY = b"\x01\x01\x08\x0a"  # NOP, NOP, timestamps: Linux's options after the handshake
_TS_NAMES = ("Timestamp",)


def _options(raw: bytes) -> tuple[tuple[str, ...], int | None, int | None]:
    if len(raw) == 12 and raw[:4] == _TS_ONLY:
        ts_val, ts_ecr = struct.unpack_from("!II", raw, 4)
        return _TS_NAMES, ts_val, ts_ecr
    names: list[str] = []
    ts_val = ts_ecr = None
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2:
            break
        length = raw[i + 1]
        names.append(_OPTION_NAMES.get(kind, str(kind)))
        if kind == 8 and length == 10 and i + 10 <= len(raw):
            ts_val, ts_ecr = struct.unpack_from("!II", raw, i + 2)
        i += length
    return tuple(names), ts_val, ts_ecr
