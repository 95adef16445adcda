"""The excerpt of a cut window (I/O through a Host): only the lines that match the signatures,
with their context lines, turned into LogLines; over SSH the search runs on the server when
it has python3, so only the matches cross the link."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from itertools import compress, islice, pairwise, repeat
from operator import ne
from typing import Any

from wizard.diag.logs.io import hsmatch
from wizard.diag.logs.io.cut import (
    LOCAL_PROBE,
    REMOTE_PROBE,
    Selector,
    WindowCut,
    _around,
    _window_bytes,
    cut_window,
)
from wizard.diag.logs.io.direct import DirectLocal, in_one_thread
from wizard.diag.logs.io.hsline import is_clean
from wizard.diag.logs.io.newlines import newlines
from wizard.diag.logs.io.reader import COUNT_PREFIX, LogLine, LogReader, LogWindow, _Budget
from wizard.diag.logs.io.remote import is_remote, remote_rows
from wizard.diag.logs.io.whole import CLIPPED_NOTE, local_fallback, match_window, whole_excerpt
from wizard.diag.logs.parse.timestamps import byte_stamp, format_named, stamp_reach
from wizard.hosts.base import Host, HostError
from wizard.hosts.cpu import off_loop
from wizard.hosts.local import LocalHost
from wizard.model.cancel import Stop

REMOTE_CHUNK = 4 << 20  # a read over SSH: each must finish within the read timeout
BACK_LINES = 500  # how far back an unstamped line's owner is looked for


async def excerpt_window(reader: LogReader, path: str, start: float, end: float,
                         regexes: Sequence[str], margin: int = 2,
                         keep: int | None = None) -> tuple[LogWindow, int]:
    """The lines of ``path`` in [start, end] that match any of ``regexes`` with ``margin``
    context lines each side (a LogWindow whose ``lines`` are only those), and the number of
    lines in the window. Files the fast path cannot cut go through ``reader.window``.
    With ``keep``, matches past the first ``keep`` are only timed and listed with their
    signatures in ``more`` (a dense window holds tens of thousands; a report quotes few)."""
    remote = is_remote(reader.host)
    if type(reader.host) is LocalHost:
        cut = await _local_cut(reader, path, start, end)
    else:
        cut = await cut_window(reader, path, start, end, read_data=not remote,
                               probe=REMOTE_PROBE if remote else LOCAL_PROBE)
    if cut.binary:
        win = LogWindow(path, cut.size, cut.mtime, method="none", bytes_read=cut.bytes_read)
        win.notes.append(BINARY_NOTE)
        return win, 0
    if cut.fallback and type(reader.host) is LocalHost and cut.fallback != "gzip":
        return await local_fallback(reader, path, start, end, regexes, margin)
    if cut.fallback:
        return await whole_excerpt(reader, path, start, end, regexes, margin)
    win = LogWindow(path, cut.size, cut.mtime, cut.format, cut.format_has_zone,
                    method="bisect" if cut.format else "scan",
                    bytes_read=cut.bytes_read, capped=cut.capped, error=cut.error)
    if cut.error:
        return win, 0
    if cut.format is None:
        win.notes.append(untimed_note(cut.start, reader.cap))
    if remote:
        done = await _remote_window(reader, cut, regexes, margin, win)
        if done is not None:
            return done
    if cut.capped:
        win.notes.append(f"stopped after reading {reader.cap >> 20} MiB (the per-file cap)")
    found_ids, win.more = await _hits(cut.data, regexes, win, remote, functools.partial(_kept, reader, cut, keep))
    total = cut.lines  # counted once: a window can be tens of MiB
    if not found_ids:
        return win, total
    win.lines = await _excerpt_lines(reader, cut, found_ids, margin, total)
    return win, total


async def _local_cut(reader: LogReader, path: str, start: float, end: float) -> WindowCut:
    """``cut_window`` of a file on this machine, run whole in one worker thread."""

    def make(host: DirectLocal) -> Coroutine[Any, Any, WindowCut]:
        return cut_window(LogReader(host, cap_bytes=reader.cap, tz=reader.tz), path, start, end,
                          probe=LOCAL_PROBE, around=True)

    try:
        return await in_one_thread(path, make)
    except HostError as exc:
        return WindowCut(path, error=exc.message)


async def _remote_window(reader: LogReader, cut: WindowCut, regexes: Sequence[str], margin: int,
                         win: LogWindow) -> tuple[LogWindow, int] | None:
    """Over SSH: the excerpt searched on the server when it has python3 (the answer), else
    the window's bytes read by ranged reads into ``cut.data`` (None: match them here)."""
    sel = Selector.of(regexes)
    try:
        found = await _remote_excerpt(reader, cut, sel, regexes, margin, win)
    except HostError as exc:
        win.error = exc.message
        return win, 0
    if found is not None:
        await match_window(found[0], regexes)
        return found
    win.notes.append("no python3 on the server: the window was read by ranged reads")
    budget = _Budget(reader.host, cut.path, reader.cap)
    try:
        cut.data = await _window_bytes(budget, cut, REMOTE_CHUNK)
        if cut.start <= COUNT_PREFIX:
            cut.first_number = (await budget.read(0, cut.start)).count(b"\n") + 1 if cut.start else 1
    except HostError as exc:
        win.error = exc.message
        return win, 0
    win.bytes_read += budget.used
    cut.capped = budget.capped
    return None


