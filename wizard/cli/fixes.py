"""A skipped check's fix as the console prints it (pure): each way to make the check run on
a line of its own, a command as it is pasted.

A check writes its fix as one sentence ("mount -t tracefs nodev /sys/kernel/tracing (or let
the wizard mount it: --allow-tracefs-mount)"); the console splits it into its ways, the first
first. A way that is a command is printed as the command, what it is for after a shell
comment (``# run as root``), so that the whole line can be pasted; a way that is an option
of this command is this command line again with the option; prose stays prose.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from wizard.cli.parser import PROG

#: the words a command in a fix starts with
_PROGRAMS = frozenset({"sudo", "mount", "sysctl", "apt", "apt-get", "dnf", "yum", "pip", "ip", "ss",
                       "ssh", "setcap", "modprobe", "nft", "iptables", PROG})
# "A (or B)": B may hold parentheses of its own ("(or grant cap_net_raw (for ping))")
_OR_AFTER = re.compile(r"(?P<first>.+?) \(or (?P<other>(?:[^()]|\([^()]*\))+)\)")
_RERUN = f"{PROG} ..."


def ways(fix: str) -> list[str]:
    """The ways a fix offers to make the check run: "A (or B)" and "A, or B" are two."""
    out: list[str] = []
    for raw in fix.splitlines():
        line = raw.strip()
        match = _OR_AFTER.fullmatch(line)
        for part in ([match["first"], match["other"]] if match else [line]):
            out += [p.strip() for p in part.split(", or ") if p.strip()]
    return out


def _is_command(text: str) -> bool:
    """Whether text is one command line: a known program, no prose ("or", ";", parentheses)."""
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)
    return text.split(" ", 1)[0] in _PROGRAMS and not re.search(r"[;()]| or | and ", bare)


def _option(text: str) -> list[str] | None:
    """The tokens of a way that is one option of this command (``--log PATH``), or None."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    return tokens if tokens and tokens[0].startswith("--") and len(tokens) <= 2 else None


def pasteable(way: str, rerun: Sequence[str] | None = None) -> str:
    """One way as a line to paste. ``rerun`` is this run's command line (after the program's
    name), which stands for ``reset-wizard ...`` and takes an option a way names; without it
    the way says "rerun with" the option."""
    label, colon, rest = way.partition(": ")
    command, note = (rest, label) if colon and (_is_command(rest) or _option(rest)) else (way, "")
    option = _option(command)
    if option is not None:
        if rerun is None:
            return f"rerun with {command}" + (f" ({note})" if note else "")
        command = shlex.join([PROG, *rerun, *option])
    elif not _is_command(command):
        return way
    elif rerun is not None and _RERUN in command:
        command = command.replace(_RERUN, shlex.join([PROG, *rerun]))
    return f"{command}  # {note}" if note else command


def fix_lines(fix: str, rerun: Sequence[str] | None = None) -> list[str]:
    """The console's lines for a fix: ``fix: FIRST WAY`` then ``or:  OTHER WAY`` each."""
    return [f"{'fix:' if i == 0 else 'or: '} {pasteable(way, rerun)}" for i, way in enumerate(ways(fix))]
