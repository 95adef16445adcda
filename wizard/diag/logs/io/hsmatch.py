"""Signature matching over bytes held by the wizard with Hyperscan, in time linear in the
bytes, with the lines found exactly those a line-by-line ``re.search(rx, line, re.I)`` finds.

The decision is Hyperscan's wherever it can be: every regex it compiles exactly is in one
database compiled to report each match's leftmost start, scanned once over the whole buffer;
a match that starts and ends inside one line is a match of that line (a line holds no
newline, so ``^``, ``\\b`` and classes read it as ``re`` does). ``re`` is left only:

- regexes Hyperscan cannot compile exactly (lookaround: compiled in its prefilter mode, a
  superset; Python-only syntax): on the lines their literals (one caseless literal
  database) or their prefilter pattern found;
- lines with non-ASCII bytes (``re`` sees decoded text, where ``\\w``, ``.`` and case
  folding differ): every regex whose literals the line holds;
- a match reported across a line break (a ``\\s`` that took the newline), or one that ends
  on a ``\\r`` that ``re`` does not see: that line and regex.

There ``re`` runs in linear form on a bounded line (``wizard.model.linear``), looking at the
stop token before each line, so no line can hang a run and a cancellation reaches it.
Without the ``hyperscan`` package, ``matcher`` returns None and callers keep their
grep/Python path.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from wizard.diag.logs.io import hscache
from wizard.model import linear
from wizard.model.cancel import Stop

_hs: Any
try:
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised by monkeypatching AVAILABLE in tests
    _hs = None

AVAILABLE = _hs is not None
NO_ENGINE_NOTE = "the hyperscan package is not installed: signatures searched by grep/Python"

# Python syntax that Hyperscan reads differently (or not at all): such patterns are found by
# their literals and re, never by a database that might miss a line.
_PY_ONLY = re.compile(r"(?<!\\)\$|\\[AZz]|\{,|\(\?P=|\(\?[aiLmsux-]*[aLmsux]")
_HIGH = re.compile(rb"[\x80-\xff]")
CHECK_EVERY = 256  # lines between two looks at the stop token when re has nothing to do
SLICE = 4 << 20  # bytes searched between two looks at the stop token


class LineHit(NamedTuple):  # a tuple: a dense log makes millions of them
    start: int  # offset of the line in the buffer
    end: int  # offset of its "\n" (or the buffer's end)
    ids: tuple[int, ...]  # indices of the matching regexes, ascending
    clipped: bool = False  # a long line Python's re saw only the head and tail of


class Matcher:
    """The compiled form of one tuple of signature regexes (case-insensitive)."""

    def __init__(self, regexes: Sequence[str]) -> None:
        self.regexes = tuple(regexes)
        # compiled when a candidate line first needs one: a window's search confirms few
        self._py: list[re.Pattern[str] | None] = [None] * len(self.regexes)
        self.literals: list[tuple[bytes, ...] | None] = []  # lowered; None: no required one
        self.som: list[int] = []  # decided by the leftmost-start database
        self.approx: list[int] = []  # in the candidate database in prefilter mode (a superset)
        self.python: list[int] = []  # in no database
        self.lit_owners: list[tuple[int, ...]] = []  # literal id -> the regexes it may find
        self.all_owners: list[tuple[int, ...]] = []  # the same for every regex's literals
        self.dbs: dict[str, object] = {}  # "som", "db" (candidates without a literal), "lit"
        if _hs is None:
            self.python = list(range(len(self.regexes)))
            self.literals = self._literals()
            return
        path = hscache.cache_path(_hs, self.regexes)
        if not self._load(hscache.load(_hs, path)):
            self.literals = self._literals()
            self._compile()
            hscache.save(_hs, path, self._meta(), self.dbs)
        self._scratch = {name: _hs.Scratch(db) for name, db in self.dbs.items()}

    def _literals(self) -> list[tuple[bytes, ...] | None]:
        from wizard.diag.logs.io.scan import required_literals

        out: list[tuple[bytes, ...] | None] = []
        for rx in self.regexes:
            need = required_literals(rx)
            out.append(None if need is None else tuple(sorted({x.lower().encode() for x in need})))
        return out

    def _meta(self) -> dict:
        return {"som": self.som, "approx": self.approx, "python": self.python,
                "lit_owners": self.lit_owners, "all_owners": self.all_owners,
                "literals": [None if x is None else [b.hex() for b in x] for x in self.literals]}

    def _load(self, got: tuple[dict, dict] | None) -> bool:
        if got is None:
            return False
        meta, self.dbs = got
        self.som, self.approx, self.python = meta["som"], meta["approx"], meta["python"]
        self.lit_owners = [tuple(o) for o in meta["lit_owners"]]
        self.all_owners = [tuple(o) for o in meta["all_owners"]]
        self.literals = [None if x is None else tuple(bytes.fromhex(h) for h in x) for x in meta["literals"]]
        return len(self.literals) == len(self.regexes)

    def _search(self, i: int, text: str) -> bool:
        """``re`` on (the head and tail of) one line, in its linear form."""
        rx = self._py[i]
        if rx is None:
            rx = self._py[i] = linear.compile_linear(self.regexes[i])
        return linear.search(rx, text) is not None

    def _compile(self) -> None:
        base = _hs.HS_FLAG_CASELESS | _hs.HS_FLAG_MULTILINE
        som_flags = base | _hs.HS_FLAG_SOM_LEFTMOST
        candidates: list[tuple[int, int]] = []  # (regex, flags) of the candidate database
        for i, rx in enumerate(self.regexes):
            if _PY_ONLY.search(rx) or not rx.isascii():
                self.python.append(i)
            elif _compiles(rx, som_flags):
                self.som.append(i)
            elif _compiles(rx, base) or _compiles(rx, base | _hs.HS_FLAG_PREFILTER):
                self.approx.append(i)
                if self.literals[i] is None:
                    candidates.append((i, base if _compiles(rx, base) else base | _hs.HS_FLAG_PREFILTER))
            else:
                self.python.append(i)
        self.dbs["som"] = _database([self.regexes[i].encode() for i in self.som], self.som,
                                    [som_flags] * len(self.som))
        self.dbs["db"] = _database([self.regexes[i].encode() for i, _ in candidates],
                                   [i for i, _ in candidates], [f for _, f in candidates])
        self._compile_literals()
        self.dbs = {k: v for k, v in self.dbs.items() if v is not None}

    def _compile_literals(self) -> None:
        """Caseless databases of minimal literals: "lit" of the regexes ``re`` decides on
        every line, "all" of every regex (for the non-ASCII lines ``re`` decides alone)."""
        some = [i for i in self.approx + self.python if self.literals[i] is not None]
        self.dbs["lit"], self.lit_owners = self._literal_db(some)
        self.dbs["all"], self.all_owners = self._literal_db(
            [i for i in range(len(self.regexes)) if self.literals[i] is not None])

    def _literal_db(self, with_lits: list[int]) -> tuple[object | None, list[tuple[int, ...]]]:
        from wizard.diag.logs.io.scan import minimal_literals

        every = {lit.decode() for i in with_lits for lit in self.literals[i]}  # type: ignore[union-attr]
        mins = [m.encode() for m in minimal_literals(every)]
        # A line holding one of a regex's literals holds a minimal literal inside it.
        owners = [tuple(i for i in with_lits if any(m in lit for lit in self.literals[i]))  # type: ignore[union-attr]
                  for m in mins]
        db = _database([_hs_literal(m) for m in mins], list(range(len(mins))),
                       [_hs.HS_FLAG_CASELESS] * len(mins))
        return db, owners

    def _scan(self, name: str, data: bytes) -> list[tuple[int, int, int]]:
        """(id, from, to) of every match of database ``name`` in ``data``."""
        events: list[tuple[int, int, int]] = []
        add = events.append

        def on_match(sid: int, frm: int, to: int, _flags: int, _ctx: object) -> None:
            add((sid, frm, to))

        db = self.dbs.get(name)
        if db is not None:  # a scratch of its own: calls may run at once in worker threads
            db.scan(data, match_event_handler=on_match, scratch=self._scratch[name].clone())  # type: ignore[attr-defined]
        return events

    def lines(self, data: bytes, limit: int | None = None, stop: Stop | None = None) -> list[LineHit]:
        """The lines of ``data`` (whole lines; a last line without "\\\\n" counts) that match,
        in order, with the regexes each matches; lines starting at or after ``limit`` are
        left out (a partial line at the end of a chunk, read again with the next one).
        ``stop`` is looked at between lines: a cancelled run or a passed deadline raises."""
        limit = len(data) if limit is None else limit
        stop = stop or Stop()
        out: list[LineHit] = []
        a = 0
        while a < limit:  # in slices cut after a newline: the stop token is looked at between
            stop.check()
            b = len(data) if len(data) - a <= SLICE else data.find(b"\n", a + SLICE - 1) + 1
            b = len(data) if b <= 0 else b
            piece = data if (a, b) == (0, len(data)) else data[a:b]
            out += [LineHit(h.start + a, h.end + a, h.ids, h.clipped)
                    for h in self._slice(piece, min(limit, b) - a, stop)]
            a = b
        return out

    def _slice(self, data: bytes, limit: int, stop: Stop) -> list[LineHit]:
        exact: dict[int, set[int]] = {}  # line start -> regexes Hyperscan decided it matches
        cand: dict[int, set[int]] = {}  # line start -> regexes for re to decide
        line_s, line_e = -1, -1  # the line of the previous event: events come in order
        for sid, frm, to in self._scan("som", data):
            last = data[to - 1] if to else 10
            if last == 10:
                continue  # it ends on the newline: no line holds it
            if not line_s <= to - 1 < line_e:
                line_s = data.rfind(b"\n", 0, to - 1) + 1
                line_e = data.find(b"\n", to - 1)
                line_e = len(data) if line_e < 0 else line_e
            if line_s >= limit:
                continue
            sure = frm >= line_s and last != 13  # 13: a "\r" re does not see
            (exact if sure else cand).setdefault(line_s, set()).add(sid)
        for sid, _frm, to in self._scan("db", data):
            s = data.rfind(b"\n", 0, max(0, to - 1)) + 1
            if s < limit:
                cand.setdefault(s, set()).add(sid)
        for lid, _frm, to in self._scan("lit", data):
            s = data.rfind(b"\n", 0, max(0, to - 1)) + 1
            if s < limit:
                cand.setdefault(s, set()).update(self.lit_owners[lid])
        if not data.isascii():
            self._high_candidates(data, limit, exact, cand)
        if self.python or _hs is None:
            self._python_candidates(data, limit, cand)
        return self._decide(data, exact, cand, stop)

    def _decide(self, data: bytes, exact: dict[int, set[int]], cand: dict[int, set[int]],
                stop: Stop) -> list[LineHit]:
        out: list[LineHit] = []
        nothing: set[int] = set()
        starts = sorted(exact.keys() | cand.keys()) if cand else sorted(exact)
        for k, s in enumerate(starts):
            e = data.find(b"\n", s)
            e = len(data) if e < 0 else e
            ids = exact.get(s, nothing)
            todo = cand[s] - ids if s in cand else nothing
            clipped = False
            if todo or k % CHECK_EVERY == 0:
                stop.check()  # before each line re reads: one can cost milliseconds
            if todo:
                text = data[s:e].rstrip(b"\r").decode("utf-8", "replace")
                clipped = linear.is_long(text)
                ids = ids | {i for i in todo if self._search(i, text)}
            if ids:
                out.append(LineHit(s, e, tuple(sorted(ids)) if len(ids) > 1 else tuple(ids), clipped))
        return out

    def match_texts(self, texts: Sequence[str], stop: Stop | None = None) -> list[tuple[int, ...]]:
        """The regexes each text matches (its newlines read as spaces), as ``lines`` finds them."""
        raws = [t.replace("\n", " ").encode("utf-8", "replace") for t in texts]
        offsets, pos = {}, 0
        for k, raw in enumerate(raws):
            offsets[pos] = k
            pos += len(raw) + 1
        out: list[tuple[int, ...]] = [()] * len(raws)
        for hit in self.lines(b"\n".join(raws), stop=stop):
            out[offsets[hit.start]] = hit.ids
        return out

    def _high_candidates(self, data: bytes, limit: int, exact: dict[int, set[int]],
                         cand: dict[int, set[int]]) -> None:
        """Lines with non-ASCII bytes are decided by ``re`` alone: every regex whose literal
        they hold (one scan of those lines joined), and every regex without a literal."""
        highs = _high_lines(data, limit)
        no_literal = {i for i, lits in enumerate(self.literals) if lits is None}
        starts, pos = [], 0
        for s, e in highs:
            exact.pop(s, None)
            if no_literal:
                cand.setdefault(s, set()).update(no_literal)
            starts.append(pos)
            pos += e - s + 1
        buf = b"\n".join(data[s:e] for s, e in highs)
        for lid, _frm, to in self._scan("all", buf):
            k = bisect.bisect_right(starts, max(0, to - 1)) - 1
            cand.setdefault(highs[k][0], set()).update(self.all_owners[lid])

    def _python_candidates(self, data: bytes, limit: int, cand: dict[int, set[int]]) -> None:
        """Candidates for the regexes outside every database: lines holding one of their
        literals, or every line for a regex without one (checked by re)."""
        from wizard.diag.logs.io.scan import literal_line_starts

        low = b""
        for i in self.python:
            lits = self.literals[i]
            if lits is not None and "lit" in self.dbs:
                continue  # found by the literal database
            if lits is None:
                for s, _e in _all_lines(data, limit):
                    cand.setdefault(s, set()).add(i)
                continue
            low = low or data.lower()
            for s in literal_line_starts(low, lits):
                if s < limit:
                    cand.setdefault(s, set()).add(i)


def _database(expressions: list[bytes], ids: list[int], flags: list[int]) -> object | None:
    if not expressions:
        return None
    db = _hs.Database()
    db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
    return db


def _hs_literal(lit: bytes) -> bytes:
    """``lit`` as a Hyperscan expression matching exactly those bytes."""
    return b"".join(bytes([b]) if chr(b).isalnum() and b < 0x80 else b"\\x%02x" % b for b in lit)


def _compiles(rx: str, flags: int) -> bool:
    db = _hs.Database()
    try:
        db.compile(expressions=[rx.encode()], ids=[0], elements=1, flags=[flags])
    except _hs.error:
        return False
    return True


def _high_lines(data: bytes, limit: int) -> list[tuple[int, int]]:
    """(start, end) of the lines with a byte >= 0x80."""
    out: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _HIGH.search(data, pos)
        if m is None:
            return out
        s = data.rfind(b"\n", 0, m.start()) + 1
        if s >= limit:
            return out
        e = data.find(b"\n", m.start())
        e = len(data) if e < 0 else e
        out.append((s, e))
        pos = e + 1


def _all_lines(data: bytes, limit: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    s = 0
    while s < limit:
        e = data.find(b"\n", s)
        e = len(data) if e < 0 else e
        out.append((s, e))
        s = e + 1
    return out


@functools.lru_cache(maxsize=8)
def _cached(regexes: tuple[str, ...]) -> Matcher:
    return Matcher(regexes)


def matcher(regexes: Sequence[str]) -> Matcher | None:
    """The process-wide Matcher of ``regexes``; None without the hyperscan package."""
    if not AVAILABLE:
        return None
    return _cached(tuple(regexes))


__all__ = ["AVAILABLE", "NO_ENGINE_NOTE", "LineHit", "Matcher", "matcher"]
