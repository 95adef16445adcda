"""Counting the newlines of a big buffer (pure) at memory speed.

``bytes.count`` of one byte runs a plain loop over every byte (about 3 GB/s here, 2.5 ms
for a 10-minute window of a busy log); deleting the newlines with ``bytes.replace`` finds
them with ``memchr`` and copies the runs between them, about three times as fast when lines
are longer than a few dozen bytes. The buffer is taken in small slices (reused memory, no
fresh pages for the kernel to fault in), and a slice full of short lines, where ``replace``
is the slower one, sends the rest of the buffer to ``count``.
"""

from __future__ import annotations

PIECE = 64 << 10  # bytes copied and searched at a time: the copy stays in the cache
DENSE = 32  # a piece with more than one newline in this many bytes: ``count`` from then on


def newlines(data: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """``data.count(b"\\n", start, end)`` (non-negative ``start`` and ``end``)."""
    end = len(data) if end is None else min(end, len(data))
    if end - start < 2 * PIECE:
        return data.count(b"\n", start, end)
    n = 0
    at = start
    while at < end:
        piece = data[at:min(at + PIECE, end)]
        got = len(piece) - len(piece.replace(b"\n", b""))
        n += got
        at += len(piece)
        if got * DENSE > len(piece):
            return n + data.count(b"\n", at, end)
    return n


__all__ = ["newlines"]
