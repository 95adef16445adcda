"""Benchmark of the packet probe on a lab path (root): per-probe cost and traceroute wall time.

Builds client ns <-> router ns <-> server ns (names rwpk-b*-TAG, removed at the end), then,
from inside the client namespace, times a plain connect() beside the scapy SYN probe (with
its nft guard), and the parallel TCP traceroute beside `traceroute -n -T` on the same path.
Prints ratios (medians of --rounds); the goal is traceroute <= 1.5 x `traceroute -n -T`.
Ours is timed inside one process after the first probe (scapy imported, guard table in
place, as in a diagnose run where the SYN probe and the traceroute share one), and also
cold, with its own guard table added.

    sudo .venv/bin/python bench/probe.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
SERVER = "10.78.2.2"

MEASURE = textwrap.dedent("""
    import asyncio, json, statistics, sys, time
    from wizard.diag.packets.io.capture import PacketProbe
    from wizard.diag.net.io.tcp import TcpProbe
    async def main(addr, port, rounds):
        tcp, pk = TcpProbe(), PacketProbe()
        t = time.perf_counter()
        await pk.syn(addr, port)  # scapy import, raw socket, routes and the guard table
        first = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(rounds):
            await tcp.connect(addr, port, 2)
        connect = (time.perf_counter() - t) / rounds
        t = time.perf_counter()
        for _ in range(rounds):
            fp = await pk.syn(addr, port)
            assert fp.answer == "syn-ack", fp
        syn = (time.perf_counter() - t) / rounds
        traces = []
        for _ in range(rounds):
            t = time.perf_counter()
            hops = await pk.traceroute(addr, port, max_ttl=16, timeout=2)
            traces.append(time.perf_counter() - t)
        await pk.aclose()
        # Let the router's ICMP rate limit (a burst of 6, then 1/s per peer) refill: back to
        # back traceroutes beyond it get no time-exceeded for hop 1 and wait for the timeout.
        await asyncio.sleep(1.5)
        t = time.perf_counter()  # cold: a run's first traceroute installs the guard table itself
        cold_hops = await pk.traceroute(addr, port, max_ttl=16, timeout=2)
        cold = time.perf_counter() - t
        await pk.aclose()
        print(json.dumps({"first": first, "connect": connect, "syn": syn,
                          "trace": statistics.median(traces), "trace_cold": cold, "hops": len(hops),
                          "addresses": [h.address for h in hops],
                          "cold_addresses": [h.address for h in cold_hops]}))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
""")


def _timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, capture_output=True, timeout=60, check=False)
    return time.perf_counter() - t


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:5]
    cli, rtr, srv = f"rwpk-bc-{tag}", f"rwpk-br-{tag}", f"rwpk-bs-{tag}"
    server = None
    try:
        for ns in (cli, rtr, srv):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "rwpkbc0", "netns", cli, "type", "veth", "peer", "name", "rwpkbr0", "netns", rtr)
        sh("ip", "link", "add", "rwpkbs0", "netns", srv, "type", "veth", "peer", "name", "rwpkbr1", "netns", rtr)
        for ns, dev, addr in ((cli, "rwpkbc0", "10.78.1.2/24"), (rtr, "rwpkbr0", "10.78.1.1/24"),
                              (rtr, "rwpkbr1", "10.78.2.1/24"), (srv, "rwpkbs0", f"{SERVER}/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", cli, "route", "add", "default", "via", "10.78.1.1")
        sh("ip", "-n", srv, "route", "add", "default", "via", "10.78.2.1")
        sh("ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        server = subprocess.Popen(["ip", "netns", "exec", srv, PY, "-c",
                                   "import socket,time; s=socket.socket(); s.bind(('0.0.0.0',8080)); "
                                   "s.listen(128); print('ready', flush=True); time.sleep(600)"],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        out = sh("ip", "netns", "exec", cli, PY, "-c", MEASURE, SERVER, "8080", str(args.rounds))
        ours = __import__("json").loads(out.stdout.strip().splitlines()[-1])
        classic_times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            classic = sh("ip", "netns", "exec", cli, "traceroute", "-n", "-T", "-p", "8080", SERVER, check=False)
            classic_times.append(time.perf_counter() - t)
            if classic.returncode != 0:
                print(f"traceroute -n -T failed: {classic.stderr.strip()}", file=sys.stderr)
                break
        # The classic tool's time includes `ip netns exec`; ours runs inside one process, so
        # take that wrapper's own cost (an `ip netns exec ... true`) out of the classic time.
        wrap = statistics.median(_timed(["ip", "netns", "exec", cli, "true"]) for _ in range(args.rounds))
        classic_s = max(statistics.median(classic_times) - wrap, 1e-6)
        print(f"first SYN probe        {ours['first'] * 1000:8.2f} ms (scapy import, socket, guard table)")
        print(f"plain connect          {ours['connect'] * 1000:8.2f} ms per probe")
        print(f"scapy SYN probe        {ours['syn'] * 1000:8.2f} ms per probe   "
              f"ratio {ours['syn'] / ours['connect']:.1f}x connect")
        print(f"scapy TCP traceroute   {ours['trace'] * 1000:8.2f} ms median ({ours['hops']} hops: "
              f"{', '.join(str(a) for a in ours['addresses'])})")
        print(f"  cold (adds its guard){ours['trace_cold'] * 1000:8.2f} ms "
              f"({', '.join(str(a) for a in ours['cold_addresses'])})")
        print(f"traceroute -n -T       {classic_s * 1000:8.2f} ms median "
              f"(ip netns exec's own {wrap * 1000:.1f} ms taken out)")
        ratio = ours["trace"] / classic_s
        print(f"traceroute ratio       {ratio:.2f} (goal <= 1.5) {'OK' if ratio <= 1.5 else 'OVER'}; "
              f"cold {ours['trace_cold'] / classic_s:.2f}")
        return 0
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        for ns in (cli, rtr, srv):
            sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    sys.exit(main())
