r"""Benchmark of the log reader on synthetic logs, sparse and dense: the time-window
excerpt against grep -c over the whole file, the whole-file signature scan against grep -c -E
-f (and rg) with the same signatures, and the peak memory of each. Medians of N interleaved
rounds; prints the ratios against the goals of issue 16.

The scan is compared with grep -c and rg -c doing the same job: counting the lines that
match any of the checklist's signatures, given to them as extended regexes (``to_ere``:
Python's ``\d \s \S (?:`` spelled in POSIX, a negative lookahead left out, which only
widens). grep -P and rg -P read the Python syntax as it is but take minutes a gigabyte, so
they are not run. The excerpt's reference is ``grep -c -i "connection reset by peer"`` over
the whole file (one literal, the floor a single search reaches): an excerpt should cost a
small part of reading the file once.

    .venv/bin/python bench/logs.py [--log-size 256M] [--rounds 3] [--shapes sparse,dense25,...]

Shapes (issue 16): ``sparse`` plants 7 reset lines in an nginx error log; ``dense25`` and
``dense50`` make a quarter and a half of the lines ``upstream timed out`` (a signature), as a
busy proxy's log is; ``haproxy25`` is a HAProxy log through rsyslog (RFC 3339 stamps) where a
quarter of the requests end with a termination state (``SD--``, ``cD--``: a signature);
``long`` gives every fourth line a URL of 2-6 KB; ``untimed`` is the dense25 log without
timestamps (its excerpt is the last 32 MiB searched without a time window, so its goal is the
scan's: grep -c -E -f over the file). Each shape's file is written, measured and removed in
turn; the rounds interleave the wizard and grep/rg on the same file.

The file is written in a temporary directory and removed afterwards. The wizard's side runs
in a child Python process, so its peak memory (ru_maxrss) is its own; its time is taken
inside that process (interpreter start-up left out). The child treats the collector as the
wizard's commands do (``wizard.entry``): its imports frozen out of the collector's way, so a
dense excerpt's tens of thousands of matches do not make it walk the start-up's objects.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wizard.engine.discovery import checklist_path
from wizard.model import load_checklist

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 21, 0, 0, 0, tzinfo=UTC)
AT = START + timedelta(hours=12)
PLANTED = 7

NGINX = ("{t} [info] {pid}#0: *{n} client 127.0.0.1 closed keepalive connection\n",
         "{t} [warn] {pid}#0: *{n} an upstream response is buffered to a temporary file "
         "/var/cache/nginx/proxy_temp/{n}, client: 127.0.0.1, server: api.example.test, "
         "request: \"GET /api/items/{n} HTTP/1.1\", upstream: \"http://127.0.0.1:8081/api/items/{n}\"\n",
         "{t} [notice] {pid}#0: signal process started\n",
         "{t} [error] {pid}#0: *{n} open() \"/srv/www/favicon.ico\" failed (2: No such file or "
         "directory), client: 127.0.0.1, server: api.example.test, request: \"GET /favicon.ico HTTP/1.1\"\n")
RESET = ("{t} [error] {pid}#0: *{n} recv() failed (104: Connection reset by peer) while reading "
         "response header from upstream, client: 127.0.0.1, server: api.example.test, "
         "request: \"POST /api/orders HTTP/1.1\", upstream: \"http://127.0.0.1:8081/api/orders\"\n")


def to_ere(rx: str) -> str:
    """A checklist signature (Python syntax) as a POSIX extended regex for grep -E / rg."""
    rx = rx.replace("(?:", "(").replace(r"\d", "[0-9]").replace(r"\S", "[^[:space:]]")
    rx = rx.replace(r"\s", "[[:space:]]")
    return re.sub(r"\(\?![^)]*\)", "", rx)


def parse_size(text: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * mult[text[-1].upper()]) if text[-1].upper() in mult else int(text)


TIMEOUT = ("{t} [error] {pid}#0: *{n} upstream timed out (110: Connection timed out) while "
           "reading response header from upstream, client: 127.0.0.1, server: api.example.test, "
           "request: \"GET /api/items/{n} HTTP/1.1\", upstream: \"http://127.0.0.1:8081/api/items/{n}\"\n")
HAPROXY = ("{t} lb1 haproxy[2211]: 10.1.{a}.{b}:{port} [{hat}] fe-https~ be-api/web{w} 0/0/1/{tr}/{tt} "
           "{status} {size} - - {term} {c}/{c}/3/1/0 0/0 \"GET /api/items/{n} HTTP/1.1\"\n")
RESET_HAPROXY = ("{t} lb1 haproxy[2211]: Server be-api/web3 is DOWN, reason: Layer4 connection problem, "
                 "info: \"Connection reset by peer\", check duration: 0ms. 7 active and 0 backup servers left.\n")
# name -> (every k-th line matching, long URLs, stamped, kind)
SHAPES = {"sparse": (0, False, True, "nginx"), "dense25": (4, False, True, "nginx"),
          "dense50": (2, False, True, "nginx"), "haproxy25": (4, False, True, "haproxy"),
          "long": (4, True, True, "nginx"), "untimed": (4, False, False, "nginx")}


def _haproxy(i: int, when: datetime, n: int, every: int) -> str:
    bad = every and i % every == 0
    return HAPROXY.format(t=when.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00"), a=n % 200, b=n % 251,
                          port=1024 + n % 60000, hat=when.strftime("%d/%b/%Y:%H:%M:%S.123"), w=n % 8,
                          tr=n % 90, tt=n % 90 + 1, status=502 if bad and n % 3 == 0 else 200,
                          size=0 if bad else 512 + n % 4096, term=("SD--", "cD--", "CD--")[n % 3] if bad else "----",
                          c=n % 50, n=n)


def _line(i: int, when: datetime, n: int, shape: tuple[int, bool, bool, str]) -> str:
    every, long, stamped, kind = shape
    if kind == "haproxy":
        return _haproxy(i, when, n, every)
    t = when.strftime("%Y/%m/%d %H:%M:%S")
    line = (TIMEOUT if every and i % every == 0 else NGINX[i % len(NGINX)]).format(t=t, pid=4100 + i % 4, n=n)
    if long and i % 4 == 1:
        line = line[:-1] + f" referrer: \"https://app.example.test/r?q={'x' * (2048 + (n * 977) % 4096)}\"\n"
    return line if stamped else line[20:]


def make_log(path: Path, size: int, shape: tuple[int, bool, bool, str] = SHAPES["sparse"]) -> int:
    """Lines of nginx-error (or HAProxy) format with increasing timestamps over 24 hours,
    written by repeating a generated block of one second of traffic with the time shifted."""
    avg = max(1, len("".join(_line(i, START, i, shape) for i in range(256)).encode()) // 256)
    per_second = max(1, size // (24 * 3600 * avg))  # the day filled whatever the lines' length
    seconds = max(60, size // (per_second * avg))
    planted = {int((AT - START).total_seconds()) + k * 37 for k in range(PLANTED)}
    written = 0
    with path.open("wb", buffering=1 << 22) as f:
        for s in range(seconds):
            when = START + timedelta(seconds=s * 86400 / seconds)
            block = "".join(_line(i, when, s * per_second + i, shape) for i in range(per_second))
            if s in planted:
                reset = RESET.format(t=when.strftime("%Y/%m/%d %H:%M:%S"), pid=4100, n=s)
                if shape[3] == "haproxy":
                    reset = RESET_HAPROXY.format(t=when.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00"))
                block += reset if shape[2] else reset[20:]
            data = block.encode()
            f.write(data)
            written += len(data)
            if written >= size:
                break
    return written


WIZARD = r"""
import asyncio, gc, json, sys, time
gc.disable()  # as wizard.entry.run: start-up's objects made without collections, then frozen
sys.path.insert(0, {root!r})
from wizard.engine.discovery import checklist_path
from wizard.model import load_checklist
from wizard.hosts.local import LocalHost
from wizard.diag.logs.io.reader import LogReader
from wizard.diag.logs.io.cut import cut_window
from wizard.diag.logs.io.excerpt import excerpt_window
from wizard.diag.logs.io.scan import scan_file
from wizard.diag.logs.io import hsmatch
mode, path, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
sigs = [(s.id, s.regex) for s in load_checklist(checklist_path()).signatures]
gc.freeze(); gc.enable()  # wizard.entry.collect_again: the collector runs for what the command makes
async def main():
    start = time.perf_counter()
    if mode == "cut":
        cut = await cut_window(LogReader(LocalHost()), path, t0, t1)
        out = {{"lines": cut.lines, "bytes": len(cut.data), "bytes_read": cut.bytes_read,
               "fallback": cut.fallback}}
    elif mode == "excerpt":
        # keep: the check's max_matches (its default), the most lines it can quote
        win, inside = await excerpt_window(LogReader(LocalHost()), path, t0, t1, [r for _, r in sigs], keep=200)
        out = {{"lines": inside, "matched": sum(1 for l in win.lines if l.in_window and l.sigs) + len(win.more),
               "bytes_read": win.bytes_read, "method": win.method,
               "engine": "hyperscan" if hsmatch.AVAILABLE else "grep -F/-P + re", "notes": win.notes}}
    else:
        res = await scan_file(LocalHost(), path, sigs)
        out = {{"counts": res.counts, "candidates": res.candidates, "method": res.method,
               "engine": res.method, "notes": res.notes,
               "error": res.error, "unfiltered": res.unfiltered}}
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))
asyncio.run(main())
"""

# what the wizard's own commands run with; bytecode and the compiled signatures kept as an
# installed wizard keeps them (wizard.diag.logs.io.hscache), whatever this shell says
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "LC_ALL": "C"}


def once(argv: list[str]) -> tuple[float, float, str]:
    """Wall time, peak RSS (MB, from /usr/bin/time -f %M) and stdout of one run of ``argv``."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True, timeout=1800,
                          env=ENV)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.decode()[-400:]}")
    return wall, int(proc.stderr.decode().strip().splitlines()[-1]) / 1024, proc.stdout.decode()


