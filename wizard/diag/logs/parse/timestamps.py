"""Log timestamp formats: detect a file's format from its first lines and parse its lines (pure).

It lives with the probes, not the checks, because the log reader's binary search needs it
and probes may not import checks. Every parse returns seconds since the epoch (UTC), so
formats with and without a zone compare alike; times without a zone are read in the zone
the caller gives (by default the wizard's local zone, which the check says).
"""

from __future__ import annotations

import functools
import importlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

_sre_c: Any = importlib.import_module("re._constants")
_sre_p: Any = importlib.import_module("re._parser")

MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


@dataclass(frozen=True)
class TimeContext:
    """What naive timestamps need: the zone to read them in and a reference for the year."""

    tz: tzinfo | None = None  # None: the local zone of the machine running the wizard
    year_ref: datetime | None = None  # e.g. the file's mtime: syslog lines have no year


def _frac(text: str | None) -> float:
    # Nanoseconds (Docker) and microseconds alike: the digits after the dot.
    return float("0." + text) if text else 0.0


@functools.lru_cache(maxsize=64)  # a file's lines carry one zone or two: read once each
def _zone(text: str | None) -> tzinfo | None:
    if not text:
        return None
    t = text.upper()
    if t in ("Z", "UTC", "GMT"):
        return UTC
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", text)
    if not m:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    return timezone(-delta if m.group(1) == "-" else delta)


def _epoch(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: float,
           zone: tzinfo | None, ctx: TimeContext) -> float | None:
    if 0 <= s <= 59:
        tz = None if zone is not None else ctx.tz
        # (the local zone's names in the key: a time.tzset() in between is not answered from before it)
        key = (y, mo, d, h, mi, zone, tz, time.tzname if zone is None and tz is None else None)
        base = _MINUTES.get(key, _NEW)
        if base is _NEW:  # a minute seen once (a binary search's probe) is read as it is
            if len(_MINUTES) >= MINUTES_KEPT:
                _MINUTES.clear()
            _MINUTES[key] = _ONCE
        elif base is _ONCE:
            base = _MINUTES[key] = _minute(y, mo, d, h, mi, zone, tz)
        if base is None:
            return None
        if base is not _NEW and base is not _ONCE and base is not _UNEVEN:
            return base + s + frac
    return _epoch_exact(y, mo, d, h, mi, s, frac, zone, ctx.tz)


_UNEVEN: Any = object()
_NEW: Any = object()
_ONCE: Any = object()
MINUTES_KEPT = 4096  # minutes remembered (a day of a log's is 1440)
_MINUTES: dict[tuple[Any, ...], Any] = {}


def _minute(y: int, mo: int, d: int, h: int, mi: int, zone: tzinfo | None, tz: tzinfo | None) -> Any:
    """The time of second 0 of a minute, when every second of it is that plus the second
    (the same offset from UTC all minute, as every zone's is but around a change that
    falls inside one): a dense log's stamps of one minute are then read by one addition
    each, not a datetime and its zone's rules. None for a date that does not exist;
    _UNEVEN when the offset is not the same at both ends of the minute or either end is
    in a local-time gap (each second is then read on its own)."""
    first = _epoch_exact(y, mo, d, h, mi, 0, 0.0, zone, tz, strict=True)
    if first is None:
        return None
    last = _epoch_exact(y, mo, d, h, mi, 59, 0.0, zone, tz, strict=True)
    return first if first is not _UNEVEN and last is not _UNEVEN and last == first + 59 else _UNEVEN


def _epoch_exact(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: float,
                 zone: tzinfo | None, tz: tzinfo | None, strict: bool = False) -> Any:
    try:
        naive = datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    if zone is not None:
        aware = naive.replace(tzinfo=zone)
    elif tz is not None:
        aware = naive.replace(tzinfo=tz)
    else:
        local = _local_seconds(naive)
        if local is not None:
            return local + frac
        if strict:
            return _UNEVEN  # a gap the local clock jumps over: astimezone() decides each second
        aware = naive.astimezone()  # a naive datetime's astimezone() means local time
    return aware.timestamp() + frac


def _local_seconds(naive: datetime) -> float | None:
    """``naive.astimezone().timestamp()`` without making a zone object (a sixth of the
    cost): a naive datetime's own timestamp() reads it in local time the same way (the
    earlier of two readings in a fold) wherever the local clock shows that time; None
    where it never does (a gap the clock jumps over), for astimezone() to decide."""
    try:
        t = naive.timestamp()
        shown = time.localtime(int(t))
    except (OverflowError, OSError, ValueError):
        return None
    if (shown.tm_year, shown.tm_mon, shown.tm_mday, shown.tm_hour, shown.tm_min, shown.tm_sec) != (
            naive.year, naive.month, naive.day, naive.hour, naive.minute, naive.second):
        return None
    return t


