"""The probes a run uses, in one bundle that tests replace with scripted fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wizard.probes.dns import DnsProbe
from wizard.probes.tcp import TcpProbe


@dataclass
class Probes:
    tcp: Any  # TcpProbe-like
    dns: Any  # DnsProbe-like
    processes: Any = None  # ProcessProbe-like (psutil), client side
    packets: Any = None  # PacketProbe-like (scapy), when root allows raw sockets


def real_probes() -> Probes:
    from wizard.probes.processes import ProcessProbe

    return Probes(tcp=TcpProbe(), dns=DnsProbe(), processes=ProcessProbe())
