"""A live capture for watch (I/O): one packet socket, a BPF filter in the kernel, headers only.

An AF_PACKET socket of type SOCK_DGRAM sees every interface's packets from the network
header on; libpcap compiles the filter (for raw IP), the kernel runs it and cuts each
packet to ``snaplen`` bytes, so Python only sees the target port's TCP headers. On the
loopback interface each packet passes twice (leaving and arriving): five instructions put
before libpcap's drop the leaving copy in the kernel too (a proxy and its upstream on one
host talk over loopback, the busiest case there is). The socket
is opened listening to nothing, given its filter, and only then bound to every protocol (as
libpcap does), so no packet of another port is ever queued. Each packet carries the kernel's
arrival time (SO_TIMESTAMPNS), not the moment Python read it.

The kernel queues packets until Python reads them; a queue that is full drops the next
ones. The queue is asked for ``BUFFER`` bytes, past ``net.core.rmem_max`` when root
(SO_RCVBUFFORCE: this socket only, no setting changed), and what the kernel dropped is
counted (PACKET_STATISTICS), so a watch can say how many packets it missed. Needs root
(CAP_NET_RAW) and libpcap; closing the socket leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass

from wizard.diag.packets.io.libpcap import libpcap_path
from wizard.diag.packets.io.pcaplib import Program, lib
from wizard.diag.packets.parse.frames import RAW, Segment, decode

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35  # also the control message's type (SCM_TIMESTAMPNS)
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
DLT_RAW = 12  # libpcap's DLT for raw IP on Linux
SNAPLEN = 160  # IPv6 + TCP with every option fits
BUFFER = 16 << 20  # the kernel's queue for this socket (bytes of packet memory, not of headers)
_STAMP = struct.Struct("qq")  # struct timespec
_STATS = struct.Struct("II")  # struct tpacket_stats: tp_packets, tp_drops (reset by each read)


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


SKF_AD_OFF = 0xFFFFF000  # -0x1000: where the kernel's ancillary fields are loaded from
SKF_AD_PKTTYPE, SKF_AD_IFINDEX = 4, 8


def _without_leaving_loopback_copies(program: bytes, loopback: int) -> bytes:
    """``program`` behind a test that drops, in the kernel, a packet leaving the loopback
    interface (index ``loopback``): its arriving copy is the one kept. Classic BPF jumps are
    relative, so libpcap's program runs as it was compiled."""
    insns = ((0x20, 0, 0, SKF_AD_OFF + SKF_AD_IFINDEX),  # A = the interface's index
             (0x15, 0, 3, loopback),  # another interface: to the filter
             (0x20, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE),  # A = the packet's type
             (0x15, 0, 1, PACKET_OUTGOING),  # arriving: to the filter
             (0x06, 0, 0, 0))  # leaving the loopback interface: not queued
    return b"".join(struct.pack("HBBI", *insn) for insn in insns) + program


def _loopback_index() -> int | None:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return None


class _SockaddrLL(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("protocol", ctypes.c_ushort), ("ifindex", ctypes.c_int),
                ("hatype", ctypes.c_ushort), ("pkttype", ctypes.c_ubyte), ("halen", ctypes.c_ubyte),
                ("addr", ctypes.c_ubyte * 8)]


def _bind_every_interface(sock: socket.socket) -> None:
    # Python's bind() of an AF_PACKET address needs an interface's name; ifindex 0 is all of them.
    libc = ctypes.CDLL(None, use_errno=True)
    address = _SockaddrLL(socket.AF_PACKET, socket.htons(ETH_P_ALL), 0)
    if libc.bind(sock.fileno(), ctypes.byref(address), ctypes.sizeof(address)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind of the packet socket: {os.strerror(err)}")


def packet_socket(expression: str, snaplen: int = SNAPLEN, buffer: int = BUFFER) -> socket.socket:
    """A packet socket that only ever queues the packets ``expression`` keeps, cut to ``snaplen``,
    each with the kernel's arrival time. Raises CaptureError (no root, no libpcap, bad filter)."""
    program = compile_filter(expression, snaplen)
    if (loopback := _loopback_index()) is not None:
        program = _without_leaving_loopback_copies(program, loopback)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)  # protocol 0: receives nothing yet
    except PermissionError:
        raise CaptureError("a packet socket needs root (CAP_NET_RAW)") from None
    try:
        insns = ctypes.create_string_buffer(program)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                        struct.pack("HL", len(program) // 8, ctypes.addressof(insns)))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer)
        except PermissionError:  # no CAP_NET_ADMIN: as much as net.core.rmem_max allows
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _bind_every_interface(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The kernel's arrival time of a packet (seconds since the epoch), else now."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _STAMP.size:
            sec, nsec = _STAMP.unpack_from(data)
            return sec + nsec / 1e9
    return time.time()


STAMP_SPACE = socket.CMSG_SPACE(_STAMP.size)


@dataclass
class Tally:
    """What the kernel says of a packet socket since it opened: packets its filter kept, and
    those of them it dropped because the queue was full (never read by Python)."""

    kept: int = 0
    dropped: int = 0

    def add(self, sock: socket.socket | None) -> Tally:
        if sock is not None:
            try:
                kept, dropped = _STATS.unpack(sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size))
            except OSError:
                return self
            self.kept += kept  # tp_packets counts the dropped ones too
            self.dropped += dropped
        return self


def close_aside(*socks: object) -> None:
    """Close packet sockets in a thread of their own: the kernel's release of one waits for
    an RCU grace period (synchronize_net), some 5-10 ms, which the caller need not wait for.
    The descriptors are gone a few milliseconds later (or with the process)."""
    closers = [close for sock in socks if callable(close := getattr(sock, "close", None))]
    if closers:
        threading.Thread(target=lambda: [close() for close in closers], name="packet-socket-close",
                         daemon=True).start()


class LiveCapture:
    """``open()``, then ``read(timeout)`` -> segments; ``close()`` (also as a context manager)."""

    def __init__(self, expression: str, snaplen: int = SNAPLEN, buffer: int = BUFFER) -> None:
        self.expression = expression
        self.snaplen, self.buffer = snaplen, buffer
        self.sock: socket.socket | None = None
        self.packets = 0
        self.tally = Tally()

    def open(self) -> LiveCapture:
        self.sock = packet_socket(self.expression, self.snaplen, self.buffer)
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
                data, ancillary, _flags, _address = sock.recvmsg(self.snaplen, STAMP_SPACE)
            except (TimeoutError, BlockingIOError, InterruptedError):
                break
            seg = decode(RAW, arrival(ancillary), data)
            if seg is not None:
                out.append(seg)
                self.packets += 1
            left = deadline - time.monotonic()
            if left <= 0:
                sock.setblocking(False)
                deadline = float("inf")  # drain what is queued, without waiting
        return out

    def stats(self) -> Tally:
        """The kernel's counts so far (the socket's counters are read, and summed here)."""
        return self.tally.add(self.sock)

    def close(self) -> None:
        if self.sock is not None:
            self.tally.add(self.sock)
            self.sock.close()
            self.sock = None

    def __enter__(self) -> LiveCapture:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
