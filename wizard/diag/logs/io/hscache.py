"""The compiled Hyperscan databases of one pattern set kept on disk (I/O): compiling 42
signatures costs ~0.2 s, more than a window's search. Keyed by the patterns, the engine's
version and the layout's format; a bad, stale or truncated file is ignored.

Kept where Python keeps the wizard's own compiled bytecode, the ``__pycache__`` beside this
module inside the wizard's installation, never in the home directory or anywhere else on
the machine examined; not written when Python writes no bytecode (``-B``,
``PYTHONDONTWRITEBYTECODE``) or where the installation is read-only. ``RESET_WIZARD_CACHE_DIR``
names another directory; set empty, nothing is read or written."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from wizard.model import cachefile

CACHE_FORMAT = 11
NAMES = ("db", "line", "nfa", "all", "pre", "post")


def cache_dir() -> str:
    """The directory of the kept databases; "" when none is kept."""
    return cachefile.cache_dir(__file__)


def cache_path(hs: Any, regexes: Sequence[str]) -> str:
    """Where the databases of ``regexes`` are kept; "" when none is kept."""
    base = cache_dir()
    if not base:
        return ""
    key = hashlib.sha256(json.dumps([getattr(hs, "__version__", ""), CACHE_FORMAT,
                                     list(regexes)]).encode()).hexdigest()[:24]
    return os.path.join(base, f"hs-{key}.db")


def load(hs: Any, path: str) -> tuple[dict, dict[str, Any]] | None:
    """The metadata and the databases (by name) saved at ``path``; None when unusable."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            head, _, blob = fh.read().partition(b"\n")
        meta = json.loads(head)
        sizes = meta["sizes"]
        if len(sizes) != len(NAMES) or len(blob) != sum(sizes):
            return None
        dbs, at = {}, 0
        for name, n in zip(NAMES, sizes, strict=True):
            if n:
                dbs[name] = hs.loadb(blob[at:at + n], hs.HS_MODE_BLOCK)
            at += n
        return meta, dbs
    except (OSError, ValueError, KeyError, TypeError, hs.error):
        return None


def save(hs: Any, path: str, meta: dict, dbs: dict[str, Any]) -> None:
    if not path or not cachefile.may_write():
        return
    try:
        blobs = [hs.dumpb(dbs[name]) if dbs.get(name) is not None else b"" for name in NAMES]
        head = json.dumps({**meta, "sizes": [len(b) for b in blobs]}).encode()
        cachefile.write_whole(path, head + b"\n" + b"".join(blobs))
    except (OSError, hs.error):
        pass


__all__ = ["cache_dir", "cache_path", "load", "save"]
