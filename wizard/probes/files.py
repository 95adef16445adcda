"""Writing the wizard's own outputs (I/O): atomic, and never over an existing file unless told."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from wizard.model import WizardError


def write_atomic(path: Path, text: str, force: bool) -> None:
    """Write via a temp file in the same directory; link (no overwrite) or replace (--force)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise WizardError("output exists", f"{path}: appeared during the run; not overwritten") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
