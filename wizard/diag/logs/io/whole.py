"""A log window read whole by the reader (I/O): files the fast path cannot cut (gzip, small,
out of order), every line of the window matched against the signatures."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Coroutine, Sequence
from typing import Any

from wizard.diag.logs.io import hsmatch
from wizard.diag.logs.io.cut import Selector
from wizard.diag.logs.io.direct import DirectLocal, in_one_thread
from wizard.diag.logs.io.reader import LogReader, LogWindow
from wizard.hosts.cpu import off_loop
from wizard.model import linear

CLIPPED_NOTE = (f"lines longer than {linear.MAX_LINE} characters were matched on their first "
                f"and last {linear.HALF} where a signature needed Python's re")



async def match_window(win: LogWindow, regexes: Sequence[str]) -> None:
    """Each of ``win``'s lines in the window not matched yet gets the regexes it matches."""
    todo = [k for k, ln in enumerate(win.lines) if ln.sigs is None and ln.in_window]
    win.lines = [ln if ln.in_window or ln.sigs is not None else dataclasses.replace(ln, sigs=())
                 for ln in win.lines]
    if not todo:
        return
    texts = [win.lines[k].text for k in todo]
    m = hsmatch.matcher(regexes)
    if m is not None:
        ids = await off_loop(functools.partial(m.match_texts, texts))
    else:
        sel = Selector.of(regexes)
        ids = await off_loop(functools.partial(sel.ids, texts))
    if any(linear.is_long(t) for t in texts):
        win.notes.append(CLIPPED_NOTE)
    for k, found in zip(todo, ids, strict=True):
        win.lines[k] = dataclasses.replace(win.lines[k], sigs=found)


async def whole_excerpt(reader: LogReader, path: str, start: float, end: float,
                        regexes: Sequence[str], margin: int) -> tuple[LogWindow, int]:
    """A file the fast path cannot cut (gzip, small, out of order): read by
    ``reader.window``, every line of the window matched, the hits and their context kept."""
    win = await reader.window(path, start, end, margin)
    inside = sum(1 for ln in win.lines if ln.in_window)
    await match_window(win, regexes)
    hits = {i for i, ln in enumerate(win.lines) if ln.in_window and ln.sigs}
    keep = sorted({j for i in hits for j in range(max(0, i - margin), min(len(win.lines), i + margin + 1))})
    win.lines = [win.lines[j] for j in keep]
    return win, inside


async def local_fallback(reader: LogReader, path: str, start: float, end: float,
                         regexes: Sequence[str], margin: int) -> tuple[LogWindow, int]:
    """A small or unordered file on this machine: ``_fallback_excerpt`` run whole in one
    worker thread, so that reading, timing and matching it keep off the event loop (a run's
    probes wait on that loop meanwhile)."""

    def make(host: DirectLocal) -> Coroutine[Any, Any, tuple[LogWindow, int]]:
        return whole_excerpt(LogReader(host, cap_bytes=reader.cap, tz=reader.tz), path, start, end, regexes,
                                 margin)

    return await in_one_thread(path, make)
