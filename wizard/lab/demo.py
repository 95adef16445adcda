"""The built-in demo scenario (I/O): a loopback server that resets after data, and its log.

`reset-wizard demo` needs no root and no network: the server listens on an ephemeral port
of the loopback interface, reads each request and then aborts the connection with
SO_LINGER 0, so the kernel sends a real RST after data (the server's TCPAbortOnData moves).
It writes a log like a small application server would: ISO timestamps, request lines,
reset lines and, for some connections, a Python traceback and a worker restart.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

# What a person would type into step 1 for this scenario.
DEMO_ERROR = "curl: (56) Recv failure: Connection reset by peer"
DEMO_PAYLOAD = r"GET /api/orders HTTP/1.1\r\nHost: demo.local\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"

READ_QUIET_S = 0.3       # a request is complete when the client pauses this long
IDLE_ABORT_S = 5.0       # a client that never sends is aborted too (bounded wait)
MAX_REQUEST = 65536
CRASH_EVERY = 3          # every third request "crashes" the worker, as a flaky app would


def _stamp(when: datetime | None = None) -> str:
    return (when or datetime.now().astimezone()).isoformat(timespec="milliseconds")


def _peer(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DemoScenario:
    """A running demo: ``target`` ("127.0.0.1:PORT"), ``log_path``; ``stop()`` ends it."""

    def __init__(self, workdir: Path | None = None, host: str = "127.0.0.1") -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="rwcl-demo-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "demo-app.log"
        self.error = DEMO_ERROR
        self.payload = DEMO_PAYLOAD
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        # Accept polls so that stop() is noticed within a fraction of a second.
        self._listener.settimeout(0.2)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.target = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._write_history()
        self._thread = threading.Thread(target=self._serve, name="rwcl-demo-accept", daemon=True)
        self._thread.start()

    # -- log ---------------------------------------------------------------------------
    def _line(self, text: str, when: datetime | None = None) -> None:
        with self._lock:
            if self._log.closed:
                return
            # Only the first line carries the timestamp: continuation lines (a traceback)
            # belong to it, as in Python's logging.
            first, *rest = text.splitlines()
            self._log.write(f"{_stamp(when)} {first}\n")
            for part in rest:
                self._log.write(f"{part}\n")
            self._log.flush()

    def _write_history(self) -> None:
        """A few minutes of earlier activity, so the log reads like a real one."""
        now = datetime.now().astimezone()
        pid = os.getpid()
        self._line(f"demo-app[{pid}] INFO starting 4 workers on {self.target}", now - timedelta(minutes=6))
        self._line(f"demo-app[{pid}] INFO 127.0.0.1:50112 \"GET /healthz HTTP/1.1\" 200 2",
                   now - timedelta(minutes=5, seconds=12))
        self._line(f"demo-app[{pid}] ERROR worker 2: recv() failed (104: Connection reset by peer) "
                   "while reading request, client: 127.0.0.1:50131", now - timedelta(minutes=3, seconds=40))
        self._line(f"demo-app[{pid}] WARNING worker 2: client 127.0.0.1:50131 gone before the response",
                   now - timedelta(minutes=3, seconds=40))

    # -- server ------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self._lock:
                self.connections += 1
                number = self.connections
            worker = threading.Thread(target=self._handle, args=(conn, addr, number),
                                      name=f"rwcl-demo-{number}", daemon=True)
            self._workers = [w for w in self._workers if w.is_alive()] + [worker]
            worker.start()

    def _read_request(self, conn: socket.socket) -> tuple[bytes, str]:
        """Everything the client sends until it pauses; and how reading ended."""
        data = bytearray()
        deadline = time.monotonic() + IDLE_ABORT_S
        while len(data) < MAX_REQUEST and not self._stop.is_set():
            wait = READ_QUIET_S if data else max(0.05, min(0.2, deadline - time.monotonic()))
            conn.settimeout(wait)
            try:
                chunk = conn.recv(MAX_REQUEST - len(data))
            except TimeoutError:
                if data:
                    return bytes(data), "complete"
                if time.monotonic() >= deadline:
                    return b"", "idle"
                continue
            except OSError as exc:
                return bytes(data), f"error: {exc}"
            if not chunk:
                return bytes(data), "eof"
            data.extend(chunk)
        return bytes(data), "complete"

    def _handle(self, conn: socket.socket, addr: tuple, number: int) -> None:
        pid = os.getpid()
        worker = 1 + number % 4
        peer = _peer(addr)
        try:
            request, how = self._read_request(conn)
            if how == "eof" and not request:
                # A bare handshake (a port scan or health check): closed normally, with FIN.
                self._line(f"demo-app[{pid}] INFO worker {worker}: {peer} closed without a request")
                conn.close()
                return
            first = request.split(b"\r\n", 1)[0].decode("latin-1", "replace")[:200] or "(nothing)"
            if request:
                self._line(f"demo-app[{pid}] INFO worker {worker}: {peer} \"{first}\" {len(request)} bytes")
            else:
                self._line(f"demo-app[{pid}] WARNING worker {worker}: {peer} sent nothing for "
                           f"{IDLE_ABORT_S:g}s")
            # The bug this demo shows: the worker aborts instead of answering. SO_LINGER 0
            # makes close() send RST rather than FIN, after the request has been read.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            self._line(f"demo-app[{pid}] ERROR worker {worker}: aborted connection from {peer} "
                       "(SO_LINGER 0): client sees recv() failed (104: Connection reset by peer)")
            if number % CRASH_EVERY == 0:
                self._line(
                    f"demo-app[{pid}] ERROR worker {worker}: unhandled exception while handling {peer}\n"
                    "Traceback (most recent call last):\n"
                    '  File "/srv/demo/app.py", line 88, in handle\n'
                    "    body = render(order)\n"
                    '  File "/srv/demo/app.py", line 41, in render\n'
                    "    return TEMPLATE.format(**order)\n"
                    "KeyError: 'customer'")
                self._line(f"demo-app[{pid}] WARNING worker {worker} died (exit status 1); restarting worker")
        except OSError as exc:
            self._line(f"demo-app[{pid}] ERROR worker {worker}: {peer}: {exc}")
            conn.close()

    # -- lifetime ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving, close the log, and remove the work directory if it was ours."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)
        for worker in self._workers:
            worker.join(timeout=IDLE_ABORT_S + 1)
        with self._lock:
            self._log.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DemoScenario:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_demo(workdir: Path | None = None, *, host: str = "127.0.0.1") -> DemoScenario:
    """Start the demo server (loopback, ephemeral port) and its log in ``workdir``
    (a temporary directory, removed on stop, when None)."""
    return DemoScenario(workdir, host=host)


def main() -> int:
    """Serve the demo until interrupted: `python -m wizard.lab.demo` (used by the bench)."""
    import signal

    with start_demo() as demo:
        print(demo.target, demo.log_path, flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
