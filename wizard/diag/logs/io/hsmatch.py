"""Signature matching over bytes held by the wizard with Hyperscan, in time linear in the
bytes, with the lines found exactly those a line-by-line ``re.search(rx, line, re.I)`` finds.

The decision is Hyperscan's wherever it can be: every regex with an exact line form
(``hsline.line_regex``: no match crosses a line, one report at the end of each matching
line) is in one database scanned once over the whole buffer, and each report names its line
and its regex: no ``re`` runs for them, and a count of the lines each matches is a count of
the reports. ``re`` is left only:

- regexes with no exact line form (lookaround, ``$``, Python-only syntax): on the lines their
  literals (one caseless literal database) or their Hyperscan pattern (plain or in prefilter
  mode, a superset) found, and only for those regexes;
- lines with non-ASCII bytes or a ``\\r`` before their end (``re`` sees decoded text, where
  ``\\w``, ``.`` and case folding differ): every regex whose literals the line holds.

There ``re`` runs in linear form on a bounded line (``wizard.model.linear``), looking at the
stop token before each line, so no line can hang a run and a cancellation reaches it.
Without the ``hyperscan`` package, ``matcher`` returns None and callers keep their
grep/Python path.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from wizard.diag.logs.io import hscache, hsdb, hsline
from wizard.diag.logs.io.hsline import Decided as _Decided
from wizard.diag.logs.io.hsline import LineCounts, LineHit
from wizard.diag.logs.io.hsline import Piece as _Piece
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
# UTF-8 of the characters re.I takes for an ASCII letter: İ ı (i), ſ (s), K (Kelvin, k)
_FOLDS = re.compile(rb"\xc4[\xb0\xb1]|\xc5\xbf|\xe2\x84\xaa")
CHECK_EVERY = 256  # lines between two looks at the stop token when re has nothing to do
SLICE = 4 << 20  # bytes searched between two looks at the stop token


class Matcher:
    """The compiled form of one tuple of signature regexes (case-insensitive)."""

    def __init__(self, regexes: Sequence[str]) -> None:
        self.regexes = tuple(regexes)
        # compiled when a candidate line first needs one: a window's search confirms few
        self._py: list[re.Pattern[str] | None] = [None] * len(self.regexes)
        self.literals: list[tuple[bytes, ...] | None] = []  # lowered; None: no required one
        self.exact: list[int] = []  # decided by the line databases alone
        self.nfa: list[int] = []  # those of them without a literal to drive Hyperscan ("nfa")
        self.tailed: list[int] = []  # those of them looked for by their tail first ("pre", "post")
        self.approx: list[int] = []  # in the candidate database (as is or prefiltered)
        self.python: list[int] = []  # in no database
        self.lit_owners: list[tuple[int, ...]] = []  # literal id -> the regexes it may find
        self.all_owners: list[tuple[int, ...]] = []  # the same for every regex's literals
        # "line" (and literals), "nfa" (exact regexes without a literal), "pre" and "post"
        # (tails and line forms of those with a tail), "db" (candidates without one), "all"
        self.dbs: dict[str, object] = {}
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
        self._no_literal = {i for i, lits in enumerate(self.literals) if lits is None}
        self._tail = hsdb.Tail.of(self.dbs, self._scratch)

    def _literals(self) -> list[tuple[bytes, ...] | None]:
        from wizard.diag.logs.io.scan import required_literals

        out: list[tuple[bytes, ...] | None] = []
        for rx in self.regexes:
            need = required_literals(rx)
            out.append(None if need is None else tuple(sorted({x.lower().encode() for x in need})))
        return out

    def _meta(self) -> dict:
        return {"exact": self.exact, "nfa": self.nfa, "tailed": self.tailed, "approx": self.approx,
                "python": self.python, "lit_owners": self.lit_owners, "all_owners": self.all_owners,
                "literals": [None if x is None else [b.hex() for b in x] for x in self.literals]}

    def _load(self, got: tuple[dict, dict] | None) -> bool:
        if got is None:
            return False
        meta, self.dbs = got
        self.exact, self.approx, self.python = meta["exact"], meta["approx"], meta["python"]
        self.nfa, self.tailed = meta["nfa"], meta["tailed"]
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
        exact: list[bytes] = []
        nfa: list[bytes] = []
        tails: list[tuple[int, bytes, bytes]] = []  # (regex, tail, line form)
        candidates: list[tuple[int, int]] = []  # (regex, flags) of the candidate database
        for i, rx in enumerate(self.regexes):
            line = hsline.line_regex(rx)
            if line is not None and _compiles(line, base):
                need = self.literals[i]
                if need is None or min(map(len, need)) < hsdb.DRIVE:
                    self.nfa.append(i)
                    tail = hsline.tail_regex(rx)
                    if tail is not None and _compiles(tail, base | _hs.HS_FLAG_SINGLEMATCH):
                        self.tailed.append(i)
                        tails.append((i, tail.encode(), line.encode()))
                    else:
                        nfa.append(line.encode())
                else:
                    self.exact.append(i)
                    exact.append(line.encode())
            elif _PY_ONLY.search(rx) or not rx.isascii():
                self.python.append(i)
            elif _compiles(rx, base) or _compiles(rx, base | _hs.HS_FLAG_PREFILTER):
                self.approx.append(i)
                if self.literals[i] is None:
                    candidates.append((i, base if _compiles(rx, base) else base | _hs.HS_FLAG_PREFILTER))
            else:
                self.python.append(i)
        # One scan finds both: the exact regexes' lines, and (ids after theirs) the minimal
        # literals of the regexes re decides on every line, which find its candidates.
        some = [i for i in self.approx + self.python if self.literals[i] is not None]
        lits, self.lit_owners = self._literal_exprs(some)
        # (a literal's id: its number after the regexes' ids)
        self.dbs["line"] = _database(exact + lits, self.exact + [len(self.regexes) + k for k in range(len(lits))],
                                     [base] * len(exact) + [_hs.HS_FLAG_CASELESS] * len(lits))
        self.dbs["nfa"] = _database(nfa, [i for i in self.nfa if i not in self.tailed], [base] * len(nfa))
        self.dbs["pre"], self.dbs["post"] = hsdb.tail_databases(tails, base)
        self.exact += self.nfa
        self.dbs["db"] = _database([self.regexes[i].encode() for i, _ in candidates],
                                   [i for i, _ in candidates], [f for _, f in candidates])
        # every regex's literals, for the special lines re decides alone
        with_lits = [i for i in range(len(self.regexes)) if self.literals[i] is not None]
        every, self.all_owners = self._literal_exprs(with_lits)
        self.dbs["all"] = _database(every, list(range(len(every))), [_hs.HS_FLAG_CASELESS] * len(every))
        self.dbs = {k: v for k, v in self.dbs.items() if v is not None}

    def _literal_exprs(self, with_lits: list[int]) -> tuple[list[bytes], list[tuple[int, ...]]]:
        """Caseless expressions of the minimal literals of ``with_lits``, and the regexes each may find."""
        from wizard.diag.logs.io.scan import minimal_literals

        every = {lit.decode() for i in with_lits for lit in self.literals[i]}  # type: ignore[union-attr]
        mins = [m.encode() for m in minimal_literals(every)]
        # A line holding one of a regex's literals holds a minimal literal inside it.
        owners = [tuple(i for i in with_lits if any(m in lit for lit in self.literals[i]))  # type: ignore[union-attr]
                  for m in mins]
        return [_hs_literal(m) for m in mins], owners

    def _scan(self, name: str, data: bytes | memoryview, at: int = 0) -> list[tuple[int, int]]:
        """(id, end offset + ``at``) of every match of database ``name`` in ``data``."""
        db = self.dbs.get(name)
        return [] if db is None else hsdb.scan_events(db, self._scratch[name], data, at)

    def _line_scan(self, data: memoryview, at: int, last: int,
                   base: bytes | bytearray) -> tuple[dict[int, list[int]], list[tuple[int, int]]]:
        """The line databases' reports in ``data``: each regex's line ends (relative to
        ``at``, not past ``last``) and (literal, end); the literal-less regexes' database
        scanned in another thread meanwhile (``data`` is ``base[at:]``'s view)."""
        n = len(self.regexes)
        nfa = hsdb.beside(self.dbs.get("nfa"), self._scratch.get("nfa"), data, n, self._tail, base, at)
        db = self.dbs.get("line")
        try:
            got = hsdb.scan_ends(db, self._scratch["line"], data, n + len(self.lit_owners)) if db is not None else []
        finally:
            more = nfa()  # never left scanning a buffer that may be reused
        lits = [(k, to + at) for k, ends in enumerate(got[n:]) for to in ends]
        return hsline.by_regex(got[:n], more, last - at), lits

    def _pieces(self, data: bytes | bytearray, limit: int | None, stop: Stop, a: int = 0,
                clean: bool | None = None) -> Iterator[_Piece]:
        """Slices [a, b) of ``data`` cut after a newline (the stop token is looked at
        between them) with the offset their lines' ends must not pass, whether ``data`` has
        no special line (``clean``, if the caller knows), and the line database's reports."""
        limit = len(data) if limit is None else limit
        view = memoryview(data)
        clean = hsline.is_clean(data) if clean is None else clean
        try:
            while a < limit:
                stop.check()
                b = len(data) if len(data) - a <= SLICE else data.find(b"\n", a + SLICE - 1) + 1
                b = len(data) if b <= 0 else b
                last = data.find(b"\n", limit - 1) if b >= limit else b - 1  # lines ending here start before limit
                last = len(data) if last < 0 else last
                events, lits = self._line_scan(view[a:b], a, last, data)
                yield _Piece(a, b, last, clean, events, lits)
                a = b
        finally:
            view.release()

    def lines(self, data: bytes | bytearray, limit: int | None = None,
              stop: Stop | None = None) -> list[LineHit]:
        """The lines of ``data`` (whole lines; a last line without "\\n" counts) that match,
        in order, with the regexes each matches; lines starting at or after ``limit`` are
        left out (a partial line at the end of a chunk, read again with the next one).
        ``stop`` is looked at between lines: a cancelled run or a passed deadline raises."""
        return self.head(data, limit, stop)[0]

    def head(self, data: bytes | bytearray, limit: int | None = None, stop: Stop | None = None,
             most: int | None = None) -> tuple[list[LineHit], int]:
        """``lines``, stopped after the slice in which ``most`` lines were found, and the
        offset it stopped at (``count`` from there finds the rest)."""
        stop = stop or Stop()
        out: list[LineHit] = []
        for piece in self._pieces(data, limit, stop):
            if most is not None and len(out) >= most:
                return out, piece.a
            decided = self._decided(data, piece, stop)
            found = hsline.hits(data, piece.a, piece.ends, {e - piece.a for e in decided})
            if decided:
                found += [LineHit(d.start, e, tuple(sorted(d.ids)), d.clipped) for e, d in decided.items() if d.ids]
                found.sort(key=_END)
            out += found
        return out, len(data) if limit is None else limit

    def found(self, data: bytes | bytearray, stop: Stop | None = None,
              clean: bool | None = None) -> tuple[list[int], list[tuple[int, ...]], bool]:
        """``lines`` of the whole of ``data`` as columns: the lines' starts, the regexes of
        each, and whether any was clipped (no object per line but a shared tuple of ids)."""
        stop = stop or Stop()
        starts: list[int] = []
        ids: list[tuple[int, ...]] = []
        clipped = False  # some line re decided was clipped
        for piece in self._pieces(data, None, stop, clean=clean):
            decided = self._decided(data, piece, stop)
            s, i = hsline.hit_columns(data, piece.a, piece.ends, {e - piece.a for e in decided})
            if decided:
                s, i, clip = hsline.with_decided(s, i, decided)
                clipped = clipped or clip
            starts += s
            ids += i
        return starts, ids, clipped

    def count(self, data: bytes | bytearray, limit: int | None = None,
              stop: Stop | None = None, start: int = 0) -> LineCounts:
        """What ``lines`` finds from offset ``start`` (a line's start), counted: no line is
        listed, and the lines the line database alone decides cost a count of its reports."""
        stop = stop or Stop()
        counts: Counter[int] = Counter()
        total, clipped = 0, False
        for piece in self._pieces(data, limit, stop, start):
            decided = self._decided(data, piece, stop)
            for d in decided.values():
                counts.update(d.ids)
                total += bool(d.ids)
                clipped = clipped or d.clipped
            found, lines = hsline.tally(piece.ends, {e - piece.a for e in decided})
            counts.update(found)
            total += lines
        return LineCounts(dict(counts), total, clipped)

    def _decided(self, data: bytes | bytearray, piece: _Piece, stop: Stop) -> dict[int, _Decided]:
        """The lines of ``piece`` that ``re`` has a say in, decided: candidates of the
        regexes outside the line database, and the special lines."""
        a, b, last = piece.a, piece.b, piece.last
        cand: dict[int, set[int]] = {}  # line start -> regexes for re to decide
        with memoryview(data) as view:
            found = [(sid, to, (sid,)) for sid, to in self._scan("db", view[a:b], a)]
        for _sid, to, owners in found + [(lid, to, self.lit_owners[lid]) for lid, to in piece.lits]:
            s = data.rfind(b"\n", 0, max(a, to - 1)) + 1
            cand.setdefault(s, set()).update(owners)
        specials = [] if piece.clean else hsline.special_lines(bytes(data[a:b]), last + 1 - a)
        if specials:
            self._special_candidates(data, a, specials, cand)
        if self.python:
            self._python_candidates(data, a, b, cand)
        if not cand:
            return {}
        special_ends = {e + a for _s, e in specials}
        exact: dict[int, set[int]] = {}
        ends = {s: _line_end(data, s) for s in cand}
        wanted = set(ends.values()) - special_ends
        for end in wanted:
            for sid, at in piece.ends.items():
                if hsline.has(at, end - a):
                    exact.setdefault(end, set()).add(sid)
        return self._decide(data, cand, ends, exact, last, stop)

    def _decide(self, data: bytes | bytearray, cand: dict[int, set[int]], ends: dict[int, int],
                exact: dict[int, set[int]], last: int, stop: Stop) -> dict[int, _Decided]:
        out: dict[int, _Decided] = {}
        nothing: set[int] = set()
        for k, s in enumerate(sorted(cand)):
            e = ends[s]
            if e > last:
                continue  # it starts at or after the limit
            ids = exact.get(e, nothing)
            todo = cand[s] - ids
            clipped = False
            if todo or k % CHECK_EVERY == 0:
                stop.check()  # before each line re reads: one can cost milliseconds
            if todo:
                text = bytes(data[s:e]).rstrip(b"\r").decode("utf-8", "replace")
                clipped = linear.is_long(text)
                ids = ids | {i for i in todo if self._search(i, text)}
            out[e] = _Decided(s, frozenset(ids), clipped)
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

    def _special_candidates(self, data: bytes | bytearray, a: int, specials: list[tuple[int, int]],
                            cand: dict[int, set[int]]) -> None:
        """Special lines (offsets in data[a:]) are decided by ``re`` alone: every regex whose
        literal they hold (one scan of those lines joined), every regex without one, and
        every regex on a line with a character ``re.I`` folds to ASCII."""
        starts, pos = [], 0
        every = set(range(len(self.regexes)))
        for s, e in specials:
            # a character re.I folds to an ASCII letter hides a literal from the database
            folds = _FOLDS.search(data, s + a, e + a) is not None
            cand.setdefault(s + a, set()).update(every if folds else self._no_literal)
            starts.append(pos)
            pos += e - s + 1
        buf = b"\n".join(data[s + a:e + a] for s, e in specials)
        for lid, to in self._scan("all", buf):
            k = bisect.bisect_right(starts, max(0, to - 1)) - 1
            cand[specials[k][0] + a].update(self.all_owners[lid])

    def _python_candidates(self, data: bytes | bytearray, a: int, b: int, cand: dict[int, set[int]]) -> None:
        """Candidates for the regexes outside every database: lines holding one of their
        literals, or every line for a regex without one (checked by re)."""
        from wizard.diag.logs.io.scan import literal_line_starts

        low = b""
        for i in self.python:
            lits = self.literals[i]
            if lits is not None and self.lit_owners:
                continue  # found by the literal database
            if lits is None:
                for s in hsline.line_starts(data, a, b):
                    cand.setdefault(s, set()).add(i)
                continue
            low = low or bytes(data[a:b]).lower()
            for s in literal_line_starts(low, lits):
                cand.setdefault(s + a, set()).add(i)


def _END(hit: LineHit) -> int:
    return hit.end


def _line_end(data: bytes | bytearray, s: int) -> int:
    e = data.find(b"\n", s)
    return len(data) if e < 0 else e


_database, _hs_literal, _compiles = hsdb.database, hsdb.hs_literal, hsdb.compiles


@functools.lru_cache(maxsize=8)
def _cached(regexes: tuple[str, ...]) -> Matcher:
    return Matcher(regexes)


def matcher(regexes: Sequence[str]) -> Matcher | None:
    """The process-wide Matcher of ``regexes``; None without the hyperscan package."""
    if not AVAILABLE:
        return None
    return _cached(tuple(regexes))


__all__ = ["AVAILABLE", "NO_ENGINE_NOTE", "LineCounts", "LineHit", "Matcher", "matcher"]
