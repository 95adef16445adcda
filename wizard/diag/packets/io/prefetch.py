"""Captures read in a child process from the start, while the command loads (I/O).

`reset-wizard analyze` spends a few hundred milliseconds importing its model, its analysis
and its checklist before it could open a capture, and libpcap's pass over a large capture
takes about as long again. So the entry point hands the command line to ``start`` before
it imports anything heavy; for each capture file named, ``start`` forks a child that runs
``gather`` (standard library, libpcap and the pure parsers only) and leaves its result,
pickled, in an anonymous memory file.
``take`` gives the result to the command when it asks for the same file (unchanged since),
port and kind of reading. Whenever anything is
in doubt (a command line this does not read exactly, a failure in the child, a changed
file) the command reads the capture itself: the answer never depends on the head start.
The child writes nothing but its memory file, and dies with its parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.diag.packets.io.gather import Gathered

VALUED = {"--port", "--timeout", "--json", "--report"}
FLAGS = {"--force", "--no-redact", "--redact-addresses", "--quiet"}
PR_SET_PDEATHSIG = 1


@dataclass
class _Child:
    pid: int
    done: int  # the read end of a pipe the child holds open until it ends
    memory: int  # the memory file holding the pickled result
    identity: tuple[int, ...]


_PENDING: dict[tuple[str, int | None, bool], _Child] = {}


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
    every_flow = len(captures) == 2
    for path in captures:
        identity = _identity(path)
        key = (os.path.abspath(path), port, every_flow)
        if identity is None or key in _PENDING:
            continue
        try:
            _PENDING[key] = _spawn(lambda p=path: _read(p, port, every_flow), identity)  # type: ignore[misc]
        except OSError:
            return


def _read(path: str, port: int | None, every_flow: bool) -> Gathered:
    """In the child: the capture, read whole (a part of a file cannot be read apart from
    what comes before it: a connection's first packet says which end is its client)."""
    from wizard.diag.packets.io.gather import gather

    return gather(path, port, every_flow)


def _spawn(work: Callable[[], object], identity: tuple[int, ...]) -> _Child:
    """A child that runs ``work`` and leaves what it returns, pickled, in a memory file."""
    memory = os.memfd_create("reset-wizard-capture", os.MFD_CLOEXEC)
    done, keep = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: work, write the result, end without the interpreter's teardown
        code = 1
        try:
            os.close(done)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            _die_with(parent)
            data = memoryview(pickle.dumps(work(), pickle.HIGHEST_PROTOCOL))
            while data:
                data = data[os.write(memory, data):]
            code = 0
        finally:
            os._exit(code)
    os.close(keep)
    return _Child(pid, done, memory, identity)


def _die_with(parent: int) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


def take(path: str, port: int | None, every_flow: bool, timeout: float) -> Gathered | None:
    """The child's result for this reading (waiting up to ``timeout``), or None."""
    child = _PENDING.pop((os.path.abspath(path), port, every_flow), None)
    return _result(child, path, timeout) if child is not None else None


def _result(child: _Child, path: str, timeout: float) -> Gathered | None:
    """What ``child`` left, once it ended well (and ``path`` is as it was), else None."""
    try:
        ready, _, _ = select.select([child.done], [], [], timeout)
        if not ready:
            os.kill(child.pid, signal.SIGKILL)
        _, status = os.waitpid(child.pid, 0)
        if not ready or status != 0 or _identity(path) != child.identity:
            return None
        size = os.lseek(child.memory, 0, os.SEEK_END)
        got: Gathered | None = pickle.loads(os.pread(child.memory, size, 0)) if size else None
        return got
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    finally:
        os.close(child.done)
        os.close(child.memory)
