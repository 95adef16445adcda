"""The exact line form of the signatures for Hyperscan (no ``re`` for them) and the counting
path: on generated dense and hostile text, the lines and counts found equal a plain
``re.search(rx, line, re.I)`` loop over the lines, for every checklist signature."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wizard.diag.logs.io import hsline, hsmatch
from wizard.diag.logs.io import scan as logscan
from wizard.diag.logs.io.scan import scan_file
from wizard.engine.discovery import checklist_path
from wizard.hosts.local import LocalHost
from wizard.model import load_checklist

pytestmark = pytest.mark.skipif(not hsmatch.AVAILABLE, reason="hyperscan is not installed")

REGEXES = [s.regex for s in load_checklist(checklist_path()).signatures]


def _fragments() -> list[str]:
    """Pieces of text near the signatures: their literals, their alternatives' words, and
    the characters where the engines could read a line differently."""
    words = set()
    for rx in REGEXES:
        words |= {w for w in re.split(r"[\\()\[\]|?*+{}^$.]+", rx) if 2 <= len(w) <= 40}
    odd = ["\t", "\x0b", "\x0c", "\x1c", "\x1f", "\r", " \r", "é", "İ", "ı", "ſ", "K", "\u00a0",
           "\u0661", "(", ")", "[", "]", "/", "-", "->", ":", "'", '"', "104", "54", "10054", "1/2/3/4/5",
           " 408 ", " 499 ", " 502 12 ", "_", "=", " ", "  ", "\\x16\\x03"]
    return sorted(words) + odd


FRAGS = _fragments()
LINE = st.lists(st.one_of(st.sampled_from(FRAGS), st.text(st.characters(max_codepoint=0x7f), max_size=6)),
                max_size=12).map("".join)


def _case(text: str, flips: int) -> str:
    return "".join(c.upper() if (flips >> (k % 16)) & 1 else c for k, c in enumerate(text))


def reference(data: bytes) -> list[tuple[int, tuple[int, ...]]]:
    out, pos = [], 0
    for raw in data.split(b"\n"):
        text = raw.rstrip(b"\r").decode("utf-8", "replace")
        ids = tuple(i for i, rx in enumerate(REGEXES) if re.search(rx, text, re.I))
        if ids:
            out.append((pos, ids))
        pos += len(raw) + 1
    return out


def _check(data: bytes) -> None:
    m = hsmatch.matcher(REGEXES)
    assert m is not None
    want = reference(data)
    assert [(h.start, h.ids) for h in m.lines(data)] == want
    got = m.count(data)
    assert got.counts == dict(Counter(i for _, ids in want for i in ids))
    assert got.lines == len(want)


def test_most_signatures_are_decided_by_hyperscan_alone() -> None:
    m = hsmatch.matcher(REGEXES)
    assert m is not None
    # lookaround and "$" are all that is left to re in the checklist
    left = [REGEXES[i] for i in m.approx + m.python]
    assert all("(?!" in rx or "$" in rx for rx in left) and len(m.exact) >= len(REGEXES) - 3


# Text each signature matches (as hypothesis reads the regex, \s and classes may give a
# newline, a non-ASCII space or digit), then twisted: characters re.I folds to ASCII letters,
# spaces swapped for other whitespace, a "\r" put inside.
MATCHING = st.one_of(*[st.from_regex(re.compile(rx, re.I), alphabet=st.characters(max_codepoint=0x7f))
                       for rx in REGEXES], *[st.from_regex(re.compile(rx, re.I)) for rx in REGEXES])
FOLDS = {"k": "\u212a", "s": "\u017f", "i": "\u0131", "I": "\u0130"}
SPACES = ["\x1c", "\x1d", "\x1e", "\x1f", "\r", "\x0b", "\x0c", "\t", "\xa0"]


def _twist(text: str, how: int) -> str:
    if how % 4 == 0:
        return text
    if how % 4 == 1:  # one letter swapped for what re.I folds to it, throughout
        old, new = list(FOLDS.items())[how % len(FOLDS)]
        return text.replace(old, new)
    if how % 4 == 2:  # the spaces (the n-th, or all) swapped for other whitespace
        new = SPACES[how % len(SPACES)]
        n = (how >> 4) % 4
        return text.replace(" ", new) if n == 0 else text.replace(" ", new, n)
    k = (how >> 2) % (len(text) + 1)
    return text[:k] + "\r" + text[k:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(MATCHING, LINE), st.integers(0, 1 << 16), st.integers(0, 1 << 16),
                          st.sampled_from(["\n", "\r\n", "\r\r\n"])), min_size=1, max_size=30),
       st.booleans())
def test_hostile_lines_match_as_python_re_reads_them(lines: list[tuple[str, int, int, str]],
                                                     last_nl: bool) -> None:
    text = "".join(_twist(_case(t, flips), how) + end for t, flips, how, end in lines)
    _check((text if last_nl else text.rstrip("\r\n")).encode("utf-8", "surrogatepass"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.sampled_from([2, 4]))
def test_dense_nginx_and_haproxy_lines_match_as_python_re_reads_them(seed: int, every: int) -> None:
    import random

    rnd = random.Random(seed)
    hits = ["upstream timed out (110: Connection timed out) while reading response header from upstream",
            "recv() failed (104: Connection reset by peer) while reading response header from upstream",
            "fe be/s1 0/0/1/-1/2 502 0 - - SD-- 1/1/0/0/0 0/0 ", '"GET / HTTP/1.1" 499 0 "-" "-"',
            "unexpected EOF while reading", "unexpected EOF", "Node.js v20.1.0", "Node.js v20.1.0\r"]
    calm = ["client 127.0.0.1 closed keepalive connection", "signal process started",
            'open() "/srv/www/favicon.ico" failed (2: No such file or directory)', "fe be/s1 0/0/1 200 "]
    rows = [f"2026/11/21 12:00:{k % 60:02d} [error] 4100#0: *{k} "
            + (rnd.choice(hits) if k % every == 0 else rnd.choice(calm)) for k in range(400)]
    _check(("\n".join(rows) + "\n").encode())


def test_a_match_never_crosses_a_line() -> None:
    # \s and [^)] could take the newline: "timed\nout" is no line's match
    m = hsmatch.matcher([r"timed\s+out", r"\(([^)]+)\)x"])
    assert m is not None and m.exact == [0, 1]
    data = b"timed\nout\n(a\nb)x\ntimed \t out\n(ab)x\r\n"
    assert [(h.start, h.ids) for h in m.lines(data)] == [(data.index(b"timed "), (0,)), (data.index(b"(ab)"), (1,))]


def test_what_has_no_exact_line_form_is_said() -> None:
    assert hsline.line_regex(r"EOF\b(?! while)") is None
    assert hsline.line_regex(r"closed$") is None
    assert hsline.line_regex(r"(\w+) again \1") is None
    assert hsline.line_regex(r"caf\u00e9") is None
    assert hsline.line_regex(r"a\sb").endswith(hsline.SUFFIX)  # type: ignore[union-attr]


def test_count_leaves_out_the_partial_line_at_a_chunk_end() -> None:
    m = hsmatch.matcher([r"reset by peer"])
    assert m is not None
    data = b"a reset by peer\nb reset by peer"
    assert m.count(data, limit=16).lines == 1
    assert m.count(data).lines == 2 and m.count(data).counts == {0: 2}


async def test_scan_counts_past_the_kept_lines_as_a_brute_force_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # few lines kept, small slices and chunks: the scan switches from making lines to
    # counting reports inside a chunk, and across chunk edges
    monkeypatch.setattr(logscan, "MAX_SCAN_LINES", 40)
    monkeypatch.setattr(logscan, "HS_CHUNK", 48 << 10)
    monkeypatch.setattr(hsmatch, "SLICE", 4 << 10)
    rows = [f"2026/11/21 12:00:{k % 60:02d} [error] *{k} " + (
        "upstream timed out (110: Connection timed out)" if k % 3 == 0 else
        "recv() failed (104: Connection reset by peer) é" if k % 7 == 0 else
        "unexpected EOF" if k % 11 == 0 else "client closed keepalive connection") for k in range(6000)]
    data = ("\n".join(rows) + "\n").encode()
    path = tmp_path / "dense.log"
    path.write_bytes(data)
    sigs = [(s.id, s.regex) for s in load_checklist(checklist_path()).signatures]
    res = await scan_file(LocalHost(), str(path), sigs)
    want = reference(data)
    assert res.counts == {sigs[i][0]: n for i, n in Counter(i for _, ids in want for i in ids).items()}
    assert res.candidates == len(want) and len(res.lines) == 40
    assert [n for n, _, _ in res.lines] == [data.count(b"\n", 0, s) + 1 for s, _ in want[:40]]


TAILED = [(rx, hsline.tail_regex(rx)) for rx in REGEXES if hsline.tail_regex(rx) is not None]


def test_a_signature_without_a_literal_at_its_start_gets_a_tail_that_starts_with_one() -> None:
    # haproxy-termination starts with \s and classes: its tail is from the first "/" on
    by_rx = dict(TAILED)
    term = next(s.regex for s in load_checklist(checklist_path()).signatures if s.id == "haproxy-termination")
    assert by_rx[term].startswith(r"\x2f")
    for rx, tail in TAILED:
        assert re.match(r"\\x[0-9a-f]{2}|[0-9A-Za-z]", tail), (rx, tail)  # a literal first
    # one that starts with a literal, or has none at its top level, has no tail
    assert hsline.tail_regex(r'"\s408\s(?:\d+|-)\s') is None
    assert hsline.tail_regex(r"(\d+|x)\s+(a|b)") is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(LINE, min_size=1, max_size=8), st.integers(0, 1 << 16))
def test_every_line_a_signature_matches_holds_its_tail(parts: list[str], flips: int) -> None:
    # the tail is looked for first and a block without it is not scanned: it must be in
    # every line the whole signature matches (re reads the tail's Hyperscan spelling as is)
    text = _case(" ".join(parts), flips)
    for rx, tail in TAILED:
        if re.search(rx, text, re.I):
            assert re.search(tail, text, re.I), (rx, text)


@pytest.mark.parametrize("text", ["x fe be/web1 0/0/1/2/3 502 0 - - SD-- 12/12/3/1/0 0/0 y",
                                  "a -b  1/2/3/4/+5 b", "\tcD\t0/0/0/0/0\x0b"])
def test_a_planted_termination_holds_the_tail(text: str) -> None:
    term = next(s.regex for s in load_checklist(checklist_path()).signatures if s.id == "haproxy-termination")
    assert re.search(term, text, re.I)
    assert re.search(dict(TAILED)[term], text, re.I)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=100, max_size=300, unique=True),
       st.dictionaries(st.integers(1, 11), st.lists(st.integers(0, 400), max_size=300, unique=True), max_size=4),
       st.sets(st.integers(0, 400), max_size=6))
def test_the_regexes_of_each_line_end_are_those_that_reported_it(dense: list[int], others: dict[int, list[int]],
                                                                skip: set[int]) -> None:
    # one dense regex (0) with a few others put in its places, or several dense ones: the
    # distinct ends ascending, each with the regexes (ascending) that reported it
    ends = {i: sorted(x) for i, x in {0: dense, **others}.items() if x}
    want: dict[int, list[int]] = {}
    for i, x in sorted(ends.items()):
        for e in x:
            want.setdefault(e, []).append(i)
    rel, ids = hsline._ids_by_end({i: list(x) for i, x in ends.items()}, set(skip))
    assert rel == sorted(set(want) - skip)
    assert ids == [tuple(want[e]) for e in rel]
