"""Lab servers (I/O): small TCP servers that each misbehave in exactly one way, with a real log.

Run inside a lab namespace as ``python -m wizard.lab.servers MODE --port P --log FILE ...``.
Every mode prints ``ready`` on stdout once it listens, writes ISO-timestamped lines to its
log as an application would, and ends on SIGTERM. Modes:

- ``http``: a well-behaved HTTP/1.1 keep-alive server (``--idle S`` closes idle connections
  with a FIN after S seconds: the keep-alive race when a client holds longer);
- ``linger0``: reads the request, then aborts with SO_LINGER 0 (TCPAbortOnData);
- ``unread``: reads only ``--read N`` bytes, answers early and closes (TCPAbortOnClose);
- ``crash``: a supervisor whose worker dies on each request (a traceback, or SIGSEGV with
  ``--signal``) and is restarted after ``--restart-delay``;
- ``backlog``: listens with a tiny backlog, never accepts, and fills its own accept queue;
- ``tls``: HTTPS with ``--cert``/``--key``; logs plain-text requests to its TLS port.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime

READ_TIMEOUT_S = 2.0
BIG = b"x" * 64_000


class Log:
    """An application log: one ISO-timestamped line per event, flushed at once."""

    def __init__(self, path: str | None) -> None:
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115

    def __call__(self, text: str) -> None:
        if self._fh is None:
            return
        first, *rest = text.splitlines() or [""]
        with self._lock:
            self._fh.write(f"{datetime.now().astimezone().isoformat(timespec='milliseconds')} {first}\n")
            for line in rest:
                self._fh.write(line + "\n")


def _peer(addr: tuple) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


def _listener(address: str, port: int, backlog: int = 128) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        # "::" serves both families, so one server answers the IPv4 and IPv6 variants.
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((address, port))
    s.listen(backlog)
    return s


def _read_request(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    """Bytes up to the end of an HTTP header, or whatever came before a short pause."""
    data = b""
    conn.settimeout(READ_TIMEOUT_S)
    while len(data) < limit:
        try:
            chunk = conn.recv(65536)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data or not data.startswith((b"GET", b"POST", b"HEAD", b"PUT")):
            # A non-HTTP client sends one message and waits for the answer.
            conn.settimeout(0.2)
    return data


def _response(status: str = "200 OK", body: bytes = b"ok\n", close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n"
    head += "Connection: close\r\n" if close else "Connection: keep-alive\r\n"
    return head.encode() + b"\r\n" + body


def _first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0][:80].decode("latin-1").encode("unicode_escape").decode()


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.log = Log(args.log)
        self.stopping = threading.Event()

    def serve(self, handler: Callable[[socket.socket, tuple], None], backlog: int = 128) -> None:
        listener = _listener(self.args.address, self.args.port, backlog)
        listener.settimeout(0.3)
        self.log(f"{self.args.mode} server pid {os.getpid()} listening on {_peer((self.args.address, self.args.port))}")
        print("ready", flush=True)
        while not self.stopping.is_set():
            try:
                conn, addr = listener.accept()
            except (TimeoutError, InterruptedError):
                continue
            except OSError:
                break
            threading.Thread(target=self._guard, args=(handler, conn, addr), daemon=True).start()
        listener.close()

    def _guard(self, handler: Callable[[socket.socket, tuple], None], conn: socket.socket, addr: tuple) -> None:
        try:
            handler(conn, addr)
        except OSError as exc:
            self.log(f"connection from {_peer(addr)} ended: {exc}")
        finally:
            try:
                conn.close()
            except OSError:
                pass

    # -- modes ---------------------------------------------------------------------------
    def http(self, conn: socket.socket, addr: tuple) -> None:
        idle = self.args.idle
        while True:
            conn.settimeout(idle)
            try:
                first = conn.recv(65536)
            except TimeoutError:
                # The keep-alive timer: close the idle connection politely (FIN).
                self.log(f"closing idle keep-alive connection from {_peer(addr)} after {idle:g}s")
                return
            if not first:
                return
            data = first
            if first.startswith((b"GET", b"POST", b"HEAD", b"PUT")) and b"\r\n\r\n" not in first:
                conn.settimeout(READ_TIMEOUT_S)
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if not data.startswith((b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS")):
                self.log(f"bad request from {_peer(addr)}: {_first_line(data)!r} is not HTTP; 400")
                conn.sendall(_response("400 Bad Request", b"bad request\n", close=True))
                return
            self.log(f"{_peer(addr)} \"{_first_line(data)}\" 200")
            conn.sendall(_response(body=BIG if self.args.big else b"ok\n"))

    def linger0(self, conn: socket.socket, addr: tuple) -> None:
        data = _read_request(conn)
        if not data:
            return
        self.log(f"{_peer(addr)} \"{_first_line(data)}\": handler failed, aborting the connection")
        # Everything sent was read, so close() counts TCPAbortOnData, not TCPAbortOnClose.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def unread(self, conn: socket.socket, addr: tuple) -> None:
        conn.settimeout(READ_TIMEOUT_S)
        data = conn.recv(self.args.read)
        if not data:
            return
        # Wait until the rest of the request has surely arrived, unread, in the receive queue.
        time.sleep(0.2)
        self.log(f"{_peer(addr)} request rejected after {len(data)} bytes: 413, closing without reading the body")
        conn.sendall(_response("413 Payload Too Large", b"too large\n", close=True))

    def tls(self, conn: socket.socket, addr: tuple) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.args.cert, self.args.key)
        conn.settimeout(READ_TIMEOUT_S)
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except ssl.SSLError as exc:
            text = str(exc)
            if "HTTP_REQUEST" in text or "http request" in text.lower():
                self.log(f"{_peer(addr)} TLS handshake failed: {text}: "
                         "the plain HTTP request was sent to HTTPS port")
            else:
                self.log(f"{_peer(addr)} TLS handshake failed: {text}")
            return
        except (OSError, TimeoutError) as exc:
            self.log(f"{_peer(addr)} TLS handshake failed: {exc}")
            return
        try:
            self.http(tls, addr)
        finally:
            tls.close()


def _backlog(args: argparse.Namespace) -> int:
    """Listen with a tiny backlog, never accept, and fill the queue from inside."""
    log = Log(args.log)
    listener = _listener(args.address, args.port, backlog=args.backlog)
    own = "::1" if ":" in args.address else "127.0.0.1"
    fillers = []
    # The accept queue holds backlog+1 connections; a few more make sure it is full.
    for _ in range(args.backlog + 2):
        s = socket.socket(socket.AF_INET6 if ":" in own else socket.AF_INET)
        s.setblocking(False)
        try:
            s.connect_ex((own, args.port))
        except OSError:
            pass
        fillers.append(s)
    time.sleep(0.3)
    log(f"backlog server pid {os.getpid()} listening on port {args.port} with backlog {args.backlog}; "
        "the accept loop is stalled")
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    for s in fillers:
        s.close()
    listener.close()
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """A supervisor that restarts its crashing worker, logging like supervisord/gunicorn."""
    log = Log(args.log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    argv = [sys.executable, "-m", "wizard.lab.servers", "crash-worker", "--port", str(args.port),
            "--address", args.address, "--log", args.log or "", "--signal", args.signal]
    announced = False
    while not stop.is_set():
        worker = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if line.startswith("ready") and not announced:
            print("ready", flush=True)
            announced = True
        while worker.poll() is None and not stop.is_set():
            time.sleep(0.05)
        if stop.is_set():
            worker.terminate()
            try:
                worker.wait(3)
            except subprocess.TimeoutExpired:
                worker.kill()
            break
        code = worker.returncode
        how = f"terminated by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}; not expected"
        log(f"supervisor: worker {worker.pid} died ({how}); restarting the server in {args.restart_delay:g}s")
        stop.wait(args.restart_delay)
    return 0


def _crash_worker(args: argparse.Namespace) -> int:
    import resource

    # A deliberate crash must not leave core files behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    log = Log(args.log or None)
    listener = _listener(args.address, args.port)
    log(f"worker pid {os.getpid()} listening on port {args.port}")
    print("ready", flush=True)
    conn, addr = listener.accept()
    if args.signal == "SIGSEGV":
        # Dies with the request unread, as a native crash in the parser would.
        time.sleep(0.1)
        log(f"{_peer(addr)} accepted; worker {os.getpid()}: Segmentation fault (core dumped)")
        os.kill(os.getpid(), signal.SIGSEGV)
    data = _read_request(conn)
    try:
        raise RuntimeError(f"worker state corrupted while handling {_first_line(data)!r}")
    except RuntimeError:
        import traceback

        log(f"{_peer(addr)} unhandled exception in request handler\n{traceback.format_exc().rstrip()}")
    os._exit(70)


def _client(args: argparse.Namespace) -> int:
    """The application's client: one request (and, with --hold, a second one after idling on
    the same connection), printing the error it met the way Python reports it, or "ok"."""
    payload = args.payload.encode().decode("unicode_escape").encode("latin-1") if args.payload else (
        f"GET / HTTP/1.1\r\nHost: {args.address}\r\nConnection: keep-alive\r\n\r\n".encode())
    try:
        conn = socket.create_connection((args.address, args.port), timeout=3)
        if args.tls:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            conn = context.wrap_socket(conn)
        for round_ in range(2 if args.hold else 1):
            if round_:
                time.sleep(args.hold)
            conn.sendall(payload)
            if not conn.recv(65536):
                raise ConnectionError("Remote end closed connection without response")
            time.sleep(0.2)
        conn.close()
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
        return 1
    print("ok", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wizard.lab.servers")
    p.add_argument("mode", choices=("http", "linger0", "unread", "crash", "crash-worker", "backlog", "tls",
                                   "client"))
    p.add_argument("--address", default="::")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log")
    p.add_argument("--idle", type=float, default=300.0, help="http: keep-alive idle timeout")
    p.add_argument("--big", action="store_true", help="http: answer with a 64 kB body")
    p.add_argument("--read", type=int, default=16, help="unread: bytes read before the early answer")
    p.add_argument("--backlog", type=int, default=1)
    p.add_argument("--signal", default="", help="crash: SIGSEGV to die by signal with the request unread")
    p.add_argument("--restart-delay", type=float, default=0.2)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--payload", help="client: what to send (\\r\\n escapes)")
    p.add_argument("--tls", action="store_true", help="client: speak TLS")
    p.add_argument("--hold", type=float, default=0.0, help="client: idle this long, then send again")
    args = p.parse_args(argv)
    if args.mode == "client":
        return _client(args)
    if args.mode == "backlog":
        return _backlog(args)
    if args.mode == "crash":
        return _supervise(args)
    if args.mode == "crash-worker":
        return _crash_worker(args)
    server = Server(args)
    signal.signal(signal.SIGTERM, lambda *_: server.stopping.set())
    handler = {"http": server.http, "linger0": server.linger0, "unread": server.unread,
               "tls": server.tls}[args.mode]
    server.serve(handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
