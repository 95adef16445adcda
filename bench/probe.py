"""Benchmark of the packet probe on a lab path (root): per-probe cost and traceroute wall time.

Builds client ns <-> router ns <-> server ns (names rwpk-b*-TAG, removed at the end), then,
from inside the client namespace, times a plain connect() beside the scapy SYN probe (with
its nft guard), and the parallel TCP traceroute beside `traceroute -n -T` on the same path.
Prints ratios; the goal is traceroute <= 1.5 x `traceroute -n -T`.

    sudo .venv/bin/python bench/probe.py [--rounds 20]
"""

from __future__ import annotations

import argparse
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
    import asyncio, json, sys, time
    from wizard.probes.packets import PacketProbe
    from wizard.probes.tcp import TcpProbe
    async def main(addr, port, rounds):
        tcp, pk = TcpProbe(), PacketProbe()
        await pk.syn(addr, port)  # warm-up: scapy import, sockets, routes
        t = time.perf_counter()
        for _ in range(rounds):
            await tcp.connect(addr, port, 2)
        connect = (time.perf_counter() - t) / rounds
        t = time.perf_counter()
        for _ in range(rounds):
            fp = await pk.syn(addr, port)
            assert fp.answer == "syn-ack", fp
        syn = (time.perf_counter() - t) / rounds
        t = time.perf_counter()
        hops = await pk.traceroute(addr, port, max_ttl=16, timeout=2)
        trace = time.perf_counter() - t
        print(json.dumps({"connect": connect, "syn": syn, "trace": trace, "hops": len(hops)}))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
""")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
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
        t = time.perf_counter()
        classic = sh("ip", "netns", "exec", cli, "traceroute", "-n", "-T", "-p", "8080", SERVER, check=False)
        classic_s = time.perf_counter() - t
        if classic.returncode != 0:
            print(f"traceroute -n -T failed: {classic.stderr.strip()}", file=sys.stderr)
        print(f"plain connect          {ours['connect'] * 1000:8.2f} ms per probe")
        print(f"scapy SYN probe+guard  {ours['syn'] * 1000:8.2f} ms per probe   "
              f"ratio {ours['syn'] / ours['connect']:.1f}x connect")
        print(f"scapy TCP traceroute   {ours['trace'] * 1000:8.2f} ms ({ours['hops']} hops)")
        print(f"traceroute -n -T       {classic_s * 1000:8.2f} ms")
        ratio = ours["trace"] / classic_s
        print(f"traceroute ratio       {ratio:.2f} (goal <= 1.5) {'OK' if ratio <= 1.5 else 'OVER'}")
        return 0
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        for ns in (cli, rtr, srv):
            sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    sys.exit(main())
