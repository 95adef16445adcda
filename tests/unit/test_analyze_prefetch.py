"""analyze's head start: the first pass read by a child forked before anything heavy is
imported, handed to the command as bytes, gives exactly what the command's own read gives;
the child's modules stay light; a changed file, another port or a broken result is read
again by the command."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_analyze_halves import busy, facts
from wizard.diag.packets.io import firstpass, gather, prefetch
from wizard.diag.packets.io.pcaplib import Skim

ROOT = Path(__file__).resolve().parents[2]


def test_the_child_and_what_runs_before_the_fork_import_nothing_heavy():
    code = ("import sys, wizard.entry, wizard.diag.packets.io.prefetch, wizard.diag.packets.io.firstpass; "
            "print(sorted(m for m in ('dataclasses', 'typing', 'pickle', 'inspect', 'gzip', 'ipaddress', "
            "'pydantic', 'wizard.diag.packets.io.gather', 'wizard.diag.packets.parse.frames') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_first_pass_crosses_as_bytes_unchanged(tmp_path):
    path = busy(tmp_path / "busy.pcap")
    skim = firstpass.first_pass(str(path), None, lambda: None)
    assert skim.kept > 0 and len(skim.sources) == len(skim.dumps) > 1
    assert firstpass.unpack(firstpass.pack(skim)) == skim
    packed = firstpass.pack(skim)
    for broken in (packed[:10], packed[:-1], packed + b"x"):
        with pytest.raises(ValueError):
            firstpass.unpack(broken)


def test_the_childs_first_pass_is_the_commands_and_gives_the_same_capture(tmp_path):
    path = busy(tmp_path / "busy.pcap")
    prefetch.start([str(path), "--port", "42000"])  # (one connection's client port)
    prefetch.start([str(path)])
    got = prefetch.take(str(path), None, 60)
    assert isinstance(got, Skim)
    assert got == firstpass.first_pass(str(path), None, lambda: None)
    assert facts(gather.gather(str(path), None, first=got)) == facts(gather.gather(str(path), None))
    assert prefetch.take(str(path), None, 60) is None  # taken once
    assert prefetch.take(str(path), 443, 60) is None  # another port: never started
    with_port = prefetch.take(str(path), 42000, 60)
    assert with_port == firstpass.first_pass(str(path), 42000, lambda: None) and with_port != got


def test_a_capture_changed_meanwhile_or_gzipped_is_read_by_the_command(tmp_path):
    path = busy(tmp_path / "busy.pcap")
    prefetch.start([str(path)])
    with path.open("ab") as handle:  # (appended while the child read: its pass is not this file's)
        handle.write(b"\0" * 16)
    assert prefetch.take(str(path), None, 60) is None
    zipped = tmp_path / "busy.pcap.gz"
    zipped.write_bytes(gzip.compress(busy(tmp_path / "again.pcap").read_bytes()))
    prefetch.start([str(zipped)])
    assert prefetch.take(str(zipped), None, 60) is None  # (one pass through the tracker instead)


def test_a_child_that_fails_leaves_the_reading_to_the_command(tmp_path, monkeypatch):
    path = tmp_path / "not.pcap"
    path.write_bytes(b"this is no capture at all" * 10)
    prefetch.start([str(path)])
    assert prefetch.take(str(path), None, 60) is None
