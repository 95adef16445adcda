"""The journal path with REAL journal files built by systemd-journal-remote and read by
journalctl --file: time window, units, binary messages, signatures through logs.excerpt."""

from __future__ import annotations

import shutil
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeHost, make_ctx, output
from wizard.diag.logs.checks import LogExcerptCheck, LogExcerptParams
from wizard.diag.logs.io.journal import (
    entry_time,
    is_journal_file,
    journal_window,
    parse_records,
)
from wizard.hosts.local import LocalHost
from wizard.model import Answers, Status

AT = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC)
REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"

needs_tools = pytest.mark.skipif(
    not (Path(REMOTE).exists() and shutil.which("journalctl")),
    reason="systemd-journal-remote and journalctl are needed (apt install systemd-journal-remote)")


def export_entry(t: datetime, unit: str, pid: int, message: str | bytes, prio: int = 6,
                 source_t: datetime | None = None) -> bytes:
    """One entry in journal export format; a bytes message is written as a binary field."""
    us = int(t.timestamp() * 1_000_000)
    fields = [f"__REALTIME_TIMESTAMP={us}", f"__MONOTONIC_TIMESTAMP={us % 10**9}",
              f"_BOOT_ID={BOOT}", f"_SYSTEMD_UNIT={unit}", f"_PID={pid}", f"PRIORITY={prio}",
              f"SYSLOG_IDENTIFIER={unit.split('.')[0]}", "_HOSTNAME=rwlg-host"]
    if source_t is not None:
        fields.append(f"_SOURCE_REALTIME_TIMESTAMP={int(source_t.timestamp() * 1_000_000)}")
    out = b"".join(f.encode() + b"\n" for f in fields)
    if isinstance(message, bytes):
        out += b"MESSAGE\n" + struct.pack("<Q", len(message)) + message + b"\n"
    else:
        out += f"MESSAGE={message}\n".encode()
    return out + b"\n"


