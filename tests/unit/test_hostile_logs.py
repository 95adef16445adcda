"""Hostile log text: no line can make matching super-linear, CPU work obeys cancellation and
deadlines, logs without timestamps are read once at the scan's speed, binary files are
skipped with a note."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import make_ctx
from wizard.diag.identify.checks import classify
from wizard.diag.logs.checks import LogExcerptCheck, LogExcerptParams, LogsDuringProbesCheck
from wizard.diag.logs.io import hsmatch
from wizard.diag.logs.io.excerpt import BINARY_NOTE, excerpt_window
from wizard.diag.logs.io.reader import LogReader
from wizard.engine.discovery import load
from wizard.hosts.cpu import off_loop
from wizard.hosts.local import LocalHost
from wizard.model import Answers, linear
from wizard.model.cancel import Stop, Stopped

SIGS = load().signatures
REGEXES = [s.regex for s in SIGS]
PREFIX = "2026/11/22 03:48:08 [error] 1#1: *7 recv() failed (104: Connection reset by peer) "
# Runs that made Python's re quadratic: non-space text, digits, brackets, arrows, dots.
SHAPES = {"non-space": "x", "digits": "1", "brackets": "[", "arrows": "->", "dots": "a.",
          "service": "a.service", "spaces": " "}


def _best(work, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - t)
    return best


def _growth(make, work) -> tuple[float, float]:
    """The time of ``work`` on a 64 KiB and on a 1 MiB input (best of three each)."""
    small, big = make(64 << 10), make(1 << 20)
    return _best(lambda: work(small)), _best(lambda: work(big))


def _linear_enough(small: float, big: float) -> bool:
    # 16x the input: linear is ~16x; quadratic would be ~256x. Slack for timer noise.
    return big <= 48 * small + 0.05


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hyperscan_matching_grows_linearly_on_adversarial_lines(shape: str) -> None:
    m = hsmatch.matcher(REGEXES)
    assert m is not None

    def make(n: int) -> bytes:
        unit = SHAPES[shape]
        return (PREFIX + unit * (n // len(unit))).encode() + b"\n"

    small, big = _growth(make, m.lines)
    assert _linear_enough(small, big), (shape, small, big)
    assert m.lines(make(1 << 20))[0].ids  # the reset at the head is still found


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_signature_in_python_is_bounded_on_adversarial_lines(shape: str) -> None:
    """The Python path (no Hyperscan, non-ASCII lines, regexes Hyperscan cannot compile):
    every signature, in its linear form, on lines of 64 KiB and 1 MiB."""
    compiled = [linear.compile_linear(rx) for rx in REGEXES]

    def make(n: int) -> str:
        unit = SHAPES[shape]
        return "é " + PREFIX + unit * (n // len(unit))

    def work(text: str) -> None:
        for rx in compiled:
            linear.search(rx, text)

    small, big = _growth(make, work)
    assert _linear_enough(small, big), (shape, small, big)
    assert big < 2.0


def test_the_linear_form_matches_what_the_signature_matches() -> None:
    """The lookbehind added in front of a leading repeat changes no decision."""
    import random

    rnd = random.Random(7)
    pieces = ["x", "1", "[", "]", ".", ":", " ", "->", "(", ")", "a.service: Scheduled restart job",
              "y[12]: segfault at", "exited: w (exit status 1; not expected)", "Possible SYN flooding on port 80. Dropping request"]
    changed = [(re.compile(rx, re.I), linear.compile_linear(rx)) for rx in REGEXES
               if linear.linear_regex(rx) != rx]
    assert changed, "the checklist has signatures that start with a repeated class"
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
        for plain, lin in changed:
            assert bool(plain.search(text)) == bool(lin.search(text)), (plain.pattern, text)


def test_the_issue_line_of_200_kb_does_not_hang_an_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    line = PREFIX + "A" * (200 << 10)
    path.write_text("2026/11/22 03:48:07 [info] 1#1: start\n" + line + "\n"
                    "2026/11/22 03:48:09 [error] 1#1: *8 upstream timed out\n")
    t0 = datetime(2026, 11, 22, 3, 47, tzinfo=UTC).timestamp()
    start = time.perf_counter()
    win, inside = asyncio.run(excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), t0, t0 + 120,
                                             REGEXES, 1))
    assert time.perf_counter() - start < 5.0
    assert inside == 3
    hit = next(ln for ln in win.lines if ln.sigs)
    assert SIGS[hit.sigs[0]].cls == "rst_certain"


def test_a_long_error_text_is_classified_quickly() -> None:
    for unit in SHAPES.values():
        start = time.perf_counter()
        c = classify("read tcp exited: " + PREFIX + unit * (100_000 // len(unit)), SIGS)
        assert time.perf_counter() - start < 2.0, unit
        assert c.cls == "rst_certain"


def _slow_lines(n: int = 8000) -> list[bytes]:
    # Non-ASCII: these go to Python's re (bounded per line, but many lines take a while).
    return [("é " + PREFIX + "[" * 5000).encode() for _ in range(n)]


def _slow_data(n: int = 8000) -> bytes:
    return b"\n".join(_slow_lines(n)) + b"\n"


def test_cpu_work_off_the_loop_stops_within_a_second_of_a_cancel() -> None:
    m = hsmatch.matcher(REGEXES)
    data = _slow_data()

    async def main() -> float:
        task = asyncio.ensure_future(off_loop(lambda stop: m.lines(data, None, stop)))
        await asyncio.sleep(0.3)
        assert not task.done(), "the work should take longer than the cancel's delay"
        cancelled_at = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - cancelled_at

    start = time.perf_counter()
    assert asyncio.run(main()) < 1.0
    assert time.perf_counter() - start < 1.5  # the loop's shutdown did not wait for the thread


def test_cpu_work_obeys_its_deadline() -> None:
    m = hsmatch.matcher(REGEXES)
    data = _slow_data()
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        asyncio.run(off_loop(lambda stop: m.lines(data, None, stop), timeout=0.3))
    assert time.perf_counter() - start < 1.3
    stop = Stop()
    stop.set()
    with pytest.raises(Stopped):
        m.lines(data, None, stop)


def test_a_check_timeout_holds_for_the_log_search(tmp_path: Path) -> None:
    path = tmp_path / "hostile.log"
    with path.open("wb") as fh:
        for raw in _slow_lines(4000):
            fh.write(b"2026/11/22 03:48:08 [error] " + raw + b"\n")
    t0 = datetime(2026, 11, 22, 3, 47, tzinfo=UTC).timestamp()
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(excerpt_window(LogReader(LocalHost(), tz=UTC), str(path),
                                                    t0, t0 + 120, REGEXES, 1), 0.5))
    assert time.perf_counter() - start < 1.5


def _untimed_log(path: Path, lines: int) -> int:
    body = []
    for i in range(lines):
        body.append(f"worker {i % 7}: request served\n" if i % 1000 else
                    f"worker {i % 7}: recv() failed (104: Connection reset by peer) #{i}\n")
    path.write_text("".join(body))
    return lines // 1000 + (1 if lines % 1000 else 0)


def test_a_log_without_timestamps_is_searched_once_without_a_time_window(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    resets = _untimed_log(path, 300_000)  # ~10 MB
    size = path.stat().st_size
    start = time.perf_counter()
    win, inside = asyncio.run(excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), 0.0, 1.0, REGEXES, 0))
    took = time.perf_counter() - start
    assert inside == 300_000 and win.format is None
    assert sum(1 for ln in win.lines if ln.sigs) == resets
    assert win.bytes_read < size + (64 << 10)  # read once
    assert any("without a time window" in n for n in win.notes)
    assert took < 5.0


def test_a_binary_file_is_skipped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "core.bin"
    path.write_bytes(bytes(range(256)) * 8192 + b"Connection reset by peer\n")
    win, inside = asyncio.run(excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), 0.0, 1.0, REGEXES, 2))
    assert inside == 0 and win.lines == [] and BINARY_NOTE in win.notes
    assert win.bytes_read <= 64 << 10


def test_a_log_with_a_few_nul_bytes_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    path.write_bytes(b"\0" * 40 + b"worker: Connection reset by peer\n" + b"worker: fine\n" * 200)
    win, _ = asyncio.run(excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), 0.0, 1.0, REGEXES, 0))
    assert BINARY_NOTE not in win.notes and any(ln.sigs for ln in win.lines)


def test_lines_without_timestamps_are_not_said_to_be_written_while_probing(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    _untimed_log(path, 3000)
    at = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC)
    ctx = make_ctx(answers=Answers(at=at, window_s=60, logs=[str(path)]), server=LocalHost())
    ctx.started = at + timedelta(minutes=1)
    params = LogExcerptParams()
    first = asyncio.run(LogExcerptCheck().run(ctx, params))
    assert "3 matching lines" in first.summary  # the whole file, searched once
    second = asyncio.run(LogsDuringProbesCheck().run(ctx, params))
    assert second.summary.startswith("0 matching lines")
    assert any("no timestamps" in e.title for e in second.evidence)