def _window_rx(kind: str) -> str:
    """An ERE for the lines stamped in the 10 minutes around AT (grep's side of the cut)."""
    lo, hi = (AT - timedelta(minutes=5)), (AT + timedelta(minutes=5))
    fmt = "%Y-%m-%dT%H:%M" if kind == "haproxy" else "%Y/%m/%d %H:%M"
    return (f"^{lo:{fmt}}"[:-1] + f"[{lo.minute % 10}-9]|^{hi:{fmt}}"[:-1] + f"[0-{hi.minute % 10 - 1}]")


def measure(log: Path, ere: Path, rounds: int, kind: str) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """Medians of interleaved rounds, peak memory and the last output of every run on ``log``."""
    py = [sys.executable, "-c", WIZARD.format(root=str(ROOT))]
    t0, t1 = (AT - timedelta(minutes=5)).timestamp(), (AT + timedelta(minutes=5)).timestamp()
    runs: dict[str, list[str]] = {
        "cut": [*py, "cut", str(log), str(t0), str(t1)],
        "excerpt": [*py, "excerpt", str(log), str(t0), str(t1)],
        "scan": [*py, "scan", str(log), "0", "0"],
        "grep window": ["grep", "-a", "-E", _window_rx(kind), str(log)],
        "grep -c": ["grep", "-c", "-i", "connection reset by peer", str(log)],
        "grep -c -E -f": ["grep", "-c", "-a", "-i", "-E", "-f", str(ere), str(log)],
    }
    if shutil.which("rg"):
        runs["rg -c -f"] = ["rg", "-c", "-a", "-i", "-f", str(ere), str(log)]
        runs["rg -c"] = ["rg", "-c", "-i", "connection reset by peer", str(log)]
    walls: dict[str, list[float]] = {k: [] for k in runs}
    peaks: dict[str, float] = dict.fromkeys(runs, 0.0)
    outs: dict[str, str] = {}
    for _ in range(rounds):  # interleaved: load from other processes hits all alike
        for name, argv in runs.items():
            wall, peak, out = once(argv)
            if name in ("cut", "excerpt", "scan"):
                outs[name] = out
                wall = json.loads(out)["seconds"]  # without interpreter start-up
            elif name == "grep window":
                outs[name] = str(out.count("\n"))
            else:
                outs[name] = out.strip()
            walls[name].append(wall)
            peaks[name] = max(peaks[name], peak)
    return {k: statistics.median(v) for k, v in walls.items()}, peaks, outs


