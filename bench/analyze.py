"""Benchmark (I/O): `reset-wizard analyze` against tshark and tcpdump on the same capture,
interleaved, with medians and ratios.

    .venv/bin/python bench/analyze.py [--size-mb 1024] [--rounds 3] [--keep]

The capture is generated (wizard.lab.pcapgen): connections of eight exchanges each, one in
a hundred ending in an RST (the server's application's, its kernel's or an injected one).
Every tool is timed on the command line, as a person would run it:
`tshark -r F -Y tcp.flags.reset==1`, `tcpdump -r F 'tcp[tcpflags] & tcp-rst != 0'` and
`reset-wizard analyze F --quiet`. Goals: analyze/tshark <= 0.25, analyze/tcpdump <= 2.0.
The capture is written under a temporary directory and removed afterwards (unless --keep).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wizard.lab.pcapgen import Ends, conversation, write_pcap  # noqa: E402

ENDINGS = ("server-app", "server-kernel", "path")
GOALS = {"tshark": 0.25, "tcpdump": 2.0}
TIMEOUT = 1800


def records(size_mb: int) -> Iterator[tuple[float, bytes]]:
    ends, budget, t, i = Ends(), size_mb << 20, 1.7e9, 0
    while budget > 0:
        ending = ENDINGS[(i // 100) % 3] if i % 100 == 99 else "fin"
        for ts, frame in conversation(ends, 1024 + i % 60000, t, ending, exchanges=8, size=1400):
            budget -= len(frame) + 16
            yield ts, frame
        t += 0.02
        i += 1


def timed(argv: list[str]) -> tuple[float, int, str]:
    started = time.monotonic()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT, text=True)
    return time.monotonic() - started, done.returncode, done.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated capture")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-analyze-"))
    path = tmp / "bench.pcap"
    try:
        started = time.monotonic()
        size = write_pcap(str(path), records(args.size_mb))
        print(f"capture: {size / (1 << 20):.0f} MiB, generated in {time.monotonic() - started:.1f}s")
        tools = {"analyze": [str(ROOT / ".venv/bin/reset-wizard"), "analyze", str(path), "--quiet"],
                 "tcpdump": ["tcpdump", "-nr", str(path), "tcp[tcpflags] & tcp-rst != 0"],
                 "tshark": ["tshark", "-n", "-r", str(path), "-Y", "tcp.flags.reset==1"]}
        tools = {k: v for k, v in tools.items() if shutil.which(v[0])}
        for missing in {"tcpdump", "tshark"} - tools.keys():
            print(f"{missing}: not installed (apt install {missing}), its ratio is not measured")
        times: dict[str, list[float]] = {k: [] for k in tools}
        for _ in range(args.rounds):  # interleaved: each round runs every tool once
            for name, argv in tools.items():
                seconds, code, out = timed(argv)
                if (code != 0 and name != "analyze") or code not in (0, 1):
                    print(f"{name} failed with exit {code}")
                    return 1
                times[name].append(seconds)
                if name == "analyze":
                    print(f"  analyze: {out.strip().splitlines()[0] if out.strip() else '(no output)'}")
        medians = {k: statistics.median(v) for k, v in times.items()}
        for name, median in medians.items():
            print(f"{name:>8}: median {median:.2f}s over {len(times[name])} rounds "
                  f"({', '.join(f'{t:.2f}' for t in times[name])})")
        met = True
        for other, goal in GOALS.items():
            if other in medians:
                ratio = medians["analyze"] / medians[other]
                ok = ratio <= goal
                met &= ok
                print(f"analyze / {other}: {ratio:.2f} (goal <= {goal}) {'met' if ok else 'NOT met'}")
        return 0 if met else 1
    finally:
        if args.keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
