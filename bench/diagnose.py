"""Benchmark (I/O): `reset-wizard diagnose` against a loopback target beside the classic
sequence of commands a person would type for the same facts, interleaved, with medians.

    .venv/bin/python bench/diagnose.py [--rounds N]

The target is the built-in demo (a loopback server that resets after each request, and its
log). Goal: the wizard's wall time at most 0.5 of the classic sequence. It also checks that the
headless path never imports textual (`python -X importtime`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wizard.lab.demo import start_demo  # noqa: E402

TIMEOUT = 60
PYCACHE = Path(tempfile.gettempdir()) / "rw-bench-pycache"


def bench_env() -> dict[str, str]:
    """The environment of every timed command: bytecode cached as an installed package has it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def peak_mb() -> float:
    """The largest peak RSS of any process this benchmark has run and waited for (MB): the
    wizard's runs, since the classic tools are far smaller. Goal: under 150 MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def request(host: str, port: int) -> list[str]:
    """The request the classic sequence sends: curl when it is there, else bash's /dev/tcp."""
    if shutil.which("curl"):
        return ["curl", "-sS", "-m", "3", "-o", "/dev/null", f"http://{host}:{port}/"]
    return ["bash", "-c", f"exec 3<>/dev/tcp/{host}/{port} && printf 'GET / HTTP/1.1\\r\\n\\r\\n' >&3 && cat <&3"]


def classic_commands(host: str, port: int, log: Path) -> list[list[str]]:
    """What a person types, one after another, to learn what one diagnose run reports."""
    return [
        ["getent", "hosts", host],
        ["ping", "-c", "3", host],
        request(host, port),
        ["ss", "-ltn"],
        ["nft", "list", "ruleset"],
        ["iptables-save"],
        ["grep", "-E", "-i", "reset|traceback|died|abort", str(log)],
    ]