def _year_for(mo: int, d: int, h: int, mi: int, s: int, ctx: TimeContext) -> int:
    """The year of a line without one: the reference's year, or the one before when that
    would put the line more than a day after the reference (December lines in a file
    last written in January)."""
    ref = ctx.year_ref or datetime.now(UTC)
    year = ref.year
    try:
        candidate = datetime(year, mo, d, h, mi, s, tzinfo=ref.tzinfo)
    except ValueError:  # 29 Feb in a year without one: it was an earlier leap year
        return year - 1
    if ref.tzinfo is None:
        candidate = candidate.replace(tzinfo=None)
    return year - 1 if candidate > ref + timedelta(days=1) else year


def _iso(m: re.Match[str], ctx: TimeContext) -> float | None:
    y, mo, d, h, mi, s = map(int, m.group(1, 2, 3, 4, 5, 6))
    return _epoch(y, mo, d, h, mi, s, _frac(m.group(7)), _zone(m.group(8)), ctx)


def _syslog(m: re.Match[str], ctx: TimeContext) -> float | None:
    mo = MONTHS.get(m.group(1).lower())
    if mo is None:
        return None
    d, h, mi, s = map(int, m.group(2, 3, 4, 5))
    return _epoch(_year_for(mo, d, h, mi, s, ctx), mo, d, h, mi, s, _frac(m.group(6)), None, ctx)


def _slashed(m: re.Match[str], ctx: TimeContext) -> float | None:
    y, mo, d, h, mi, s = map(int, m.group(1, 2, 3, 4, 5, 6))
    return _epoch(y, mo, d, h, mi, s, 0.0, None, ctx)


def _clf(m: re.Match[str], ctx: TimeContext) -> float | None:
    mo = MONTHS.get(m.group(2).lower())
    if mo is None:
        return None
    d, y, h, mi, s = int(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6))
    return _epoch(y, mo, d, h, mi, s, _frac(m.group(7)), _zone(m.group(8)), ctx)


def _apache(m: re.Match[str], ctx: TimeContext) -> float | None:
    mo = MONTHS.get(m.group(1).lower())
    if mo is None:
        return None
    d, h, mi, s = map(int, m.group(2, 3, 4, 5))
    return _epoch(int(m.group(7)), mo, d, h, mi, s, _frac(m.group(6)), None, ctx)


def _redis(m: re.Match[str], ctx: TimeContext) -> float | None:
    mo = MONTHS.get(m.group(2).lower())
    if mo is None:
        return None
    d, y, h, mi, s = int(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6))
    return _epoch(y, mo, d, h, mi, s, _frac(m.group(7)), None, ctx)


def _epoch_seconds(m: re.Match[str], ctx: TimeContext) -> float | None:
    return int(m.group(1)) + _frac(m.group(2))


def _klog(m: re.Match[str], ctx: TimeContext) -> float | None:
    mo, d, h, mi, s = map(int, m.group(1, 2, 3, 4, 5))
    return _epoch(_year_for(mo, d, h, mi, s, ctx), mo, d, h, mi, s, _frac(m.group(6)), None, ctx)


@dataclass(frozen=True)
class TimeFormat:
    name: str
    example: str
    pattern: re.Pattern[str]
    convert: Callable[[re.Match[str], TimeContext], float | None]
    has_zone: bool  # False: lines carry no zone (read in TimeContext.tz)
    anchored: bool = True  # the timestamp starts the line

    def parse(self, line: str, ctx: TimeContext, memo: dict[str, float | None] | None = None) -> float | None:
        """The time of ``line``, or None. ``memo`` (one per format and context) keeps the
        times of the stamps seen: a dense window repeats each second's stamp many times,
        and a format's fields are read from the stamp's text alone."""
        m = self.pattern.match(line) if self.anchored else self.pattern.search(line, 0, 200)
        if m is None:
            return None
        if memo is None:
            return self.convert(m, ctx)
        key = m.group(0)
        if key not in memo:
            memo[key] = self.convert(m, ctx)
        return memo[key]


# Order matters only for ties in detection: anchored formats first.
FORMATS: tuple[TimeFormat, ...] = (
    TimeFormat("iso8601", "2026-11-22T03:48:08.123+00:00 / 2026-11-22 03:48:08,123 / … UTC",
               re.compile(r"(?:<\d{1,3}>\d{0,2} ?)?(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})"
                          r"(?:[.,](\d{1,9}))?(?: ?(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)(?![\w:]))?"),
               _iso, has_zone=True),
    TimeFormat("bracketed-iso", "[2026-12-01 19:00:00 +0000] (gunicorn)",
               re.compile(r"\[(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
                          r"(?: ?(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?\]"), _iso, has_zone=True),
    TimeFormat("redis", "4121:M 01 Dec 2026 19:00:00.123",
               re.compile(r"\d+:[XCSM] (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s"),
               _redis, has_zone=False),
    TimeFormat("syslog", "Nov 22 03:48:08",
               re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s"),
               _syslog, has_zone=False),
    TimeFormat("nginx-error", "2026/11/22 03:48:08",
               re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\b"), _slashed, has_zone=False),
    TimeFormat("apache-error", "[Sun Nov 22 03:48:08.123456 2026]",
               re.compile(r"\[[A-Z][a-z]{2} ([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})"
                          r"(?:\.(\d{1,9}))? (\d{4})\]"), _apache, has_zone=False),
    TimeFormat("epoch", "1795321320.660592",
               re.compile(r"(\d{10})(?:\.(\d{1,9}))?(?![\d.])"), _epoch_seconds, has_zone=True),
    TimeFormat("klog", "I1122 03:48:08.123456",
               re.compile(r"[IWEF](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{1,9})\b"), _klog,
               has_zone=False),
    TimeFormat("access-log", "[22/Nov/2026:03:48:08 +0000]",
               re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                          r"(?: ([+-]\d{4}))?\]"), _clf, has_zone=True, anchored=False),
    TimeFormat("json-ts", '{"level":"info","ts":1795321320.660592,...} (Caddy, zap)',
               re.compile(r'"ts":\s?(\d{10})(?:\.(\d{1,9}))?(?![\d.])'), _epoch_seconds, has_zone=True,
               anchored=False),
)


