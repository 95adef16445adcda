"""Regex search over untrusted text that cannot take super-linear time (pure).

Python's ``re`` backtracks: a signature such as ``\\S+\\[\\d+\\]: segfault`` tried at every
position of a 30,000-character run of non-space text costs seconds, and anyone who can write
a long URL into a log can produce such a run. Two things bound it here:

- ``linear_regex``: a top-level alternative that starts with a repeated single class
  (``\\S+``, ``(\\S+)``, ``\\d*``, ``[^ ]+``) is only tried where a run of that class begins
  (a lookbehind in front). A match starting inside such a run implies one starting at the
  run's first character (the repeat takes the extra characters), so whether a text matches
  is unchanged; the quadratic retry at every position of the run is gone.
- ``search``: ``re`` sees at most the first and the last ``HALF`` characters of a line;
  a longer line is matched on its head and tail, and the caller says so. (Hyperscan, used
  for the decision wherever it can be, sees whole lines and is linear by construction.)
"""

from __future__ import annotations

import functools
import re

HALF = 2048  # characters of a long line's head, and of its tail, that re sees
MAX_LINE = 2 * HALF

_LEAD = re.compile(r"(\((?:\?:)?)?(\\[SdDwWs]|\[(?:\\.|[^\]\\])+\])([+*])\??")


def _top_level(rx: str) -> list[str]:
    """``rx`` cut at its top-level ``|`` (outside groups and classes)."""
    parts, depth, cls, start, i = [], 0, False, 0, 0
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if cls:
            cls = c != "]"
        elif c == "[":
            cls = True
            if rx[i + 1:i + 2] == "^":
                i += 1
            if rx[i + 1:i + 2] == "]":
                i += 1  # a "]" first in a class is a literal
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(rx[start:i])
            start = i + 1
        i += 1
    parts.append(rx[start:])
    return parts


@functools.lru_cache(maxsize=1024)
def linear_regex(rx: str) -> str:
    """``rx`` with each top-level alternative that starts with a repeated class anchored
    to where a run of that class begins (see the module's docstring); same matches."""
    out = []
    for alt in _top_level(rx):
        m = _LEAD.match(alt)
        grouped = m is not None and m.group(1) is not None
        anchored = m is not None and (not grouped or alt[m.end():m.end() + 1] == ")")
        out.append(f"(?<!{m.group(2)}){alt}" if anchored and m else alt)
    return "|".join(out)


@functools.lru_cache(maxsize=1024)
def compile_linear(rx: str, flags: int = re.I) -> re.Pattern[str]:
    return re.compile(linear_regex(rx), flags)


def is_long(text: str) -> bool:
    return len(text) > MAX_LINE


def search(rx: re.Pattern[str], text: str) -> re.Match[str] | None:
    """``rx.search(text)`` on at most its head and tail (HALF characters each)."""
    if len(text) <= MAX_LINE:
        return rx.search(text)
    return rx.search(text, 0, HALF) or rx.search(text, len(text) - HALF)


def shown(text: str, limit: int = 4 * MAX_LINE) -> str:
    """A line as quoted in evidence: its head and tail when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} «{len(text) - 2 * half} characters left out» {text[-half:]}"


__all__ = ["HALF", "MAX_LINE", "compile_linear", "is_long", "linear_regex", "search", "shown"]
