"""The capture around a probe without scapy (I/O): one packet socket, the BPF filter in the
kernel, the kernel's own timestamps.

Opening it costs a filter compiled by libpcap and a socket, not scapy's import (up to a
second), so a capture can start as soon as a check wants it. Packets are read by a thread
from the moment the socket is open (the kernel queues what the filter lets through), each
stamped by the kernel when it arrived (SO_TIMESTAMPNS), not when Python read it: the delays
the attribution weighs do not grow with the machine's load. On the loopback interface each
packet passes twice (leaving and arriving): the leaving copy is dropped by the kernel's filter. Headers only
(``SNAPLEN``): the payload's length comes from the IP header.
"""

from __future__ import annotations

import socket
import threading

from wizard.diag.packets.io.live import SNAPLEN, STAMP_SPACE, arrival, close_aside, packet_socket
from wizard.diag.packets.parse.frames import RAW, decode
from wizard.engine.probes import PacketEvent

POLL_S = 0.01  # how often the reading thread looks at its stop flag (stop() waits for it)


class Sniffer:
    """``start()`` (raises CaptureError, OSError), then ``stop()`` -> the events, in order of arrival."""

    def __init__(self, bpf: str, port: int, t0: float, max_packets: int, max_s: float) -> None:
        self.bpf, self.port, self.t0 = bpf, port, t0
        self.max_packets, self.max_s = max_packets, max_s
        self.events: list[PacketEvent] = []
        self.iface = ""
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sock = packet_socket(self.bpf)  # it queues nothing its filter does not keep
        sock.settimeout(POLL_S)
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="capture", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> list[PacketEvent]:
        """Read what is already queued, stop, close; the events seen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            close_aside(self._sock)  # its release waits on the kernel: not on the critical path
            self._sock = None
        return self.events

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        while len(self.events) < self.max_packets:
            if self._stop.is_set():
                sock.setblocking(False)  # the rest of the queue, without waiting
            try:
                data, ancillary, _flags, address = sock.recvmsg(SNAPLEN, STAMP_SPACE)
            except (TimeoutError, InterruptedError):
                continue
            except (BlockingIOError, OSError):
                return
            ts = arrival(ancillary)
            if ts - self.t0 > self.max_s:
                return  # the capture's time bound
            seg = decode(RAW, ts, data)
            if seg is None:
                continue
            self.iface = self.iface or address[0]
            self.events.append(PacketEvent(
                ms=round((ts - self.t0) * 1000, 2), direction="out" if seg.dport == self.port else "in",
                src=seg.src, dst=seg.dst, sport=seg.sport, dport=seg.dport, ttl=seg.ttl, ip_id=seg.ip_id,
                df=seg.df, flags=seg.flags, seq=seg.seq, ack=seg.ack, window=seg.window,
                options=seg.options, ts_val=seg.ts_val, ts_ecr=seg.ts_ecr, payload_len=seg.payload_len))

