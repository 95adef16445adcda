"""Words of the wizard's sentences (pure): counted nouns ("1 reset", "2 resets"), a packet's
time, and a fix split into its ways (a command to paste, or prose), for the console, the
report and the TUI alike."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence


def plural(count: int, word: str, many: str = "") -> str:
    """``count`` and ``word``, in the plural unless it is exactly one; ``many`` for
    irregular plurals ("address" -> "addresses" is found by itself, "process" too)."""
    if count == 1:
        return f"{count} {word}"
    if not many:
        many = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{count} {many}"


def ms_text(ms: float) -> str:
    """A time on a ladder: two decimals under 10 ms, where a loopback SYN-ACK's 0.02 ms would
    read as 0.0, one decimal above."""
    return f"{ms:.2f} ms" if abs(ms) < 10 else f"{ms:.1f} ms"


#: the words a command in a fix starts with
_PROGRAMS = frozenset({"sudo", "mount", "sysctl", "apt", "apt-get", "dnf", "yum", "pip", "ip", "ss",
                       "ssh", "setcap", "modprobe", "nft", "iptables", "reset-wizard"})
# "A (or B)": B may hold parentheses of its own ("(or grant cap_net_raw (for ping))")
_OR_AFTER = re.compile(r"(?P<first>.+?) \(or (?P<other>(?:[^()]|\([^()]*\))+)\)")


def ways(fix: str) -> list[str]:
    """The ways a fix offers to make the check run: "A (or B)" and "A, or B" are two."""
    out: list[str] = []
    for raw in fix.splitlines():
        line = raw.strip()
        match = _OR_AFTER.fullmatch(line)
        for part in ([match["first"], match["other"]] if match else [line]):
            out += [p.strip() for p in part.split(", or ") if p.strip()]
    return out


def is_command(text: str) -> bool:
    """Whether text is one command line: a known program, no prose ("or", ";", parentheses)."""
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)
    return text.split(" ", 1)[0] in _PROGRAMS and not re.search(r"[;()]| or | and ", bare)


def option_tokens(text: str) -> list[str] | None:
    """The tokens of a way that is one option of this command (``--log PATH``), or None."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    return tokens if tokens and tokens[0].startswith("--") and len(tokens) <= 2 else None


#: what a fix writes for "this run's command line again" (``sudo reset-wizard ...``)
RERUN = "reset-wizard ..."


def fix_ways(fix: str, rerun: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """Each way of a fix as (command, words): the command to paste ("" when the way is prose)
    and what it is for ("let the wizard mount it"), or the prose itself; what the console,
    the report and the TUI print alike. The fix's commands were wrapped for the run's context
    where the check wrote them (wizard.model.contexts.command_in); ``rerun`` (this run's command
    line after the program's name) completes the wizard's own: an option of this command
    (``--allow-tracefs-mount``) is that command line with it, and ``reset-wizard ...`` is that
    command line. Without ``rerun`` an option is named in words ("rerun with ...")."""
    out = []
    for way in ways(fix):
        label, colon, rest = way.partition(": ")
        command, words = ((rest, label) if colon and (is_command(rest) or option_tokens(rest))
                          else (way, "") if is_command(way) or option_tokens(way) else ("", way))
        option = option_tokens(command) if command else None
        again = None if rerun is None else shlex.join(["reset-wizard", *rerun])
        if option is not None:
            command, words = ((f"{again} {shlex.join(option)}", words) if again is not None
                              else ("", f"rerun with {command}" + (f" ({words})" if words else "")))
        elif again is not None:
            command = command.replace(RERUN, again)
        out.append((command, words))
    return out
