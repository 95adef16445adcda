"""Signature matching over bytes held by the wizard with Hyperscan: the minimal literals the
signatures require in one caseless literal database (and the few signatures without a literal
in a small regex database), compiled once per process and pattern set and kept on disk; the
lines holding a hit are confirmed by Python's ``re``, so the lines found are exactly those a
line-by-line ``re.search(rx, line, re.I)`` finds.

Why the confirmation is enough: every line a regex matches holds one of its required literals
(found by the literal database, caseless on ASCII like ``bytes.lower``), and Hyperscan reports
every end offset of every regex match, so a line Python matches always has a reported hit
inside it (for ASCII lines, where both engines agree on classes and case). Extra reports
(a ``\\s`` running across a newline, a prefilter approximation) only add candidates, which
``re`` rejects. Lines with non-ASCII
bytes (Python sees decoded text, where ``\\w``, ``.`` and case folding differ) are checked by
the signatures' literals and ``re`` instead. Patterns Hyperscan cannot compile exactly
(lookaround, backreferences) are compiled in its prefilter mode (a superset) or, failing
that, found by their literals or by ``re`` itself. Without the ``hyperscan`` package,
``matcher`` returns None and callers keep their grep/Python path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

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
CACHE_FORMAT = 3


@dataclass(frozen=True)
class LineHit:
    start: int  # offset of the line in the buffer
    end: int  # offset of its "\n" (or the buffer's end)
    ids: tuple[int, ...]  # indices of the matching regexes, ascending


class Matcher:
    """The compiled form of one tuple of signature regexes (case-insensitive)."""

    def __init__(self, regexes: Sequence[str]) -> None:
        self.regexes = tuple(regexes)
        # compiled when a candidate line first needs one: a window's search confirms few
        self._py: list[re.Pattern[str] | None] = [None] * len(self.regexes)
        self.literals: list[tuple[bytes, ...] | None] = []  # from the cache, else _literals()
        self.exact: list[int] = []  # compiled as they are
        self.approx: list[int] = []  # compiled in prefilter mode (a superset)
        self.python: list[int] = []  # not in the database
        self.db = None  # the regexes Hyperscan compiles that have no required literal
        self.lit_db = None  # the minimal literals of every regex that has some (caseless)
        self.lit_owners: list[tuple[int, ...]] = []  # literal id -> the regexes it may find
        if _hs is None:
            self.python = list(range(len(self.regexes)))
            self.literals = self._literals()
            return
        if not self._load():
            self.literals = self._literals()
            self._compile()
            self._save()

    def _literals(self) -> list[tuple[bytes, ...] | None]:
        from wizard.probes.logscan import required_literals  # logscan imports this module

        out: list[tuple[bytes, ...] | None] = []
        for rx in self.regexes:
            need = required_literals(rx)
            out.append(None if need is None else tuple(sorted({x.lower().encode() for x in need})))
        return out

    def _search(self, i: int, text: str) -> bool:
        rx = self._py[i]
        if rx is None:
            rx = self._py[i] = re.compile(self.regexes[i], re.I)
        return rx.search(text) is not None

    def _compile(self) -> None:
        flags = _hs.HS_FLAG_CASELESS | _hs.HS_FLAG_MULTILINE
        chosen: list[tuple[int, int]] = []
        for i, rx in enumerate(self.regexes):
            if _PY_ONLY.search(rx) or not rx.isascii():
                self.python.append(i)
                continue
            for extra, bucket in ((0, self.exact), (_hs.HS_FLAG_PREFILTER, self.approx)):
                if _compiles(rx, flags | extra):
                    bucket.append(i)
                    chosen.append((i, flags | extra))
                    break
            else:
                self.python.append(i)
        # Regexes with a required literal are found by the literal database (a single
        # caseless literal scans ~3x faster than the regex set); only the rest need theirs.
        chosen = [(i, f) for i, f in chosen if self.literals[i] is None]
        if chosen:
            db = _hs.Database()
            db.compile(expressions=[self.regexes[i].encode() for i, _ in chosen],
                       ids=[i for i, _ in chosen], elements=len(chosen), flags=[f for _, f in chosen])
            self.db = db
            self.scratch = _hs.Scratch(db)
        self._compile_literals()

    def _compile_literals(self) -> None:
        from wizard.probes.logscan import minimal_literals

        with_lits = [i for i, lits in enumerate(self.literals) if lits is not None]
        every = {lit.decode() for i in with_lits for lit in self.literals[i]}  # type: ignore[union-attr]
        mins = [m.encode() for m in minimal_literals(every)]
        # A line holding one of a regex's literals holds a minimal literal inside it.
        self.lit_owners = [tuple(i for i in with_lits if any(m in lit for lit in self.literals[i]))  # type: ignore[union-attr]
                           for m in mins]
        if mins:
            db = _hs.Database()
            db.compile(expressions=[_hs_literal(m) for m in mins], ids=list(range(len(mins))),
                       elements=len(mins), flags=[_hs.HS_FLAG_CASELESS] * len(mins))
            self.lit_db = db
            self.lit_scratch = _hs.Scratch(db)

    # Compiling 42 signatures costs ~0.2 s, more than a window's search: the database is kept
    # on disk, keyed by the patterns and the engine's version (a bad or stale file is ignored).
    def _cache_path(self) -> str:
        key = hashlib.sha256(json.dumps([_hs.__version__ if hasattr(_hs, "__version__") else "",
                                         CACHE_FORMAT, self.regexes]).encode()).hexdigest()[:24]
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "reset-wizard", f"hs-{key}.db")

    def _load(self) -> bool:
        try:
            with open(self._cache_path(), "rb") as fh:
                head, _, blob = fh.read().partition(b"\n")
            meta = json.loads(head)
            self.exact, self.approx, self.python = meta["exact"], meta["approx"], meta["python"]
            self.lit_owners = [tuple(o) for o in meta["lit_owners"]]
            self.literals = [None if x is None else tuple(bytes.fromhex(h) for h in x)
                             for x in meta["literals"]]
            if len(self.literals) != len(self.regexes):
                raise ValueError("stale cache")
            n_db, n_lit = meta["sizes"]
            if len(blob) != n_db + n_lit:
                raise ValueError("truncated cache")
            if n_db:
                self.db = _hs.loadb(blob[:n_db], _hs.HS_MODE_BLOCK)
                self.scratch = _hs.Scratch(self.db)
            if n_lit:
                self.lit_db = _hs.loadb(blob[n_db:], _hs.HS_MODE_BLOCK)
                self.lit_scratch = _hs.Scratch(self.lit_db)
            return True
        except (OSError, ValueError, KeyError, TypeError, _hs.error):
            self.exact, self.approx, self.python, self.db = [], [], [], None
            self.lit_db, self.lit_owners, self.literals = None, [], []
            return False

    def _save(self) -> None:
        path = self._cache_path()
        try:
            blob_db = _hs.dumpb(self.db) if self.db is not None else b""
            blob_lit = _hs.dumpb(self.lit_db) if self.lit_db is not None else b""
            meta = json.dumps({"exact": self.exact, "approx": self.approx, "python": self.python,
                               "lit_owners": self.lit_owners,
                               "literals": [None if x is None else [b.hex() for b in x]
                                            for x in self.literals],
                               "sizes": [len(blob_db), len(blob_lit)]}).encode()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "wb") as fh:
                fh.write(meta + b"\n" + blob_db + blob_lit)
            os.replace(tmp, path)
        except (OSError, _hs.error):
            pass

    @property
    def in_db(self) -> list[int]:
        return sorted(self.exact + self.approx)

    def lines(self, data: bytes, limit: int | None = None) -> list[LineHit]:
        """The lines of ``data`` (whole lines; a last line without "\\n" counts) that match,
        in order, with the regexes each matches; lines starting at or after ``limit`` are
        left out (a partial line at the end of a chunk, read again with the next one)."""
        limit = len(data) if limit is None else limit
        cand: dict[int, set[int]] = {}
        if self.db is not None:
            ends: list[tuple[int, int]] = []

            def on_match(sid: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                ends.append((to, sid))

            # A scratch of its own: calls may run at once in worker threads.
            self.db.scan(data, match_event_handler=on_match, scratch=self.scratch.clone())
            for to, sid in ends:
                s = data.rfind(b"\n", 0, max(0, to - 1)) + 1
                if s < limit:
                    cand.setdefault(s, set()).add(sid)
        if self.lit_db is not None:
            self._literal_candidates(data, limit, cand)
        if self.db is not None or self.lit_db is not None:
            if not data.isascii():
                in_db = self.in_db
                for s, e in _high_lines(data, limit):
                    self._by_literals(data[s:e].lower(), in_db, cand, s)
        if self.python:
            self._python_candidates(data, limit, cand)
        out: list[LineHit] = []
        for s in sorted(cand):
            e = data.find(b"\n", s)
            e = len(data) if e < 0 else e
            text = data[s:e].rstrip(b"\r").decode("utf-8", "replace")
            ids = tuple(i for i in sorted(cand[s]) if self._search(i, text))
            if ids:
                out.append(LineHit(s, e, ids))
        return out

    def _literal_candidates(self, data: bytes, limit: int, cand: dict[int, set[int]]) -> None:
        """Lines holding a minimal literal, with the regexes that literal may find: one
        caseless pass; a line's later hits are skipped without leaving the engine's loop."""
        hits: list[tuple[int, int]] = []

        def on_lit(lid: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            hits.append((to, lid))

        self.lit_db.scan(data, match_event_handler=on_lit,  # type: ignore[union-attr]
                         scratch=self.lit_scratch.clone())
        owners = self.lit_owners
        for to, lid in hits:
            s = data.rfind(b"\n", 0, max(0, to - 1)) + 1
            if s < limit:
                cand.setdefault(s, set()).update(owners[lid])

    def _by_literals(self, low: bytes, ids: Sequence[int], cand: dict[int, set[int]], s: int) -> None:
        for i in ids:
            lits = self.literals[i]
            if lits is None or any(lit in low for lit in lits):
                cand.setdefault(s, set()).add(i)

    def _python_candidates(self, data: bytes, limit: int, cand: dict[int, set[int]]) -> None:
        """Candidates for the regexes outside the database: lines holding one of their
        literals, or every line for a regex without one (checked by re)."""
        from wizard.probes.logscan import literal_line_starts  # logscan imports this module

        low = b""
        for i in self.python:
            lits = self.literals[i]
            if lits is not None and self.lit_db is not None:
                continue  # found by the literal database
            if lits is None:
                for s, _e in _all_lines(data, limit):
                    cand.setdefault(s, set()).add(i)
                continue
            low = low or data.lower()
            for s in literal_line_starts(low, lits):
                if s < limit:
                    cand.setdefault(s, set()).add(i)


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
