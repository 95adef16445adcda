"""analyze's first pass over a capture, light enough to begin as the command starts (I/O).

The first pass keeps a capture's SYNs, SYN-ACKs and RSTs, copied into memory by libpcap
itself (wizard.diag.packets.io.pcaplib, .halves); everything after it (which RST goes with
which SYN, the second pass, the tracker) is wizard.diag.packets.io.gather's. This module and
what it imports are the standard library's light part, ctypes and libpcap: no typing, no
dataclasses, no pickle, nothing of the packets' decoding. So a process forked at the very
start of `reset-wizard analyze` (wizard.diag.packets.io.prefetch) reads the capture within
milliseconds, on the other processor, while the command imports everything else; its
result crosses to the command as plain bytes (``pack``, ``unpack``).
"""

from __future__ import annotations

import struct
import threading
from array import array
from collections.abc import Callable

from wizard.diag.packets.io.halves import skim_halves
from wizard.diag.packets.io.pcaplib import Skim

# SYNs, SYN-ACKs and RSTs (IPv6 without extension headers: its TCP flags at a fixed offset).
OPENERS_AND_RESETS = "(tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 or (ip6 and ip6[6] == 6 and ip6[53] & 0x06 != 0))"
BATCH = 16  # records of the first pass between two noted positions
GZIP_MAGIC = b"\x1f\x8b"  # (pcapfile reads it here too: the child must not import gzip)
_HEAD = struct.Struct("<qqqqq")  # linktype, kept, positions noted (each list), copy's length, 0


def bpf_for(port: int | None) -> str:
    return "tcp" + (f" and port {port}" if port else "")


def first_bpf(port: int | None) -> str:
    """The first pass's filter (``--port``'s connections only, with one)."""
    return f"{bpf_for(port)} and {OPENERS_AND_RESETS}"


def first_pass(path: str, port: int | None, check: Callable[[], None], go: threading.Event | None = None) -> Skim:
    """The first pass over ``path`` (both halves at once on a large plain pcap file; with
    ``go``, the second from when ``go`` is set: halves.skim_halves)."""
    return skim_halves(path, first_bpf(port), BATCH, check, go)[0]


def skimmable(path: str) -> bool:
    """Whether the first pass reads this file (a gzip file is read in one pass instead)."""
    with open(path, "rb") as handle:
        return handle.read(2) != GZIP_MAGIC


def pack(skim: Skim) -> bytes:
    """``skim`` as bytes, for another process (``unpack``)."""
    if len(skim.sources) != len(skim.dumps):
        raise ValueError("a first pass notes both positions together")
    return b"".join((_HEAD.pack(skim.linktype, skim.kept, len(skim.sources), len(skim.dump), 0),
                     array("q", skim.sources).tobytes(), array("q", skim.dumps).tobytes(), skim.dump))


def unpack(data: bytes) -> Skim:
    """The Skim ``pack`` made ``data`` of; ValueError when it is not one."""
    if len(data) < _HEAD.size:
        raise ValueError("not a packed first pass: too short")
    linktype, kept, n, size, _ = _HEAD.unpack_from(data)
    at = _HEAD.size
    width = array("q").itemsize
    if n < 0 or size < 0 or len(data) != at + 2 * n * width + size:
        raise ValueError("not a packed first pass: its lengths do not add up")
    sources, dumps = array("q"), array("q")
    sources.frombytes(data[at:at + n * width])
    dumps.frombytes(data[at + n * width:at + 2 * n * width])
    return Skim(linktype, data[at + 2 * n * width:], sources.tolist(), dumps.tolist(), kept)


__all__ = ["BATCH", "OPENERS_AND_RESETS", "bpf_for", "first_bpf", "first_pass", "pack", "skimmable", "unpack"]
