"""Benchmark (I/O, root): what `reset-wizard watch` costs and what it catches.

    sudo .venv/bin/python bench/watch.py [--rate 200] [--every 50] [--seconds 20]

A loopback server answers requests and aborts every N-th (SO_LINGER 0: the server's
application resets); a client makes requests at a fixed rate; `watch` observes the port.
Printed: the watcher's CPU share of one core (its utime+stime over the traffic's wall time,
from /proc), and the fraction of the resets the client saw that the watcher caught and
attributed to the server's application. Goals (this project's): CPU share <= 10% at 200
requests/s, caught and attributed >= 99%. Nothing is left behind (the server, the client
and the watcher are stopped; the watcher removes its own socket and tracefs instance).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"cpu_share": 0.10, "caught": 0.99}


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--port", type=int, default=18790)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/watch.py needs root (watch opens a packet socket): sudo ...")
        return 2
    stop = threading.Event()
    threading.Thread(target=server, args=(args.port, args.every, stop), daemon=True).start()
    watcher = subprocess.Popen([str(ROOT / ".venv/bin/reset-wizard"), "watch", f"127.0.0.1:{args.port}",
                                "--for", f"{int(args.seconds + 60)}s", "--json", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert watcher.stdout is not None
        ready, _, _ = select.select([watcher.stdout], [], [], 60)
        assert ready and json.loads(watcher.stdout.readline())["type"] == "start"
        # Read the stream as it comes, as a consumer would: a full pipe would stall the watcher.
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        cpu_before, wall_before = cpu_seconds(watcher.pid), time.monotonic()
        made, seen = client(args.port, args.rate, args.seconds)
        time.sleep(1.0)  # the last resets' settle time
        cpu, wall = cpu_seconds(watcher.pid) - cpu_before, time.monotonic() - wall_before
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
        reader.join(timeout=10)
        out = "".join(lines)
    finally:
        stop.set()
        if watcher.poll() is None:
            watcher.kill()
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    if os.environ.get("RW_BENCH_DEBUG"):
        from collections import Counter
        print(Counter((e.get("type"), e.get("toward"), e.get("sender")) for e in events))
    caught = [e for e in events if e.get("type") == "reset" and e.get("toward") == "client"]
    right = [e for e in caught if e.get("sender") == "server-app"]
    share = cpu / wall
    fraction = len(right) / seen if seen else 1.0
    print(f"traffic: {made} requests in {wall:.1f}s ({made / wall:.0f}/s), {seen} resets seen by the client")
    print(f"watcher CPU: {cpu:.2f}s over {wall:.1f}s = {share:.1%} of one core "
          f"(goal <= {GOALS['cpu_share']:.0%}) {'met' if share <= GOALS['cpu_share'] else 'NOT met'}")
    print(f"caught {len(caught)}, attributed to the server's application {len(right)} of {seen}: "
          f"{fraction:.1%} (goal >= {GOALS['caught']:.0%}) {'met' if fraction >= GOALS['caught'] else 'NOT met'}")
    return 0 if share <= GOALS["cpu_share"] and fraction >= GOALS["caught"] else 1


if __name__ == "__main__":
    sys.exit(main())
