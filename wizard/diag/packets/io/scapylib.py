"""scapy, loaded lazily (I/O): the few modules the packet probe uses, imported once and
thread-safe, and a background import that overlaps the run's other work."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

_SCAPY: SimpleNamespace | None = None
_SCAPY_LOCK = threading.Lock()
_WARM: threading.Thread | None = None


def scapy_modules() -> Any:
    """The few scapy modules the probe uses, imported once (thread-safe).

    Only the IP/IPv6 layers, send/receive and pcap writing: ``scapy.all`` would also load
    every other protocol and costs two to three times as long.
    """
    global _SCAPY
    if _SCAPY is not None:
        return _SCAPY
    with _SCAPY_LOCK:
        if _SCAPY is None:
            # Lazy on purpose (import cost); the order matters: config before the layers.
            from scapy.config import conf

            conf.verb = 0
            from scapy.layers import inet, inet6
            from scapy.sendrecv import AsyncSniffer
            from scapy.supersocket import L3RawSocket
            from scapy.utils import wrpcap

            _SCAPY = SimpleNamespace(
                conf=conf, IP=inet.IP, TCP=inet.TCP, ICMP=inet.ICMP, IPerror=inet.IPerror,
                TCPerror=inet.TCPerror, IPv6=inet6.IPv6, IPerror6=inet6.IPerror6,
                ICMPv6EchoRequest=inet6.ICMPv6EchoRequest, ICMPv6PacketTooBig=inet6.ICMPv6PacketTooBig,
                L3RawSocket=L3RawSocket, L3RawSocket6=inet6.L3RawSocket6, AsyncSniffer=AsyncSniffer,
                wrpcap=wrpcap)
    return _SCAPY


def warm_scapy() -> None:
    """Start importing scapy in a background thread (idempotent, returns at once).

    Called when a run is about to need packets, so the import overlaps other work, and by
    the TUI once step 1's form is out, while it is read; never at start-up of the CLI, nor
    before the TUI's first frame (the thread competes for the GIL with it).
    """
    global _WARM
    if _SCAPY is not None or _WARM is not None:
        return
    _WARM = threading.Thread(target=_warm_quietly, name="scapy-import", daemon=True)
    _WARM.start()


def _warm_quietly() -> None:
    try:
        scapy_modules()
    except Exception:
        pass