def detect(lines: Iterable[str], ctx: TimeContext | None = None) -> TimeFormat | None:
    """The format that parses the most of ``lines`` (a file's first lines), or None."""
    ctx = ctx or TimeContext()
    sample = [ln for ln in lines if ln.strip()][:64]
    best: TimeFormat | None = None
    best_hits = 0
    for fmt in FORMATS:
        hits = sum(1 for ln in sample if fmt.parse(ln, ctx) is not None)
        if hits > best_hits:
            best, best_hits = fmt, hits
    return best


def format_named(name: str) -> TimeFormat:
    return next(f for f in FORMATS if f.name == name)


_BYTE_SPACE = r"[\t\x0b\x0c\x1c-\x1f ]"  # str's \s on ASCII, less the newline a line lacks
_NOT_AT_LINE_END = re.compile(r"\^|\$|\\[AZSWDn]|\[\^|\(\?[=<]")
_LOOKAHEAD = re.compile(r"\(\?!([^()]*)\)")


@functools.lru_cache(maxsize=32)
def byte_stamp(name: str) -> re.Pattern[bytes] | None:
    """Format ``name``'s stamp pattern for bytes that are ASCII with no "\\r" (a clean
    buffer): matched at a line's start in the buffer, it finds the same text the str
    pattern finds in the decoded line (``\\s`` spelled as str reads it on ASCII, without
    the newline that ends the line in the buffer). None for a pattern that could read the
    line's end differently there (anchors, negated classes, ``.``, lookarounds that could
    see the newline) or that is not anchored at the line's start."""
    fmt = format_named(name)
    src = fmt.pattern.pattern
    bodies = _LOOKAHEAD.findall(src)
    if not fmt.anchored or _NOT_AT_LINE_END.search(src) or any("\\s" in b for b in bodies):
        return None
    outside = re.sub(r"\\.|\[[^\]]*\]", "", src)  # escapes and classes left out
    if "." in outside:
        return None
    return re.compile(src.replace("\\s", _BYTE_SPACE).encode())


def _peek(items: Any) -> int | None:
    """How far past the bytes a match consumes ``items`` may look (lookaheads, ``\\b``);
    None for what could look behind its start or at anything but its neighbours."""
    far = 0
    for op, av in items:
        if op in (_sre_c.ASSERT, _sre_c.ASSERT_NOT):
            width = av[1].getwidth()[1]
            if av[0] < 0 or width >= _sre_c.MAXREPEAT or _peek(av[1]) is None:
                return None
            far = max(far, width + (_peek(av[1]) or 0))
        elif op is _sre_c.AT:
            if av not in (_sre_c.AT_BOUNDARY, _sre_c.AT_NON_BOUNDARY):
                return None
            far = max(far, 1)
        else:
            for sub in _children(op, av):
                got = _peek(sub)
                if got is None:
                    return None
                far = max(far, got)
    return far


def _children(op: Any, av: Any) -> list[Any]:
    if op is _sre_c.SUBPATTERN:
        return [av[-1]]
    if op is _sre_c.BRANCH:
        return list(av[1])
    if op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, _sre_c.POSSESSIVE_REPEAT):
        return [av[2]]
    if op is _sre_c.ATOMIC_GROUP:
        return [av]
    if op is _sre_c.GROUPREF_EXISTS:
        return [x for x in av[1:] if x is not None]
    return []


@functools.lru_cache(maxsize=32)
def stamp_reach(pattern: bytes) -> int | None:
    """How many bytes from a line's start the match of ``pattern`` there depends on (all it
    can consume and look ahead at, and one more): two lines that begin with the same that
    many bytes have the same stamp. None when that is not bounded, or when the pattern looks
    behind its start or uses anchors (each line's stamp is then matched on its own)."""
    try:
        parsed = _sre_p.parse(pattern)
    except re.error:
        return None
    width = parsed.getwidth()[1]
    peek = _peek(parsed)
    if peek is None or width >= _sre_c.MAXREPEAT:
        return None
    return width + peek + 1
