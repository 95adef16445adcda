"""Signals that end a run (I/O): SIGINT, SIGTERM and SIGHUP cancel the run's task.

Cancelled, the run's cleanup runs (guard table, trace instances) and what was gathered is
still written. In the `reset-wizard` process itself (wizard.entry.CLI_PROCESS) two more
things hold, so that no run outlives a signal by more than moments:

- a second ending signal ends the process at once, exit 3 (the impatient Ctrl-C Ctrl-C);
- if the process is still alive ``BACKSTOP_S`` after the first, it ends itself, exit 3,
  after saying so and leaving every thread's stack in a crash file: whatever was stuck
  (a worker thread in a blocking call, a lock) is a bug to report, never a hung terminal.

Once the outputs are written and the verdict said (``Caught.finished``), an ending signal
has nothing left to stop: it ends the process at once with the run's own status."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import warnings
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from wizard.entry import ENDING  # what `timeout`, systemd and a closed terminal send, and Ctrl-C

R = TypeVar("R")

#: the longest a run may take from the first signal to its exit before it ends itself
BACKSTOP_S = 5.0


@dataclass
class Caught:
    """The signal that cancelled the run, once one has."""

    signal: signal.Signals | None = None
    #: the run's exit status once everything is written and said (``finished``)
    status: int | None = None

    @property
    def name(self) -> str:
        return self.signal.name if self.signal is not None else ""

    def finished(self, status: int) -> None:
        """The outputs are written and the verdict said: a later signal exits with ``status``."""
        self.status = status


def _cli_process() -> bool:
    from wizard import entry

    return entry.CLI_PROCESS


def _say_raw(line: str) -> None:
    try:
        sys.stderr.flush()
        os.write(2, (line + "\n").encode())
    except (OSError, ValueError):
        pass


def _stacks_file() -> str:
    """Every thread's stack, in a crash file (its path; "" if none could be written)."""
    import faulthandler
    import tempfile

    try:
        fd, path = tempfile.mkstemp(prefix="reset-wizard-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"reset-wizard did not stop within {BACKSTOP_S:g}s of an ending signal\n")
            fh.flush()
            faulthandler.dump_traceback(fh, all_threads=True)
        return path
    except OSError:
        return ""


def _backstop(sig: signal.Signals) -> None:
    def force() -> None:
        path = _stacks_file()
        _say_raw(f"reset-wizard: still running {BACKSTOP_S:g}s after {sig.name}: stopped without waiting "
                 f"for the rest" + (f" (where it was stuck: {path})" if path else ""))
        os._exit(3)

    timer = threading.Timer(BACKSTOP_S, force)
    timer.daemon = True
    timer.name = "reset-wizard-backstop"
    timer.start()


@contextmanager
def cancel_on_signals(task: asyncio.Future[Any], signals: tuple[signal.Signals, ...] = ENDING) -> Iterator[Caught]:
    """While inside, the first of ``signals`` cancels ``task`` and is remembered; the previous
    handlers are back on leaving (in the CLI's own process: handlers that end it at once,
    with the status given to ``Caught.finished`` or 3). Call it from the loop's thread."""
    loop = asyncio.get_running_loop()
    caught = Caught()
    cli = _cli_process()

    def cancel(sig: signal.Signals) -> None:
        if caught.signal is None:
            caught.signal = sig
            task.cancel()
            if cli:
                _backstop(sig)
        elif cli:
            _say_raw(f"reset-wizard: {sig.name} again: stopped at once, without writing what was gathered")
            os._exit(3)

    installed: list[signal.Signals] = []
    try:
        for sig in signals:
            loop.add_signal_handler(sig, cancel, sig)
            installed.append(sig)
        yield caught
    finally:
        # No gap in which the default action (death by the signal) or a KeyboardInterrupt
        # applies: the signals wait, blocked, while the loop's handlers give way to the last.
        # Blocked in this thread only: one that comes meanwhile goes to another thread, so the
        # handover must never pass through the default action, which asyncio's
        # remove_signal_handler sets on its way; in the CLI's process the ending handlers
        # replace the loop's in place instead.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signals) if cli else None
        try:
            if cli:
                status = 3 if caught.status is None else caught.status

                def now(_signum: int, _frame: object) -> None:
                    os._exit(status)

                for sig in signals:
                    signal.signal(sig, now)
                _forget_handlers(loop, installed)
            else:
                for sig in installed:
                    loop.remove_signal_handler(sig)
        finally:
            if blocked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _forget_handlers(loop: asyncio.AbstractEventLoop, sigs: list[signal.Signals]) -> None:
    """The loop's handlers of ``sigs`` dropped, the process's own left as they are. Private
    asyncio state (``_signal_handlers``, as ``remove_signal_handler`` keeps it): no public call
    removes a loop's handler without setting the default action first. Without that state,
    the public call, then the process's handlers put back."""
    handlers = getattr(loop, "_signal_handlers", None)
    if not isinstance(handlers, dict):
        kept = {sig: signal.getsignal(sig) for sig in sigs}
        for sig in sigs:
            loop.remove_signal_handler(sig)
            signal.signal(sig, kept[sig])
        return
    for sig in sigs:
        handlers.pop(sig, None)
    if not handlers:
        signal.set_wakeup_fd(-1)  # as remove_signal_handler does once none is left


def run_async(main: Coroutine[Any, Any, R]) -> R:
    """``asyncio.run(main)`` without its last wait for the worker threads.

    ``asyncio.run`` ends by joining the default executor's threads, with no time limit in
    Python 3.11: one still blocked in a call that a cancelled check left behind (a read, a
    join) would hold the process after its verdict. Here the executor is shut down without
    waiting; its threads end with the process."""
    loop = asyncio.new_event_loop()
    try:
        with _children_by_pidfd():
            asyncio.set_event_loop(loop)
            try:
                return loop.run_until_complete(main)
            finally:
                _end_tasks(loop)
    finally:
        loop.close()  # shuts the default executor down without joining its threads


def _end_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
    loop.run_until_complete(loop.shutdown_asyncgens())


@contextmanager
def _children_by_pidfd() -> Iterator[None]:
    """The loop learns that a command ended from a pidfd it polls (``PidfdChildWatcher``, what
    Python 3.12 does by itself), not from a thread started for each command and blocked in
    waitpid: that thread's start waits for the GIL, a few milliseconds each time the checks'
    threads hold it, and a run starts dozens of commands from the loop. Python 3.11 only,
    in the main thread, where the kernel has pidfds; the default watcher is back afterwards
    (a test's process runs other loops, in other threads, which this one cannot serve)."""
    usable = (sys.version_info < (3, 12) and threading.current_thread() is threading.main_thread()
              and _pidfds_work())
    if usable:
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())  # set_event_loop attaches it to the loop
    try:
        yield
    finally:
        if usable:
            with warnings.catch_warnings():
                # a command still running (killed, not yet reaped) is left to end with the
                # process, as the default watcher's thread would be
                warnings.simplefilter("ignore", RuntimeWarning)
                # None: the policy makes its default one again when asked (typeshed omits it)
                asyncio.set_child_watcher(None)  # type: ignore[arg-type]
        asyncio.set_event_loop(None)


def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):  # no pidfd_open (Linux < 5.3), or not allowed here
        return False
    return True
