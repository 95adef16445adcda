"""The systemd journal (I/O through a Host): entries of a unit or a journal file in a time window.

Read with ``journalctl -o json --since @T --until @T [-u UNIT] [--file FILE]``; one JSON
object per line. Times are ``_SOURCE_REALTIME_TIMESTAMP`` (when the sender gave it) or
``__REALTIME_TIMESTAMP``, microseconds since the epoch. ``MESSAGE`` is a string, or a list
of byte values when it is not valid UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wizard.hosts.base import Host

JOURNAL_DIRS = ("/run/systemd/journal", "/var/log/journal", "/run/log/journal")


@dataclass(frozen=True)
class JournalEntry:
    ts: float
    text: str  # "2026-11-22T03:48:08.123456+00:00 ident[pid]: message"
    unit: str = ""
    pid: int | None = None
    priority: int | None = None


@dataclass
class JournalWindow:
    unit: str  # the unit, or the journal file's path
    command: str = ""
    entries: list[JournalEntry] = field(default_factory=list)
    error: str = ""
    truncated: bool = False
    skipped: int = 0  # records that were not JSON or carried no time


def is_journal_file(value: str) -> bool:
    """Whether a --journal/--log value names a journal file rather than a unit."""
    return value.endswith((".journal", ".journal~"))


def entry_time(rec: dict[str, Any]) -> float | None:
    """Seconds since the epoch of one ``journalctl -o json`` record."""
    for key in ("_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP"):
        try:
            return int(rec[key]) / 1e6
        except (KeyError, TypeError, ValueError):
            continue
    return None


def message_text(msg: Any) -> str:
    if isinstance(msg, list):  # non-UTF-8 messages come as arrays of byte values
        return bytes(b & 0xFF for b in msg if isinstance(b, int)).decode("utf-8", "replace")
    return "" if msg is None else str(msg)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_records(text: str, fallback_ident: str = "") -> tuple[list[JournalEntry], int]:
    """Entries of ``journalctl -o json`` output, in order; and how many records were unusable."""
    entries: list[JournalEntry] = []
    skipped = 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            skipped += 1
            continue
        got = record_entries(rec, fallback_ident) if isinstance(rec, dict) else []
        skipped += not got
        entries += got
    return entries, skipped


def record_entries(rec: dict[str, Any], fallback_ident: str = "") -> list[JournalEntry]:
    """One record's entries (a line each of its message); none when it carries no time."""
    ts = entry_time(rec)
    if ts is None:
        return []
    unit = str(rec.get("_SYSTEMD_UNIT") or "")
    pid = _int(rec.get("_PID"))
    ident = rec.get("SYSLOG_IDENTIFIER") or rec.get("_COMM") or unit or fallback_ident
    label = f"{ident}[{pid}]" if pid is not None else str(ident)
    when = datetime.fromtimestamp(ts, UTC).isoformat()
    prio = _int(rec.get("PRIORITY"))
    return [JournalEntry(ts, f"{when} {label}: {part}" if i == 0 else part, unit, pid, prio)
            for i, part in enumerate(message_text(rec.get("MESSAGE")).splitlines() or [""])]


async def journal_window(host: Host, unit: str, start: float, end: float, *, file: str = "",
                         max_bytes: int = 16 << 20, timeout: float = 10.0) -> JournalWindow:
    """The journal entries in [start, end] of ``unit`` (and/or of the journal ``file``)."""
    win = JournalWindow(file or unit)
    if not file and not any([await host.exists(d) for d in JOURNAL_DIRS]):
        win.error = f"journald is not running in {host.spec} and there are no journal files"
        return win
    argv = ["journalctl", "-o", "json", "--since", f"@{int(start)}", "--until", f"@{int(end) + 1}"]
    if file:
        argv += ["--file", file]
    if unit:
        argv += ["-u", unit]
    argv.append("--no-pager")
    out = await host.run(argv, timeout=timeout, max_bytes=max_bytes)
    win.command, win.truncated = out.command_line, out.truncated
    if not out.ok:
        win.error = out.problem()
        return win
    entries, win.skipped = parse_records(out.text, unit)
    # --since/--until are whole seconds; keep the exact window
    win.entries = [e for e in entries if start - 1 <= e.ts <= end + 1]
    return win
