"""Where and how the wizard keeps what it may compute again (I/O): the Hyperscan databases
(wizard.diag.logs.io.hscache) and the checklist's parse (wizard.model.yamlcache).

Kept where Python keeps the wizard's bytecode, the ``__pycache__`` beside the module that
keeps it, never in the home directory; not written when Python writes no bytecode (``-B``,
``PYTHONDONTWRITEBYTECODE``) unless ``RESET_WIZARD_CACHE_DIR`` names the directory; set
empty, nothing is read or written. A file is written whole or not at all."""

from __future__ import annotations

import os
import sys


def cache_dir(beside: str) -> str:
    """The directory of what the module at ``beside`` keeps; "" when nothing is kept."""
    chosen = os.environ.get("RESET_WIZARD_CACHE_DIR")
    if chosen is not None:
        return chosen
    return os.path.join(os.path.dirname(os.path.abspath(beside)), "__pycache__")


def may_write() -> bool:
    return not sys.dont_write_bytecode or "RESET_WIZARD_CACHE_DIR" in os.environ


def write_whole(path: str, data: bytes) -> None:
    """``data`` at ``path`` through a temporary file beside it (raises OSError)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


__all__ = ["cache_dir", "may_write", "write_whole"]
