"""Benchmark (I/O, root): what `reset-wizard watch` costs and what it catches.

    sudo .venv/bin/python bench/watch.py [--rate 200] [--every 50] [--seconds 20] [--rounds 3]

A loopback server answers requests and aborts every N-th (SO_LINGER 0: the server's
application resets); a client makes requests at a fixed rate; `watch` observes the port.
Printed: the watcher's CPU share of one core (its utime+stime over the traffic's wall time,
from /proc), and the fraction of the resets the client saw that the watcher caught and
attributed to the server's application, and the watcher's peak memory (VmHWM). A row per
round gives the watcher's CPU share in each 10 s of the traffic (and how much of it is user
space, Python's), with its least-squares slope per minute: a watcher that costs more per
second the longer it runs shows as a rising row; flat is a slope near 0. Goals
(this project's): CPU share <= 10% at 200 requests/s, caught and attributed >= 99%, peak
memory <= 150 MiB. The watcher runs with its kernel events: in a mount namespace of its own
(unshare -m) with --allow-tracefs-mount, so a tracefs it mounts is seen by nothing else and
goes with it. Rounds are medians of --rounds runs. Nothing is left behind (the server, the
client and the watcher are stopped; the watcher removes its own socket and tracefs instance).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"cpu_share": 0.10, "caught": 0.99, "peak_mib": 150.0}


def server(port: int, every: int, stop: threading.Event) -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(512)
    s.settimeout(0.2)
    n = 0
    while not stop.is_set():
        try:
            c, _ = s.accept()
        except TimeoutError:
            continue
        n += 1
        try:
            c.recv(4096)
            if n % every == 0:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                c.sendall(b"HTTP/1.0 200 OK\r\n\r\nok")
        except OSError:
            pass
        c.close()
    s.close()


def client(port: int, rate: float, seconds: float) -> tuple[int, int]:
    """(requests made, resets seen) at ``rate`` requests per second."""
    made = resets = 0
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=2)
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while c.recv(4096):
                pass
            c.close()
        except ConnectionResetError:
            resets += 1
        except OSError:
            pass
        made += 1
        time.sleep(max(0.0, start + made / rate - now))
    return made, resets


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


INTERVAL_S = 10.0


class Intervals:
    """The watcher's CPU seconds per INTERVAL_S of the traffic, sampled from /proc in a thread:
    a watcher that costs more per second the longer it runs shows as a rising row (and slope)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.stop = pid, threading.Event()
        self.cpu: list[float] = []  # CPU seconds of each full interval
        self.user: list[float] = []  # of which in user space (Python)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last, start = cpu_split(self.pid), time.monotonic()
        while not self.stop.wait(max(0.0, start + (len(self.cpu) + 1) * INTERVAL_S - time.monotonic())):
            now = cpu_split(self.pid)
            self.cpu.append(sum(now) - sum(last))
            self.user.append(now[0] - last[0])
            last = now

    def __enter__(self) -> Intervals:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    @property
    def shares(self) -> list[float]:
        return [c / INTERVAL_S for c in self.cpu]


