"""Export (I/O): render the session through wizard.report and write files atomically.

The write goes to a temporary file in the target directory, is flushed to disk, then
renamed over the destination, so a crash never leaves half a report. Refusing to replace
an existing file is the caller's job (the export dialog asks first).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def render_markdown(session: Any, *, redact: bool = True, redact_addresses: bool = False) -> str:
    try:
        from wizard.report import render_report
    except ImportError:  # the report module is still being written: show the data at least
        return _fallback(session)
    return str(render_report(session, redact=redact, redact_addresses=redact_addresses))


def render_session_json(session: Any, *, redact: bool = True, redact_addresses: bool = False) -> str:
    try:
        from wizard.report import render_json
    except ImportError:
        return str(session.to_json())
    return str(render_json(session, redact=redact, redact_addresses=redact_addresses))


def _fallback(session: Any) -> str:
    lines = [f"# Connection reset: {session.target.display()}", ""]
    for finding in session.diagnosis:
        lines.append(f"- **{finding.title or finding.cause}** ({finding.confidence:.0%}): {finding.summary}")
    for step in session.steps:
        lines += ["", f"## {step.title or step.id} ({step.status})"]
        lines += [f"- [{c.status}] {c.title or c.id}: {c.summary}" for c in step.checks]
        if step.notes:
            lines += ["", step.notes]
    return "\n".join(lines) + "\n"


def json_path_for(markdown_path: Path) -> Path:
    return markdown_path.with_suffix(".json")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (same directory)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
