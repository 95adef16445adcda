"""A live capture for watch (I/O): one packet socket, a BPF filter in the kernel, headers only.

An AF_PACKET socket of type SOCK_DGRAM sees every interface's packets from the network
header on; libpcap compiles the filter (for raw IP), the kernel runs it and cuts each
packet to ``snaplen`` bytes, so Python only sees the target port's TCP headers. On the
loopback interface each packet passes twice (leaving and arriving): the leaving copy is
dropped. Needs root (CAP_NET_RAW) and libpcap; closing the socket leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import time

from wizard.diag.packets.io.libpcap import libpcap_path
from wizard.diag.packets.io.pcaplib import Program, lib
from wizard.diag.packets.parse.frames import RAW, Segment, decode

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
DLT_RAW = 12  # libpcap's DLT for raw IP on Linux
SNAPLEN = 160  # IPv6 + TCP with every option fits


class CaptureError(Exception):
    """The live capture cannot start (no root, no libpcap, a bad filter)."""


def compile_filter(expression: str, snaplen: int = SNAPLEN) -> bytes:
    """The classic-BPF program of ``expression`` for raw IP packets, as sock_filter bytes."""
    if libpcap_path() is None:
        raise CaptureError("libpcap is not installed on this machine (the capture filter is compiled by it)")
    pcap = lib()
    pcap.pcap_open_dead.restype = ctypes.c_void_p
    pcap.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    handle = pcap.pcap_open_dead(DLT_RAW, snaplen)
    program = Program()
    try:
        if pcap.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, 0xFFFFFFFF) != 0:
            raise CaptureError(f"bad filter {expression!r}: {(pcap.pcap_geterr(handle) or b'').decode()}")
        return ctypes.string_at(program.insns, program.len * 8)
    finally:
        if program.insns:
            pcap.pcap_freecode(ctypes.byref(program))
        pcap.pcap_close(handle)


class LiveCapture:
    """``open()``, then ``read(timeout)`` -> segments; ``close()`` (also as a context manager)."""

    def __init__(self, expression: str, snaplen: int = SNAPLEN) -> None:
        self.expression = expression
        self.snaplen = snaplen
        self.sock: socket.socket | None = None
        self.packets = 0

    def open(self) -> LiveCapture:
        program = compile_filter(self.expression, self.snaplen)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise CaptureError("a packet socket needs root (CAP_NET_RAW)") from None
        buf = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock = sock
        return self

    def read(self, timeout: float, max_packets: int = 4096) -> list[Segment]:
        """The segments that arrive within ``timeout`` seconds (at most ``max_packets``)."""
        sock = self.sock
        if sock is None:
            return []
        out: list[Segment] = []
        deadline = time.monotonic() + timeout
        if timeout > 0:
            sock.settimeout(timeout)
        else:
            sock.setblocking(False)
            deadline = float("inf")  # drain what is queued, without waiting
        while len(out) < max_packets:
            try:
                data, address = sock.recvfrom(self.snaplen)
            except (TimeoutError, BlockingIOError):
                break
            if address[0] == "lo" and address[2] == PACKET_OUTGOING:
                continue
            seg = decode(RAW, time.time(), data)
            if seg is not None:
                out.append(seg)
                self.packets += 1
            left = deadline - time.monotonic()
            if left <= 0:
                sock.setblocking(False)
                deadline = float("inf")  # drain what is queued, without waiting
        return out

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> LiveCapture:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
