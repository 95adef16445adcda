"""The fast excerpt (bisect cut, Hyperscan or grep/Python, ``keep``) against a straightforward
reference: the file split into lines, the window's edges found by parsing every line's
stamp, every window line searched with plain ``re`` for every signature, the first ``keep``
matches kept with their context and the later ones timed. One line, time, number, signature
or count that differs fails the test, on dense and on hostile windows."""

from __future__ import annotations

import asyncio
import functools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wizard.diag.logs.io import hsmatch
from wizard.diag.logs.io.excerpt import excerpt_window
from wizard.diag.logs.io.reader import COUNT_PREFIX, LogReader
from wizard.diag.logs.parse.timestamps import format_named
from wizard.engine.discovery import load
from wizard.hosts.local import LocalHost

REGEXES = [s.regex for s in load().signatures]
START = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
T0, T1 = (START + timedelta(minutes=20)).timestamp(), (START + timedelta(minutes=30)).timestamp()
RX = [re.compile(rx, re.I) for rx in REGEXES]

BODIES = [
    "upstream timed out (110: Connection timed out) while reading response header from upstream",
    "recv() failed (104: Connection reset by peer) while reading response header from upstream",
    "client 127.0.0.1 closed keepalive connection",
    'request: "GET /api/items/1 HTTP/1.1", upstream: "http://127.0.0.1:8081/api/items/1"',
    "an errno was mentioned but no signature",  # a literal of a signature, no match
]
HOSTILE = [
    "caf\u00e9 upstream timed out, r\u00e9sum\u00e9",  # non-ASCII: re decides
    "broken pipe\r in the middle\r",  # a "\r" inside and at the end
    "\u212a\u212a connection reset by peer",  # Kelvin sign: re.I folds it to k
    "EPIPE? no: ePiPe and \u0130stanbul",
    "x" * 3000 + " connection reset by peer",  # long, under the clipping length
    " fe-https~ be-api/web3 0/0/1/2/3 502 0 - - SD-- 1/1/3/1/0 0/0 \"GET / HTTP/1.1\"",
    "\" 499 - \" after a quote",
    "Traceback (most recent call last):",
]


def _rows(k: int, hostile: bool, every: int, step: float) -> list[str]:
    t = (START + timedelta(seconds=k * step)).strftime("%Y/%m/%d %H:%M:%S")
    body = BODIES[0] if every and k % every == 0 else BODIES[k % len(BODIES)]
    rows = [f"{t} [error] 4100#0: *{k} {body}"]
    if hostile and k % 7 == 0:
        rows.append(f"{t} [warn] 4100#0: *{k} {HOSTILE[k // 7 % len(HOSTILE)]}")
    if hostile and k % 23 == 0:
        rows.append("    continued: upstream timed out again")  # unstamped: its owner's time
    if hostile and k % 31 == 0:
        rows.append("\t\xff\xfe invalid utf-8 then connection reset by peer")  # bytes, not text
    return rows


def _write(path: Path, hostile: bool, every: int, crlf: bool, lines: int) -> None:
    step = 3600 / lines  # an hour of lines
    rows = [r for k in range(lines) for r in _rows(k, hostile, every, step)]
    data = "\n".join(rows).encode().replace("\xff\xfe".encode(), b"\xff\xfe")  # invalid UTF-8
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    path.write_bytes(data + (b"\r\n" if crlf else b"\n"))


@functools.cache
def _ids(text: str) -> tuple[int, ...]:
    return tuple(k for k, rx in enumerate(RX) if rx.search(text))


def _reference(path: Path, margin: int, keep: int | None) -> tuple[list[tuple], list[tuple], int]:
    """(lines, more, lines in the window) as a line-by-line reading gives them."""
    raw = path.read_bytes()
    parts = raw.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    offsets, at = [], 0
    for p in parts:
        offsets.append(at)
        at += len(p) + 1
    texts = [p.rstrip(b"\r").decode("utf-8", "replace") for p in parts]
    tf = format_named("nginx-error")
    ctx = LogReader(LocalHost(), tz=UTC).time_context(path.stat().st_mtime)
    own = [tf.parse(t, ctx) for t in texts]
    first = next(i for i, ts in enumerate(own) if ts is not None and ts >= T0)
    after = next(i for i, ts in enumerate(own) if ts is not None and ts > T1)
    owner: list[float | None] = []
    last: float | None = None
    for ts in own:
        last = ts if ts is not None else last
        owner.append(last)
    numbered = offsets[first] <= COUNT_PREFIX

    def number(i: int) -> int | None:
        return i + 1 if numbered else None

    hits = [(i, ids) for i in range(first, after) if (ids := _ids(texts[i]))]
    kept = hits if keep is None else hits[:keep]
    more = [(owner[i], ids) for i, ids in hits[len(kept):]]
    sigs = dict(kept)
    wanted = sorted({j for i, _ in kept for j in range(max(0, i - margin), min(len(parts), i + margin + 1))})
    lines = []
    for j in wanted:
        inside = first <= j < after
        ts = owner[j] if inside else own[j]
        lines.append((number(j), offsets[j], texts[j], ts, own[j] is not None, inside,
                      sigs.get(j, ()) if inside else ()))
    return lines, more, after - first


def _fast(path: Path, margin: int, keep: int | None) -> tuple[list[tuple], list[tuple], int, list[str]]:
    win, inside = asyncio.run(excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), T0, T1, REGEXES,
                                             margin, keep=keep))
    assert win.method == "bisect" and not win.error
    lines = [(ln.number, ln.offset, ln.text, ln.ts, ln.stamped, ln.in_window, ln.sigs) for ln in win.lines]
    return lines, list(win.more), inside, win.notes


@pytest.mark.parametrize("engine", ["hyperscan", "grep/python"])
@pytest.mark.parametrize(("shape", "hostile", "every", "crlf", "n"), [
    ("dense", False, 2, False, 40_000),
    ("dense-hostile", True, 3, False, 40_000),
    ("hostile-crlf", True, 0, True, 40_000),
    ("numbered", True, 4, False, 9_000),  # the window starts within COUNT_PREFIX: numbers
])
def test_the_excerpt_is_the_line_by_line_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str,
                                                 shape: str, hostile: bool, every: int, crlf: bool,
                                                 n: int) -> None:
    if engine == "hyperscan" and not hsmatch.AVAILABLE:
        pytest.skip("no hyperscan")
    if engine != "hyperscan":
        monkeypatch.setattr(hsmatch, "AVAILABLE", False)
    path = tmp_path / f"{shape}.log"
    _write(path, hostile, every, crlf, n)
    for margin, keep in ((2, 200), (2, None), (0, 7), (3, 1)):
        ref_lines, ref_more, ref_inside = _reference(path, margin, keep)
        lines, more, inside, notes = _fast(path, margin, keep)
        assert inside == ref_inside > 1000
        assert ref_lines and (len(ref_more) > 100 if keep is not None else not ref_more)
        assert lines == ref_lines
        assert more == ref_more
        assert notes == ([] if engine == "hyperscan" else [hsmatch.NO_ENGINE_NOTE])
