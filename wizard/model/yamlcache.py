"""A YAML file's parsed data kept on disk as JSON (I/O): every run and the TUI read the
checklist (53 KB of YAML) at start-up, and importing PyYAML and parsing it with libyaml
costs ~15-25 ms of CPU; reading the same data back as JSON ~1 ms (``json`` is loaded anyway).

Only the parse is kept, never a validation: the caller validates the data as it would the
YAML's. Keyed by the SHA-256 of the text (a changed file is a new key); a file that is
unreadable, truncated or not this format is ignored and the YAML parsed again. Data JSON
cannot hold exactly (a date, a set, a key that is not a string, NaN) is not kept. Kept where
Python keeps the wizard's bytecode, in the ``__pycache__`` beside this module, never in the
home directory; not written when Python writes no bytecode (``-B``,
``PYTHONDONTWRITEBYTECODE``) or where the installation is read-only.
``RESET_WIZARD_CACHE_DIR`` names another directory; set empty, nothing is read or written
(as for the Hyperscan databases, wizard.diag.logs.io.hscache)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from wizard.model import cachefile

CACHE_FORMAT = 1


def cache_path(text: str) -> tuple[str, str]:
    """(where the parse of ``text`` is kept or "" when none is, the text's SHA-256)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    base = cachefile.cache_dir(__file__)
    return (os.path.join(base, f"yaml-{digest[:24]}.json") if base else ""), digest


def _load(path: str, digest: str) -> tuple[bool, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            kept = json.load(fh)
        if kept["format"] == CACHE_FORMAT and kept["sha256"] == digest:
            return True, kept["data"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return False, None


def _save(path: str, digest: str, data: Any) -> None:
    if not cachefile.may_write():
        return
    try:
        text = json.dumps({"format": CACHE_FORMAT, "sha256": digest, "data": data}, allow_nan=False)
    except (TypeError, ValueError):  # not JSON: a date, a set, bytes, NaN
        return
    if json.loads(text)["data"] != data:  # a key JSON turned into a string
        return
    try:
        cachefile.write_whole(path, text.encode("utf-8"))
    except OSError:
        pass


def parsed(text: str, parse: Callable[[str], Any]) -> Any:
    """``parse(text)``, or the data a previous parse of the same text kept."""
    path, digest = cache_path(text)
    if path:
        found, data = _load(path, digest)
        if found:
            return data
    data = parse(text)
    if path:
        _save(path, digest, data)
    return data


__all__ = ["cache_path", "parsed"]
