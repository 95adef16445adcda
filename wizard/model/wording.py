"""Words of the wizard's sentences (pure): counted nouns ("1 reset", "2 resets"), a packet's
time, and a fix split into its ways (a command to paste, or prose), for the console, the
report and the TUI alike."""

from __future__ import annotations

import re
import shlex


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


def fix_ways(fix: str) -> list[tuple[str, str]]:
    """Each way of a fix as (command, words): the command to paste ("" when the way is prose)
    and what it is for ("let the wizard mount it"), or the prose itself. An option of this
    command ("--allow-tracefs-mount") is a command too: the caller says how to rerun with it."""
    out = []
    for way in ways(fix):
        label, colon, rest = way.partition(": ")
        if colon and (is_command(rest) or option_tokens(rest)):
            out.append((rest, label))
        elif is_command(way) or option_tokens(way):
            out.append((way, ""))
        else:
            out.append(("", way))
    return out
