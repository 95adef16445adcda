"""Run every benchmark of bench/ once, one after another, and keep their output in one file.

    sudo .venv/bin/python bench/all.py [--out FILE] [--quick]

README's performance table is written from one such file (it names the run: date, machine
load before and after each benchmark). `bench/probe.py` (network namespaces) and
`bench/watch.py` (a packet socket, a tracefs) need root; they are left out, with the reason, when
not root. --quick runs fewer rounds, a smaller log and capture, shorter watch rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHES = (  # (script, arguments, arguments with --quick)
    ("bench/diagnose.py", ["--rounds", "5"], ["--rounds", "3"]),
    ("bench/silent.py", ["--rounds", "5"], ["--rounds", "3"]),
    ("bench/tui.py", ["--rounds", "5"], ["--rounds", "3"]),
    ("bench/startup.py", [], ["-n", "5"]),
    ("bench/probe.py", ["--rounds", "5"], ["--rounds", "3"]),
    ("bench/logs.py", ["--log-size", "1G", "--rounds", "5"], ["--log-size", "256M", "--rounds", "3"]),
    ("bench/analyze.py", ["--rounds", "5"], ["--size-mb", "256", "--rounds", "3"]),
    ("bench/watch.py", ["--rounds", "3", "--seconds", "60"], ["--rounds", "3", "--seconds", "20"]),
)
NEEDS_ROOT = {  # benchmark -> why it is left out when not root
    "probe": "needs root for its namespaces",
    "watch": "needs root: watch opens a packet socket and mounts a tracefs of its own",
}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="run only these (e.g. diagnose logs)")
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
    out = args.out or Path("/tmp") / f"rw-bench-{stamp}.txt"
    failed = []
    with out.open("w", encoding="utf-8") as fh:
        fh.write(f"# bench/all.py run {stamp} on {os.uname().nodename}, {os.cpu_count()} CPUs, "
                 f"commit {git_head()}\n")
        for script, full, quick in BENCHES:
            name = Path(script).stem
            if args.only is not None and name not in args.only:
                continue
            if name in NEEDS_ROOT and os.geteuid() != 0:
                fh.write(f"\n## {script}: left out ({NEEDS_ROOT[name]})\n")
                continue
            argv = [sys.executable, script, *(quick if args.quick else full)]
            fh.write(f"\n## {' '.join([script, *argv[2:]])}  (load before: {load()})\n")
            fh.flush()
            started = time.monotonic()
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            fh.write(done.stdout)
            if done.returncode != 0:
                failed.append(name)
                fh.write(f"[exit {done.returncode}]\n{done.stderr[-3000:]}\n")
            fh.write(f"(took {time.monotonic() - started:.0f} s; load after: {load()})\n")
            fh.flush()
            print(f"{name}: exit {done.returncode}, {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(out)
    return 1 if failed else 0


def git_head() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    raise SystemExit(main())
