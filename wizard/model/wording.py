"""Counted nouns in the wizard's sentences (pure): "1 reset", "2 resets", "1 address"."""

from __future__ import annotations


def plural(count: int, word: str, many: str = "") -> str:
    """``count`` and ``word``, in the plural unless it is exactly one; ``many`` for
    irregular plurals ("address" -> "addresses" is found by itself, "process" too)."""
    if count == 1:
        return f"{count} {word}"
    if not many:
        many = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{count} {many}"
