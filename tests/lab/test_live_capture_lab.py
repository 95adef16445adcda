"""The watch's packet socket on the loopback interface, for real (root): it queues only what its
filter keeps, stamps packets with the kernel's arrival time, and counts what the kernel dropped
when its queue was full, so a watch can say what it missed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.lab.conftest import _require_lab
from wizard.diag.packets.io.live import LiveCapture

pytestmark = pytest.mark.lab


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    _require_lab()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        yield srv
    finally:
        srv.close()


def _connect_and_close(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_the_capture_sees_its_port_only_with_the_kernels_arrival_times(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.1", 0))
    other.listen(8)
    try:
        with LiveCapture(f"tcp port {port} and host 127.0.0.1") as cap:
            before = time.time()
            for _ in range(3):
                _connect_and_close(other.getsockname()[1])  # not the filter's port
            _connect_and_close(port)
            sent = time.time()
            time.sleep(0.2)  # stamped on arrival: reading later does not move the times
            segments = cap.read(0.5)
            tally = cap.stats()
    finally:
        other.close()
    assert segments, "the handshake on the filter's port was not captured"
    assert {s.sport for s in segments} | {s.dport for s in segments} >= {port}
    assert all(port in (s.sport, s.dport) for s in segments), "a packet of another port was queued"
    assert "S" in segments[0].flags  # the SYN first
    # Each stamp is from before the sleep, not from the read after it. (Bounded by when the
    # connects returned, not by a fixed time after they began: a segment the loopback lost
    # under load comes again after TCP's 200 ms retransmission timeout, and the connects
    # with it; CI saw a handshake stamped 200.4 ms after the first connect began.)
    assert all(before - 0.01 <= s.ts <= sent + 0.05 for s in segments), \
        [(round(s.ts - before, 4), s.flags) for s in segments]
    assert tally.dropped == 0 and tally.kept >= len(segments)


def test_a_full_queue_is_counted_as_lost_not_silently_missed() -> None:
    _require_lab()
    port = _free_port(socket.SOCK_DGRAM)
    sent = 400
    # the smallest queue the kernel allows: a few packets fit, the rest must be dropped
    with LiveCapture(f"udp dst port {port} and host 127.0.0.1", buffer=1) as cap, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for i in range(sent):
            tx.sendto(i.to_bytes(4, "big"), ("127.0.0.1", port))  # nobody listens: nothing else happens
        time.sleep(0.1)
        queued = 0
        assert cap.sock is not None
        cap.sock.setblocking(False)
        while True:
            try:
                cap.sock.recv(64)
                queued += 1
            except BlockingIOError:
                break
        tally = cap.stats()
    # each datagram passes the loopback interface twice: the leaving copy is not even kept
    assert tally.kept == sent, tally
    assert tally.dropped > sent // 2, tally  # most of them: the queue held a handful
    assert tally.kept - tally.dropped == queued
