"""Hyperscan databases of the line matcher (I/O side: the engine itself): building them,
and scanning a slice with the literal-driven database and the literal-less one at once.

A regex Hyperscan can find by a literal of a few bytes runs at memory speed; one without
such a literal (it starts with a class such as ``\\s``, ``\\d+/``) runs as an automaton over
every byte, and in one database with the others it also has to be caught up each time any
regex reports, which a dense log (a match on every other line) makes the bulk of the scan.
Kept in a database of its own, scanned in a second thread while the first one scans the
rest (Hyperscan lets go of the GIL while it scans), neither waits for the other.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

_hs: Any
try:
    import hyperscan as _hs
except ImportError:  # pragma: no cover - the matcher says so and falls back
    _hs = None

BLOCK = 128 << 10  # bytes looked at for a tail at a time (``confirmed``)
DRIVE = 4  # a literal this long lets Hyperscan skip to the candidates (shorter: an automaton)
_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()

Events = list[tuple[int, int]]
Ends = list[list[int]]  # by id: the end offsets of its reports, ascending


def _forgotten() -> None:
    """In a forked child: the parent's worker thread is not there (a task for it would wait forever)."""
    global _POOL, _LOCK
    _POOL, _LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forgotten)


def _pool() -> ThreadPoolExecutor | None:
    """The one worker that scans the literal-less database (None on a single CPU)."""
    global _POOL
    if (os.cpu_count() or 1) < 2:
        return None
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hs-nfa")
    return _POOL


def scan_with(db: Any, scratch: Any, data: Any, on_match: Callable[..., None]) -> None:
    """One scan of ``db`` over ``data`` with a scratch of its own (calls may run at once)."""
    db.scan(data, match_event_handler=on_match, scratch=scratch.clone())


def scan_events(db: Any, scratch: Any, data: Any, at: int) -> Events:
    """(id, end + ``at``) of every report of ``db`` in ``data``."""
    events: Events = []
    add = events.append

    def on_match(sid: int, _frm: int, to: int, _flags: int, _ctx: object) -> None:
        add((sid, to + at))

    scan_with(db, scratch, data, on_match)
    return events


def scan_ends(db: Any, scratch: Any, data: Any, width: int) -> Ends:
    """For each id below ``width``, the end offsets (in ``data``) of its reports, in order.
    The report handler only appends an offset to its id's list: on a dense log it runs for
    every other line, and a tuple made per report cost more than the scan itself."""
    lists: Ends = [[] for _ in range(width)]
    sinks = [x.append for x in lists]

    def on_match(sid: int, _frm: int, to: int, _flags: int, _ctx: object, sinks: list = sinks) -> None:
        sinks[sid](to)  # (``sinks`` a local: read faster than from the closure, ~0.03 us a report)

    scan_with(db, scratch, data, on_match)
    for x in lists:
        x.sort()  # (reports come in the order of their ends: a pass over each list)
    return lists


class Tail(NamedTuple):
    """The regexes looked for by a tail first (``hsline.tail_regex``): the database of
    their tails (each reporting once a scan) and the one of their whole line forms."""

    pre: Any
    pre_scratch: Any
    post: Any
    post_scratch: Any

    @classmethod
    def of(cls, dbs: dict[str, Any], scratch: dict[str, Any]) -> Tail | None:
        if "pre" not in dbs or "post" not in dbs:
            return None
        return cls(dbs["pre"], scratch["pre"], dbs["post"], scratch["post"])


def tail_databases(tails: list[tuple[int, bytes, bytes]], flags: int) -> tuple[object | None, object | None]:
    """The databases of ``Tail`` from (regex id, its tail, its line form) triples: each tail
    reports once a scan (all a block needs to know)."""
    ids = [i for i, _, _ in tails]
    return (database([t for _, t, _ in tails], ids, [flags | _hs.HS_FLAG_SINGLEMATCH] * len(tails)),
            database([ln for _, _, ln in tails], ids, [flags] * len(tails)))


