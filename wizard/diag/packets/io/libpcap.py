"""Whether libpcap can be loaded here (I/O): a capture filter is compiled by it.

scapy's sniffer compiles its BPF filter with libpcap; without the shared library every
capture fails. Raw-socket sends (the SYN probe, the traceroute, DF echoes) do not need it.
"""

from __future__ import annotations

import ctypes
import functools

LIBPCAP_PACKAGE = "libpcap0.8"
LIBPCAP_FIX = ("apt", "install", LIBPCAP_PACKAGE)  # the command, wrapped for its context by the check


SONAMES = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")  # Debian's, upstream's, a development link


@functools.cache
def libpcap_path() -> str | None:
    """The libpcap shared library's name as the loader finds it, or None when there is none.
    The usual names are tried with the loader itself first: find_library runs ldconfig (or
    a compiler) in a subprocess, tens of milliseconds on every start of analyze."""
    for name in SONAMES:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    from ctypes import util

    return util.find_library("pcap")


def libpcap_missing() -> str | None:
    """Why a capture cannot be filtered here (None: it can)."""
    if libpcap_path() is None:
        return "libpcap is not installed on this machine (capture filters are compiled by it)"
    return None