Kept = tuple[dict[int, tuple[int, ...]], list[tuple[float | None, tuple[int, ...]]]]


def _kept(reader: LogReader, cut: WindowCut, keep: int | None, starts: list[int], ids: list[tuple[int, ...]],
          clean: bool | None, stop: Stop) -> Kept:
    """The matches made into lines (their starts and signatures), and the later ones timed."""
    if keep is not None and len(starts) > keep:
        return _split(reader, cut, starts, ids, keep, stop, clean)
    return dict(zip(starts, ids, strict=True)), []


def _split(reader: LogReader, cut: WindowCut, starts: list[int], ids: list[tuple[int, ...]], keep: int,
           stop: Stop, clean: bool | None = None) -> Kept:
    """The first ``keep`` of the matches (``starts`` ascending, the signatures of each in
    ``ids``), and the time and signatures of each later one (``clean``: whether the
    window has no special line, when the caller knows it: ``is_clean``)."""
    head = dict(zip(starts[:keep], ids[:keep], strict=True))
    if cut.format is None:
        return head, list(zip(repeat(None), ids[keep:]))
    tf, ctx, data = format_named(cut.format), reader.time_context(cut.mtime), cut.data
    memo: dict[str, float | None] = {}

    def ts_of(text: str) -> float | None:
        return tf.parse(text, ctx, memo)

    # A clean window's stamps are read from its bytes (the same text as from the decoded
    # line: byte_stamp), each stamp's time once: no line is decoded but for a new stamp.
    clean = is_clean(data) if clean is None else clean
    stamp = byte_stamp(cut.format) if clean else None
    # Lines that begin with the same ``reach`` bytes have the same stamp: a dense window's
    # lines of one second are told apart by one slice and one look-up, no match each.
    reach = stamp_reach(stamp.pattern) if stamp is not None else None
    seen: dict[bytes, float | None] = {}
    by_head: dict[bytes, float | None] = {}

    def timed(s: int) -> float | None:
        """The time of the line at ``s`` from its stamp (None: it has none)."""
        m = stamp.match(data, s) if stamp is not None else None
        key = m.group(0) if m is not None else b"\n"
        ts = seen.get(key, _NOT_SEEN)
        if ts is _NOT_SEEN:
            ts = ts_of(_text(data, s))
            if b"\n" not in key:
                seen[key] = ts
        if m is not None and reach is not None:
            by_head[data[s:s + reach]] = ts
        return ts

    later = starts[keep:]
    tss: list[Any] = []
    for at in range(0, len(later), 4096):
        stop.check()
        chunk = later[at:at + 4096]
        if reach is None:
            tss += _one_by_one(data, chunk, [_NOT_SEEN] * len(chunk), timed, ts_of)
            continue
        # Lines that begin alike come in runs (a second's lines): each run's head timed once,
        # by its first line, and its lines given that time together.
        keys = [data[s:s + reach] for s in chunk]
        firsts = [0, *compress(range(1, len(keys)), map(ne, keys, islice(keys, 1, None))), len(keys)]
        for a, b in pairwise(firsts):
            ts = by_head.get(keys[a], _NOT_SEEN)
            if ts is _NOT_SEEN:
                timed(chunk[a])
                ts = by_head.get(keys[a], _NOT_SEEN)
            if ts is _NOT_SEEN or ts is None:  # no stamp of its own: line by line
                tss += _one_by_one(data, chunk[a:b], [ts] * (b - a), timed, ts_of)
            else:
                tss += repeat(ts, b - a)
    return head, list(zip(tss, ids[keep:], strict=True))


