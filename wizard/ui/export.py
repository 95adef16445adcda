"""Export: the texts the export dialog writes (Markdown report, JSON session) and their paths.

Writing them is wizard.hosts.files' job (atomic, never over an existing file unless the
dialog was told to replace it).
"""

from __future__ import annotations

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
