"""Captures' first passes read in child processes from the start, while the command loads (I/O).

`reset-wizard analyze` spends a couple of hundred milliseconds importing its model, its
analysis and its checklist before it could open a capture, and libpcap's first pass over a
large capture takes about as long again. So the entry point hands the command line to
``start`` before it imports anything heavy; for each capture file named, ``start`` forks a
child that runs the first pass (wizard.diag.packets.io.firstpass: the light part of the
standard library, ctypes and libpcap, imported by the child in a few milliseconds) and
leaves it, packed as bytes, in an anonymous memory file. This module imports no more than
the child needs either (no typing, dataclasses or pickle): what is imported before the fork
delays the child's start, and the other processor idles until then.
``take`` gives the first pass to the command (wizard.diag.packets.io.gather reads the rest)
when it asks for the same file (unchanged since) and port. Whenever anything is in doubt (a
command line this does not read exactly, a failure in the child, a changed file) the command
reads the capture itself: the answer never depends on the head start. The child writes
nothing but its memory file, and dies with its parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable

TYPE_CHECKING = False  # (typing's own is not imported for it: see above)
if TYPE_CHECKING:
    from wizard.diag.packets.io.pcaplib import Skim

VALUED = {"--port", "--timeout", "--json", "--report"}
FLAGS = {"--force", "--no-redact", "--redact-addresses", "--quiet"}
PR_SET_PDEATHSIG = 1
DONE = b"."  # the child's last word on the pipe: its result is written whole


class _Child:
    __slots__ = ("done", "go", "identity", "memory", "pid")

    def __init__(self, pid: int, done: int, memory: int, identity: tuple[int, ...], go: int) -> None:
        self.pid = pid
        self.done = done  # the read end of a pipe the child holds open until it ends
        self.memory = memory  # the memory file holding the packed first pass
        self.identity = identity
        self.go = go  # the write end of a pipe: a byte tells the child the command has loaded


_PENDING: dict[tuple[str, int | None], _Child] = {}


def read_command_line(argv: list[str]) -> tuple[list[str], int | None] | None:
    """(captures, port) of ``analyze``'s arguments, or None unless read beyond doubt."""
    captures: list[str] = []
    port: int | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and arg != "-":
            if name in VALUED:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        return None
                    value = argv[i]
                if name == "--port":
                    if not value.isdigit() or not 0 < int(value) < 65536:
                        return None
                    port = int(value)
            elif arg not in FLAGS:
                return None
        else:
            captures.append(arg)
        i += 1
    return (captures, port) if 1 <= len(captures) <= 2 else None


def _identity(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def start(argv: list[str]) -> None:
    """Begin reading the captures of ``analyze ARGS`` (``argv`` without the command's name)."""
    read = read_command_line(argv)
    if read is None or not hasattr(os, "memfd_create"):
        return
    captures, port = read
    for path in captures:
        identity = _identity(path)
        key = (os.path.abspath(path), port)
        if identity is None or key in _PENDING:
            continue
        try:
            _PENDING[key] = _spawn(lambda go, p=path: _read(p, port, go), identity)  # type: ignore[misc]
        except OSError:
            return


def _read(path: str, port: int | None, go: threading.Event) -> bytes:
    """In the child: the capture's first pass, packed (nothing when the first pass does not
    read it: a gzip file). One processor reads it until ``go`` is set, when the command has
    loaded and waits: the other processor then reads the rest's second half (the command's
    imports are not slowed down by a second reader meanwhile, and the first pass ends once
    the command could go on with it, both processors reading from when it could)."""
    from wizard.diag.packets.io import firstpass

    if not firstpass.skimmable(path):
        return b""
    return firstpass.pack(firstpass.first_pass(path, port, lambda: None, go))


def _spawn(work: Callable[[threading.Event], bytes], identity: tuple[int, ...]) -> _Child:
    """A child that runs ``work`` and leaves the bytes it returns in a memory file; ``work``
    is given an event set once the command asks for the result (``take``)."""
    memory = os.memfd_create("reset-wizard-capture", os.MFD_CLOEXEC)
    done, keep = os.pipe()
    wait, go = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: work, write the result, end without the interpreter's teardown
        code = 1
        try:
            os.close(done)
            os.close(go)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            _die_with(parent)
            data = memoryview(work(_told(wait)))
            while data:
                data = data[os.write(memory, data):]
            code = 0
            # Said before the process ends: freeing its memory takes a few milliseconds more
            # (tens of MB), which the command need not wait for (it reaps the child meanwhile).
            os.write(keep, DONE)
        finally:
            os._exit(code)
    os.close(keep)
    os.close(wait)
    return _Child(pid, done, memory, identity, go)


def _told(fd: int) -> threading.Event:
    """In the child: an event set when the command writes a byte to the pipe ``fd`` reads."""
    told = threading.Event()

    def listen() -> None:
        try:
            if os.read(fd, 1):
                told.set()
        except OSError:
            pass

    threading.Thread(target=listen, name="command-loaded", daemon=True).start()
    return told


def _die_with(parent: int) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


def take(path: str, port: int | None, timeout: float) -> Skim | None:
    """The child's first pass of ``path`` with ``port`` (waiting up to ``timeout``), or None."""
    child = _PENDING.pop((os.path.abspath(path), port), None)
    return _result(child, path, timeout) if child is not None else None


def _result(child: _Child, path: str, timeout: float) -> Skim | None:
    """What ``child`` left, once it ended well (and ``path`` is as it was), else None."""
    from wizard.diag.packets.io.firstpass import unpack

    try:
        try:
            os.write(child.go, b"!")  # the command waits from here: the other processor is free
        except OSError:
            pass  # (the child ended already)
        ready, _, _ = select.select([child.done], [], [], timeout)
        said = os.read(child.done, 1) if ready else b""
        if said != DONE:  # it failed, or is still reading (killed): it ends before this goes on
            if not ready:
                os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            return None
        # (reaped by a thread once it has freed its memory; the result is in the memory file)
        threading.Thread(target=os.waitpid, args=(child.pid, 0), name="reap-capture-child", daemon=True).start()
        if _identity(path) != child.identity:
            return None
        size = os.lseek(child.memory, 0, os.SEEK_END)
        return unpack(os.pread(child.memory, size, 0)) if size else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(child.done)
        os.close(child.memory)
        os.close(child.go)
