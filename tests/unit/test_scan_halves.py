"""The whole-file scan in two halves (the second by a forked child) gives exactly the scan in
one piece: the same counts, candidates and kept lines with their numbers, whatever lies at
the middle (a line across it, CRLF, no final newline, a line longer than a chunk), and a
child that fails or dies leaves the parent to read its half."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from tests.unit.test_hsmatch import SIGS, make_log
from wizard.diag.logs.io import halves, hsmatch
from wizard.diag.logs.io import scan as logscan
from wizard.diag.logs.io.scan import ScanResult, scan_file
from wizard.hosts.local import LocalHost

pytestmark = pytest.mark.skipif(not hsmatch.AVAILABLE or not halves.can_fork(),
                                reason="hyperscan is not installed, or one CPU")


def _fields(res: ScanResult) -> tuple[object, ...]:
    return res.counts, res.candidates, res.lines, res.truncated, res.error, res.unfiltered


async def _both(path: Path, monkeypatch: pytest.MonkeyPatch, sigs: list[tuple[str, str]] = SIGS,
                ) -> tuple[ScanResult, ScanResult]:
    monkeypatch.setattr(logscan, "SPLIT_MIN", 1 << 62)
    one = await scan_file(LocalHost(), str(path), sigs)
    monkeypatch.setattr(logscan, "SPLIT_MIN", 1)
    started: list[halves.Child] = []
    start = halves.start
    monkeypatch.setattr(halves, "start", lambda work: started.append(start(work)) or started[-1])
    two = await scan_file(LocalHost(), str(path), sigs)
    assert len(started) == 1  # the second half was the child's
    monkeypatch.setattr(halves, "start", start)
    return one, two


@pytest.mark.parametrize("seed", [1, 2])  # with a final newline and without
async def test_two_halves_give_the_scan_of_one(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logscan, "HS_CHUNK", 40 << 10)  # chunk edges on both sides of the middle
    path = tmp_path / "halves.log"
    path.write_bytes(make_log(9_000, seed))  # CRLF and non-ASCII lines among them
    one, two = await _both(path, monkeypatch)
    assert _fields(one) == _fields(two) and one.counts and not one.error


async def test_lines_kept_run_on_into_the_second_half(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # few hits in the first half: the kept lines come from both, numbered through
    monkeypatch.setattr(logscan, "MAX_SCAN_LINES", 30)
    rows = [f"line {k} " + ("recv() failed (104: Connection reset by peer)" if k % 97 == 0 else "fine")
            for k in range(4000)]
    path = tmp_path / "kept.log"
    path.write_bytes(("\n".join(rows)).encode())
    one, two = await _both(path, monkeypatch)
    assert _fields(one) == _fields(two) and len(one.lines) == 30
    assert one.lines[-1][0] == 29 * 97 + 1  # past the middle, numbered as the file's line


@pytest.mark.parametrize("where", ["at", "across"])
async def test_a_long_line_at_the_middle(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logscan, "HS_CHUNK", 4 << 10)
    head = b"".join(b"%d a reset by peer\r\n" % k for k in range(300))
    long = b"x" * (9 << 10) + b" reset by peer\n"  # longer than a chunk: skipped, said
    tail = b"".join(b"%d reset by peer %s\n" % (k, b"\xc3\xa9" if k % 5 else b"") for k in range(300))
    last = b"last reset by peer"
    # the middle is where the long line starts, or inside it
    pad = len(long) + len(tail) + len(last) - len(head) if where == "at" else len(tail) - len(head) - len(long) // 2
    path = tmp_path / "long.log"
    path.write_bytes(head + b"y" * (pad - 1) + b"\n" + long + tail + last)
    one, two = await _both(path, monkeypatch, [("r", "reset by peer")])
    assert _fields(one) == _fields(two) and one.truncated and one.counts == {"r": 601}
    if where == "at":
        assert (len(head) + pad) * 2 == path.stat().st_size


async def test_a_failed_child_leaves_its_half_to_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fail.log"
    path.write_bytes(make_log(3_000, 3))
    one, _ = await _both(path, monkeypatch)

    async def dies(*_args: object) -> ScanResult:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError

    async def garbles(*_args: object) -> object:
        return {"not": "a scan"}

    for child in (dies, garbles):
        monkeypatch.setattr(logscan, "_scan_part", child)
        again = await scan_file(LocalHost(), str(path), SIGS)
        assert _fields(again) == _fields(one)


async def test_random_cuts_give_the_same_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(5)
    monkeypatch.setattr(logscan, "HS_CHUNK", 8 << 10)
    for k in range(3):
        rows = [rnd.choice(["a Connection reset by peer", "upstream timed out (110: Connection timed out)",
                            "fine", "", "\r", "BrokenPipeError é"]) for _ in range(rnd.randint(50, 900))]
        path = tmp_path / f"cut{k}.log"
        path.write_bytes("\n".join(rows).encode() + rnd.choice([b"", b"\n", b"\r\n"]))
        one, two = await _both(path, monkeypatch)
        assert _fields(one) == _fields(two)
