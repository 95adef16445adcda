"""Probes: the only code that touches sockets, DNS, packets, subprocesses and files.

They return the project's own value types, never library objects, and every call has a
timeout and a cap on the bytes it reads.
"""

from wizard.probes.commands import CommandOutput, run_command
from wizard.probes.hosts import FileInfo, Host, HostError, LocalHost, NetnsHost, host_for
from wizard.probes.bundle import Probes, real_probes
from wizard.probes.dns import DnsProbe, DnsRecord, Resolution
from wizard.probes.tcp import ConnectOutcome, ExchangeOutcome, ProbeEvent, TcpProbe

__all__ = [
    "CommandOutput", "ConnectOutcome", "DnsProbe", "DnsRecord", "ExchangeOutcome", "FileInfo",
    "Host", "HostError", "Probes", "Resolution", "real_probes",
    "LocalHost", "NetnsHost", "ProbeEvent", "TcpProbe", "host_for", "run_command",
]
