"""Benchmark (I/O): `diagnose` of a healthy server that never speaks, no --payload, beside
the same run of the code before the early stops (a git revision), interleaved, medians.

    .venv/bin/python bench/silent.py [--rounds N] [--baseline REV]

The server listens on an ephemeral loopback port (neither HTTP nor TLS, so no default
payload), accepts every connection, reads and discards what it gets and never answers nor
closes first: the healthy case in which every probe used to wait out its timeout (3 s)
for an answer such a server never sends. The baseline is the tree of ``--baseline``
(default: main before the early stops) exported to a temporary directory and run by the
same interpreter and virtualenv. Goal: this tree's run at most 0.3 of the baseline's.
Both must reach the same verdict (the ranked causes are compared).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.diagnose import bench_env, peak_mb  # noqa: E402

BASELINE = "dc894d9"  # main before the early stops: every silent wait was the whole timeout (11 s)
TIMEOUT = 120
GOAL = 0.3


class SilentServer:
    """Accepts on 127.0.0.1:0, swallows what it is sent, never writes, never closes first."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    if not conn.recv(65536):
                        return  # the client closed: close too (a FIN after the client's)
                except TimeoutError:
                    continue
                except OSError:
                    return

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (its wizard package and checklists) under ``into``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "wizard", "checklists"],
                          check=True, capture_output=True, timeout=60).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(tree: Path, target: str, out: Path) -> tuple[float, list[str]]:
    """Seconds of one quiet diagnose from ``tree``, and its ranked causes."""
    env = bench_env()
    env["PYTHONPATH"] = str(tree)
    out.unlink(missing_ok=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "wizard", "diagnose", target, "--quiet", "--json", str(out)],
                   cwd=tree, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    took = time.monotonic() - started
    causes = [d.get("cause", "") for d in json.loads(out.read_text()).get("diagnosis", [])] if out.exists() else []
    return took, causes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    args = parser.parse_args()

    server = SilentServer()
    target = f"127.0.0.1:{server.port}"
    try:
        with tempfile.TemporaryDirectory(prefix="rw-bench-silent-") as tmp:
            base = export(args.baseline, Path(tmp) / "base")
            out = Path(tmp) / "s.json"
            run(ROOT, target, out), run(base, target, out)  # warm the bytecode caches
            now_t: list[float] = []
            base_t: list[float] = []
            verdicts: dict[str, set[tuple[str, ...]]] = {"now": set(), "base": set()}
            for n in range(args.rounds):
                order = (("now", ROOT), ("base", base)) if n % 2 == 0 else (("base", base), ("now", ROOT))
                for who, tree in order:
                    took, causes = run(tree, target, out)
                    (now_t if who == "now" else base_t).append(took)
                    verdicts[who].add(tuple(causes[:1]))
    finally:
        server.stop()

    w, b = statistics.median(now_t), statistics.median(base_t)
    ratio = w / b if b else float("inf")
    print(f"target: a silent loopback server on port {server.port} (no default payload), "
          f"--timeout 3 (the default), {args.rounds} rounds interleaved")
    print(f"{'':26}{'median':>9}{'min':>9}{'max':>9}")
    print(f"{'diagnose, this tree':26}{w:8.2f}s{min(now_t):8.2f}s{max(now_t):8.2f}s   top cause {sorted(verdicts['now'])}")
    print(f"{'diagnose, ' + args.baseline:26}{b:8.2f}s{min(base_t):8.2f}s{max(base_t):8.2f}s   top cause {sorted(verdicts['base'])}")
    print(f"ratio now/baseline: {ratio:.2f} (goal <= {GOAL}): {'met' if ratio <= GOAL else 'NOT met'}")
    same = verdicts["now"] == verdicts["base"]
    print(f"same verdict as the baseline: {'yes' if same else 'NO'}")
    print(f"peak memory of any process run: {peak_mb():.0f} MB (goal < 150)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
