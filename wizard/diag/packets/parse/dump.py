"""Records of a pcap file held in memory (pure): the first pass's copy of the SYNs and RSTs.

The copy is written by libpcap in this machine's byte order with 16-byte record headers.
``opener_before`` finds, searching backwards from an RST, the SYN (or SYN-ACK) of the same
connection by its raw addresses (bytes.rfind, in C) and checks every hit is the IP header
of a record, so a stray match inside a payload is never taken for a packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from wizard.diag.packets.parse.links import ip_offset

FILE_HEADER = 24
_DUMPED = struct.Struct("=IIII")  # a record's header as pcap_dump writes it: this machine's byte order
_LINK_HEADERS = {1: (14, 18, 22), 113: (16,), 276: (20,), 0: (4,), 108: (4,)}  # else 0: raw IP


def _header(dump: bytes) -> struct.Struct:
    return struct.Struct("<IIII" if dump[:4] == b"\xd4\xc3\xb2\xa1" else ">IIII")


def record_at(dump: bytes, pos: int, header: struct.Struct | None = None) -> tuple[float, bytes, int] | None:
    """(timestamp, frame, where the next record starts) of the record at ``pos``; ``header``:
    the records' header layout, by default the one the dump's file header gives."""
    if pos + 16 > len(dump):
        return None
    sec, usec, caplen, _len = (header or _header(dump)).unpack_from(dump, pos)
    end = pos + 16 + caplen
    if end > len(dump):
        return None
    return sec + usec / 1e6, dump[pos + 16:end], end


def records(dump: bytes, pos: int = FILE_HEADER, limit: int | None = None,
            header: struct.Struct | None = None) -> Iterator[tuple[float, bytes]]:
    """(timestamp, frame) of each whole record from ``pos`` on (at most ``limit``)."""
    header, n = header or _header(dump), 0
    while (rec := record_at(dump, pos, header)) is not None and (limit is None or n < limit):
        yield rec[0], rec[1]
        pos, n = rec[2], n + 1


def dumped_records(data: bytes) -> Iterator[tuple[float, bytes]]:
    """``records`` of ``data``: records as pcap_dump writes them, without a file header (a
    chunk of a copy)."""
    return records(data, 0, header=_DUMPED)


def endpoints(linktype: int, frame: bytes) -> tuple[int, bytes, bytes, bytes, bytes] | None:
    """(IP version, source address, destination address, source port, destination port), raw."""
    where = ip_offset(linktype, frame)
    if where is None:
        return None
    off, version = where
    if version == 4:
        tcp = off + (frame[off] & 0x0F) * 4
        a, b = frame[off + 12:off + 16], frame[off + 16:off + 20]
    else:
        tcp = off + 40
        a, b = frame[off + 8:off + 24], frame[off + 24:off + 40]
    if len(frame) < tcp + 14:
        return None
    return version, a, b, frame[tcp:tcp + 2], frame[tcp + 2:tcp + 4]


def _record_of(dump: bytes, linktype: int, ip: int) -> int | None:
    """Where the record whose IP header starts at ``ip`` begins, if one does."""
    size = len(dump)
    for link in _LINK_HEADERS.get(linktype, (0,)):
        start = ip - link - 16
        if start < FILE_HEADER:
            continue
        caplen = _header(dump).unpack_from(dump, start)[2]
        where = ip_offset(linktype, dump[start + 16:start + 16 + caplen]) if start + 16 + caplen <= size else None
        if where is not None and where[0] == link:
            return start
    return None


def find_packet(dump: bytes, linktype: int, lo: int, hi: int, src: bytes, dst: bytes, ports: bytes,
                flags_mask: int, flags: int, backwards: bool = True) -> tuple[int, float, bytes] | None:
    """The last (or first) record in dump[lo:hi] from ``src`` to ``dst`` with these raw ports
    and ``tcp flags & flags_mask == flags``: (its position, timestamp, frame). The addresses
    and ports are searched as one string: they are contiguous in an IPv4 header without
    options and an IPv6 header without extensions, as a SYN's and an RST's almost always are."""
    pattern = src + dst + ports
    v4 = len(src) == 4
    while True:
        hit = dump.rfind(pattern, lo, hi) if backwards else dump.find(pattern, lo, hi)
        if hit < 0:
            return None
        if backwards:
            hi = hit + len(pattern) - 1
        else:
            lo = hit + 1
        ip = hit - (12 if v4 else 8)
        if ip < 0 or dump[ip] >> 4 != (4 if v4 else 6) or dump[ip + (9 if v4 else 6)] != 6:
            continue
        tcp = ip + (20 if v4 else 40)
        if (v4 and dump[ip] & 0x0F != 5) or len(dump) <= tcp + 13 or dump[tcp + 13] & flags_mask != flags:
            continue
        start = _record_of(dump, linktype, ip)
        if start is not None:
            rec = record_at(dump, start)
            if rec is not None:
                return start, rec[0], rec[1]


def resync(window: bytes, order: str, fraction: int, snaplen: int, linktype: int, seconds: tuple[int, int],
           chain: int = 8) -> int | None:
    """The first offset in ``window`` (bytes of a pcap file, from anywhere in it) where
    ``chain`` records follow one another, each with a time in ``seconds``, a sane length and
    an IP packet inside: most likely a record's start (a guess: the caller proves it)."""
    lo, hi = seconds
    unpack, size = struct.Struct(order + "IIII").unpack_from, len(window)
    most = min(snaplen or 262144, 262144)
    for p in range(0, max(size - 16, 0)):
        q, n = p, 0
        while n < chain and q + 16 <= size:
            sec, frac, caplen, length = unpack(window, q)
            if not (lo <= sec <= hi and frac < fraction and 0 < caplen <= most and caplen <= length <= 262144):
                break
            if q + 16 + caplen <= size and ip_offset(linktype, window[q + 16:q + 16 + caplen]) is None:
                break
            q, n = q + 16 + caplen, n + 1
        if n >= chain:
            return p
    return None
