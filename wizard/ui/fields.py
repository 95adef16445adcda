"""Step 1 field parsing: turns what was typed into Answers values, or a one-line problem.

The rules and messages are the CLI's (CLI.md): the target through wizard.model.parse_target,
times, durations, contexts and numbers with the same bounds as Answers. wizard.model is
imported lazily so that the first frame does not wait for pydantic.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class FieldError(ValueError):
    """A problem with one field, phrased for the person typing it."""


def _wizard_error(func: Callable[[], Any]) -> Any:
    from wizard.model import WizardError

    try:
        return func()
    except WizardError as exc:
        raise FieldError(exc.message) from None


def target(text: str) -> str:
    """The target as typed, once it parses (host:port, [v6]:port or a URL)."""
    from wizard.model import parse_target

    parsed = _wizard_error(lambda: parse_target(text))
    return str(parsed.display())


def duration(text: str, default: float | None = None) -> float:
    """Seconds from 15m, 2h, 90s, 1.5h; a bare number is seconds."""
    if not text.strip():
        if default is None:
            raise FieldError("give a duration such as 15m or 2h")
        return default
    match = _DURATION.match(text)
    if not match:
        raise FieldError(f"{text.strip()!r} is not a duration: use e.g. 90s, 15m, 2h")
    value = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if value <= 0:
        raise FieldError("the duration must be longer than zero")
    return value


def moment(text: str, now: datetime | None = None) -> datetime | None:
    """A time: RFC 3339, 'YYYY-MM-DD HH:MM[:SS]' or HH:MM[:SS] today (UTC); empty means now."""
    raw = text.strip()
    if not raw:
        return None
    now = now or datetime.now(timezone.utc)
    clock = _CLOCK.match(raw)
    if clock:
        hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise FieldError(f"{raw!r} is not a time of day")
        when = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
        # "03:48" typed at 01:00 means yesterday's 03:48, not a time still to come.
        return when - timedelta(days=1) if when > now else when
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FieldError(f"{raw!r} is not a time: use 2026-11-22T03:48:08Z or 03:48") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def context(text: str) -> str:
    """A --server value: local, netns:NAME or ssh:[user@]host[:port] (checked for shape only)."""
    raw = text.strip() or "local"
    if raw == "local":
        return raw
    kind, _, rest = raw.partition(":")
    if kind == "netns":
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", rest):
            raise FieldError("netns: needs a namespace name (netns:NAME)")
        return raw
    if kind == "ssh":
        if not re.fullmatch(r"(?:[^@\s]+@)?[^@\s:]+(?::\d{1,5})?", rest):
            raise FieldError("ssh: needs a host (ssh:[user@]host[:port])")
        return raw
    raise FieldError(f"{raw!r}: use local, netns:NAME or ssh:[user@]host[:port]")


def number(text: str, *, low: float, high: float | None = None, low_open: bool = False,
           integer: bool = False, default: float) -> float:
    """A number within bounds, as Answers enforces them."""
    raw = text.strip()
    if not raw:
        return default
    try:
        value: float = int(raw) if integer else float(raw.rstrip("sS"))
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise FieldError(f"{raw!r} is not {kind}") from None
    if (value <= low if low_open else value < low) or (high is not None and value > high):
        upper = f" and at most {high:g}" if high is not None else ""
        lower = f"more than {low:g}" if low_open else f"at least {low:g}"
        raise FieldError(f"must be {lower}{upper}")
    return value


def payload(text: str) -> str | None:
    """The payload as typed (escapes are the probe's business); @FILE must name a path."""
    if not text:
        return None
    if text.startswith("@") and not text[1:].strip():
        raise FieldError("@ needs a file name: @request.bin")
    return text


def paths(text: str) -> list[str]:
    """Log files or globs, separated by commas or new lines."""
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]
