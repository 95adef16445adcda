"""Words of the wizard's sentences (pure): counted nouns ("1 reset", "2 resets"), a packet's time."""

from __future__ import annotations


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
