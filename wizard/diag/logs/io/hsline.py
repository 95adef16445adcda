"""Python signature regexes rewritten for Hyperscan so that its answer on a line is exactly
``re.search(rx, line, re.I)``'s (pure).

The rewrite is made from ``re``'s own parse of the regex, so both engines read the same
structure. No construct of the result can match a ``"\\n"`` or a ``"\\r"`` (classes, ``.``,
``\\s``, ``\\S``, ``\\W`` and negated classes leave both out), so every match lies inside one
line; ``\\s``, ``\\d``, ``\\w`` and ``\\b`` are spelled as ``re`` reads them on ASCII text
(``\\s`` includes ``\\x1c``-``\\x1f``, which Hyperscan's does not). ``re`` sees a line with its
trailing ``"\\r"`` run stripped, and a line holding no other ``"\\r"`` then looks the same to
both engines: the callers hand the lines with a non-ASCII byte or a ``"\\r"`` inside to
``re`` (``special_lines``).

Each rewritten regex ends in ``[^\\n]*$`` (multi-line mode): Hyperscan reports a match at
the end of its line only, so one report per matching line and regex, and its end offset
names the line. A regex whose syntax has no exact rewrite here (lookaround, back
references, inline flags, non-ASCII literals) gets None and stays with ``re``.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import re
from collections.abc import Iterator
from itertools import chain, repeat
from typing import Any, NamedTuple

_c: Any = importlib.import_module("re._constants")
_p: Any = importlib.import_module("re._parser")

# What re's \s, \d, \w read on ASCII text, less "\n" and "\r" (no match crosses a line).
_SPACE = r"\x09\x0b\x0c\x1c-\x1f\x20"
_WORD = r"0-9A-Za-z_"
_CATEGORY = {"CATEGORY_DIGIT": (r"0-9", False), "CATEGORY_NOT_DIGIT": (r"0-9", True),
             "CATEGORY_SPACE": (_SPACE, False), "CATEGORY_NOT_SPACE": (_SPACE, True),
             "CATEGORY_WORD": (_WORD, False), "CATEGORY_NOT_WORD": (_WORD, True)}
# ("$" would need the match to end at its line's end: left to re, as Hyperscan cannot
# follow it with the suffix)
_AT = {"AT_BEGINNING": "^", "AT_BEGINNING_STRING": "^", "AT_BOUNDARY": r"\b", "AT_NON_BOUNDARY": r"\B"}
_NOT_IN_LINE = r"\x0a\x0d"
SUFFIX = r"[^\n]*$"
# A line whose "\r" is not in the run before its "\n" (re sees that one), or with a byte
# >= 0x80 (re decodes it: \w, \s, case folding differ).
SPECIAL = re.compile(rb"[\x80-\xff]|\r+[^\r\n]")


class LineHit(NamedTuple):  # a tuple: a dense log makes millions of them
    start: int  # offset of the line in the buffer
    end: int  # offset of its "\n" (or the buffer's end)
    ids: tuple[int, ...]  # indices of the matching regexes, ascending
    clipped: bool = False  # a long line Python's re saw only the head and tail of


class LineCounts(NamedTuple):
    counts: dict[int, int]  # regex index -> lines it matches
    lines: int  # lines any regex matches
    clipped: bool  # some line Python's re saw only the head and tail of


class Piece(NamedTuple):  # a slice of the buffer searched, and the line database's reports in it
    a: int
    b: int
    last: int  # the last line end of the slice that is not past the limit
    clean: bool  # no special line in the whole buffer
    ends: dict[int, list[int]]  # regex -> ends of the lines it matches, ascending, relative to a
    lits: list[tuple[int, int]]  # (literal, end of the literal)


class Decided(NamedTuple):  # the lines re had a say in, by their end offset
    start: int
    ids: frozenset[int]
    clipped: bool


class _Untranslatable(Exception):
    pass


def _char(c: int) -> str:
    if c >= 0x80:
        raise _Untranslatable
    return chr(c) if chr(c).isalnum() else f"\\x{c:02x}"


def _class_items(items: list[tuple[Any, Any]]) -> tuple[str, bool]:
    """The inside of a character class and whether it is negated."""
    out, negate = [], False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            out.append(_char(av))
        elif name == "RANGE":
            lo, hi = av
            if hi >= 0x80:
                raise _Untranslatable
            out.append(f"{_char(lo)}-{_char(hi)}")
        elif name == "CATEGORY" and str(av) in _CATEGORY:
            inner, neg = _CATEGORY[str(av)]
            if neg:  # a negated category inside a class: no exact ASCII spelling kept simple
                raise _Untranslatable
            out.append(inner)
        else:
            raise _Untranslatable
    return "".join(out), negate


def _cls(inner: str, negate: bool) -> str:
    return f"[^{inner}{_NOT_IN_LINE}]" if negate else f"[{inner}]"


def _emit(items: Any) -> str:
    out = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            out.append(_char(av))
        elif name == "NOT_LITERAL":
            out.append(_cls(_char(av), True))
        elif name == "ANY":
            out.append(f"[^{_NOT_IN_LINE}]")
        elif name == "IN":
            if len(av) == 1 and str(av[0][0]) == "CATEGORY" and str(av[0][1]) in _CATEGORY:
                out.append(_cls(*_CATEGORY[str(av[0][1])]))
            else:
                out.append(_cls(*_class_items(av)))
        elif name == "AT" and str(av) in _AT:
            out.append(_AT[str(av)])
        elif name == "BRANCH":
            out.append("(?:" + "|".join(_emit(alt) for alt in av[1]) + ")")
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise _Untranslatable
            out.append("(?:" + _emit(sub) + ")")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):  # laziness does not change whether a line matches
            lo, hi, sub = av
            top = "" if hi == _c.MAXREPEAT else str(hi)
            out.append("(?:" + _emit(sub) + ")" + (f"{{{lo},{top}}}" if (lo, top) != (0, "") else "*"))
        else:
            raise _Untranslatable
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def line_regex(rx: str) -> str | None:
    """``rx`` as a Hyperscan expression (caseless, multi-line) reporting once at the end of
    each line ``re.search(rx, line, re.I)`` matches; None when there is no exact rewrite."""
    try:
        parsed = _p.parse(rx)
        if parsed.state.flags & ~(_c.SRE_FLAG_UNICODE):
            return None  # (?x), (?s), ... at the top
        return "(?:" + _emit(parsed) + ")" + SUFFIX
    except (_Untranslatable, re.error, RecursionError, ValueError, TypeError):
        return None


@functools.lru_cache(maxsize=1024)
def tail_regex(rx: str) -> str | None:
    """A necessary part of ``rx`` for Hyperscan to look for first: the Hyperscan form of
    the items of its top-level sequence from the first literal character on, when items
    without a literal come before it (a class such as ``\\s`` or ``\\d+`` at the start makes
    Hyperscan run an automaton over every byte; a literal lets it skip). A line ``rx``
    matches in holds a match of every tail of ``rx``'s sequence (the end of ``rx``'s match),
    so a piece of text without a match of the tail holds no line ``rx`` matches. None: no
    such tail (``rx`` starts with a literal, has none at its top level, or no exact form)."""
    if line_regex(rx) is None:
        return None
    try:
        items = list(_p.parse(rx))
        first = next((k for k, (op, _av) in enumerate(items) if str(op) == "LITERAL"), None)
        if not first:  # None (no literal at the top level) or 0 (it starts with one)
            return None
        return _emit(items[first:])
    except (_Untranslatable, re.error, RecursionError, ValueError, TypeError):
        return None


def is_clean(data: bytes | bytearray) -> bool:
    """Whether ``data`` has no line only ``re`` decides (all ASCII, no "\\r")."""
    return data.isascii() and data.find(b"\r") < 0


def special_lines(data: bytes | bytearray, limit: int) -> list[tuple[int, int]]:
    """(start, end) of the lines of ``data[:limit]`` only ``re`` decides (see SPECIAL)."""
    out: list[tuple[int, int]] = []
    if is_clean(data):
        return out  # the usual case, in two passes at memory speed
    pos = 0
    while True:
        m = SPECIAL.search(data, pos)
        if m is None:
            return out
        s = data.rfind(b"\n", 0, m.start()) + 1
        if s >= limit:
            return out
        e = data.find(b"\n", m.start())
        e = len(data) if e < 0 else e
        out.append((s, e))
        pos = e + 1


def line_starts(data: bytes | bytearray, a: int, b: int) -> list[int]:
    """Offsets of the lines of data[a:b] (``a`` a line's start)."""
    out = []
    s = a
    while s < b:
        out.append(s)
        e = data.find(b"\n", s)
        s = b if e < 0 else e + 1
    return out


def by_regex(line: list[list[int]], nfa: list[list[int]], last: int) -> dict[int, list[int]]:
    """The line ends (ascending, relative to the slice) each regex reported, from the two
    line databases (each regex is in one of them), those past ``last`` left out."""
    out: dict[int, list[int]] = {}
    for i in range(max(len(line), len(nfa))):
        ends = (line[i] if i < len(line) else []) or (nfa[i] if i < len(nfa) else [])
        if ends:
            if ends[-1] > last:
                del ends[bisect.bisect_right(ends, last):]
            if ends:
                out[i] = ends
    return out


def has(ends: list[int], e: int) -> bool:
    """Whether the ascending ``ends`` hold ``e``."""
    k = bisect.bisect_left(ends, e)
    return k < len(ends) and ends[k] == e


def _lines(ends: dict[int, list[int]], skip: set[int]) -> int:
    """How many distinct line ends ``ends`` name, less those in ``skip``."""
    if not ends:
        return 0
    big = max(ends, key=lambda i: len(ends[i]))
    others = sorted(set(chain.from_iterable(x for i, x in ends.items() if i != big)))
    if len(others) * 16 > len(ends[big]):  # another dense regex: sets are cheaper than searches
        return len(set(chain.from_iterable(ends.values())).difference(skip))
    within = ends[big]
    n = len(within) - sum(has(within, e) for e in skip)
    return n + sum(1 for e in others if e not in skip and not has(within, e))


def tally(ends: dict[int, list[int]], skip: set[int]) -> tuple[dict[int, int], int]:
    """The lines each regex reported and the lines any did (relative ends), those in
    ``skip`` left out: lengths of the lists, no line visited."""
    counts = {}
    for i, x in ends.items():
        n = len(x) - (sum(has(x, e) for e in skip) if skip else 0)
        if n:
            counts[i] = n
    return counts, _lines(ends, skip)


def hits(data: bytes | bytearray, a: int, ends: dict[int, list[int]], skip: set[int]) -> list[LineHit]:
    """The hits of the lines the line databases decided (relative ends; those in ``skip``
    left out), in order: made in bulk (a dense window has tens of thousands)."""
    ids: Iterator[tuple[int, ...]]
    if len(ends) == 1:
        ((sid, only),) = ends.items()
        rel, ids = (only if not skip else [e for e in only if e not in skip]), repeat((sid,))
    else:
        rel, listed = _ids_by_end(ends, skip)
        ids = iter(listed)
    at = [e + a for e in rel]
    rfind = data.rfind
    starts = [rfind(b"\n", 0, e) + 1 for e in at]
    return list(map(tuple.__new__, repeat(LineHit), zip(starts, at, ids, repeat(False))))


def hit_columns(data: bytes | bytearray, a: int, ends: dict[int, list[int]],
                skip: set[int]) -> tuple[list[int], list[tuple[int, ...]]]:
    """What ``hits`` finds as two lists, the lines' starts and their regexes: no tuple made
    per line (a dense window's are counted and timed, a few quoted)."""
    ids: list[tuple[int, ...]]
    if len(ends) == 1:
        ((sid, only),) = ends.items()
        rel = only if not skip else [e for e in only if e not in skip]
        ids = [(sid,)] * len(rel)
    else:
        rel, ids = _ids_by_end(ends, skip)
    rfind = data.rfind
    return [rfind(b"\n", 0, e + a) + 1 for e in rel], ids


def with_decided(starts: list[int], ids: list[tuple[int, ...]],
                 decided: dict[int, Decided]) -> tuple[list[int], list[tuple[int, ...]], bool]:
    """``hit_columns``'s lists with the matching lines ``re`` decided put in their places,
    and whether one of those was clipped."""
    mine = [d for d in decided.values() if d.ids]
    rows = sorted([*zip(starts, ids, strict=True), *((d.start, tuple(sorted(d.ids))) for d in mine)])
    return [r[0] for r in rows], [r[1] for r in rows], any(d.clipped for d in mine)


def _ids_by_end(ends: dict[int, list[int]], skip: set[int]) -> tuple[list[int], list[tuple[int, ...]]]:
    """The distinct ends (ascending) and the regexes (ascending) reported at each: the
    regex with the most reports kept as a list, the others looked up by their few ends."""
    if not ends:
        return [], []
    big = max(ends, key=lambda i: len(ends[i]))
    minor: dict[int, list[int]] = {}
    for i in sorted(ends):
        for e in ends[i] if i != big else ():
            minor.setdefault(e, []).append(i)
    solo: tuple[int, ...] = (big,)
    if len(minor) * 16 <= len(ends[big]):  # a few others: put in the big list's places
        big_ends = ends[big]
        more = {e for e in minor if not has(big_ends, e)}
        rel = sorted(big_ends + sorted(more)) if more else list(big_ends)  # (two sorted runs: a merge)
        ids = [solo] * len(rel)
        for e, v in minor.items():
            ids[bisect.bisect_left(rel, e)] = tuple(v) if e in more else tuple(sorted([*v, big]))
        if skip:
            kept = [k for k, e in enumerate(rel) if e not in skip]
            rel, ids = [rel[k] for k in kept], [ids[k] for k in kept]
        return rel, ids
    within = set(ends[big])
    named = {e: tuple(sorted([*v, big])) if e in within else tuple(v) for e, v in minor.items()}
    rel = sorted(within.union(minor).difference(skip))
    return rel, [named.get(e, solo) for e in rel]


__all__ = [
    "SPECIAL",
    "SUFFIX",
    "Decided",
    "LineCounts",
    "LineHit",
    "Piece",
    "by_regex",
    "has",
    "hit_columns",
    "hits",
    "is_clean",
    "line_regex",
    "line_starts",
    "special_lines",
    "tail_regex",
    "tally",
    "with_decided",
]
