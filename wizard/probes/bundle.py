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
    protocol: Any = None  # ProtocolProbe-like: what the port speaks


def real_probes() -> Probes:
    # None of these imports scapy until a packet is actually sent.
    from wizard.probes.packets import PacketProbe
    from wizard.probes.processes import ProcessProbe
    from wizard.probes.protocol import ProtocolProbe

    return Probes(tcp=TcpProbe(), dns=DnsProbe(), processes=ProcessProbe(), packets=PacketProbe(),
                  protocol=ProtocolProbe())
