"""The lab's tcpdump keeps every packet its filter takes, even while it waits for a core
(root only). A capture that loses packets under load reads, in `analyze`, as resets injected
on the path: the lab's captures must be the traffic."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from wizard.lab import dumps
from wizard.lab.netns import LabNet

CONNECTIONS = 40  # a SYN and the closed port's RST-ACK each: 80 packets, over twice the default ring


def test_a_capture_starved_of_cpu_keeps_every_packet_of_a_burst(labnet: LabNet, tmp_path: Path) -> None:
    dev = f"rwc{labnet.suffix}s"
    dump = dumps.start(labnet.server, tmp_path / "burst.pcap", "tcp port 9", dev=dev, snaplen=262144)
    stopped = False
    try:
        os.kill(dump.pid, signal.SIGSTOP)  # tcpdump reads nothing while the burst arrives
        stopped = True
        script = (f"import socket\nfor _ in range({CONNECTIONS}):\n"
                  f"    s = socket.socket()\n    s.settimeout(2)\n"
                  f"    try: s.connect(('{labnet.server_v4}', 9))\n    except OSError: pass\n    s.close()\n")
        labnet.exec(labnet.client, ["python3", "-c", script], timeout=30)
    finally:
        if stopped:
            os.kill(dump.pid, signal.SIGCONT)
        dumps.settle([tmp_path / "burst.pcap"])
        stats = dumps.stop(dump)
    assert stats.get("dropped by kernel") == 0, stats
    assert stats.get("captured") == stats.get("received by filter") == 2 * CONNECTIONS, stats
    assert dumps.incomplete(stats) == ""


def test_tcpdumps_closing_counts_tell_a_capture_that_lost_packets() -> None:
    # The three lines tcpdump prints when it stops, as it printed them with the default ring
    stats = dumps.parse_stats("32 packets captured\n40 packets received by filter\n8 packets dropped by kernel\n")
    assert stats == {"captured": 32, "received by filter": 40, "dropped by kernel": 8}
    assert dumps.incomplete(stats) == "8 dropped by the kernel (ring full)"
    assert dumps.incomplete({"captured": 30, "received by filter": 40, "dropped by kernel": 0}) == "30 of 40 written"
    assert dumps.incomplete(dumps.parse_stats("1 packet captured\n1 packet received by filter\n"
                                              "0 packets dropped by kernel\n")) == ""