def confirmed(tail: Tail, base: bytes | bytearray, a: int, b: int, width: int) -> Ends:
    """``scan_ends`` of ``tail.post`` over ``base[a:b]`` (a and b line starts; ends relative
    to ``a``), scanned only in the blocks of about ``BLOCK`` bytes (cut after a newline:
    no line crosses two) where ``tail.pre`` finds a tail: a block without one holds no
    line these regexes match. The tail of a regex without a literal has one (a few bytes
    Hyperscan skips to), so a block is looked at at memory speed, and one where the tail
    shows is scanned whole, for the cost of the scan without the tail."""
    block = BLOCK
    lists: Ends = [[] for _ in range(width)]
    sinks = [x.append for x in lists]
    pre_scratch, post_scratch = tail.pre_scratch.clone(), tail.post_scratch.clone()
    seen: list[int] = []
    at = [0]

    def on_tail(sid: int, _frm: int, _to: int, _flags: int, _ctx: object) -> None:
        seen.append(sid)

    def on_match(sid: int, _frm: int, to: int, _flags: int, _ctx: object) -> None:
        sinks[sid](to + at[0])

    view = memoryview(base)
    try:
        s = a
        while s < b:
            e = b if b - s <= block else base.find(b"\n", s + block - 1, b) + 1
            e = b if e <= s else e
            tail.pre.scan(view[s:e], match_event_handler=on_tail, scratch=pre_scratch)
            if seen:
                seen.clear()
                at[0] = s - a
                tail.post.scan(view[s:e], match_event_handler=on_match, scratch=post_scratch)
            s = e
    finally:
        view.release()
    for x in lists:
        x.sort()
    return lists


class _Once:
    """A job that whichever thread asks first does (the other finds it taken)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = False

    def take(self) -> bool:
        with self._lock:
            taken, self._taken = self._taken, True
        return not taken


def _worker_scan(db: Any, scratch: Any, data: Any, width: int, tail: Tail | None,
                 base: bytes | bytearray, a: int, nfa: _Once) -> tuple[Ends | None, Ends | None]:
    """The worker's part: the tails' blocks first, then the literal-less database unless
    the caller's thread, done with its own scan, took it meanwhile."""
    more = confirmed(tail, base, a, a + len(data), width) if tail is not None else None
    got = scan_ends(db, scratch, data, width) if db is not None and nfa.take() else None
    return got, more


def _joined(width: int, *parts: Ends | None) -> Ends:
    """The reports of the databases of ``parts`` by id (each regex is in one of them)."""
    out: Ends = [[] for _ in range(width)]
    for part in parts:
        if part is not None:
            out = [x or y for x, y in zip(out, part, strict=True)]
    return out


def beside(db: Any, scratch: Any, data: Any, width: int, tail: Tail | None = None,
           base: bytes | bytearray = b"", a: int = 0) -> Callable[[], Ends]:
    """``scan_ends`` of ``db`` with the ``confirmed`` reports of ``tail``'s regexes
    (``data`` is ``base[a:]``'s view), started in the worker thread (or here, without one);
    the returned call, made once the caller's own scan is done, waits for their reports.
    The worker looks at the tails first: the caller's thread, back from its scan before
    the worker reaches ``db``, scans ``db`` itself (a log that is dense in the tails keeps
    the worker busy while the caller's scan was short)."""
    pool = _pool()
    if db is None and tail is None:
        return list
    if pool is None:
        more = confirmed(tail, base, a, a + len(data), width) if tail is not None else None
        got = _joined(width, scan_ends(db, scratch, data, width) if db is not None else None, more)
        return lambda: got
    nfa = _Once()
    fut: Future[tuple[Ends | None, Ends | None]] = pool.submit(_worker_scan, db, scratch, data, width, tail,
                                                             base, a, nfa)

    def wait() -> Ends:
        mine = scan_ends(db, scratch, data, width) if db is not None and nfa.take() else None
        theirs, more = fut.result()
        return _joined(width, mine, theirs, more)

    return wait


def database(expressions: list[bytes], ids: list[int], flags: list[int]) -> object | None:
    if not expressions:
        return None
    db = _hs.Database()
    db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
    return db


def hs_literal(lit: bytes) -> bytes:
    """``lit`` as a Hyperscan expression matching exactly those bytes."""
    return b"".join(bytes([b]) if chr(b).isalnum() and b < 0x80 else b"\\x%02x" % b for b in lit)


def compiles(rx: str, flags: int) -> bool:
    db = _hs.Database()
    try:
        db.compile(expressions=[rx.encode()], ids=[0], elements=1, flags=[flags])
    except _hs.error:
        return False
    return True


__all__ = ["BLOCK", "DRIVE", "Tail", "beside", "compiles", "confirmed", "database", "hs_literal", "scan_ends",
           "scan_events", "scan_with", "tail_databases"]
