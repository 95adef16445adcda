"""Small text forms of the report (pure): times, percentages, plurals, long text shown by its
head, length and hash, and a fix sentence split into pasteable command spans and prose."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from wizard.report.sanitize import clean, code, fenced, inline

#: a line longer than this is shown by its head, its length and its hash
LONG_LINE = 500
LINE_HEAD = 160
#: a block longer than this (lines) is shown by its first lines, its length and its hash
LONG_BLOCK = 40
BLOCK_HEAD = 12
#: a payload is always shown by its head (these many lines), its length and its hash
PAYLOAD_HEAD = 5


def pct(confidence: float) -> str:
    return f"{confidence * 100:.0f} %"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time (a naive one is taken as UTC, as the session writes them)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def stamp(moment: datetime | None, *, date: bool = True) -> str:
    """``2026-11-22 03:48:08.000Z`` (or only the clock, ``03:48:08.000``)."""
    if moment is None:
        return "unknown"
    m = utc(moment)
    clock = m.strftime("%H:%M:%S.") + f"{m.microsecond // 1000:03d}"
    return f"{m:%Y-%m-%d} {clock}Z" if date else clock


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def short_line(line: str) -> str:
    """A line as the report shows it: whole, or its head with its length and hash when long."""
    if len(line) <= LONG_LINE:
        return line
    return f"{line[:LINE_HEAD]} … [{len(line)} chars, sha256 {sha256(line)}]"


def short_lines(text: str) -> str:
    """``text`` with each long line shortened (see :func:`short_line`)."""
    return "\n".join(short_line(line) for line in text.split("\n"))


def digest(text: str) -> str:
    """``84 bytes, 5 lines, sha256 …`` of ``text`` as recorded (before the report cleans it for
    display, so that the length and the hash are the payload's own): what identifies a text
    the report does not show whole."""
    size = len(text.encode("utf-8", "surrogateescape"))
    return f"{plural(size, 'byte')}, {plural(len(text.splitlines()), 'line')}, sha256 `{sha256(text)}`"


def block(text: str, lang: str = "") -> list[str]:
    """A fenced block of ``text``: whole when short, else its first lines, length and hash."""
    body = clean(text).rstrip("\n")
    lines = body.split("\n")
    if len(lines) <= LONG_BLOCK:
        return [fenced(short_lines(body), lang), ""]
    head = short_lines("\n".join(lines[:BLOCK_HEAD]))
    return [f"The first {BLOCK_HEAD} of its lines ({digest(text)}; the session JSON has it whole):", "",
            fenced(head, lang), ""]


def payload(text: str) -> list[str]:
    """A payload by its head, its length and its hash (the session JSON has it whole)."""
    lines = clean(text).rstrip("\n").split("\n")
    head = short_lines("\n".join(lines[:PAYLOAD_HEAD]))
    more = f"; the first {PAYLOAD_HEAD} lines" if len(lines) > PAYLOAD_HEAD else ""
    return [f"{digest(text)}{more}:", "", fenced(head), ""]


# -- a fix sentence as prose and command spans ---------------------------------------------

# Words that start a command someone can paste; an option (--flag) starts one too.
COMMANDS = {"mount", "umount", "apt", "apt-get", "dnf", "yum", "pip", "pip3", "sudo", "sysctl", "ssh",
            "reset-wizard", "modprobe", "setcap", "systemctl", "ulimit"}
# Words that may come before a command in its part ("try ssh -v").
_LEADS = {"try", "run", "then"}
# Words that end a command inside a sentence ("ssh -v to the host").
_PROSE = {"to", "the", "and", "then", "if", "for", "so", "that", "when", "with", "in", "on", "is", "as",
          "it", "this", "which", "names", "rerun"}
# Where a sentence splits into parts: parentheses, commas, semicolons, colons and "or".
_PARTS = re.compile(r"(\s*[()]\s*|,\s+|;\s+|:\s+|\s+or\s+)")


def _command_at(words: list[str]) -> int | None:
    """Where a command starts: an option anywhere, or a command word with an argument that
    opens its part (after a lead such as "try"); None when the part is prose."""
    for i, word in enumerate(words):
        if word.startswith("--") and len(word) > 2:
            return i
        opens = all(w in _LEADS for w in words[:i])
        if word in COMMANDS and opens and i + 1 < len(words) and words[i + 1] not in _PROSE:
            return i
    return None


def _part(text: str) -> str:
    words = text.split(" ")
    start = _command_at(words)
    if start is None:
        return inline(text)
    end = next((j for j in range(start + 1, len(words)) if words[j] in _PROSE), len(words))
    out = [inline(" ".join(words[:start])), code(" ".join(words[start:end])), inline(" ".join(words[end:]))]
    return " ".join(p for p in out if p)


def fix_markdown(fix: str) -> str:
    """A fix as Markdown: each command or option in its own code span, the prose outside.
    "mount -t tracefs nodev /sys/kernel/tracing (or let the wizard: --allow-tracefs-mount)" is
    "`mount -t tracefs nodev /sys/kernel/tracing` (or let the wizard: `--allow-tracefs-mount`)"."""
    one = " ".join(clean(fix).split())
    pieces = _PARTS.split(one)
    # The separators are whitespace, punctuation and "or": nothing Markdown reads.
    return "".join(_part(p) if i % 2 == 0 else p for i, p in enumerate(pieces) if p)