def timed(argv: list[str]) -> tuple[float, int]:
    """Seconds from start to exit, and the exit status. A blocking wait, woken as the process
    ends: a wait with a timeout (``subprocess.run(timeout=)`` without pipes) polls, with
    sleeps growing to 50 ms, and so adds up to 50 ms to a run of a second or more (a 1.00 s
    sleep measured 1.066 s that way, 1.033 s this way). The timeout is a timer's kill."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=bench_env())
    killer = threading.Timer(TIMEOUT, proc.kill)
    killer.start()
    try:
        code = proc.wait()
    finally:
        killer.cancel()
    return time.monotonic() - started, code


def run_classic(commands: list[list[str]]) -> float:
    total = 0.0
    for argv in commands:
        total += timed(argv)[0]
    return total


def wizard_argv(target: str, log: Path) -> list[str]:
    # The same request the classic sequence sends, so both learn the same facts.
    return [sys.executable, "-m", "wizard", "diagnose", target, "--log", str(log), "--quiet",
            "--payload", r"GET / HTTP/1.1\r\n\r\n"]


def textual_imported(target: str, log: Path) -> list[str]:
    """Modules of textual (or rich) the headless run imported: should be none."""
    done = subprocess.run([sys.executable, "-X", "importtime", *wizard_argv(target, log)[1:]],
                          cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT,
                          env=bench_env())
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return sorted({n for n in names if n.split(".")[0] in ("textual", "rich")})


def floor_times(rounds: int) -> tuple[float, float]:
    """Medians of a bare interpreter start and of importing the CLI: what no check can beat."""
    bare = statistics.median(timed([sys.executable, "-c", "pass"])[0] for _ in range(rounds))
    cli = statistics.median(timed([sys.executable, "-c", "import wizard.cli"])[0] for _ in range(rounds))
    return bare, cli


def step_breakdown(target: str, log: Path) -> list[tuple[str, int, int, str]]:
    """Per step of one run (from --json): when its first check started and its last ended,
    in ms from the run's start (steps 2-5 overlap), and its slowest check."""
    from datetime import datetime

    def at(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    with tempfile.TemporaryDirectory(prefix="rwpd-bench-") as tmp:
        out = Path(tmp) / "s.json"
        subprocess.run([*wizard_argv(target, log), "--json", str(out)], cwd=ROOT, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=TIMEOUT, env=bench_env())
        if not out.exists():
            return []
        session = json.loads(out.read_text())
    rows = []
    origin = None
    for step in session.get("steps", []):
        checks = [c for c in step.get("checks") or [] if c.get("started_at")]
        if checks:
            starts = [at(c["started_at"]) for c in checks]
            ends = [t + (c.get("duration_ms") or 0) / 1000 for t, c in zip(starts, checks, strict=True)]
            origin = min(starts) if origin is None else origin
            slow = max(checks, key=lambda c: c.get("duration_ms") or 0)
            rows.append((step["id"], int((min(starts) - origin) * 1000), int((max(ends) - origin) * 1000),
                         slow["id"]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with start_demo() as demo:
        host, port = demo.target.rsplit(":", 1)
        commands = [c for c in classic_commands(host, int(port), demo.log_path) if shutil.which(c[0])]
        missing = [c[0] for c in classic_commands(host, int(port), demo.log_path) if not shutil.which(c[0])]
        timed(wizard_argv(demo.target, demo.log_path))  # fills the bytecode cache; not counted
        wizard_times: list[float] = []
        classic_times: list[float] = []
        codes: set[int] = set()
        for n in range(args.rounds):
            # Interleaved, alternating who goes first, so drift in machine load hits both alike.
            order = ("wizard", "classic") if n % 2 == 0 else ("classic", "wizard")
            for who in order:
                if who == "wizard":
                    seconds, code = timed(wizard_argv(demo.target, demo.log_path))
                    wizard_times.append(seconds)
                    codes.add(code)
                else:
                    classic_times.append(run_classic(commands))
        leaked = textual_imported(demo.target, demo.log_path)
        breakdown = step_breakdown(demo.target, demo.log_path)
        bare, cli = floor_times(args.rounds)

    w, c = statistics.median(wizard_times), statistics.median(classic_times)
    print(f"target: the demo scenario (loopback, resets after each request), {args.rounds} rounds interleaved")
    print(f"classic sequence: {', '.join(' '.join(a[:2]) for a in commands)}")
    if missing:
        print(f"  (not installed, left out of the classic sequence: {', '.join(missing)})")
    print(f"{'':22}{'median':>9}{'min':>9}{'max':>9}")
    print(f"{'reset-wizard diagnose':22}{w:8.2f}s{min(wizard_times):8.2f}s{max(wizard_times):8.2f}s"
          f"   exit codes {sorted(codes)}")
    print(f"{'classic sequence':22}{c:8.2f}s{min(classic_times):8.2f}s{max(classic_times):8.2f}s")
    ratio = w / c if c else float("inf")
    # issue 16: "≤ 0.5"; three decimals, so that a ratio of 0.506 is not printed as 0.50
    print(f"ratio wizard/classic: {ratio:.3f} (goal <= 0.5): {'met' if ratio <= 0.5 else 'NOT met'}")
    if breakdown:
        print("steps 2-5 overlap; each step's span in ms from the run's start, and its slowest check (one run):")
        for step_id, start, end, check in breakdown:
            print(f"  {step_id:<14}{start:6d} - {end:5d} ms  {check}")
    print(f"floor: interpreter start {bare:.2f}s, `import wizard.cli` {cli:.2f}s "
          f"(= {cli / c if c else 0:.2f} of the classic sequence before any check runs)")
    print(f"headless path imported textual/rich: {', '.join(leaked) if leaked else 'no'}")
    print(f"peak memory of any process run (the wizard's): {peak_mb():.0f} MB (goal < 150)")
    return 0 if not leaked else 1


if __name__ == "__main__":
    raise SystemExit(main())
