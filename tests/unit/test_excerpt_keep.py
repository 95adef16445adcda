"""A dense window's excerpt makes lines of the first ``keep`` matches only; the later ones
are timed and listed with their signatures, and the report built from both (counts, classes,
times for the histogram, lines left out) is the one all lines would give."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from wizard.diag.logs.checks.matching import excerpt
from wizard.diag.logs.io.excerpt import excerpt_window
from wizard.diag.logs.io.reader import LogReader
from wizard.diag.logs.parse.timestamps import format_named
from wizard.engine.discovery import load
from wizard.hosts.local import LocalHost

SIGS = load().signatures
REGEXES = [s.regex for s in SIGS]
START = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)


def _log(path: Path, stamped: bool = True) -> None:
    rows = []
    for k in range(30_000):  # an hour, 8-9 lines a second, a third of them matching
        t = (START + timedelta(seconds=k * 3600 / 30_000)).strftime("%Y/%m/%d %H:%M:%S")
        body = ("upstream timed out (110: Connection timed out)" if k % 3 == 0 else
                "recv() failed (104: Connection reset by peer)" if k % 17 == 0 else "closed keepalive connection")
        rows.append(f"{t} [error] 4100#0: *{k} {body}" if stamped else f"[error] *{k} {body}")
        if k % 40 == 0:
            rows.append("    continued: upstream timed out again")  # an unstamped match: its owner's time
    path.write_text("\n".join(rows) + "\n")


def _windows(path: Path, keep: int) -> tuple:
    t0, t1 = (START + timedelta(minutes=20)).timestamp(), (START + timedelta(minutes=30)).timestamp()

    async def both() -> tuple:
        full = await excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), t0, t1, REGEXES, 2)
        part = await excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), t0, t1, REGEXES, 2, keep=keep)
        return full, part

    return asyncio.run(both())


def test_matches_past_keep_are_timed_not_made_into_lines(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    _log(path)
    (full, n_full), (part, n_part) = _windows(path, 25)
    assert n_full == n_part > 2000 and not full.more
    hits_full = [(ln.ts, ln.sigs) for ln in full.lines if ln.in_window and ln.sigs]
    hits_part = [(ln.ts, ln.sigs) for ln in part.lines if ln.in_window and ln.sigs]
    assert len(hits_full) > 800 and hits_part == hits_full[:25]
    assert part.more == hits_full[25:]
    assert len(part.lines) < 200  # the kept matches and their context only
    for budget in (10, 25, 10_000):
        a = excerpt(full.lines, SIGS, 2, budget)
        b = excerpt(part.lines, SIGS, 2, min(budget, 25), part.more)
        assert (a.counts, a.lines, a.class_lines, a.times) == (b.counts, b.lines, b.class_lines, b.times)
        if budget <= 25:
            assert (a.text, a.left_out) == (b.text, b.left_out)


def test_an_untimed_dense_log_keeps_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "untimed.log"
    _log(path, stamped=False)
    (full, _), (part, _) = _windows(path, 5)
    hits_full = [ln.sigs for ln in full.lines if ln.in_window and ln.sigs]
    assert [sigs for _, sigs in part.more] == hits_full[5:] and all(ts is None for ts, _ in part.more)
    a, b = excerpt(full.lines, SIGS, 2, 5), excerpt(part.lines, SIGS, 2, 5, part.more)
    assert (a.counts, a.lines, a.left_out, a.text) == (b.counts, b.lines, b.left_out, b.text)


class _Hopping(LocalHost):
    """A LocalHost the excerpt does not know as one: its reads go through the event loop."""


def test_the_cut_run_in_one_thread_equals_the_cut_read_through_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    _log(path)
    t0, t1 = (START + timedelta(minutes=20)).timestamp(), (START + timedelta(minutes=30)).timestamp()

    async def both() -> tuple:
        return tuple([await excerpt_window(LogReader(host, tz=UTC), str(path), t0, t1, REGEXES, 2, keep=25)
                      for host in (LocalHost(), _Hopping())])

    (direct, n_direct), (hops, n_hops) = asyncio.run(both())
    assert n_direct == n_hops > 2000 and len(direct.more) > 800
    assert (direct.lines, direct.more, direct.bytes_read, direct.method) == (
        hops.lines, hops.more, hops.bytes_read, hops.method)


def test_a_missing_file_cut_in_one_thread_says_why(tmp_path: Path) -> None:
    win, n = asyncio.run(excerpt_window(LogReader(LocalHost()), str(tmp_path / "gone.log"), 0.0, 1.0, REGEXES))
    assert n == 0 and "gone.log" in win.error


def test_later_matches_are_timed_as_their_own_lines_whatever_follows_the_stamp(tmp_path: Path) -> None:
    # lines of one second share their first bytes but not their stamps: a fraction, a zone
    # or not, a ":" or a letter after the seconds (which the ISO pattern's lookahead reads);
    # each later match's time is the one its own line gives
    rows = []
    tails = ["", ".5", ".123456", "Z", "+00:00", " +0000", ".25Z", ":x", "x", " UTC", "-00:00", ".9 GMT"]
    for k in range(12_000):
        t = (START + timedelta(seconds=k * 3600 / 12_000)).strftime("%Y-%m-%dT%H:%M:%S")
        rows.append(f"{t}{tails[k % len(tails)]} worker {k}: upstream timed out (110: Connection timed out)")
    path = tmp_path / "app.log"
    path.write_text("\n".join(rows) + "\n")
    (full, _), (part, _) = _windows(path, 30)
    hits_full = [(ln.ts, ln.sigs) for ln in full.lines if ln.in_window and ln.sigs]
    assert len(hits_full) > 1000 and len({ts for ts, _ in hits_full[30:60]}) > 5
    assert part.more == hits_full[30:]


def test_kept_lines_are_timed_as_their_own_lines_whatever_follows_the_stamp(tmp_path: Path) -> None:
    # the kept matches and their context share a memo of stamp times: each line's time is
    # still the one its own text gives, read alone (lines of one second differ after it)
    rows = []
    tails = ["", ".5", ".123456", "Z", "+00:00", " +0000", ".25Z", ":x", "x", " UTC", "-00:00", ".9 GMT"]
    for k in range(12_000):
        t = (START + timedelta(seconds=k * 3600 / 12_000)).strftime("%Y-%m-%dT%H:%M:%S")
        body = "upstream timed out (110: Connection timed out)" if k % 3 else "closed keepalive connection"
        rows.append(f"{t}{tails[k % len(tails)]} worker {k}: {body}")
    path = tmp_path / "app.log"
    path.write_text("\n".join(rows) + "\n")
    (full, _), (part, _) = _windows(path, 300)
    tf, ctx = format_named("iso8601"), LogReader(LocalHost(), tz=UTC).time_context(path.stat().st_mtime)
    for win in (full, part):
        assert win.method == "bisect" and len(win.lines) > 300 and any(not ln.sigs for ln in win.lines)  # context lines too
        assert [ln.ts for ln in win.lines] == [tf.parse(ln.text, ctx) for ln in win.lines]
    assert len({ln.ts for ln in part.lines[:40]}) > 5


def test_later_matches_in_runs_broken_by_late_stamps_and_continuations_keep_their_own_times(tmp_path: Path) -> None:
    # the later matches are timed by runs of lines that begin alike: a line stamped a second
    # early inside a run, a run of one line, and unstamped continuations between stamped
    # lines each get the time their own line (or its owner) gives
    rows = []
    for k in range(30_000):
        when = START + timedelta(seconds=k * 3600 / 30_000 - (1 if k % 7 == 3 else 0))
        rows.append(f"{when:%Y/%m/%d %H:%M:%S} [error] 4100#0: *{k} upstream timed out (110: Connection timed out)")
        if k % 11 == 0:
            rows.append("    continued: upstream timed out again")
            rows.append("    continued: upstream timed out once more")
    path = tmp_path / "error.log"
    path.write_text("\n".join(rows) + "\n")
    (full, n_full), (part, n_part) = _windows(path, 40)
    hits_full = [(ln.ts, ln.sigs) for ln in full.lines if ln.in_window and ln.sigs]
    times = [ts for ts, _ in hits_full[40:]]
    assert n_full == n_part and len(times) > 5000
    assert sum(1 for a, b in pairwise(times) if b < a) > 500  # the runs are broken
    assert part.more == hits_full[40:]