def slope(shares: list[float]) -> float:
    """The least-squares slope of the share per interval, per minute of the run (0 with fewer than 2)."""
    n = len(shares)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(shares) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(shares))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den * (60.0 / INTERVAL_S)


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_round(args: argparse.Namespace) -> dict[str, float]:
    stop = threading.Event()
    threading.Thread(target=server, args=(args.port, args.every, stop), daemon=True).start()
    # unshare -m execs python: the watcher's pid is the one Popen knows (its CPU and memory are read there).
    watcher = subprocess.Popen(["unshare", "--mount", "--propagation", "slave", sys.executable, "-m", "wizard",
                                "watch", f"127.0.0.1:{args.port}", "--for", f"{int(args.seconds + 60)}s",
                                "--json", "-", *([] if args.no_kernel else ["--allow-tracefs-mount"])],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    dump: subprocess.Popen[bytes] | None = None
    try:
        assert watcher.stdout is not None
        ready, _, _ = select.select([watcher.stdout], [], [], 60)
        first = watcher.stdout.readline() if ready else ""
        assert json.loads(first)["type"] == "start", first
        # The classic tool beside it, on the same traffic: tcpdump reading what the watcher
        # reads (the port's packets, headers only), written to /dev/null.
        dump = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-s", "128", "-w", "/dev/null",
                                 f"tcp port {args.port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        # Read the stream as it comes, as a consumer would: a full pipe would stall the watcher.
        lines: list[str] = [first]
        reader = threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        cpu_before, wall_before = cpu_seconds(watcher.pid), time.monotonic()
        dump_before = cpu_seconds(dump.pid)
        with Intervals(watcher.pid) as intervals:
            made, seen = client(args.port, args.rate, args.seconds)
            time.sleep(1.0)  # the last resets' settle time (and the last interval's end)
        cpu, wall = cpu_seconds(watcher.pid) - cpu_before, time.monotonic() - wall_before
        dump_cpu = cpu_seconds(dump.pid) - dump_before
        dump.terminate()
        dump.wait(10)
        peak = peak_mib(watcher.pid)
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
        reader.join(timeout=10)
        out = "".join(lines)
    finally:
        stop.set()
        for proc in (watcher, dump):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    if os.environ.get("RW_BENCH_DEBUG"):
        from collections import Counter
        print(Counter((e.get("type"), e.get("toward"), e.get("sender")) for e in events))
    caught = [e for e in events if e.get("type") == "reset" and e.get("toward") == "client"]
    right = [e for e in caught if e.get("sender") == "server-app"]
    reasons = [e for e in right if e.get("kernel_reason")]
    lost = next((e.get("lost_packets") for e in events if e.get("type") == "end"), None)
    print(f"  round: {made} requests in {wall:.1f}s ({made / wall:.0f}/s), {seen} resets seen by the client, "
          f"{len(caught)} caught, {len(right)} attributed to the server's application ({len(reasons)} with the "
          f"kernel's reason); packets the capture lost: {lost}; watcher {cpu:.2f}s CPU, tcpdump {dump_cpu:.2f}s, peak {peak:.0f} MiB; "
          f"kernel: {events[0].get('kernel')}", flush=True)
    shares = intervals.shares
    print(f"  CPU share per {INTERVAL_S:.0f} s: " + " ".join(f"{x:.1%}" for x in shares)
          + f"; slope {slope(shares):+.2%} of a core per minute; of which user space: "
          + " ".join(f"{u / INTERVAL_S:.1%}" for u in intervals.user), flush=True)
    return {"rate": made / wall, "share": cpu / wall, "dump_share": dump_cpu / wall, "fraction": len(right) / seen if seen else 1.0, "peak": peak,
            "slope": slope(shares), "with_reason": len(reasons) / len(right) if right else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--port", type=int, default=18790)
    ap.add_argument("--no-kernel", action="store_true", help="without tracefs (the capture and counters only)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/watch.py needs root (watch opens a packet socket): sudo ...")
        return 2
    rounds = []
    for i in range(args.rounds):
        args.port += i  # a fresh port each round: no TIME_WAIT of the last one in the way
        rounds.append(one_round(args))
    share = statistics.median(r["share"] for r in rounds)
    fraction = statistics.median(r["fraction"] for r in rounds)
    peak = max(r["peak"] for r in rounds)
    rate = statistics.median(r["rate"] for r in rounds)
    print(f"watcher CPU (median of {len(rounds)}): {share:.1%} of one core at {rate:.0f} requests/s "
          f"(asked {args.rate:.0f}/s; the client is one thread) "
          f"(goal <= {GOALS['cpu_share']:.0%}) {'met' if share <= GOALS['cpu_share'] else 'NOT met'}")
    print(f"watcher CPU share's slope over the round (median): "
          f"{statistics.median(r['slope'] for r in rounds):+.2%} of a core per minute (flat: about 0)")
    dump_share = statistics.median(r["dump_share"] for r in rounds)
    ratio = f"watch / tcpdump = {share / dump_share:.1f}x" if dump_share >= 0.001 else \
        "tcpdump's CPU is under the clock's resolution (no ratio)"
    print(f"tcpdump on the same traffic (the port's headers to /dev/null, median): {dump_share:.1%} of one core; "
          + ratio)
    print(f"caught and attributed to the server's application (median): {fraction:.1%} "
          f"(goal >= {GOALS['caught']:.0%}) {'met' if fraction >= GOALS['caught'] else 'NOT met'}; "
          f"with the kernel's reason: {statistics.median(r['with_reason'] for r in rounds):.1%}")
    print(f"watcher peak memory (largest of the rounds): {peak:.0f} MiB "
          f"(goal <= {GOALS['peak_mib']:.0f} MiB) {'met' if peak <= GOALS['peak_mib'] else 'NOT met'}")
    ok = share <= GOALS["cpu_share"] and fraction >= GOALS["caught"] and peak <= GOALS["peak_mib"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