def _one_by_one(data: bytes, chunk: list[int], got: list[Any], timed: Callable[[int], float | None],
                ts_of: Callable[[str], float | None]) -> list[float | None]:
    """The times of the lines at ``chunk`` whose head had none (``got``: _NOT_SEEN or None):
    each line's own stamp, else that of the stamped line it continues."""
    out: list[float | None] = []
    for s, g in zip(chunk, got, strict=True):
        ts = timed(s) if g is _NOT_SEEN else g
        out.append(ts if ts is not None else _owner_ts(data, s, ts_of))
    return out


_NOT_SEEN: Any = object()


def _wanted_starts(data: bytes, starts: list[int], margin: int) -> dict[int, bool]:
    """The line starts needed: each hit (True) and its margin lines inside the window."""
    wanted: dict[int, bool] = {}  # offset in data -> is a hit
    for s in starts:
        wanted[s] = True
        p = s
        for _ in range(margin):
            if p == 0:
                break
            p = data.rfind(b"\n", 0, p - 1) + 1
            wanted.setdefault(p, False)
        p = s
        for _ in range(margin):
            nl = data.find(b"\n", p)
            if nl < 0 or nl + 1 >= len(data):
                break
            p = nl + 1
            wanted.setdefault(p, False)
    return wanted


async def _excerpt_lines(reader: LogReader, cut: WindowCut, found_ids: dict[int, tuple[int, ...]],
                         margin: int, total: int) -> list[LogLine]:
    """The hits and their context as LogLines (numbered when the first line's number is
    known), with context read just outside the window where the margin reaches past it."""
    data = cut.data
    starts = sorted(found_ids)
    ctx = reader.time_context(cut.mtime)
    tf = format_named(cut.format) if cut.format else None
    memo: dict[str, float | None] = {}  # a stamp's time read once: the hits of one second share it

    def ts_of(text: str) -> float | None:
        return tf.parse(text, ctx, memo) if tf is not None else None

    wanted = _wanted_starts(data, starts, margin)
    before, after = await _around(reader.host, cut.path, cut, margin)
    out: list[LogLine] = []

    def context(raws: list[bytes], off: int, number: int | None) -> None:
        """Context lines read just outside the window, from file offset ``off``."""
        for b in raws:
            text = _decode(b)
            ts = ts_of(text)
            out.append(LogLine(number, off, text, ts, ts is not None, False, ()))
            off += len(b) + 1
            number = None if number is None else number + 1

    need_before = max(0, margin - newlines(data, 0, starts[0]))
    if need_before and before:
        before = before[-need_before:]
        off = cut.start - sum(len(b) + 1 for b in before)
        context(before, off, None if cut.first_number is None else cut.first_number - len(before))
    counted_to, counted = 0, 0  # newlines in data[:counted_to]: offsets ascend, counted once
    for s in sorted(wanted):
        text = _text(data, s)
        own = ts_of(text)
        ts = own if own is not None or tf is None else _owner_ts(data, s, ts_of)
        counted += newlines(data, counted_to, s)
        counted_to = s
        number = None if cut.first_number is None else cut.first_number + counted
        out.append(LogLine(number, cut.start + s, text, ts, own is not None, True, found_ids.get(s, ())))
    # the last hit is among the offsets: newlines before it are those counted, less any after it
    need_after = max(0, margin - (total - 1 - (counted - data.count(b"\n", starts[-1], counted_to))))
    if need_after and after:
        after = after[:need_after]
        context(after, cut.end, None if cut.first_number is None else cut.first_number + total)
    return out


BINARY_NOTE = "binary content (control bytes in its first 16 KiB): not a text log, skipped"


def untimed_note(start: int, cap: int) -> str:
    where = "the whole file" if start == 0 else f"its last {cap >> 20} MiB"
    return (f"no known timestamp format: {where} searched once, without a time window "
            "(its lines cannot be placed in time)")


