"""The server's systemd journal followed while a watch runs (I/O through a Host).

A unit is followed as journald writes it: ``journalctl -o json -f -n 0 -u UNIT``, started
in the server context (locally, in a network namespace, over SSH) and read line by line
while it runs (wizard.hosts.streams: a bounded queue). A journal file is not written by a
journald that could wake journalctl, so it is polled: its cursor when the watch starts
(``-n 0 --show-cursor``), then each poll the entries after it (``--after-cursor``), at most
POLL_MAX bytes a poll (the rest comes in the next). Each entry is timed by the journal's
own clock and kept, redacted as the file lines are, in a bounded ring; a reset gets the
entries of its second. Where journald is not running and no file is given, the source is
skipped with its reason and fix.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wizard.diag.logs.io.follow import LINE_CHARS, RING, Ring, lines_near
from wizard.diag.logs.io.journal import record_entries
from wizard.hosts.base import Host, HostError
from wizard.hosts.streams import LineStream

#: where a running journald has its sockets (/var/log/journal may exist without it: storage only)
JOURNALD_RUN = "/run/systemd/journal"
POLL_MAX = 1 << 20  # bytes of a journal file's new entries read in one poll
CURSOR_MARK = "-- cursor: "


def journald_fix(spec: str) -> str:
    return (f"journald is not running in {spec} ({JOURNALD_RUN} does not exist); "
            "fix: --journal FILE.journal (a journal file), or --log the unit's own log files")


async def journald_runs(host: Host) -> bool:
    return await host.exists(JOURNALD_RUN)


@dataclass
class _Unit:
    name: str
    stream: LineStream
    said_end: bool = False


@dataclass
class _File:
    path: str
    cursor: str | None  # the last entry read; None: the file had none, read it from its start


class JournalFollower:
    """``await start(units, files)``, ``await poll()`` about once a second, ``near(t)`` the
    entries of the second of ``t``, ``await close()`` (the followed commands stopped)."""

    def __init__(self, host: Host, clean: Callable[[str], str] = lambda s: s) -> None:
        self.host = host
        self.clean = clean
        self.units: list[_Unit] = []
        self.files: list[_File] = []
        self.ring: Ring = deque(maxlen=RING)
        self.notes: list[str] = []
        self.unusable = 0  # records that were not JSON or carried no time
        self.lines = 0

    @property
    def followed(self) -> list[str]:
        return [u.name for u in self.units] + [f.path for f in self.files]

    async def start(self, units: list[str], files: list[str]) -> None:
        if units and not await journald_runs(self.host):
            self.notes += [f"skipped: journal of {u} not followed: {journald_fix(self.host.spec)}" for u in units]
            units = []
        for unit in units:
            try:
                stream = await self.host.stream(["journalctl", "-o", "json", "-f", "-n", "0", "-u", unit,
                                                 "--no-pager"])
            except HostError as exc:
                self.notes.append(f"skipped: journal of {unit} not followed: {exc.message}; "
                                  "fix: install journalctl (systemd) in the server context")
                continue
            self.units.append(_Unit(unit, stream))
        for path in files:
            out = await self.host.run(["journalctl", "--file", path, "-o", "json", "-n", "0", "--show-cursor",
                                       "--no-pager"], timeout=10, max_bytes=64 << 10)
            if not out.ok:
                self.notes.append(f"skipped: journal file {path} not followed: {out.problem()}")
                continue
            self.files.append(_File(path, _cursor_line(out.text)))

    async def poll(self) -> None:
        for unit in self.units:
            self._add(unit.name, [raw.decode("utf-8", "replace") for raw in unit.stream.take()])
            if unit.stream.ended and not unit.said_end:
                unit.said_end = True
                self.notes.append(f"journal of {unit.name}: journalctl stopped: {unit.stream.error}")
            if unit.stream.dropped:
                self.notes.append(f"journal of {unit.name}: {unit.stream.dropped} lines dropped in bursts")
                unit.stream.dropped = 0
        for f in self.files:
            argv = ["journalctl", "--file", f.path, "-o", "json", "--no-pager"]
            argv += ["--after-cursor", f.cursor] if f.cursor else []
            try:
                out = await self.host.run(argv, timeout=10, max_bytes=POLL_MAX)
            except HostError as exc:
                out = None
                self.notes.append(f"journal file {f.path}: not read this second: {exc.message}")
            if out is None or not out.ok:
                continue
            text = out.text
            if out.truncated:  # the last record may be cut: it comes whole in the next poll
                text = text[:text.rfind("\n") + 1]
            f.cursor = self._add(f.path, text.splitlines()) or f.cursor

    def _add(self, source: str, lines: list[str]) -> str | None:
        """The records of ``lines`` into the ring; the cursor of the last one."""
        cursor = None
        for raw in lines:
            if not raw.strip() or raw.startswith("-- "):
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                self.unusable += 1
                continue
            entries = record_entries(rec) if isinstance(rec, dict) else []
            self.unusable += not entries
            cursor = str(rec.get("__CURSOR") or "") or cursor if isinstance(rec, dict) else cursor
            for e in entries:
                self.ring.append((e.ts, f"journal {source}", self.clean(e.text[:LINE_CHARS])))
                self.lines += 1
        return cursor

    def near(self, at: float) -> list[str]:
        return lines_near(self.ring, at)

    async def close(self) -> None:
        for unit in self.units:
            await unit.stream.close()


def _cursor_line(text: str) -> str | None:
    """The cursor ``--show-cursor`` prints after the entries (none: the journal is empty)."""
    for line in reversed(text.splitlines()):
        if line.startswith(CURSOR_MARK):
            return line[len(CURSOR_MARK):].strip() or None
    return None


def unit_of_cgroup(text: str) -> str | None:
    """The systemd service a process runs in, from its ``/proc/PID/cgroup`` (v1 or v2)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        units = [part for part in path.split("/") if part.endswith(".service")]
        if units:
            return units[-1]
    return None


async def units_of_port(host: Host, port: int) -> list[str]:
    """The systemd services of the processes listening on ``port`` in ``host``'s context."""
    from wizard.diag.kernel.io.counters import listeners

    try:
        _, socks = await listeners(host)
    except HostError:
        return []
    units: list[str] = []
    for pid in sorted({p for s in socks if s.port == port for _, p, _ in s.processes}):
        try:
            unit = unit_of_cgroup((await host.read(f"/proc/{pid}/cgroup", 0, 1 << 16)).decode("utf-8", "replace"))
        except HostError:
            continue
        if unit and unit not in units:
            units.append(unit)
    return units
