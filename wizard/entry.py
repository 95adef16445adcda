"""The entry point of `reset-wizard` and `python -m wizard` (I/O), before anything heavy is
imported."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable

#: True in the `reset-wizard` process itself (not when the CLI runs inside a test's process):
#: only there may start-up and the end of a run take over the ending signals.
CLI_PROCESS = False

#: Ctrl-C, `timeout` and systemd, a closed terminal
ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exit_in_start_up(signum: int, _frame: object) -> None:
    """Start-up has probed and written nothing: an ending signal ends it at once.

    Not by raising KeyboardInterrupt: raised in the middle of an import it can be lost (a
    finalizer or a garbage-collection callback running at that moment swallows it, and
    start-up then goes on as if no signal had come), or surface wrapped in another error."""
    name = signal.Signals(signum).name
    try:
        os.write(2, f"reset-wizard: interrupted by {name} during start-up: nothing was probed or written\n".encode())
    finally:
        os._exit(3)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def collect_again() -> None:
    """Start-up is over: what it made (modules, classes, pydantic's schemas, the checklist)
    lives as long as the process, so it is frozen out of the collector's way, and the
    collector runs again for what the command makes."""
    if CLI_PROCESS and not gc.isenabled():
        gc.freeze()
        gc.enable()


def hold_collection() -> Callable[[], None]:
    """For a command whose start-up goes on past ``end_start_up`` (the TUI: textual's imports,
    the first frame, the checklist loaded behind it): the collector is off again until the
    returned call, which freezes what that start-up made and turns the collector back on.
    Outside the CLI's process (a test's), nothing changes and the call does nothing."""
    if not CLI_PROCESS or not gc.isenabled():
        return lambda: None
    gc.disable()
    return collect_again


def end_start_up() -> None:
    """The command is loaded: from here SIGTERM and SIGHUP interrupt as Ctrl-C does (a
    KeyboardInterrupt the command handles), until the command installs its own handling.
    A command that takes them over from start-up itself (``OWNS_SIGNALS``) skips this, and
    calls ``collect_again`` itself."""
    if not CLI_PROCESS:
        return
    collect_again()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


def run() -> None:
    """The `reset-wizard` command and `python -m wizard`. Until the command takes over, an
    ending signal ends start-up at once: one line, exit 3, no traceback (the imports take a
    few hundred milliseconds; `timeout` and systemd may signal in them)."""
    import sys

    global CLI_PROCESS
    CLI_PROCESS = True
    for sig in ENDING:
        signal.signal(sig, _exit_in_start_up)
    # Start-up makes objects that live as long as the process, and almost no garbage: the
    # collector's hundreds of passes over them cost a tenth of a second for nothing.
    gc.disable()
    if sys.argv[1:2] == ["analyze"]:  # its captures are read while the command loads
        from wizard.diag.packets.io.prefetch import start

        start(sys.argv[2:])
    try:
        from wizard.cli.main import main

        code = main()
    except KeyboardInterrupt:  # after start-up, in a command that did not catch it
        sys.stderr.write("reset-wizard: interrupted\n")
        code = 3
    gc.freeze()  # as wizard.cli.main.entry: the heap is left to the OS, not collected object by object
    # Everything is written and said: the process ends here, without the interpreter's
    # finalization, which restores the default signal actions (a signal in it would kill
    # the process with -N instead of the run's status) and would wait on any stray thread.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 3)
