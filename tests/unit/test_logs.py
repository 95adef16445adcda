"""logs.excerpt and the log reader: time windows by binary search, context, merging, signals."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.unit.fakes import FakeHost, make_ctx, output
from wizard.diag.logs.checks import LogExcerptCheck, LogExcerptParams, excerpt
from wizard.diag.logs.io.reader import LogLine, LogReader
from wizard.hosts.base import HostError
from wizard.hosts.local import LocalHost
from wizard.model import Answers, Status

AT = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC)
PARAMS = LogExcerptParams()


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CountingHost(LocalHost):
    """The real LocalHost, counting the bytes it reads."""

    def __init__(self) -> None:
        self.bytes_read = 0
        self.reads = 0

    async def read(self, path: str, offset: int = 0, max_bytes: int = 1 << 20) -> bytes:
        data = await super().read(path, offset, max_bytes)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    async def read_many(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        got = await super().read_many(path, ranges)
        self.bytes_read += sum(len(d) for d in got)
        self.reads += 1  # one request
        return got


def big_log(path: Path, lines: int = 120_000, step_s: float = 0.25) -> datetime:
    """A multi-MB ISO log ending at AT + 1h, with a Python traceback at AT."""
    start = AT - timedelta(seconds=lines * step_s / 2)
    with path.open("w") as f:
        for i in range(lines):
            t = start + timedelta(seconds=i * step_s)
            f.write(f"{stamp(t)} INFO worker-3 request id={i} GET /api/items 200 in 12ms\n")
            if i == lines // 2:
                f.write(f"{stamp(t)} ERROR worker-3 unhandled error in request id={i}\n")
                f.write("Traceback (most recent call last):\n")
                f.write('  File "/srv/app/handler.py", line 88, in handle\n')
                f.write("ConnectionResetError: [Errno 104] Connection reset by peer\n")
    return start


async def test_window_of_a_big_file_reads_a_small_fraction_of_it(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    big_log(path)
    size = path.stat().st_size
    assert size > 5_000_000
    host = CountingHost()
    win = await LogReader(host).window(str(path), AT.timestamp() - 30, AT.timestamp() + 30, margin=2)
    assert win.method == "bisect" and win.format == "iso8601"
    assert host.bytes_read < size / 10
    inside = [ln for ln in win.lines if ln.in_window]
    assert all(AT.timestamp() - 30 <= ln.ts <= AT.timestamp() + 30 for ln in inside)
    # 60 s at 4 lines a second, plus the error line and its three continuation lines
    assert 238 <= len(inside) <= 246
    assert sum(1 for ln in win.lines if not ln.in_window) == 4  # two context lines each side


async def test_traceback_continuation_lines_stay_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    big_log(path)
    win = await LogReader(LocalHost()).window(str(path), AT.timestamp() - 1, AT.timestamp() + 1, 0)
    texts = [ln.text for ln in win.lines if ln.in_window]
    i = next(n for n, t in enumerate(texts) if "unhandled error" in t)
    assert texts[i + 1] == "Traceback (most recent call last):"
    assert texts[i + 3].startswith("ConnectionResetError")
    cont = [ln for ln in win.lines if not ln.stamped]
    assert len(cont) == 3 and all(ln.in_window and ln.ts == AT.timestamp() for ln in cont)


async def test_window_before_the_traceback_leaves_its_continuation_lines_out(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    big_log(path)
    win = await LogReader(LocalHost()).window(str(path), AT.timestamp() - 20, AT.timestamp() - 1, 0)
    assert not any("Traceback" in ln.text for ln in win.lines)


async def test_small_file_gets_exact_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    lines = [f"2026/11/22 03:{m:02d}:08 [info] 1#1: tick" for m in range(40, 48)]
    lines.append("2026/11/22 03:48:08 [error] 1234#1234: *5 recv() failed (104: Connection reset by peer) "
                 "while reading response header from upstream, client: 10.0.0.9")
    path.write_text("\n".join(lines) + "\n")
    win = await LogReader(LocalHost(), tz=UTC).window(str(path), AT.timestamp() - 60, AT.timestamp() + 60, 1)
    assert win.method == "whole"
    # 03:47:08 is exactly at the window's start; 03:46:08 is the one context line
    assert [(ln.number, ln.in_window) for ln in win.lines] == [(7, False), (8, True), (9, True)]


async def test_out_of_order_file_is_scanned_not_searched(tmp_path: Path) -> None:
    path = tmp_path / "shuffled.log"
    import random

    rnd = random.Random(7)
    offsets = list(range(40_000))
    rnd.shuffle(offsets)
    with path.open("w") as f:
        for o in offsets:
            f.write(f"{stamp(AT + timedelta(seconds=o - 20_000))} INFO line {o}\n")
    win = await LogReader(LocalHost()).window(str(path), AT.timestamp() - 2, AT.timestamp() + 2, 0)
    assert win.method == "scan"
    assert any("out of order" in n for n in win.notes)
    assert sorted(int(ln.text.rsplit(" ", 1)[1]) for ln in win.lines) == list(range(19_998, 20_003))


async def test_byte_cap_is_hit_and_said(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    big_log(path, lines=40_000)
    win = await LogReader(LocalHost(), cap_bytes=64 << 10).window(
        str(path), AT.timestamp() - 3600, AT.timestamp() + 3600, 0)
    assert win.capped and win.bytes_read <= 64 << 10
    assert any("cap" in n for n in win.notes)


def _lines(texts: list[str]) -> list[LogLine]:
    return [LogLine(i + 1, 0, t, 0.0, True, True) for i, t in enumerate(texts)]


def test_overlapping_context_is_merged_and_separate_excerpts_are_split() -> None:
    ctx = make_ctx()
    texts = [f"line {i} ok" for i in range(30)]
    texts[5] = "read tcp 10.0.0.1:80->10.0.0.2:5: read: connection reset by peer"
    texts[7] = "Errno::ECONNRESET in worker"
    texts[20] = "kernel: Out of memory: Killed process 4242 (java)"
    ex = excerpt(_lines(texts), ctx.checklist.signatures, context=2, budget=100)
    chunks = ex.text.split("\n...\n")
    assert len(chunks) == 2
    assert chunks[0].splitlines() == texts[3:10]
    assert chunks[1].splitlines() == texts[18:23]
    shown = ex.text.splitlines()
    assert [shown[i] for i in ex.highlight] == [texts[5], texts[7], texts[20]]
    assert ex.first_line == 4
    assert ex.counts["oom-kill"] == 1


def test_context_does_not_merge_across_a_gap_between_distant_lines() -> None:
    ctx = make_ctx()
    reset = "read tcp 10.0.0.1:80->10.0.0.2:5: read: connection reset by peer"
    # What excerpt_window returns: each hit with its margin, the lines between left out.
    rows = [(n, reset if n in (10, 14, 100) else f"line {n} ok") for n in
            (*range(8, 17), *range(98, 103))]
    for numbered in (True, False):
        lines = [LogLine(n if numbered else None, n * 80, t.ljust(79), 0.0, True, True)
                 for n, t in rows]
        ex = excerpt(lines, ctx.checklist.signatures, context=2, budget=100)
        chunks = ex.text.split("\n...\n")
        assert [[ln.split()[1] if ln.startswith("line") else "HIT" for ln in c.splitlines()]
                for c in chunks] == [["8", "9", "HIT", "11", "12", "13", "HIT", "15", "16"],
                                     ["98", "99", "HIT", "101", "102"]]
        assert len(ex.highlight) == 3


def test_max_matches_caps_the_excerpt_and_counts_what_was_left_out() -> None:
    ctx = make_ctx()
    texts = ["Connection reset by peer"] * 50
    ex = excerpt(_lines(texts), ctx.checklist.signatures, context=0, budget=10)
    assert len(ex.highlight) == 10 and ex.left_out == 40
    assert ex.counts["generic-econnreset"] == 50


def _server(files: dict[str, str], **kw) -> FakeHost:
    return FakeHost("local", files=files, **kw)


async def test_excerpt_check_quotes_reset_and_crash_lines_with_file_and_line() -> None:
    log = "\n".join([
        "Nov 22 03:47:50 web01 systemd[1]: Started app.service.",
        "Nov 22 03:48:07 web01 app[811]: handling request 17",
        "Nov 22 03:48:08 web01 app[811]: ConnectionResetError: [Errno 104] Connection reset by peer",
        "Nov 22 03:48:09 web01 kernel: Out of memory: Killed process 811 (python3) total-vm:1024kB",
        "Nov 22 03:48:10 web01 systemd[1]: app.service: Main process exited, code=killed, status=9/KILL",
        "Nov 22 03:48:11 web01 kernel: nf_conntrack: table full, dropping packet",
        "Nov 22 05:00:00 web01 app[900]: Connection reset by peer (outside the window)",
    ]) + "\n"
    ctx = make_ctx(answers=Answers(at=AT, window_s=60, logs=["/var/log/syslog"]),
                   server=_server({"/var/log/syslog": log}))
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert result.status == Status.WARN
    ids = {s.id for s in result.signals}
    assert {"log.reset", "log.crash", "log.conntrack_full"} <= ids
    reset = next(s for s in result.signals if s.id == "log.reset")
    assert reset.fact.startswith("/var/log/syslog:3: ")
    assert "ConnectionResetError" in reset.fact
    ev = next(e for e in result.evidence if e.kind == "log")
    assert ev.source == "/var/log/syslog"
    shown = ev.text.splitlines()
    assert not any("outside the window" in shown[i] for i in ev.highlight)  # context only
    assert ev.data["matches"]["generic-econnreset"] == 1
    # counted in lines: the one reset line matches two reset signatures and counts once
    assert ev.title == "/var/log/syslog: 1 reset line, 2 crash lines, 1 kernel line"
    assert ev.data["matches"]["oom-kill"] == 1 and ev.data["first_line"] == 1


async def test_unreadable_file_warns_and_the_others_are_still_read() -> None:
    ctx = make_ctx(answers=Answers(at=AT, logs=["/var/log/missing.log", "/var/log/app.log"]),
                   server=_server({"/var/log/app.log": "2026-11-22T03:48:08Z worker: socket hang up\n"}))
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert result.status == Status.WARN
    assert any("/var/log/missing.log" in e.title and "cannot be read" in e.title for e in result.evidence)
    assert [s.id for s in result.signals] == ["log.eof"]


async def test_globs_are_expanded_in_the_server_context() -> None:
    files = {"/srv/logs/a.log": "2026-11-22T03:48:00Z ok\n",
             "/srv/logs/b.log": "2026-11-22T03:48:05Z Errno::ECONNRESET from upstream\n"}
    ctx = make_ctx(answers=Answers(at=AT, logs=["/srv/logs/*.log"]), server=_server(files))
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert [e.source for e in result.evidence if e.kind == "log"] == ["/srv/logs/b.log"]
    assert result.signals[0].fact.startswith("/srv/logs/b.log:1:")


async def test_without_log_options_missing_defaults_skip_with_the_fix() -> None:
    ctx = make_ctx(server=_server({}))
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert result.status == Status.SKIP and result.fix and "--log PATH" in result.fix


async def test_without_log_options_existing_defaults_are_read_over_the_last_window() -> None:
    # make_ctx's clock is 2026-11-22 03:50 UTC; the default window is the last 15 minutes.
    log = ("Nov 22 03:20:00 h kernel: Possible SYN flooding on port 0.0.0.0:8080. Sending cookies.\n"
           "Nov 22 03:45:00 h kernel: TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:8080. Sending cookies.\n")
    ctx = make_ctx(server=_server({"/var/log/kern.log": log}))
    result = await LogExcerptCheck().run(ctx, PARAMS)
    syn = [s for s in result.signals if s.id == "log.syn_flood"]
    assert len(syn) == 1 and syn[0].fact.startswith("/var/log/kern.log:2:")


async def test_journal_units_are_read_with_journalctl_json() -> None:
    ts = int(AT.timestamp() * 1e6)
    entries = [{"__REALTIME_TIMESTAMP": str(ts), "MESSAGE": "upstream prematurely closed connection while reading response header from upstream",
                "SYSLOG_IDENTIFIER": "nginx", "_PID": "77"},
               {"__REALTIME_TIMESTAMP": str(ts + 1000), "MESSAGE": "all fine", "SYSLOG_IDENTIFIER": "nginx"}]
    server = FakeHost("local", files={"/run/systemd/journal": ""},
                      commands={("journalctl",): output(["journalctl"], "\n".join(json.dumps(e) for e in entries))})
    ctx = make_ctx(answers=Answers(at=AT, journal=["nginx"]), server=server)
    result = await LogExcerptCheck().run(ctx, PARAMS)
    call = next(c for c in server.calls if c[0] == "journalctl")
    assert call[:3] == ("journalctl", "-o", "json") and "-u" in call and "nginx" in call
    assert any(s.id == "log.proxy_upstream" for s in result.signals)


async def test_journal_without_journald_says_so() -> None:
    ctx = make_ctx(answers=Answers(at=AT, journal=["app"]), server=FakeHost("local", files={}))
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert result.status == Status.WARN
    assert any("journald is not running" in e.title for e in result.evidence)


# --- rotated siblings, gzip, histogram, defaults ------------------------------------------

import gzip as gzipmod  # noqa: E402
import os  # noqa: E402

from wizard.diag.logs.checks import histogram  # noqa: E402
from wizard.diag.logs.io.rotated import rotated_in_window, rotated_siblings  # noqa: E402


def nginx_lines(start: datetime, n: int, step_s: float, reset_at: datetime | None = None) -> str:
    out = []
    for i in range(n):
        t = start + timedelta(seconds=i * step_s)
        out.append(f"{t:%Y/%m/%d %H:%M:%S} [info] 1234#0: *{i} client closed keepalive connection")
        if reset_at is not None and t <= reset_at < t + timedelta(seconds=step_s):
            out.append(f"{reset_at:%Y/%m/%d %H:%M:%S} [error] 1234#0: *{i} recv() failed "
                       "(104: Connection reset by peer) while reading response header from upstream")
    return "\n".join(out) + "\n"


def rotated_set(tmp_path: Path, reset_in: str) -> Path:
    """error.log (newest hour), .1 (the hour before), .2.gz (the hour before that); the reset
    line goes into the file named by ``reset_in``."""
    base = tmp_path / "error.log"
    hours = {"error.log": AT + timedelta(minutes=30), "error.log.1": AT - timedelta(minutes=30),
             "error.log.2.gz": AT - timedelta(minutes=90)}
    for name, start in hours.items():
        end = start + timedelta(hours=1)
        text = nginx_lines(start, 720, 5.0, AT if name == reset_in else None)
        path = tmp_path / name
        if name.endswith(".gz"):
            path.write_bytes(gzipmod.compress(text.encode()))
        else:
            path.write_text(text)
        os.utime(path, (end.timestamp(), end.timestamp()))
    return base


async def test_rotated_siblings_are_ordered_newest_first_numbered_and_dateext(tmp_path: Path) -> None:
    base = tmp_path / "syslog"
    for name in ("syslog", "syslog.1", "syslog.2.gz", "syslog.10.gz", "syslog-20261121",
                 "syslog-20261120.gz", "syslog.bak", "syslog.1.swp", "syslogd.log"):
        (tmp_path / name).write_text("x\n")
    got = [Path(p).name for p in await rotated_siblings(LocalHost(), str(base))]
    assert got == ["syslog.1", "syslog.2.gz", "syslog.10.gz", "syslog-20261121", "syslog-20261120.gz"]


async def test_window_in_the_previous_rotation_reads_that_file_and_finds_the_reset(tmp_path: Path) -> None:
    base = rotated_set(tmp_path, "error.log.1")
    reader = LogReader(LocalHost())
    sibs, _ = await rotated_in_window(reader, str(base), AT.timestamp() - 60, AT.timestamp() + 60)
    assert [Path(s.path).name for s in sibs] == ["error.log.1"]  # .2.gz ends before the window
    ctx = make_ctx(answers=Answers(at=AT, logs=[str(base)], window_s=60), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert "log.reset" in {s.id for s in result.signals}
    quoted = next(e for e in result.evidence if e.kind == "log")
    assert quoted.source.endswith("error.log.1") and "104: Connection reset by peer" in quoted.text


async def test_window_reaching_into_a_gzip_rotation_decompresses_it(tmp_path: Path) -> None:
    base = rotated_set(tmp_path, "error.log.2.gz")
    at = AT - timedelta(minutes=60)
    # put the reset an hour earlier, inside .2.gz's hour
    text = nginx_lines(AT - timedelta(minutes=90), 720, 5.0, at)
    gz = tmp_path / "error.log.2.gz"
    gz.write_bytes(gzipmod.compress(text.encode()))
    end = (AT - timedelta(minutes=30)).timestamp()
    os.utime(gz, (end, end))
    ctx = make_ctx(answers=Answers(at=at, logs=[str(base)], window_s=60), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, PARAMS)
    quoted = next(e for e in result.evidence if e.kind == "log")
    assert quoted.source.endswith("error.log.2.gz") and "Connection reset by peer" in quoted.text
    facts = " ".join(e.title for e in result.evidence)
    assert "gzip: decompressed and scanned" in facts


async def test_window_inside_the_current_file_does_not_open_its_rotations(tmp_path: Path) -> None:
    base = rotated_set(tmp_path, "error.log")
    reader = LogReader(LocalHost())
    at = AT + timedelta(minutes=45)
    sibs, _ = await rotated_in_window(reader, str(base), at.timestamp() - 60, at.timestamp() + 60)
    assert sibs == []


async def test_gzip_window_reads_through_the_host_in_chunks_and_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "app.log.gz"
    start = big_log(tmp_path / "plain.log", lines=40_000)
    path.write_bytes(gzipmod.compress((tmp_path / "plain.log").read_bytes()))
    host = CountingHost()
    win = await LogReader(host).window(str(path), AT.timestamp() - 5, AT.timestamp() + 5)
    assert win.format == "iso8601" and win.method == "scan" and not win.error
    assert host.reads > 1  # streamed, not read whole
    tb = next(ln for ln in win.lines if ln.text.startswith("Traceback"))
    plain = (tmp_path / "plain.log").read_text().splitlines()
    assert plain[tb.number - 1] == tb.text
    assert tb.in_window and tb.ts is not None and start.timestamp() < tb.ts


async def test_corrupt_gzip_is_a_note_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "bad.log.gz"
    good = gzipmod.compress(nginx_lines(AT, 2000, 1.0).encode())
    path.write_bytes(good[: len(good) // 2] + b"\x00garbage" * 100)
    win = await LogReader(LocalHost()).window(str(path), AT.timestamp(), AT.timestamp() + 60)
    assert not win.error
    assert any("corrupt gzip" in n or "gzip" in n for n in win.notes)


async def test_a_truncated_gzip_rotation_is_read_up_to_the_cut_and_says_so(tmp_path: Path) -> None:
    # A rotation copied while it was written, or a disk that filled: the stream just stops,
    # and zlib raises nothing. The lines before the cut count; the evidence says it was cut.
    text = nginx_lines(AT - timedelta(seconds=30), 2000, 0.05, AT)
    whole = gzipmod.compress(text.encode())
    cut = tmp_path / "error.log.2.gz"
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    intact = tmp_path / "intact.log.gz"
    intact.write_bytes(whole)
    for path in (cut, intact):
        os.utime(path, (AT.timestamp() + 120, AT.timestamp() + 120))
    win = await LogReader(LocalHost()).window(str(cut), AT.timestamp() - 60, AT.timestamp() + 60)
    assert not win.error and win.lines
    assert [n for n in win.notes if n.startswith("truncated gzip: ")], win.notes
    full = await LogReader(LocalHost()).window(str(intact), AT.timestamp() - 60, AT.timestamp() + 60)
    assert not [n for n in full.notes if "truncated" in n] and len(full.lines) > len(win.lines)
    ctx = make_ctx(answers=Answers(at=AT, logs=[str(cut)], window_s=60), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, PARAMS)
    assert any("truncated gzip" in e.title for e in result.evidence)


def test_histogram_buckets_resets_and_crashes_by_time() -> None:
    t0 = AT.timestamp() - 600
    t1 = AT.timestamp() + 600
    times = [(AT.timestamp() + i, {"rst_certain"}) for i in range(5)]
    times += [(t0 + 10, {"crash"}), (t1 + 500, {"rst_certain"})]  # the last is outside
    data, text = histogram(times, t0, t1, buckets=12)
    assert data["columns"][:4] == ["from", "to", "resets", "eof"]
    resets = [row[2] for row in data["rows"]]
    crashes = [row[data["columns"].index("crashes")] for row in data["rows"]]
    assert sum(resets) == 5 and resets[6] == 5  # AT is the middle of the window
    assert crashes[0] == 1
    assert "resets" in text and "█" in text and "crashes" in text and "eof" not in text
    assert histogram([], t0, t1) is None


async def test_check_adds_a_histogram_table_of_matches(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    path.write_text(nginx_lines(AT - timedelta(minutes=10), 240, 5.0, AT))
    ctx = make_ctx(answers=Answers(at=AT, logs=[str(path)], window_s=600), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, PARAMS)
    table = next(e for e in result.evidence if e.kind == "histogram").typed()
    assert sum(r[2] for r in table.rows) == 1 and "resets" in table.text


async def test_defaults_read_only_usual_logs_that_exist_including_service_dirs() -> None:
    line = f"{AT:%b %d %H:%M:%S} host kernel: TCP: too many orphaned sockets\n"
    server = FakeHost("local", files={"/var/log/kern.log": line,
                                      "/var/log/postgresql/postgresql-16-main.log": "x\n",
                                      "/var/log/gitea/error.log": "x\n"})
    ctx = make_ctx(answers=Answers(at=AT), server=server)
    result = await LogExcerptCheck().run(ctx, PARAMS)
    first = result.evidence[0].title
    assert "/var/log/kern.log" in first and "/var/log/postgresql/postgresql-16-main.log" in first
    assert "/var/log/gitea/error.log" in first and "/var/log/syslog" not in first


# --- fast window excerpts and the whole-file scan, against brute-force references ----------

import random  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402

from wizard.diag.logs.io import hsmatch  # noqa: E402
from wizard.diag.logs.io.cut import cut_window  # noqa: E402
from wizard.diag.logs.io.excerpt import excerpt_window  # noqa: E402
from wizard.diag.logs.io.scan import scan_file  # noqa: E402
from wizard.diag.logs.parse.timestamps import TimeContext, format_named  # noqa: E402

SIG_RX = [r"connection reset by peer", r"Traceback \(most recent call last\)",
          r"\s(S[DHC])[A-Za-z-]{2}\s+\d+/\d+/\d+/\d+/\+?\d+\s"]  # the last has no literal


def mixed_log(path: Path, fmt: str, lines: int = 40_000, seed: int = 7) -> None:
    """An ordered log of ``fmt`` ("iso8601" or "nginx-error") with reset lines in random case,
    tracebacks whose continuation lines carry no stamp, and HAProxy-style SD lines."""
    rnd = random.Random(seed)
    start = AT - timedelta(hours=1)
    with path.open("w") as f:
        for i in range(lines):
            t = start + timedelta(seconds=i * 7200 / lines)
            ts = stamp(t) if fmt == "iso8601" else t.strftime("%Y/%m/%d %H:%M:%S")
            r = rnd.random()
            if r < 0.004:
                word = "".join(c.upper() if rnd.random() < 0.5 else c for c in "connection reset by peer")
                f.write(f"{ts} [error] 11#0: *{i} recv() failed (104: {word}) while reading\n")
            elif r < 0.006:
                f.write(f"{ts} [error] unhandled error in request {i}\nTraceback (most recent call last):\n"
                        f'  File "/srv/app.py", line {i}, in handle\nConnectionResetError: boom\n')
            elif r < 0.008:
                f.write(f"{ts} [info] fe be/s1 0/0/1/-1/2 502 0 - - SD-- 1/1/0/0/0 0/0\n")
            else:
                f.write(f"{ts} [info] 11#0: *{i} client 127.0.0.1 closed keepalive connection\n")


def brute_excerpt(path: Path, fmt: str, t0: float, t1: float, margin: int) -> tuple[list[tuple], int]:
    """Every line parsed: those in [t0, t1] (continuations with their line) that match, with
    ``margin`` lines each side, as (number, offset, text, ts, in_window)."""
    tf, ctx = format_named(fmt), TimeContext(tz=UTC, year_ref=AT)
    raw = path.read_bytes()
    rows, off, cur = [], 0, None
    for n, line in enumerate(raw.split(b"\n")[:-1], 1):
        text = line.decode()
        own = tf.parse(text, ctx)
        cur = own if own is not None else cur
        rows.append((n, off, text, cur, cur is not None and t0 <= cur <= t1))
        off += len(line) + 1
    rx = [re.compile(r, re.I) for r in SIG_RX]
    hits = [i for i, r in enumerate(rows) if r[4] and any(x.search(r[2]) for x in rx)]
    keep = sorted({j for i in hits for j in range(max(0, i - margin), min(len(rows), i + margin + 1))})
    return [rows[j] for j in keep], sum(1 for r in rows if r[4])


async def test_fast_excerpt_equals_a_brute_force_parse_of_every_line(tmp_path: Path) -> None:
    for fmt in ("iso8601", "nginx-error"):
        path = tmp_path / f"{fmt}.log"
        mixed_log(path, fmt)
        for t0, t1, margin in ((AT.timestamp() - 600, AT.timestamp() + 600, 2),
                               (AT.timestamp() - 90.5, AT.timestamp() - 3, 3),
                               (AT.timestamp() - 4000, AT.timestamp() - 3000, 1)):  # starts at line 1
            host = CountingHost()
            win, inside = await excerpt_window(LogReader(host, tz=UTC), str(path), t0, t1, SIG_RX, margin)
            want, want_inside = brute_excerpt(path, fmt, t0, t1, margin)
            assert win.method == "bisect" and inside == want_inside
            got = [(ln.number, ln.offset, ln.text, ln.ts, ln.in_window) for ln in win.lines]
            assert [g[1:] for g in got] == [w[1:] for w in want]
            assert all(g[0] in (None, w[0]) for g, w in zip(got, want, strict=False))
            assert len(want) > 5


async def test_window_cut_reads_its_window_and_little_more(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    mixed_log(path, "iso8601", lines=60_000)
    size = path.stat().st_size
    host = CountingHost()
    t0, t1 = AT.timestamp() - 60, AT.timestamp() + 60
    cut = await cut_window(LogReader(host, tz=UTC), str(path), t0, t1)
    want = brute_excerpt(path, "iso8601", t0, t1, 0)[1]
    assert cut.lines == want and not cut.fallback
    assert host.bytes_read < len(cut.data) + 400_000 < size / 5
    first = cut.data.split(b"\n", 1)[0].decode()
    assert format_named("iso8601").parse(first, TimeContext(tz=UTC)) >= t0


async def test_check_on_a_big_file_quotes_only_hits_and_counts_the_whole_window(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    mixed_log(path, "iso8601", lines=60_000, seed=5)
    t0, t1 = AT.timestamp() - 300, AT.timestamp() + 300
    regexes = [s.regex for s in make_ctx().checklist.signatures]
    rx = [re.compile(r, re.I) for r in regexes]
    tf, tctx = format_named("iso8601"), TimeContext(tz=UTC, year_ref=AT)
    inside, hits, cur = 0, [], None
    for text in path.read_text().splitlines():
        own = tf.parse(text, tctx)
        cur = own if own is not None else cur
        if cur is not None and t0 <= cur <= t1:
            inside += 1
            if any(x.search(text) for x in rx):
                hits.append(text)
    assert hits
    ctx = make_ctx(answers=Answers(at=AT, window_s=300, logs=[str(path)]), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, LogExcerptParams(context_lines=1))
    info = next(e for e in result.evidence if "lines in the window" in e.title)
    assert info.title.startswith(f"{path}: {inside} lines in the window")
    assert info.data["method"] == "bisect" and info.data["bytes_read"] < path.stat().st_size / 3
    ev = next(e for e in result.evidence if e.kind == "log")
    shown = ev.text.splitlines()
    assert [shown[i] for i in ev.highlight] == hits
    assert ev.data["first_line"] is None or ev.data["first_line"] > 1


async def test_small_file_excerpt_falls_back_to_the_line_by_line_reader(tmp_path: Path) -> None:
    path = tmp_path / "small.log"
    mixed_log(path, "nginx-error", lines=2000, seed=3)
    t0, t1 = AT.timestamp() - 3600, AT.timestamp() + 3600
    win, inside = await excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), t0, t1, SIG_RX, 2)
    want, want_inside = brute_excerpt(path, "nginx-error", t0, t1, 2)
    assert win.method == "whole" and inside == want_inside
    assert [(ln.number, ln.text) for ln in win.lines] == [(w[0], w[2]) for w in want]


class NoToolsHost(LocalHost):
    """LocalHost without grep or rg: the scan must read through Host.read."""

    async def which(self, tool: str) -> str | None:
        return None

    async def run(self, argv, timeout=5.0, max_bytes=1 << 20):  # type: ignore[override]
        return output(argv, returncode=127, missing=True)


async def test_scan_counts_equal_a_brute_force_count_with_and_without_rg(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "scan.log"
    mixed_log(path, "nginx-error", lines=30_000, seed=11)
    sigs = [("reset", SIG_RX[0]), ("tb", SIG_RX[1]), ("sd", SIG_RX[2]),
            ("errno", r"\berrno[ =:]+(104|54)\b"), ("keepalive", r"closed keep-?alive")]
    want: dict[str, int] = {}
    for line in path.read_text().splitlines():
        for sid, rx in sigs:
            if re.search(rx, line, re.I):
                want[sid] = want.get(sid, 0) + 1
    assert want["reset"] > 50 and want["keepalive"] > 20_000 and want["sd"] > 0
    # Hyperscan scans every signature; the grep/rg/Python paths leave out the literal-less one.
    res = await scan_file(LocalHost(), str(path), sigs)
    assert res.method == "hyperscan" and res.error == "" and res.unfiltered == []
    assert res.counts == want
    monkeypatch.setattr(hsmatch, "AVAILABLE", False)
    without_sd = {k: v for k, v in want.items() if k != "sd"}
    for host in (LocalHost(), NoToolsHost()):
        res = await scan_file(host, str(path), sigs)
        assert res.error == "" and res.unfiltered == ["sd"]
        assert res.counts == without_sd, res.method
        assert hsmatch.NO_ENGINE_NOTE in res.notes


async def test_window_edges_take_few_requests_however_big_the_file(tmp_path: Path) -> None:
    """The search asks for its probes together: the requests (round trips over SSH) grow
    with log8 of the size, and the edges found are those of a line-by-line parse."""
    path = tmp_path / "app.log"
    mixed_log(path, "iso8601", lines=120_000)
    size = path.stat().st_size
    t0, t1 = AT.timestamp() - 60, AT.timestamp() + 60
    host = CountingHost()
    cut = await cut_window(LogReader(host, tz=UTC), str(path), t0, t1, read_data=False)
    assert not cut.fallback
    # stat aside: head, the order samples, then per edge one request a step and the edge's read
    steps = math.ceil(math.log(size / 2048, 8))
    assert host.reads <= 2 + 2 * (steps + 2), (host.reads, steps)
    raw = path.read_bytes()
    tf, ctx = format_named("iso8601"), TimeContext(tz=UTC)
    off, first, after = 0, None, None
    for line in raw.split(b"\n")[:-1]:
        ts = tf.parse(line.decode(), ctx)
        if ts is not None and first is None and ts >= t0:
            first = off
        if ts is not None and after is None and ts > t1:
            after = off
        off += len(line) + 1
    assert (cut.start, cut.end) == (first, after)


async def test_read_many_returns_each_range_in_order_and_short_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 4)
    got = await LocalHost().read_many(str(path), [(1000, 100), (0, 3), (5, 0), (255, 2)])
    assert got == [bytes(range(232, 256)), b"\x00\x01\x02", b"", b"\xff\x00"]
    with pytest.raises(HostError, match="cannot read"):
        await LocalHost().read_many(str(tmp_path / "missing"), [(0, 1)])
