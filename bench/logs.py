"""Benchmark of the log reader on a synthetic log (default 1 GB): the time-window excerpt
against grep over the whole file, the whole-file signature scan against grep -c and rg -c,
and the peak memory of each. Medians of N rounds; prints the ratios.

    .venv/bin/python bench/logs.py [--size 1G] [--rounds 3]

The file is written in a temporary directory and removed afterwards. The wizard's side runs
in a child Python process, so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wizard.checks import checklist_path  # noqa: E402
from wizard.model import load_checklist  # noqa: E402
from wizard.probes.logs import required_literals  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 21, 0, 0, 0, tzinfo=timezone.utc)
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


def parse_size(text: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * mult[text[-1].upper()]) if text[-1].upper() in mult else int(text)


def make_log(path: Path, size: int) -> int:
    """Lines of nginx-error format with increasing timestamps over 24 hours, written by
    repeating a generated block of one second of traffic with the time shifted."""
    per_second = max(1, size // (24 * 3600 * 150))  # about 150 bytes a line
    seconds = max(60, size // (per_second * 150))
    planted = {int((AT - START).total_seconds()) + k * 37 for k in range(PLANTED)}
    written = 0
    with path.open("wb", buffering=1 << 22) as f:
        for s in range(seconds):
            t = (START + timedelta(seconds=s * 86400 / seconds)).strftime("%Y/%m/%d %H:%M:%S")
            block = "".join(NGINX[i % len(NGINX)].format(t=t, pid=4100 + i % 4, n=s * per_second + i)
                            for i in range(per_second))
            if s in planted:
                block += RESET.format(t=t, pid=4100, n=s)
            data = block.encode()
            f.write(data)
            written += len(data)
            if written >= size:
                break
    return written


WIZARD = r"""
import asyncio, json, resource, sys, time
sys.path.insert(0, {root!r})
from wizard.checks import checklist_path
from wizard.model import load_checklist
from wizard.probes.hosts import LocalHost
from wizard.probes.logs import LogReader, scan_file
mode, path, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
async def main():
    start = time.perf_counter()
    if mode == "window":
        win = await LogReader(LocalHost()).window(path, t0, t1)
        out = {{"lines": sum(1 for l in win.lines if l.in_window), "bytes_read": win.bytes_read,
               "method": win.method}}
    else:
        sigs = [(s.id, s.regex) for s in load_checklist(checklist_path()).signatures]
        res = await scan_file(LocalHost(), path, sigs)
        out = {{"counts": res.counts, "candidates": res.candidates, "method": res.method,
               "error": res.error, "unfiltered": res.unfiltered}}
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))
asyncio.run(main())
"""


def timed(argv: list[str], rounds: int) -> tuple[float, float, str]:
    """Median wall time and peak RSS (MB, from /usr/bin/time -f %M) of ``argv``."""
    walls, peaks, out = [], [], ""
    for _ in range(rounds):
        t = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True, timeout=1800)
        walls.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{argv[0]} failed: {proc.stderr.decode()[-400:]}")
        peaks.append(int(proc.stderr.decode().strip().splitlines()[-1]) / 1024)
        out = proc.stdout.decode()
    return statistics.median(walls), max(peaks), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G", help="log size (e.g. 50M, 1G)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="write the log here and keep it")
    args = ap.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs /usr/bin/time (apt install time)")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="rwlg-bench-"))
    log = tmp / "error.log"
    try:
        if not log.exists():
            t = time.perf_counter()
            size = make_log(log, parse_size(args.size))
            print(f"wrote {size / (1 << 20):.0f} MiB in {time.perf_counter() - t:.1f}s: {log}")
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        py = [sys.executable, "-c", WIZARD.format(root=str(ROOT))]
        t0, t1 = (AT - timedelta(minutes=5)).timestamp(), (AT + timedelta(minutes=5)).timestamp()
        minute = (AT - timedelta(minutes=5)).strftime("%Y/%m/%d %H:%M")[:-1]
        rows = []
        w_win, m_win, o_win = timed([*py, "window", str(log), str(t0), str(t1)], args.rounds)
        w_win_wall, w_win = w_win, json.loads(o_win)["seconds"]  # without interpreter start-up
        g_win, gm_win, _ = timed(["grep", "-a", "-E", f"^{minute}[5-9]|^" + (AT + timedelta(minutes=5)).strftime("%Y/%m/%d %H:%M")[:-1] + "[0-4]", str(log)], args.rounds)
        rows.append(("10-minute window", w_win, m_win, "grep (whole file)", g_win, gm_win, 0.05))
        w_scan, m_scan, o_scan = timed([*py, "scan", str(log), "0", "0"], args.rounds)
        w_scan_wall, w_scan = w_scan, json.loads(o_scan)["seconds"]
        g_scan, gm_scan, g_out = timed(["grep", "-c", "-i", "connection reset by peer", str(log)], args.rounds)
        rows.append(("signature scan", w_scan, m_scan, "grep -c (1 literal)", g_scan, gm_scan, 1.0))
        lits = sorted(set().union(*(required_literals(s.regex) or set() for s in
                                    load_checklist(checklist_path()).signatures)))
        same = [a for lit in lits for a in ("-e", lit)]
        f_scan, fm_scan, _ = timed(["grep", "-c", "-a", "-i", "-F", *same, str(log)], args.rounds)
        rows.append(("signature scan", w_scan, m_scan, "grep -c -F (all sigs)", f_scan, fm_scan, 1.0))
        if shutil.which("rg"):
            r_scan, rm_scan, _ = timed(["rg", "-c", "-i", "connection reset by peer", str(log)], args.rounds)
            rows.append(("signature scan", w_scan, m_scan, "rg -c (1 literal)", r_scan, rm_scan, None))
        print(f"\nfile {log.stat().st_size / (1 << 20):.0f} MiB, medians of {args.rounds} rounds\n")
        print(f"{'what':<18}{'wizard s':>10}{'MB':>7}  {'vs':<18}{'s':>8}{'MB':>7}{'ratio':>8}  goal")
        for what, w, m, other, o, om, goal in rows:
            ratio = w / o if o else float("inf")
            ok = "" if goal is None else ("met" if ratio <= goal else "NOT met")
            print(f"{what:<18}{w:>10.3f}{m:>7.0f}  {other:<18}{o:>8.3f}{om:>7.0f}{ratio:>8.3f}  "
                  + (f"<= {goal} {ok}" if goal is not None else "(reference)"))
        print(f"\nwizard peak memory: {max(m_win, m_scan):.0f} MB (goal < 150 MB: "
              f"{'met' if max(m_win, m_scan) < 150 else 'NOT met'})")
        print(f"(wizard times are measured inside its process; with Python start-up and imports: "
              f"window {w_win_wall:.3f}s, scan {w_scan_wall:.3f}s)")
        print("window:", o_win.strip())
        print("scan:", o_scan.strip()[:400], "| grep -c:", g_out.strip())
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
