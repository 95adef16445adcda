"""A skipped check's fix as the console prints it (pure): each way (wizard.model.wording.ways) on
a line of its own, a command as it is pasted.

A check writes its fix as one sentence ("mount -t tracefs nodev /sys/kernel/tracing (or let
the wizard mount it: --allow-tracefs-mount)"); the console splits it into its ways, the first
first. A way that is a command is printed as the command, what it is for after a shell
comment (``# run as root``), so that the whole line can be pasted; a way that is an option
of this command is this command line again with the option; prose stays prose.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from wizard.cli.parser import PROG
from wizard.model.wording import is_command, option_tokens, ways

_RERUN = f"{PROG} ..."


def pasteable(way: str, rerun: Sequence[str] | None = None) -> str:
    """One way as a line to paste. ``rerun`` is this run's command line (after the program's
    name), which stands for ``reset-wizard ...`` and takes an option a way names; without it
    the way says "rerun with" the option."""
    label, colon, rest = way.partition(": ")
    command, note = (rest, label) if colon and (is_command(rest) or option_tokens(rest)) else (way, "")
    option = option_tokens(command)
    if option is not None:
        if rerun is None:
            return f"rerun with {command}" + (f" ({note})" if note else "")
        command = shlex.join([PROG, *rerun, *option])
    elif not is_command(command):
        return way
    elif rerun is not None and _RERUN in command:
        command = command.replace(_RERUN, shlex.join([PROG, *rerun]))
    return f"{command}  # {note}" if note else command


def fix_lines(fix: str, rerun: Sequence[str] | None = None) -> list[str]:
    """The console's lines for a fix: ``fix: FIRST WAY`` then ``or:  OTHER WAY`` each."""
    return [f"{'fix:' if i == 0 else 'or: '} {pasteable(way, rerun)}" for i, way in enumerate(ways(fix))]
