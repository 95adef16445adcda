"""The counting fast path of the Hyperscan matcher (per-regex lists of line ends, counted by
their lengths, no line visited) against a plain ``re`` reference, line by line, over
generated and hostile logs: long lines, binary bytes, CRLF and lone CRs, no newline at the
end, empty lines, lines that match several signatures, and lines ``re`` has to decide
(candidates of the regexes outside the databases, non-ASCII lines). Every way a caller
reads the result is compared: the lines, the counts, the head-then-count split of the
whole-file scan, a limit, a start, and the scan of a file in chunks and halves."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from tests.unit.test_hsmatch import reference as re_reference
from wizard.diag.logs.io import hsmatch
from wizard.diag.logs.io import scan as logscan
from wizard.diag.logs.io.hsmatch import matcher
from wizard.engine.discovery import checklist_path
from wizard.hosts.local import LocalHost
from wizard.model import load_checklist

pytestmark = pytest.mark.skipif(not hsmatch.AVAILABLE, reason="hyperscan is not installed")

SIGS = [(s.id, s.regex) for s in load_checklist(checklist_path()).signatures]
REGEXES = [rx for _, rx in SIGS]
TIMEOUT = "upstream timed out (110: Connection timed out) while reading response header"
RESET = "recv() failed (104: Connection reset by peer) while reading response header from upstream"
HAPROXY = "fe-https~ be-api/web3 0/0/1/{n}/{m} 502 0 - - SD-- 3/3/3/1/0 0/0"
# lines re decides: candidates of the regexes in no database (lookahead, "$"), by their literals
RE_ONLY = ["unexpected EOF while reading", "then unexpected EOF", "Uncaught TypeError: x is undefined",
           "Node.js v18.19.1", "Node.js v18.19.1 trailing", "throw er; // Unhandled 'error' event"]


def hostile_log(lines: int, seed: int, final_newline: bool) -> bytes:
    rnd = random.Random(seed)
    out: list[bytes] = []
    for n in range(lines):
        parts = [f"2026/11/22 03:{n // 60 % 60:02d}:{n % 60:02d} [error] *{n}"]
        r = rnd.random()
        if n % 2 == 0:
            parts.append(TIMEOUT)  # dense: every other line
        if r < 0.05:
            parts.append(RESET)  # three signatures, with the timeout four
        if n % 7 == 3:
            parts.append(HAPROXY.format(n=n % 90, m=n % 90 + 1))  # the literal-less database's
        if r > 0.97:
            parts.append(rnd.choice(RE_ONLY))
        line = " ".join(parts).encode()
        if r < 0.01:  # long: the signature in the middle of 6 KB (a clean line: Hyperscan's whole)
            line = b"ab " * 1000 + line + b" yz" * 1000
        elif r < 0.02:
            line += b" \x00\x01\xff\xfe binary"  # non-ASCII: re decides it
        elif r < 0.03:
            line += b"\r"  # CRLF
        elif r < 0.035:
            line = line.replace(b" ", b"\r", 1)  # a lone CR inside
        elif r < 0.04:
            line = b""
        elif r < 0.045:
            line = "caf\u00e9 \u017focket ".encode() + line  # characters re.I folds to ASCII
        out.append(line)
    data = b"\n".join(out)
    return data + b"\n" if final_newline else data


def reference(data: bytes) -> list[tuple[int, tuple[int, ...]]]:
    """(line start, the regexes re.search finds in it), line by line."""
    return re_reference(data, REGEXES)


def _counts(rows: list[tuple[int, tuple[int, ...]]]) -> dict[int, int]:
    return dict(Counter(i for _, ids in rows for i in ids))


@pytest.mark.parametrize("piece", [1 << 10, 1 << 14, 4 << 20])
@pytest.mark.parametrize("final_newline", [True, False])
def test_counts_lines_and_the_head_split_equal_plain_re(monkeypatch: pytest.MonkeyPatch, piece: int,
                                                        final_newline: bool) -> None:
    monkeypatch.setattr(hsmatch, "SLICE", piece)
    m = matcher(REGEXES)
    data = hostile_log(4000, piece + final_newline, final_newline)
    want = reference(data)
    # the inputs hold what they are meant to: several signatures a line, all three kinds
    many = Counter(len(ids) for _, ids in want)
    assert many[1] > 1000 and sum(v for k, v in many.items() if k >= 3) > 50
    ids = {sid: k for k, (sid, _) in enumerate(SIGS)}
    found = _counts(want)
    for sid in ("timeout", "haproxy-termination", "go-server-closed-idle", "node-uncaught"):
        assert found.get(ids[sid]), sid
    assert [(h.start, h.ids) for h in m.lines(data)] == want
    got = m.count(data)
    assert (got.counts, got.lines) == (found, len(want))
    # the whole-file scan: the first lines listed, the rest counted from where they stopped
    for most in (1, 37, 2000):
        head, upto = m.head(data, most=most)
        rest = m.count(data, start=upto)
        assert [(h.start, h.ids) for h in head] == want[:len(head)]
        assert len(head) >= min(most, len(want))
        listed = _counts([(h.start, h.ids) for h in head])
        assert dict(Counter(listed) + Counter(rest.counts)) == found
        assert len(head) + rest.lines == len(want)


def test_a_limit_leaves_out_the_lines_starting_past_it() -> None:
    m = matcher(REGEXES)
    data = hostile_log(3000, 5, True)
    for limit in (len(data) // 3, len(data) // 2 + 17, len(data) - 1):
        cut = data.rfind(b"\n", 0, limit) + 1  # the lines starting before the limit
        want = reference(data[:data.find(b"\n", cut) + 1 if data.find(b"\n", cut) >= 0 else len(data)])
        want = [row for row in want if row[0] < limit]
        assert [(h.start, h.ids) for h in m.lines(data, limit=limit)] == want
        got = m.count(data, limit=limit)
        assert (got.counts, got.lines) == (_counts(want), len(want))


async def test_the_chunked_scan_in_halves_equals_plain_re(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # small chunks and a split into two processes: the counts and lines kept are re's
    monkeypatch.setattr(logscan, "HS_CHUNK", 64 << 10)
    monkeypatch.setattr(logscan, "SPLIT_MIN", 256 << 10)
    monkeypatch.setattr(logscan, "MAX_SCAN_LINES", 500)
    data = hostile_log(12000, 11, False)
    path = tmp_path / "hostile.log"
    path.write_bytes(data)
    want = reference(data)
    res = await logscan.scan_file(LocalHost(), str(path), SIGS)
    assert res.error == "" and res.method == "hyperscan"
    assert res.counts == {SIGS[i][0]: n for i, n in _counts(want).items()}
    assert res.candidates == len(want)
    numbers = {off: data.count(b"\n", 0, off) + 1 for off, _ in want[:500]}
    assert [(n, ids) for n, _, ids in res.lines] == [(numbers[off], [SIGS[i][0] for i in ids])
                                                     for off, ids in want[:500]]
