"""The default factories of the models' list and dict fields (pure): plain functions rather
than ``list`` and ``dict`` themselves.

pydantic asks each field's factory whether it takes the validated data, through
``inspect.signature``. A builtin's signature is parsed from its text signature by tokenize
(~0.1 ms each, and the first compiles tokenize's patterns): ~5 ms of CPU over the fields of
the models every command's start-up builds. A function's signature is read from its code."""

from __future__ import annotations

from typing import Any


def new_list() -> list[Any]:
    return []


def new_dict() -> dict[str, Any]:
    return {}


__all__ = ["new_dict", "new_list"]
