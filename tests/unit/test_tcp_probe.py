"""TcpProbe against real loopback servers (127.0.0.1 and ::1, ephemeral ports) started here."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.unit.fakes import FakeProbes, make_ctx
from wizard.diag.net.checks.handshake import TcpBurstCheck, TcpBurstParams
from wizard.diag.net.io.tcp import TcpProbe
from wizard.model import Answers
from wizard.model.payload import decode_escapes, payload_bytes

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Handler = Callable[[socket.socket], None]


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _wait_for_close(conn: socket.socket) -> None:
    """Keep the connection until the client closes it (or resets it)."""
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


class Server:
    """A listener on an ephemeral loopback port; each connection runs ``handler`` in a thread.

    ``accept_only`` closes the listener after that many connections, so later SYNs are
    answered with RST by the kernel (nothing listens any more).
    """

    def __init__(self, host: str, handler: Handler, accept_only: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.host, self.port = host, self.listener.getsockname()[1]
        self.handler, self.accept_only = handler, accept_only
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []
        self.errors: list[BaseException] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        accepted = 0
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            self.conns.append(conn)
            accepted += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()
            if self.accept_only and accepted >= self.accept_only:
                self.listener.close()
                return

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.acceptor.join(2)
        for t in self.threads:
            t.join(2)
        assert not self.errors, self.errors


HOSTS = ["127.0.0.1", "::1"]


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(host: str, handler: Handler, accept_only: int = 0) -> Server:
        servers.append(Server(host, handler, accept_only))
        return servers[-1]

    try:
        yield start
    finally:
        for s in servers:
            s.stop()


# --- handlers: the server faults of the reference's lab, one per function -----------------

def answers_http(conn: socket.socket) -> None:
    while _read_request(conn):
        conn.sendall(ANSWER)
    _wait_for_close(conn)


def aborts_after_reading(conn: socket.socket) -> None:
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def closes_with_unread_data(conn: socket.socket) -> None:
    select.select([conn], [], [], 5)


def closes_without_answer(conn: socket.socket) -> None:
    _read_request(conn)


def closes_idle_after(seconds: float) -> Handler:
    def handler(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(ANSWER)
        time.sleep(seconds)

    return handler


def never_answers(conn: socket.socket) -> None:
    _read_request(conn)
    _wait_for_close(conn)


def sends_banner(conn: socket.socket) -> None:
    conn.sendall(b"hello\r\n")
    _wait_for_close(conn)


def floods(conn: socket.socket) -> None:
    _read_request(conn)
    try:
        for _ in range(64):
            conn.sendall(b"x" * 65536)
    except OSError:
        return
    _wait_for_close(conn)


# --- exchange ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
async def test_closed_port_is_refused_at_the_handshake(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as bound:  # bound, not listening: RST to SYN
        bound.bind((host, 0))
        out = await TcpProbe().exchange(host, bound.getsockname()[1], REQUEST, timeout=2)
    assert (out.kind, out.stage) == ("refused", "connect")
    assert [e.what for e in out.events] == ["syn", "refused"]
    assert out.sent == 0
    assert out.local.rsplit(":", 1)[1].isdigit()  # the SYN's source port, for a capture to match


@pytest.mark.parametrize("host", HOSTS)
async def test_http_answer_is_ok_and_the_probe_closes_without_reset(host: str, serve) -> None:
    srv = serve(host, answers_http)
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=2)
    assert (out.kind, out.stage) == ("ok", "first-data")
    assert out.first_bytes.startswith(b"HTTP/1.1 200 OK")
    assert out.received == len(ANSWER) and out.sent == len(REQUEST)
    whats = [e.what for e in out.events]
    assert whats == ["syn", "connected", "sent", "received", "closed"]
    assert out.events[-1].detail == "closed by the probe"
    assert out.local.startswith("[::1]:" if ":" in host else "127.0.0.1:")


@pytest.mark.parametrize("host", HOSTS)
async def test_linger_zero_abort_after_reading_is_a_reset_after_data(host: str, serve) -> None:
    srv = serve(host, aborts_after_reading)
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=2)
    assert (out.kind, out.stage) == ("reset", "first-data")
    assert out.received == 0
    assert [e.what for e in out.events][-2:] == ["sent", "reset"]


@pytest.mark.parametrize("host", HOSTS)
async def test_close_with_unread_request_is_a_reset_after_data(host: str, serve) -> None:
    srv = serve(host, closes_with_unread_data)
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=2)
    assert (out.kind, out.stage) == ("reset", "first-data")


@pytest.mark.parametrize("host", HOSTS)
async def test_fin_without_answer_is_eof(host: str, serve) -> None:
    srv = serve(host, closes_without_answer)
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=2)
    assert (out.kind, out.stage) == ("eof", "first-data")
    assert out.received == 0
    assert out.events[-1].what == "eof"


@pytest.mark.parametrize("host", HOSTS)
async def test_server_closing_the_idle_connection_during_the_hold_is_noticed(host: str, serve) -> None:
    srv = serve(host, closes_idle_after(0.2))
    started = time.monotonic()
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=2, hold=0.5)
    elapsed = time.monotonic() - started
    assert (out.kind, out.stage) == ("eof", "hold")
    assert out.first_bytes.startswith(b"HTTP/1.1 200")
    whats = [e.what for e in out.events]
    assert "idle" in whats and "eof" in whats
    # The FIN is timed when it came (about 0.2 s after the answer), not at the end of the hold.
    fin = next(e for e in out.events if e.what == "eof")
    answer = next(e for e in out.events if e.what == "received")
    assert 150 <= fin.ms - answer.ms <= 450
    # The write after the hold meets the closed socket: its kernel answers with RST.
    assert whats[-2:] == ["sent", "reset"]
    assert out.sent == 2 * len(REQUEST)
    assert 0.5 <= elapsed < 2.5


@pytest.mark.parametrize("host", HOSTS)
async def test_hold_on_a_keepalive_server_sends_again_and_is_answered(host: str, serve) -> None:
    srv = serve(host, answers_http)
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=2, hold=0.3)
    assert (out.kind, out.stage) == ("ok", "after-hold")
    assert out.received == 2 * len(ANSWER)
    assert [e.what for e in out.events] == ["syn", "connected", "sent", "received", "idle", "sent",
                                            "received", "closed"]
    idle = next(e for e in out.events if e.what == "idle")
    resend = [e for e in out.events if e.what == "sent"][1]
    assert resend.ms - idle.ms >= 300


@pytest.mark.parametrize("host", HOSTS)
async def test_silent_server_is_no_answer_bounded_by_the_timeout(host: str, serve) -> None:
    srv = serve(host, never_answers)
    started = time.monotonic()
    out = await TcpProbe().exchange(host, srv.port, REQUEST, timeout=0.5, hold=0.3)
    elapsed = time.monotonic() - started
    assert (out.kind, out.stage) == ("timeout", "first-data")
    assert out.events[-1].what == "timeout"
    assert 0.45 <= elapsed < 2 * 0.5 + 0.3 + 0.2


async def test_no_payload_reads_a_banner(serve) -> None:
    srv = serve("127.0.0.1", sends_banner)
    out = await TcpProbe().exchange("127.0.0.1", srv.port, b"", timeout=0.5)
    assert (out.kind, out.first_bytes) == ("ok", b"hello\r\n")
    assert "sent" not in [e.what for e in out.events]


async def test_no_payload_on_a_silent_server_stops_listening_long_before_the_timeout(serve) -> None:
    # Nothing sent, nothing said: a server that speaks first would have by now.
    srv = serve("127.0.0.1", never_answers)
    started = time.monotonic()
    out = await TcpProbe().exchange("127.0.0.1", srv.port, b"", timeout=10)
    elapsed = time.monotonic() - started
    assert (out.kind, out.stage, out.received) == ("ok", "first-data", 0)
    assert elapsed < 10 / 2  # the listening part is SPEAKS_FIRST_S, not the timeout


async def test_a_payload_still_waits_the_whole_timeout_for_its_answer(serve) -> None:
    srv = serve("127.0.0.1", never_answers)
    started = time.monotonic()
    out = await TcpProbe().exchange("127.0.0.1", srv.port, REQUEST, timeout=1.5)
    assert (out.kind, out.stage) == ("timeout", "first-data")
    assert time.monotonic() - started >= 1.45  # an application may take long to answer


def test_the_wait_for_a_tls_or_http_answer_is_bounded_by_round_trips_and_the_timeout() -> None:
    from wizard.diag.net.io.protocol import ANSWER_FLOOR_S, answer_wait

    assert answer_wait(3.0, 0.0001) == ANSWER_FLOOR_S == 0.5  # loopback: the floor
    assert answer_wait(3.0, 0.1) == 2.0  # 20 round trips of a slow path
    assert answer_wait(3.0, 0.5) == 3.0 and answer_wait(0.5, 0.0001) == 0.5  # never past the timeout


async def test_protocol_probe_of_a_silent_port_ends_well_before_the_timeout(serve) -> None:
    from wizard.diag.net.io.protocol import ProtocolProbe

    srv = serve("127.0.0.1", never_answers)
    started = time.monotonic()
    facts = await ProtocolProbe().identify("127.0.0.1", srv.port, "127.0.0.1", timeout=10)
    assert facts.speaks == "unknown"
    assert not facts.tls.ok and facts.http.outcome == "timeout"  # TLS: asyncio aborts the handshake
    assert time.monotonic() - started < 10 / 2


async def test_answer_beyond_the_read_limit_stops_reading_and_drains(serve) -> None:
    srv = serve("127.0.0.1", floods)
    out = await TcpProbe().exchange("127.0.0.1", srv.port, REQUEST, timeout=2, read_limit=100_000)
    assert out.kind == "ok"
    assert out.received >= 100_000 and len(out.first_bytes) == 512
    assert [e.what for e in out.events].count("received") == 1  # one arrow per burst of data


async def test_connect_outcomes_on_both_families(serve) -> None:
    for host in HOSTS:
        srv = serve(host, answers_http)
        ok = await TcpProbe().connect(host, srv.port, timeout=2)
        assert ok.kind == "ok" and ok.local and ok.family == ("IPv6" if ":" in host else "IPv4")


# --- the burst against a rate limiter stand-in ---------------------------------------------

async def test_burst_against_a_listener_that_accepts_three_then_closes_is_later_failed(serve) -> None:
    srv = serve("127.0.0.1", sends_banner, accept_only=3)
    ctx = make_ctx(f"127.0.0.1:{srv.port}", answers=Answers(attempts=6, timeout_s=0.5),
                   probes=FakeProbes(tcp=TcpProbe()))
    result = await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=60))
    assert [s.id for s in result.signals] == ["burst.later_failed"]
    assert "attempts 1-3 passed, 4-6 were refused" in result.signals[0].fact
    rows = next(e for e in result.evidence if e.kind == "table").data["rows"]
    assert [r[1] for r in rows] == ["ok"] * 3 + ["refused"] * 3


async def test_burst_waits_concurrently_not_one_timeout_after_another(serve) -> None:
    srv = serve("127.0.0.1", never_answers)
    ctx = make_ctx(f"127.0.0.1:{srv.port}", answers=Answers(attempts=5, timeout_s=0.5),
                   probes=FakeProbes(tcp=TcpProbe()))
    started = time.monotonic()
    await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=10))
    assert time.monotonic() - started < 5 * 0.5


# --- payload escapes -----------------------------------------------------------------------

def test_payload_escapes_are_honoured_and_others_kept() -> None:
    assert decode_escapes(r"GET / HTTP/1.0\r\n\r\n") == "GET / HTTP/1.0\r\n\r\n"
    assert decode_escapes(r"a\tb\\n\x41\q\xzz") == "a\tb\\nA\\q\\xzz"
    assert payload_bytes(r"\x00\xff\r\né") == b"\x00\xff\r\n\xc3\xa9"
    assert payload_bytes("trailing\\") == b"trailing\\"


async def test_fin_in_the_middle_of_the_hold_is_timed_when_it_arrives(serve) -> None:
    srv = serve("127.0.0.1", closes_idle_after(0.8))
    out = await TcpProbe().exchange("127.0.0.1", srv.port, REQUEST, timeout=2, hold=1.2)
    assert (out.kind, out.stage) == ("eof", "hold")
    whats = [e.what for e in out.events]
    assert whats[:5] == ["syn", "connected", "sent", "received", "idle"]
    idle = next(e for e in out.events if e.what == "idle")
    fin = next(e for e in out.events if e.what == "eof")
    assert 150 <= fin.ms - idle.ms <= 700  # when it came inside the hold, not at its end
    assert "into the idle hold" in fin.detail
    assert whats[-2:] == ["sent", "reset"]
