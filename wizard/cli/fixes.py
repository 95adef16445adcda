"""A skipped check's fix as the console prints it (pure): each way (wizard.model.wording.ways) on
a line of its own, a command as it is pasted.

A check writes its fix as one sentence ("mount -t tracefs nodev /sys/kernel/tracing (or let
the wizard mount it: --allow-tracefs-mount)"); the console splits it into its ways, the first
first. A way that is a command is printed as the command, what it is for after a shell
comment (``# run as root``), so that the whole line can be pasted; a way that is an option
of this command is this command line again with the option; prose stays prose.
"""

from __future__ import annotations

from collections.abc import Sequence

from wizard.model.wording import fix_ways, ways


def fix_lines(fix: str, rerun: Sequence[str] | None = None) -> list[str]:
    """The console's lines for a fix: ``fix: FIRST WAY`` then ``or:  OTHER WAY`` each; a
    command as it is pasted (wizard.model.wording.fix_ways), what it is for after ``# ``.
    ``rerun`` is this run's command line (after the program's name)."""
    lines = []
    for i, (command, words) in enumerate(fix_ways(fix, rerun)):
        said = f"{command}  # {words}" if command and words else command or words
        lines.append(f"{'fix:' if i == 0 else 'or: '} {said}")
    return lines


__all__ = ["fix_lines", "ways"]
