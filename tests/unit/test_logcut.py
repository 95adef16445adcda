"""The window excerpt's candidate search: grep's one-pass search finds exactly the lines the
Python search finds (literals in any case, literal-less regexes), and falls back without grep."""

from __future__ import annotations

import random

import pytest

from wizard.diag.logs.io import cut as logcut
from wizard.diag.logs.io.cut import Selector

SIGS = [r"connection reset by peer", r"Traceback \(most recent call last\)", r"\berrno[ =:]+(104|54)\b",
        r"\s(S[DHC])[A-Za-z-]{2}\s+\d+/\d+/\d+/\d+/\+?\d+\s"]  # the last has no literal


def window_bytes(lines: int = 30_000, seed: int = 3) -> bytes:
    rnd = random.Random(seed)
    out = []
    for i in range(lines):
        r = rnd.random()
        if r < 0.003:
            word = "".join(c.upper() if rnd.random() < 0.5 else c for c in "connection reset by peer")
            out.append(f"2026/11/22 03:48:{i % 60:02d} [error] *{i} recv() failed (104: {word})")
        elif r < 0.005:
            out.append(f"2026/11/22 03:48:{i % 60:02d} fe be/s1 0/0/1/-1/2 502 0 - - sD-- 1/1/0/0/0 0/0 ")
        elif r < 0.006:
            out.append("Traceback (most recent call last):\r")
        elif r < 0.007:
            out.append(f"worker ERRNO=104 at {i}")
        else:
            out.append(f"2026/11/22 03:48:{i % 60:02d} [info] *{i} client 127.0.0.1 closed keepalive")
    return ("\n".join(out) + "\n").encode()


async def test_grep_search_finds_the_same_lines_as_the_python_search() -> None:
    data = window_bytes()
    sel = Selector.of(SIGS)
    want = sel.candidate_starts(data)
    assert len(want) > 100 and sel.unfiltered
    assert await sel.fast_starts(data) == want
    # Every candidate is a line start and every matching line is among them.
    lines, off = [], 0
    for raw in data.split(b"\n")[:-1]:
        lines.append((off, raw.decode()))
        off += len(raw) + 1
    matching = [o for o, t in lines if sel.matches(t)]
    assert set(matching) <= set(want)


async def test_without_grep_the_python_search_gives_the_same_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    data = window_bytes(seed=9)
    sel = Selector.of(SIGS)
    calls: list[list[str]] = []

    async def no_grep(data: bytes, mode: list[str], patterns: list[str]) -> list[int] | None:
        calls.append(mode)
        return None

    monkeypatch.setattr(logcut, "_grep_starts", no_grep)
    assert await sel.fast_starts(data) == sel.candidate_starts(data)
    assert ["-F", "-o"] in calls and ["-P"] in calls
