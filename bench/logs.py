"""Benchmark of the log reader on a synthetic log (default 1 GB): the time-window excerpt
against grep over the whole file, the whole-file signature scan against grep -c and rg -c,
and the peak memory of each. Medians of N rounds; prints the ratios.

The scan is compared with grep -c and rg -c doing the same job: counting the lines that
match any of the checklist's 42 signatures, given to them as extended regexes (``to_ere``:
Python's ``\d \s \S (?:`` spelled in POSIX, a negative lookahead left out, which only
widens). grep -P and rg -P read the Python syntax as it is but take minutes a gigabyte, so
they are not run. A one-literal ``grep -c -i "connection reset by peer"`` (1 of the 42
signatures) is timed too, as the floor a single search reaches.

    .venv/bin/python bench/logs.py [--size 1G] [--rounds 5]

The file is written in a temporary directory and removed afterwards. The wizard's side runs
in a child Python process, so its peak memory (ru_maxrss) is its own.
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wizard.checks import checklist_path  # noqa: E402
from wizard.model import load_checklist  # noqa: E402

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


def to_ere(rx: str) -> str:
    """A checklist signature (Python syntax) as a POSIX extended regex for grep -E / rg."""
    rx = rx.replace("(?:", "(").replace(r"\d", "[0-9]").replace(r"\S", "[^[:space:]]")
    rx = rx.replace(r"\s", "[[:space:]]")
    return re.sub(r"\(\?![^)]*\)", "", rx)


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
import asyncio, json, sys, time
sys.path.insert(0, {root!r})
from wizard.checks import checklist_path
from wizard.model import load_checklist
from wizard.probes.hosts import LocalHost
from wizard.probes.logs import LogReader
from wizard.probes.logcut import cut_window, excerpt_window
from wizard.probes.logscan import scan_file
from wizard.probes import hsmatch
mode, path, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
sigs = [(s.id, s.regex) for s in load_checklist(checklist_path()).signatures]
async def main():
    start = time.perf_counter()
    if mode == "cut":
        cut = await cut_window(LogReader(LocalHost()), path, t0, t1)
        out = {{"lines": cut.lines, "bytes": len(cut.data), "bytes_read": cut.bytes_read,
               "fallback": cut.fallback}}
    elif mode == "excerpt":
        win, inside = await excerpt_window(LogReader(LocalHost()), path, t0, t1, [r for _, r in sigs])
        out = {{"lines": inside, "matched": sum(1 for l in win.lines if l.in_window),
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

ENV = {**os.environ, "LC_ALL": "C"}  # what the wizard's own commands run with


def once(argv: list[str]) -> tuple[float, float, str]:
    """Wall time, peak RSS (MB, from /usr/bin/time -f %M) and stdout of one run of ``argv``."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], capture_output=True, timeout=1800,
                          env=ENV)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.decode()[-400:]}")
    return wall, int(proc.stderr.decode().strip().splitlines()[-1]) / 1024, proc.stdout.decode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G", help="log size (e.g. 50M, 1G)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="write the log here and keep it")
    args = ap.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs /usr/bin/time (apt install time)")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="rwpl-bench-"))
    log = tmp / "error.log"
    try:
        if not log.exists():
            t = time.perf_counter()
            size = make_log(log, parse_size(args.size))
            print(f"wrote {size / (1 << 20):.0f} MiB in {time.perf_counter() - t:.1f}s: {log}")
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        py = [sys.executable, "-c", WIZARD.format(root=str(ROOT))]
        ere = tmp / "signatures.ere"
        ere.write_text("".join(to_ere(s.regex) + "\n" for s in load_checklist(checklist_path()).signatures))
        bad = subprocess.run(["grep", "-E", "-f", str(ere), "/dev/null"], capture_output=True)
        if bad.returncode == 2:
            raise SystemExit(f"grep -E rejects a translated signature: {bad.stderr.decode()[:300]}")
        t0, t1 = (AT - timedelta(minutes=5)).timestamp(), (AT + timedelta(minutes=5)).timestamp()
        lo, hi = (AT - timedelta(minutes=5)), (AT + timedelta(minutes=5))
        window_rx = (f"^{lo:%Y/%m/%d %H:%M}"[:-1] + f"[{lo.minute % 10}-9]|^{hi:%Y/%m/%d %H:%M}"[:-1]
                     + f"[0-{hi.minute % 10 - 1}]")
        runs: dict[str, list[str]] = {
            "cut": [*py, "cut", str(log), str(t0), str(t1)],
            "excerpt": [*py, "excerpt", str(log), str(t0), str(t1)],
            "scan": [*py, "scan", str(log), "0", "0"],
            "grep window": ["grep", "-a", "-E", window_rx, str(log)],
            "grep -c": ["grep", "-c", "-a", "-i", "-E", "-f", str(ere), str(log)],
            "grep -c 1 literal": ["grep", "-c", "-i", "connection reset by peer", str(log)],
        }
        if shutil.which("rg"):
            runs["rg -c"] = ["rg", "-c", "-a", "-i", "-f", str(ere), str(log)]
            runs["rg -c 1 literal"] = ["rg", "-c", "-i", "connection reset by peer", str(log)]
        walls: dict[str, list[float]] = {k: [] for k in runs}
        peaks: dict[str, float] = {k: 0.0 for k in runs}
        outs: dict[str, str] = {}
        for _ in range(args.rounds):  # interleaved: load from other processes hits all alike
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
        med = {k: statistics.median(v) for k, v in walls.items()}
        rows: list[tuple[str, str, str, float | None]] = [
            ("10-min window cut", "cut", "grep window", 0.05),
            ("10-min excerpt, 42 sigs", "excerpt", "grep window", 0.05),
            ("signature scan, 42 sigs", "scan", "grep -c", 1.0)]
        if "rg -c" in runs:
            rows.append(("signature scan, 42 sigs", "scan", "rg -c", 1.0))
        rows.append(("signature scan, 42 sigs", "scan", "grep -c 1 literal", None))
        if "rg -c" in runs:
            rows.append(("signature scan, 42 sigs", "scan", "rg -c 1 literal", None))
        print(f"\nfile {log.stat().st_size / (1 << 20):.0f} MiB, medians of {args.rounds} "
              f"interleaved rounds, LC_ALL=C\n")
        print("| what | wizard s | wizard MB | vs | s | MB | ratio | goal |")
        print("|---|---:|---:|---|---:|---:|---:|---|")
        for what, w, o, goal in rows:
            ratio = med[w] / med[o] if med[o] else float("inf")
            ok = "reference" if goal is None else f"<= {goal} " + ("met" if ratio <= goal else "NOT met")
            print(f"| {what} | {med[w]:.3f} | {peaks[w]:.0f} | {o} | {med[o]:.3f} | {peaks[o]:.0f} "
                  f"| {ratio:.3f} | {ok} |")
        print("\nengines: excerpt " + json.loads(outs["excerpt"]).get("engine", "?")
              + ", scan " + json.loads(outs["scan"]).get("engine", "?"))
        wiz = max(peaks["cut"], peaks["excerpt"], peaks["scan"])
        print(f"\nwizard peak memory: {wiz:.0f} MB (goal < 150 MB: {'met' if wiz < 150 else 'NOT met'})")
        print("all runs (s):", json.dumps({k: [round(x, 3) for x in v] for k, v in walls.items()}))
        for name in ("cut", "excerpt", "scan"):
            print(f"{name}:", outs[name].strip()[:400])
        print("grep window lines:", outs["grep window"], "| lines with a signature: wizard",
              json.loads(outs["scan"]).get("candidates"), "grep -c", outs["grep -c"],
              "rg -c", outs.get("rg -c", "-"), "| one literal: grep -c", outs["grep -c 1 literal"],
              "rg -c", outs.get("rg -c 1 literal", "-"))
        print("grep -c / rg -c: -E -f with the signatures as extended regexes; "
              "'1 literal': -i \"connection reset by peer\" alone")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
