"""The entry point of `reset-wizard` and `python -m wizard` (I/O): parse, run, exit status.

What went wrong becomes one line and an exit status (wizard.cli.status)."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from wizard.cli.status import ExitStatus
from wizard.entry import end_start_up
from wizard.model.errors import WizardError

if TYPE_CHECKING:
    from wizard.cli.parser import CommandModule
    from wizard.engine.contract import Probes

__all__ = ["ExitStatus", "entry", "main"]


def _crash_report(exc: BaseException) -> str:
    fd, path = tempfile.mkstemp(prefix="reset-wizard-crash-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return path


def main(argv: list[str] | None = None, *, probes: Probes | None = None) -> int:
    """Run one command line; ``probes`` replaces the real ones in tests."""
    # The grammar (wizard.cli.parser, argparse) loads only for a command line with words in it:
    # `reset-wizard` alone is the TUI with step 1 empty, and ~5 ms sooner at its first frame.
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        command: CommandModule
        if words:
            from wizard.cli.parser import load, parse

            try:
                args = parse(words)
            except SystemExit as done:  # --help and --version print and end here
                return int(done.code or 0)
            command = load(args.command)
        else:
            from wizard.cli import tui

            args, command = tui.nothing_typed(), cast("CommandModule", tui)
        if not getattr(command, "OWNS_SIGNALS", False):
            end_start_up()
        return int(command.run(args, probes))
    except WizardError as exc:
        say, _ = _console()
        say(exc.line())
        return ExitStatus.BAD_INPUT
    except KeyboardInterrupt:
        say, prog = _console()
        say(f"{prog}: interrupted")
        return ExitStatus.FAILED
    except Exception as exc:
        say, prog = _console()
        say(f"{prog}: the run failed: {type(exc).__name__}: {exc} (traceback in {_crash_report(exc)})")
        return ExitStatus.FAILED


def _console() -> tuple[Callable[[str], None], str]:
    """The console's ``say`` and the program's name, loaded on the way out of a failed command
    line (with the grammar, which the console imports), not for every one."""
    from wizard.cli.console import say
    from wizard.cli.parser import PROG

    return say, PROG


def entry() -> None:
    """The console script: ``main``, then exit without collecting the heap object by object.

    The interpreter's last garbage collections walk every object the run made (pydantic's
    schemas, scapy's layers): a few tenths of a second after the verdict is out. Frozen,
    they are left to the OS with the process; atexit handlers and file flushes still run.
    """
    code = main()
    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