def _rows(shape: str, has_rg: bool) -> list[tuple[str, str, str, float | None]]:
    """(what, wizard run, reference run, goal) for a shape: issue 16's goals."""
    if not SHAPES[shape][2]:  # no timestamps: the excerpt is a search of the file's end
        rows = [("excerpt, no timestamps", "excerpt", "grep -c -E -f", 1.0),
                ("whole-file scan, no timestamps", "scan", "grep -c -E -f", 1.0)]
    else:
        rows = [("10-min window cut", "cut", "grep -c", None),
                ("10-min excerpt, all sigs", "excerpt", "grep -c", 0.05),
                ("10-min excerpt, all sigs", "excerpt", "grep window", None),
                ("whole-file scan, all sigs", "scan", "grep -c -E -f", 1.0)]
    if has_rg:
        rows.append((rows[-1][0], "scan", "rg -c -f", None))
    rows.append((rows[-1][0], "scan", "grep -c", None))
    return rows


def report(shape: str, log: Path, rounds: int, med: dict[str, float], peaks: dict[str, float],
           outs: dict[str, str]) -> list[tuple[str, float, float | None]]:
    print(f"\n{shape}: file {log.stat().st_size / (1 << 20):.0f} MiB, medians of {rounds} "
          f"interleaved rounds, LC_ALL=C\n")
    print("| what | wizard s | wizard MB | vs | s | MB | ratio | goal |")
    print("|---|---:|---:|---|---:|---:|---:|---|")
    ratios = []
    for what, w, o, goal in _rows(shape, "rg -c -f" in med):
        ratio = med[w] / med[o] if med[o] else float("inf")
        ok = "reference" if goal is None else f"<= {goal} " + ("met" if ratio <= goal else "NOT met")
        print(f"| {what} | {med[w]:.3f} | {peaks[w]:.0f} | {o} | {med[o]:.3f} | {peaks[o]:.0f} "
              f"| {ratio:.3f} | {ok} |")
        ratios.append((f"{what} vs {o}", ratio, goal))
    wiz = max(peaks["cut"], peaks["excerpt"], peaks["scan"])
    print(f"\nwizard peak memory: {wiz:.0f} MB (goal < 150 MB: {'met' if wiz < 150 else 'NOT met'})")
    for name in ("cut", "excerpt", "scan"):
        print(f"{name}:", outs[name].strip()[:300])
    print("lines with a signature: wizard", json.loads(outs["scan"]).get("candidates"), "grep -c -E -f",
          outs["grep -c -E -f"], "rg -c -f", outs.get("rg -c -f", "-"))
    ratios.append(("peak memory MB", wiz, 150.0))
    return ratios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log-size", "--size", dest="size", default="256M", help="each log's size (e.g. 50M, 1G)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: " + ", ".join(SHAPES))
    args = ap.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs /usr/bin/time (apt install time)")
    tmp = Path(tempfile.mkdtemp(prefix="rwpl-bench-"))
    ere = tmp / "signatures.ere"
    ere.write_text("".join(to_ere(s.regex) + "\n" for s in load_checklist(checklist_path()).signatures))
    bad = subprocess.run(["grep", "-E", "-f", str(ere), "/dev/null"], capture_output=True)
    if bad.returncode == 2:
        raise SystemExit(f"grep -E rejects a translated signature: {bad.stderr.decode()[:300]}")
    summary: list[tuple[str, str, float, float | None]] = []
    try:
        for shape in args.shapes.split(","):
            log = tmp / f"{shape}.log"
            t = time.perf_counter()
            size = make_log(log, parse_size(args.size), SHAPES[shape])
            print(f"wrote {size / (1 << 20):.0f} MiB ({shape}) in {time.perf_counter() - t:.1f}s", flush=True)
            subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
            med, peaks, outs = measure(log, ere, args.rounds, SHAPES[shape][3])
            summary += [(shape, *r) for r in report(shape, log, args.rounds, med, peaks, outs)]
            log.unlink()
        print(f"\nsummary (ratios; goal met?), {parse_size(args.size) >> 20} MiB logs, {args.rounds} rounds:")
        for shape, what, ratio, goal in summary:
            if goal is not None:
                print(f"  {shape:9} {what:55} {ratio:8.3f}  goal {goal:g}: {'met' if ratio <= goal else 'NOT met'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