async def _hits(data: bytes, regexes: Sequence[str], win: LogWindow, remote: bool,
                kept: Callable[[list[int], list[tuple[int, ...]], bool | None, Stop], Kept]) -> Kept:
    """The window's matching lines, made into ``kept(starts, ids, clean, stop)`` (their
    offsets ascending, the regexes each matches), found off the event loop (a cancellation
    or a check's timeout stops the search within milliseconds)."""
    m = hsmatch.matcher(regexes)
    if m is not None:  # the window's bytes are in memory: one Hyperscan pass, exact lines

        def search(stop: Stop) -> tuple[Kept, bool]:
            clean = is_clean(data)  # (looked at once, for the search and the times)
            starts, ids, clipped = m.found(data, stop, clean)
            return kept(starts, ids, clean, stop), clipped

        got, clipped = await off_loop(search)  # one hop to a thread for both
        if clipped:
            win.notes.append(CLIPPED_NOTE)
        return got
    if not remote:  # the literal prefilter is built only here: parsing 42 regexes costs ~10 ms
        win.notes.append(hsmatch.NO_ENGINE_NOTE)
    sel = Selector.of(regexes)
    starts = await sel.fast_starts(data)
    found = await off_loop(lambda stop: sel.ids([_text(data, s) for s in starts], stop))
    hit = [k for k, i in enumerate(found) if i]
    if not hit:
        return {}, []
    return await off_loop(lambda stop: kept([starts[k] for k in hit], [found[k] for k in hit], None, stop))


async def _remote_excerpt(reader: LogReader, cut: WindowCut, sel: Selector, regexes: Sequence[str],
                          margin: int, win: LogWindow) -> tuple[LogWindow, int] | None:
    """The window searched on the server by the helper: only matches and context cross."""
    got = await remote_rows(reader.host, cut.path, cut.start, cut.end, sel.literals,
                            [rx.pattern.decode("utf-8", "surrogateescape") for rx in sel.unfiltered],
                            regexes, margin)
    if got is None:
        return None
    win.method = "bisect+remote"
    win.bytes_read += got.bytes_received
    if got.truncated:
        win.notes.append("the server-side search stopped at its output or match cap")
    ctx = reader.time_context(cut.mtime)
    tf = format_named(cut.format)  # type: ignore[arg-type]
    first = None if got.prefix is None else got.prefix + 1
    by_index = {r[0]: r for r in got.rows}
    out: list[LogLine] = []
    for n, off, text, _hit in got.rows:
        own = tf.parse(text, ctx)
        ts = own
        inside = 0 <= n < got.lines
        if own is None and inside:
            # Its owner: a stamped row just before it, else a small read backwards.
            k = n - 1
            while k in by_index and k >= 0:
                ts = tf.parse(by_index[k][2], ctx)
                if ts is not None:
                    break
                k -= 1
            else:
                ts = await _owner_by_reads(reader.host, cut.path, off, cut.start,
                                           lambda t: tf.parse(t, ctx))
        out.append(LogLine(None if first is None else first + n, off, text, ts, own is not None, inside))
    win.lines = out
    return win, got.lines


async def _owner_by_reads(host: Host, path: str, off: int, floor: int, ts_of: object) -> float | None:
    """The time of the stamped line before ``off`` (not before ``floor``), read backwards in
    small pieces: only for a matching continuation line whose owner is beyond the context."""
    end, seen, step = off, 0, REMOTE_PROBE  # the owner is usually a line or two back
    while end > floor and seen < BACK_LINES:
        at = max(floor, end - step)
        step = min(step * 4, 64 << 10)
        data = await host.read(path, at, end - at)  # ends with the "\n" before ``end``
        cut = data.find(b"\n") if at > floor else -1  # a partial first line: read it next time
        for raw in reversed(data[cut + 1:].split(b"\n")[:-1]):
            seen += 1
            ts = ts_of(_decode(raw))  # type: ignore[operator]
            if ts is not None:
                return ts
        nxt = at + cut + 1 if cut >= 0 else at
        end = nxt if nxt < end else at  # no progress (one very long line): past it
    return None


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", "replace")


def _text(data: bytes, s: int) -> str:
    e = data.find(b"\n", s)
    return _decode(data[s:] if e < 0 else data[s:e])


def _owner_ts(data: bytes, s: int, ts_of: object) -> float | None:
    """The time of the stamped line an unstamped line at ``s`` continues (the window's first
    line is stamped, so one is found unless the continuation is very long)."""
    p = s
    for _ in range(BACK_LINES):
        if p == 0:
            return None
        p = data.rfind(b"\n", 0, p - 1) + 1
        ts = ts_of(_text(data, p))  # type: ignore[operator]
        if ts is not None:
            return ts
    return None
