"""Whether libpcap can be loaded here (I/O): a capture filter is compiled by it.

scapy's sniffer compiles its BPF filter with libpcap; without the shared library every
capture fails. Raw-socket sends (the SYN probe, the traceroute, DF echoes) do not need it.
"""

from __future__ import annotations

import ctypes.util
import functools

LIBPCAP_PACKAGE = "libpcap0.8"
LIBPCAP_FIX = f"apt install {LIBPCAP_PACKAGE}"


@functools.cache
def libpcap_path() -> str | None:
    """The libpcap shared library's name as the loader finds it, or None when there is none."""
    return ctypes.util.find_library("pcap")


def libpcap_missing() -> str | None:
    """Why a capture cannot be filtered here (None: it can)."""
    if libpcap_path() is None:
        return "libpcap is not installed on this machine (capture filters are compiled by it)"
    return None
