"""The rules for every step-1 input (CLI options of `diagnose` and the TUI form alike): pure parsing.

One function per input; each turns what a person typed into the value Answers holds, or
raises WizardError(title, message) with the one line both faces show. Blank means "not
given" (the default). No I/O here: whether a log file is readable or a namespace exists is
asked of the probes by the caller.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta
from typing import Literal

from wizard.model.contexts import parse_context, split_ssh_spec
from wizard.model.errors import WizardError
from wizard.model.target import parse_port, parse_target

__all__ = [
    "DEFAULT_ATTEMPTS", "DEFAULT_HOLD_S", "DEFAULT_TIMEOUT_S", "DEFAULT_WINDOW_S", "SIDES",
    "parse_attempts", "parse_context", "parse_duration", "parse_hold", "parse_journal", "parse_logs",
    "parse_payload", "parse_port",
    "parse_side", "parse_target", "parse_time", "parse_timeout", "split_list", "split_ssh_spec",
]

DEFAULT_WINDOW_S = 900.0
DEFAULT_HOLD_S = 0.0
DEFAULT_ATTEMPTS = 10
DEFAULT_TIMEOUT_S = 3.0
MAX_ATTEMPTS = 1000
MAX_TIMEOUT_S = 60.0
Side = Literal["client", "server", "unknown"]
SIDES: tuple[Side, ...] = ("client", "server", "unknown")

# ASCII only (re.A): \d would take Arabic-Indic and other digits, which no one means here.
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|m|min|mins|h|d)?$", re.I | re.A)
_UNIT_S = {"": 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "m": 60.0, "min": 60.0,
           "mins": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?$", re.A)
# systemd.unit(5) names, with journalctl's globs; never an option ("-...").
_UNIT = re.compile(r"(?!-)[A-Za-z0-9:_.\\@*?\[\]-]{1,256}", re.A)
_TIME_HELP = "use RFC 3339, 'YYYY-MM-DD HH:MM[:SS]', 'HH:MM[:SS]' (today) or -10m"


def _given(text: str | None) -> str:
    return (text or "").strip()


def parse_duration(text: str | None, default: float = DEFAULT_WINDOW_S, title: str = "bad window") -> float:
    """``90s``, ``15m``, ``2h``, ``1d``, ``500ms`` or plain seconds, as seconds (> 0)."""
    raw = _given(text)
    if not raw:
        return default
    match = _DURATION.match(raw)
    if not match:
        raise WizardError(title, f"{raw!r}: use seconds or 90s, 15m, 2h")
    seconds = float(match.group(1)) * _UNIT_S[(match.group(2) or "").lower()]
    if seconds <= 0:
        raise WizardError(title, f"{raw!r} must be longer than zero")
    return seconds


def parse_time(text: str | None, now: datetime | None = None) -> datetime | None:
    """When the reset was seen: RFC 3339, ``YYYY-MM-DD HH:MM[:SS]``, ``HH:MM[:SS]`` or ``-10m``.

    Blank is None (just now). A time without an offset is this machine's local time; a
    clock time is today's, or yesterday's when today's is still to come ("03:48" typed at
    01:00 means the night before).
    """
    raw = _given(text)
    if not raw:
        return None
    if not raw.isascii():
        raise WizardError("bad time", f"{raw!r}: {_TIME_HELP} (in ASCII digits)")
    now = (now or datetime.now()).astimezone()
    if raw.startswith("-"):
        try:
            return now - timedelta(seconds=parse_duration(raw[1:]))
        except WizardError:
            raise WizardError("bad time", f"{raw!r}: a relative time looks like -90s, -10m or -2h") from None
    clock = _CLOCK.match(raw)
    if clock:
        hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise WizardError("bad time", f"{raw!r}: {_TIME_HELP}")
        micro = min(round(float(clock.group(4) or 0) * 1_000_000), 999_999)
        of_day = time(hour, minute, second, micro)
        local = datetime.combine(now.date(), of_day).astimezone()
        if local > now:
            local = datetime.combine(now.date() - timedelta(days=1), of_day).astimezone()
        return local
    try:
        when = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise WizardError("bad time", f"{raw!r}: {_TIME_HELP}") from None
    return when if when.tzinfo else when.astimezone()


def _number(text: str, what: str, integer: bool = False) -> float:
    # A trailing "s" is allowed on seconds ("3s"); inf and nan are not numbers a wait can use.
    raw = text[:-1].rstrip() if not integer and text[-1:] in ("s", "S") else text
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = math.nan
    # int() and float() take any Unicode digits and "1_000"; a person typing a number means ASCII.
    if not math.isfinite(value) or "_" in raw or not raw.isascii():
        raise WizardError(f"bad {what}", f"{text!r} is not a{'n integer' if integer else ' number'}")
    return value


def parse_hold(text: str | None) -> float:
    """Seconds to keep the probe connection idle before sending again (0 or more)."""
    raw = _given(text)
    if not raw:
        return DEFAULT_HOLD_S
    hold = _number(raw, "hold")
    if hold < 0:
        raise WizardError("bad hold", f"{raw}: must be 0 or more seconds")
    return hold


def parse_attempts(text: str | None) -> int:
    """Handshakes in the burst probe, 1 to 1000."""
    raw = _given(text)
    if not raw:
        return DEFAULT_ATTEMPTS
    attempts = int(_number(raw, "attempts", integer=True))
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise WizardError("bad attempts", f"{attempts}: must be between 1 and {MAX_ATTEMPTS}")
    return attempts


def parse_timeout(text: str | None) -> float:
    """The per-probe timeout in seconds: more than 0, at most 60."""
    raw = _given(text)
    if not raw:
        return DEFAULT_TIMEOUT_S
    timeout = _number(raw, "timeout")
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise WizardError("bad timeout", f"{raw}: must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds")
    return timeout


def parse_side(text: str | None) -> Side:
    raw = _given(text) or "unknown"
    if raw not in SIDES:
        raise WizardError("bad side", f"{raw!r}: use client, server or unknown")
    return raw


def parse_payload(text: str | None) -> str | None:
    """The payload as typed (the probe decodes its escapes); ``@FILE`` must name a file.

    A ``\\x`` without two hex digits is refused, not sent as typed: it was meant as a byte.
    Other backslashes (``\\"``, ``\\u00e9`` in a JSON body) are sent as they are.
    """
    if not text:
        return None
    if text.startswith("@"):
        if not text[1:].strip():
            raise WizardError("unreadable payload", "@ needs a file name: @request.bin")
        return text
    for m in _PAYLOAD_ESCAPE.finditer(text):
        if m[1] == "x":
            bad = "".join(c if c.isprintable() else "?" for c in text[m.start():m.start() + 4])
            raise WizardError("bad payload", f"{bad} (character {m.start() + 1}) is not an escape: \\xHH "
                                             "takes two hex digits, and \\\\ is a backslash")
    return text


#: a backslash pair, a \xHH, or a \x that lacks its digits (m[1] == "x")
_PAYLOAD_ESCAPE = re.compile(r"\\(\\|x(?:[0-9A-Fa-f]{2})?)")


def parse_journal(units: list[str]) -> list[str]:
    """--journal values: each a unit name (globs allowed) or a .journal file, never blank:
    ``journalctl`` without ``-u`` would read the whole journal."""
    for unit in units:
        if not unit.strip():
            raise WizardError("bad journal", "an empty --journal names no unit (it would read the "
                                             "whole journal): give nginx.service or a .journal file")
        if unit.endswith((".journal", ".journal~")):
            continue
        if not _UNIT.fullmatch(unit):
            raise WizardError("bad journal", f"{unit!r} is not a systemd unit name (nginx.service, "
                                             "app@1.service, nginx*)")
    return units


def parse_logs(patterns: list[str]) -> list[str]:
    """--log values by their shape: none blank (whether they exist is the caller's question)."""
    if any(not p.strip() for p in patterns):
        raise WizardError("bad log", "an empty --log names no file: give a path or a glob")
    return patterns


def split_list(text: str | None) -> list[str]:
    """Several paths or names in one field, separated by commas or new lines."""
    return [p.strip() for p in re.split(r"[,\n]", text or "") if p.strip()]
