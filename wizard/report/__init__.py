"""Session to text: the Markdown incident report and the session JSON, redacted by default."""

from __future__ import annotations

from collections.abc import Iterator

from wizard.model import Session
from wizard.model.contexts import context_hostnames
from wizard.redact import Redactor, redact_session
from wizard.report.markdown import render_markdown

__all__ = ["describe_check", "redacted", "render_json", "render_json_parts", "render_markdown", "render_report"]


def describe_check(check_id: str) -> str:
    """What a check would have told, from its registered description ('' if unknown)."""
    try:
        from wizard.engine.discovery import all_checks
    except ImportError:
        return ""
    cls = all_checks().get(check_id)
    return (cls.description or cls.title) if cls is not None else ""


def _hostnames(session: Session) -> list[str]:
    names = [session.target.host, session.context.client, *context_hostnames(session.context.server)]
    return [n for n in names if n and n not in ("local", "localhost")]


def redacted(session: Session, *, redact: bool = True, redact_addresses: bool = False) -> Session:
    """The session as it may leave this machine: secrets (and, if asked, addresses and names) replaced."""
    if not redact:
        return session
    hosts = _hostnames(session) if redact_addresses else []
    return redact_session(session, Redactor(addresses=redact_addresses, hostnames=hosts))


def render_report(session: Session, *, redact: bool = True, redact_addresses: bool = False) -> str:
    """The Markdown incident report."""
    return render_markdown(redacted(session, redact=redact, redact_addresses=redact_addresses),
                           describe=describe_check)


def render_json(session: Session, *, redact: bool = True, redact_addresses: bool = False) -> str:
    """The session as JSON (schema 2)."""
    return redacted(session, redact=redact, redact_addresses=redact_addresses).to_json()


def render_json_parts(session: Session, *, redact: bool = True, redact_addresses: bool = False) -> Iterator[str]:
    """``render_json``'s text in parts: a watch's events one at a time (what writes it to a file)."""
    return redacted(session, redact=redact, redact_addresses=redact_addresses).json_parts()