def build_journal(tmp_path: Path, entries: list[bytes]) -> Path:
    export = tmp_path / "rwlg.export"
    export.write_bytes(b"".join(entries))
    journal = tmp_path / "rwlg.journal"
    run = subprocess.run([REMOTE, f"--output={journal}", str(export)], capture_output=True,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    return journal


def sample_entries() -> list[bytes]:
    out = []
    for i in range(-30, 31):
        t = AT + timedelta(seconds=i * 30)
        out.append(export_entry(t, "app.service", 4242, f"GET /api/items/{i} 200"))
    out.append(export_entry(AT + timedelta(seconds=1), "app.service", 4242,
                            "upstream read failed: [Errno 104] Connection reset by peer", prio=3))
    out.append(export_entry(AT + timedelta(seconds=2), "nginx.service", 99,
                            b"recv() failed \xff\xfe (104: Connection reset by peer)", prio=3))
    out.append(export_entry(AT - timedelta(hours=2), "app.service", 4242,
                            "Traceback (most recent call last):"))
    out.append(export_entry(AT + timedelta(seconds=3), "app.service", 4242, "late write",
                            source_t=AT + timedelta(seconds=3, microseconds=250_000)))
    return sorted(out, key=lambda e: int(e.split(b"__REALTIME_TIMESTAMP=")[1].split(b"\n")[0]))


@needs_tools
async def test_real_journal_file_window_keeps_only_entries_inside_it(tmp_path: Path) -> None:
    journal = build_journal(tmp_path, sample_entries())
    win = await journal_window(LocalHost(), "", AT.timestamp() - 60, AT.timestamp() + 60,
                               file=str(journal))
    assert not win.error, win.error
    assert "--file" in win.command and str(journal) in win.command
    assert all(AT.timestamp() - 61 <= e.ts <= AT.timestamp() + 61 for e in win.entries)
    texts = [e.text for e in win.entries]
    assert any("[Errno 104] Connection reset by peer" in t for t in texts)
    assert not any("Traceback" in t for t in texts)  # two hours earlier
    # the binary message arrived as a byte array and is shown with replacement characters
    nginx = next(e for e in win.entries if e.unit == "nginx.service")
    assert "(104: Connection reset by peer)" in nginx.text and "\ufffd" in nginx.text
    assert nginx.pid == 99 and nginx.priority == 3
    # _SOURCE_REALTIME_TIMESTAMP is preferred over the receive time
    late = next(e for e in win.entries if "late write" in e.text)
    assert late.ts == pytest.approx(AT.timestamp() + 3.25)


@needs_tools
async def test_real_journal_file_filters_by_unit(tmp_path: Path) -> None:
    journal = build_journal(tmp_path, sample_entries())
    win = await journal_window(LocalHost(), "nginx.service", AT.timestamp() - 600,
                               AT.timestamp() + 600, file=str(journal))
    assert win.entries and {e.unit for e in win.entries} == {"nginx.service"}


@needs_tools
async def test_logs_excerpt_reads_a_journal_file_given_as_log(tmp_path: Path) -> None:
    journal = build_journal(tmp_path, sample_entries())
    ctx = make_ctx(answers=Answers(at=AT, logs=[str(journal)], window_s=120), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, LogExcerptParams())
    assert result.status == Status.WARN
    assert "log.reset" in {s.id for s in result.signals}
    quoted = next(e for e in result.evidence if e.kind == "log")
    assert "journalctl" in quoted.source and "Connection reset by peer" in quoted.text
    assert quoted.data["journal_file"] == str(journal)


@needs_tools
async def test_empty_window_of_a_real_journal_is_no_error(tmp_path: Path) -> None:
    journal = build_journal(tmp_path, sample_entries())
    far = AT + timedelta(days=3)
    win = await journal_window(LocalHost(), "", far.timestamp(), far.timestamp() + 60,
                               file=str(journal))
    assert not win.error and win.entries == []


def test_realtime_fields_are_microseconds_and_source_time_wins() -> None:
    assert entry_time({"__REALTIME_TIMESTAMP": "1795321688000000"}) == 1795321688.0
    assert entry_time({"__REALTIME_TIMESTAMP": "1795321688000000",
                       "_SOURCE_REALTIME_TIMESTAMP": "1795321687500000"}) == 1795321687.5
    assert entry_time({"MESSAGE": "no time"}) is None


def test_multiline_and_byte_array_messages_become_lines() -> None:
    text = ('{"__REALTIME_TIMESTAMP":"1795321688000000","_PID":"7","SYSLOG_IDENTIFIER":"app",'
            '"MESSAGE":"Traceback (most recent call last):\\n  File \\"x.py\\"\\nConnectionResetError"}\n'
            'not json\n'
            '{"__REALTIME_TIMESTAMP":"1795321689000000","MESSAGE":[104,105,255]}\n')
    entries, skipped = parse_records(text, "fallback")
    assert skipped == 1
    assert entries[0].text.endswith("app[7]: Traceback (most recent call last):")
    assert entries[1].text == '  File "x.py"' and entries[2].text == "ConnectionResetError"
    assert entries[3].text.endswith("fallback: hi\ufffd")


def test_journal_file_values_are_told_from_units() -> None:
    assert is_journal_file("/var/log/journal/x/system.journal")
    assert is_journal_file("/tmp/user-1000.journal~")
    assert not is_journal_file("nginx.service") and not is_journal_file("nginx")


async def test_journalctl_failure_is_a_finding_not_an_exception() -> None:
    server = FakeHost("local", files={"/run/systemd/journal": ""},
                      commands={("journalctl",): output(["journalctl"], "", 1,
                                                        "Failed to open files: Permission denied")})
    ctx = make_ctx(answers=Answers(at=AT, journal=["nginx"]), server=server)
    result = await LogExcerptCheck().run(ctx, LogExcerptParams())
    assert result.status == Status.WARN
    assert any("Permission denied" in e.title for e in result.evidence)
