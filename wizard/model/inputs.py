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

from wizard.model.errors import WizardError
from wizard.model.target import parse_port, parse_target

__all__ = [
    "DEFAULT_ATTEMPTS", "DEFAULT_HOLD_S", "DEFAULT_TIMEOUT_S", "DEFAULT_WINDOW_S", "SIDES",
    "parse_attempts", "parse_context", "parse_duration", "parse_hold", "parse_payload", "parse_port",
    "parse_side", "parse_target", "parse_time", "parse_timeout", "split_list",
]

DEFAULT_WINDOW_S = 900.0
DEFAULT_HOLD_S = 0.0
DEFAULT_ATTEMPTS = 10
DEFAULT_TIMEOUT_S = 3.0
MAX_ATTEMPTS = 1000
MAX_TIMEOUT_S = 60.0
SIDES = ("client", "server", "unknown")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|m|min|mins|h|d)?$", re.I)
_UNIT_S = {"": 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "m": 60.0, "min": 60.0,
           "mins": 60.0, "h": 3600.0, "d": 86400.0}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?$")
_NETNS = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The ssh: shape, as wizard.probes.sshargs.parse_ssh_spec reads it (a test keeps them equal).
_SSH_HOST = re.compile(r"[A-Za-z0-9_.%:-]{1,253}")
_SSH_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}")
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
    if not math.isfinite(value) or "_" in raw:
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


def parse_side(text: str | None) -> str:
    raw = _given(text) or "unknown"
    if raw not in SIDES:
        raise WizardError("bad side", f"{raw!r}: use client, server or unknown")
    return raw


def parse_payload(text: str | None) -> str | None:
    """The payload as typed (escapes are the probe's business); ``@FILE`` must name a file."""
    if not text:
        return None
    if text.startswith("@") and not text[1:].strip():
        raise WizardError("unreadable payload", "@ needs a file name: @request.bin")
    return text


def split_list(text: str | None) -> list[str]:
    """Several paths or names in one field, separated by commas or new lines."""
    return [p.strip() for p in re.split(r"[,\n]", text or "") if p.strip()]


def parse_context(text: str | None) -> str:
    """A --server value by its shape: ``local``, ``netns:NAME`` or ``ssh:[user@]host[:port]``.

    Whether the namespace exists or the host answers is the probes' question.
    """
    raw = _given(text) or "local"
    if raw == "local":
        return raw
    kind, _, rest = raw.partition(":")
    if kind == "netns":
        if not rest:
            raise WizardError("unknown context", "netns: needs a namespace name (netns:NAME)")
        if not _NETNS.fullmatch(rest):
            raise WizardError("unknown context", f"netns:{rest} is not a valid namespace name")
        return raw
    if kind == "ssh":
        if not rest:
            raise WizardError("unknown context", "ssh: needs a host (ssh:[user@]host[:port])")
        _check_ssh(rest)
        return raw
    raise WizardError("unknown context", f"{raw!r}: use local, netns:NAME or ssh:[user@]host[:port]")


def split_ssh_spec(rest: str) -> tuple[str, str, int]:
    """The user, host and port of ``ssh:[user@]host[:port]`` (after ``ssh:``); "" and 0 when
    not given (then ~/.ssh/config decides). IPv6 literals may be bare or ``[addr]:port``."""
    def bad(why: str) -> WizardError:
        return WizardError("unknown context", f"ssh:{rest}: {why} (use ssh:[user@]host[:port])")

    user, at, hostport = rest.rpartition("@")
    if at and not _SSH_USER.fullmatch(user):
        raise bad("not a valid user name")
    port_text = ""
    if hostport.startswith("["):
        host, close, tail = hostport[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise bad("unbalanced brackets")
        port_text = tail[1:]
        if tail and not port_text:
            raise bad("empty port")
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
        if not port_text:
            raise bad("empty port")
    else:
        host = hostport
    if not host or host.startswith("-") or not _SSH_HOST.fullmatch(host):
        raise bad("not a valid host")
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise bad(f"port {port_text!r} is not 1-65535")
    return (user if at else ""), host, int(port_text or 0)


def _check_ssh(rest: str) -> None:
    split_ssh_spec(rest)
