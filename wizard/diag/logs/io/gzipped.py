"""Gzip-rotated logs (I/O through a Host): decompressed chunk by chunk from ranged reads and
scanned from the start, since a compressed stream cannot be searched; capped in
decompressed text too (a bomb guard)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from wizard.diag.logs.io.reader import CHUNK, HEAD_BYTES, LogReader, LogWindow, _Budget, _Scanner, _split
from wizard.diag.logs.parse.timestamps import detect
from wizard.hosts.base import HostError

GZ_TEXT_CAP = 96 << 20  # decompressed bytes scanned per gzip file at most (also a bomb guard)


class _GzScanner(_Scanner):
    """Lines of a gzip file, decompressed chunk by chunk from Host.read (never whole)."""

    def __init__(self, *args: object, text_cap: int = GZ_TEXT_CAP) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.text_cap = text_cap
        self.text_used = 0
        self.text_capped = False
        self.bad = ""

    async def _lines(self, offset: int) -> AsyncIterator[tuple[int, str]]:
        pos = 0  # offset in the compressed file
        out_pos = 0  # offset in the decompressed text
        pending = b""
        dec = zlib.decompressobj(wbits=47)  # gzip or zlib header, auto-detected
        fed = False  # whether the current member has been given any bytes
        while pos < self.size:
            data = await self.budget.read(pos, CHUNK)
            if not data:
                break
            pos += len(data)
            while data:
                try:
                    text = dec.decompress(data, CHUNK * 4)
                except zlib.error as exc:
                    self.bad = f"corrupt gzip data after {out_pos} bytes: {exc}"
                    return
                fed, data = True, dec.unconsumed_tail
                if dec.eof:  # a concatenated member follows
                    data = dec.unused_data + data
                    dec, fed = zlib.decompressobj(wbits=47), False
                self.text_used += len(text)
                if self.text_used > self.text_cap:
                    self.text_capped = True
                    return
                lines, nxt = _split(pending + text, out_pos, False)
                pending = (pending + text)[nxt - out_pos:]
                out_pos = nxt
                for item in lines:
                    yield item
        if fed and not dec.eof and pos >= self.size:  # zlib does not raise on a stream that just stops
            self.bad = (f"truncated gzip: the stream ends after {out_pos + len(pending)} bytes of text "
                        "without its end; the lines before the cut were read")
        if pending:
            yield out_pos, pending.rstrip(b"\r").decode("utf-8", "replace")

    async def head(self) -> list[str]:
        """The first lines (up to HEAD_BYTES of text) for format detection."""
        got: list[str] = []
        n = 0
        async for _, text in self._lines(0):
            got.append(text)
            n += len(text) + 1
            if n >= HEAD_BYTES or len(got) >= 64:
                break
        return got


async def gz_window(reader: LogReader, path: str, start: float, end: float,
                     margin: int) -> LogWindow:
    win = LogWindow(path, method="scan")
    budget = _Budget(reader.host, path, reader.cap)
    try:
        info = await reader.regular_file(path, win)
        if info is None:
            return win
        ctx = reader.time_context(info.mtime)
        probe = _GzScanner(budget, None, ctx, info.size, start, end, margin)
        fmt = detect(await probe.head(), ctx)
        if fmt is None:
            win.notes.append("no known timestamp format in its first lines: scanned without a "
                             "time window")
        else:
            win.format, win.format_has_zone = fmt.name, fmt.has_zone
        budget.used = 0  # the head is read again by the scan; count what the scan reads
        scanner = _GzScanner(budget, fmt, ctx, info.size, start, end, margin)
        win.lines = await scanner.collect(0, 1, filter_time=fmt is not None)
        win.notes.append("gzip: decompressed and scanned from the start (a compressed stream "
                         "cannot be searched)")
        if scanner.text_capped:
            win.notes.append(f"stopped after {GZ_TEXT_CAP >> 20} MiB of decompressed text")
            win.capped = True
        if scanner.bad:
            win.notes.append(scanner.bad)
    except HostError as exc:
        win.error = exc.message
    win.bytes_read = budget.used
    win.capped = win.capped or budget.capped
    return win
