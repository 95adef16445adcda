"""Step 1 field parsing: the form's view of wizard.model.inputs, the rules the CLI applies.

Each parser takes the text of one field and returns the Answers value, or raises
WizardError(title, message) with the CLI's own line; the form shows the message beside the
field. wizard.model is imported lazily so that the first frame does not wait for pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizard.model import Answers


def _inputs() -> Any:
    from wizard.model import inputs

    return inputs


def target(text: str) -> str:
    """The target as typed, once it parses (host:port, [v6]:port or a URL)."""
    return str(_inputs().parse_target(text).display())


def moment(text: str, now: datetime | None = None) -> datetime | None:
    """--at: RFC 3339, 'YYYY-MM-DD HH:MM[:SS]', HH:MM[:SS] (local) or -10m; empty means now."""
    return _inputs().parse_time(text, now)


def window(text: str) -> float:
    """--window: 90s, 15m, 2h or seconds; empty means 15 minutes."""
    return float(_inputs().parse_duration(text))


def context(text: str) -> str:
    """--server by its shape: local, netns:NAME or ssh:[user@]host[:port]."""
    return str(_inputs().parse_context(text))


def hold(text: str) -> float:
    return float(_inputs().parse_hold(text))


def attempts(text: str) -> int:
    return int(_inputs().parse_attempts(text))


def timeout(text: str) -> float:
    return float(_inputs().parse_timeout(text))


def payload(text: str) -> str | None:
    """The payload as typed (escapes are the probe's business); @FILE must name a path."""
    return _inputs().parse_payload(text)


def paths(text: str) -> list[str]:
    """Log files or globs, separated by commas or new lines."""
    return list(_inputs().split_list(text))


def problem(parse: Callable[[str], Any], text: str) -> Any:
    """The WizardError ``parse`` raises for ``text``, or None when the text is fine."""
    from wizard.model import WizardError

    try:
        parse(text)
    except WizardError as exc:
        return exc
    return None


def form_values(answers: Answers | None, target: str | None, server: str) -> dict[str, str]:
    """Step 1's fields for what the command line gave (an Answers, a target, a context)."""
    values = {"target": target or "", "server": server if server != "local" else ""}
    if answers is not None:
        values.update({
            "error": answers.error or "", "side": answers.side, "logs": ", ".join(answers.logs),
            "payload": answers.payload or "", "at": answers.at.isoformat() if answers.at else "",
            "window": f"{answers.window_s:g}s" if answers.window_s != 900 else "",
            "hold": f"{answers.hold_s:g}" if answers.hold_s else "",
            "attempts": str(answers.attempts) if answers.attempts != 10 else "",
            "timeout": f"{answers.timeout_s:g}" if answers.timeout_s != 3 else ""})
    return values
