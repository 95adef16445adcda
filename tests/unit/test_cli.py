"""The command line: bad input is one line and exit 2 with nothing written; real runs write
both files with the exit code of CLI.md; Ctrl-C still writes what was gathered."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeDns, FakeProbes
from wizard.cli.main import main
from wizard.hosts.files import read_payload, write_atomic
from wizard.model import WizardError
from wizard.model.inputs import parse_duration, parse_time

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], **kw) -> tuple[int, str]:
    # A fake resolver: no test may send a real DNS query.
    code = main(args, probes=kw.get("probes") or FakeProbes(dns=FakeDns({"app.example.test": ["127.0.0.1"]})))
    return code, capsys.readouterr().err


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listened, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line(err: str, problem: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"reset-wizard: {problem}: "), lines[0]


@pytest.mark.parametrize("args, problem", [
    (["diagnose", "127.0.0.1:http"], "bad port"),
    (["diagnose", "127.0.0.1:0"], "bad port"),
    (["diagnose", "127.0.0.1:70000"], "bad port"),
    (["diagnose", "[::1]:65536"], "bad port"),
    (["diagnose", "127.0.0.1"], "bad target"),
    (["diagnose", "no_such..host:80"], "bad target"),
    (["diagnose", "nowhere.example.test:80"], "unresolvable host"),
    (["diagnose", "127.0.0.1:80", "--server", "netns:rwcl-does-not-exist"], "unknown context"),
    (["diagnose", "127.0.0.1:80", "--server", "docker:web"], "unknown context"),
    (["diagnose", "127.0.0.1:80", "--log", "/nonexistent/rwcl/app.log"], "unreadable log"),
    (["diagnose", "127.0.0.1:80", "--log", "/nonexistent/rwcl/*.log"], "unreadable log"),
    (["diagnose", "127.0.0.1:80", "--log", "/"], "unreadable log"),
    (["diagnose", "127.0.0.1:80", "--at", "yesterday-ish"], "bad time"),
    (["diagnose", "127.0.0.1:80", "--window", "ten minutes"], "bad window"),
    (["diagnose", "127.0.0.1:80", "--attempts", "0"], "bad attempts"),
    (["diagnose", "127.0.0.1:80", "--attempts", "1001"], "bad attempts"),
    (["diagnose", "127.0.0.1:80", "--timeout", "61"], "bad timeout"),
    (["diagnose", "127.0.0.1:80", "--timeout", "0"], "bad timeout"),
    (["diagnose", "127.0.0.1:80", "--hold", "-1"], "bad hold"),
    (["diagnose", "127.0.0.1:80", "--payload", "@/nonexistent/rwcl/payload"], "unreadable payload"),
    (["diagnose", "127.0.0.1:80", "--side", "both"], "bad side"),
    (["diagnose", "127.0.0.1:80", "--frobnicate"], "bad option"),
    (["diagnose"], "missing target"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(
        args: list[str], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli([*args, "--json", str(tmp_path / "s.json"), "--report", str(tmp_path / "r.md")], capsys)
    assert code == 2
    assert_one_line(err, problem)
    assert list(tmp_path.iterdir()) == []


def test_existing_report_is_not_overwritten_without_force(tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.md"
    report.write_text("my notes\n")
    code, err = run_cli(["diagnose", "127.0.0.1:80", "--report", str(report), "--json", str(tmp_path / "s.json")],
                        capsys)
    assert code == 2
    assert_one_line(err, "report exists")
    assert report.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]


def test_report_into_missing_directory_is_rejected_before_probing(tmp_path: Path, capsys) -> None:
    code, err = run_cli(["diagnose", "127.0.0.1:80", "--report", str(tmp_path / "no" / "r.md")], capsys)
    assert code == 2
    assert_one_line(err, "bad report path")


async def test_a_binary_payload_file_is_sent_byte_for_byte(tmp_path: Path) -> None:
    from tests.unit.fakes import make_ctx
    from wizard.engine.contract import payload_for
    from wizard.model import Answers

    blob = tmp_path / "payload.bin"
    blob.write_bytes(bytes(range(256)) + b"\\x41")
    text = await read_payload(f"@{blob}")
    assert text is not None and text.isprintable()  # JSON-safe in the session
    ctx = make_ctx(answers=Answers(payload=text))
    assert payload_for(ctx) == (blob.read_bytes(), "custom")


async def test_a_typed_payload_keeps_its_escapes_until_the_probe_sends_it() -> None:
    from tests.unit.fakes import make_ctx
    from wizard.engine.contract import payload_for
    from wizard.model import Answers

    text = await read_payload(r"GET / HTTP/1.1\r\n\xff\r\n")
    assert text == r"GET / HTTP/1.1\r\n\xff\r\n"
    assert payload_for(make_ctx(answers=Answers(payload=text)))[0] == b"GET / HTTP/1.1\r\n\xff\r\n"


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("2h", 7200), ("45", 45), ("1.5m", 90)])
def test_windows_accept_units_and_plain_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_times_accept_rfc3339_local_clock_and_relative_forms() -> None:
    now = datetime(2026, 11, 22, 3, 48, 8).astimezone()
    assert parse_time("2026-11-22T03:40:00Z", now).isoformat() == "2026-11-22T03:40:00+00:00"
    assert parse_time("2026-11-22 03:40", now) == datetime(2026, 11, 22, 3, 40).astimezone()
    assert parse_time("03:40:30", now) == now.replace(minute=40, second=30)
    assert parse_time("-10m", now) == now - timedelta(minutes=10)
    with pytest.raises(WizardError):
        parse_time("03:99", now)


def test_atomic_write_refuses_to_replace_a_file_without_force(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    write_atomic(path, "first\n", force=False)
    with pytest.raises(WizardError):
        write_atomic(path, "second\n", force=False)
    assert path.read_text() == "first\n"
    write_atomic(path, "third\n", force=True)
    assert path.read_text() == "third\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]  # no temp files left behind


def test_json_schema_option_prints_the_session_schema(capsys) -> None:
    assert main(["diagnose", "--json-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"schema", "steps", "diagnosis", "target"} <= set(schema["properties"])


def test_checks_lists_every_registered_check_with_its_step(capsys) -> None:
    from wizard.engine.discovery import all_checks

    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    for check_id, cls in all_checks().items():
        line = next(line for line in out.splitlines() if line.startswith(check_id + " "))
        assert cls.step in line


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_closed_port_is_diagnosed_port_closed_exit_1_with_both_files(tmp_path: Path) -> None:
    port = closed_port()
    done = cli("diagnose", f"127.0.0.1:{port}", "--attempts", "3", "--timeout", "2",
               "--json", str(tmp_path / "s.json"), "--report", str(tmp_path / "r.md"))
    assert done.returncode == 1, done.stderr
    session = json.loads((tmp_path / "s.json").read_text())
    assert session["schema"] == 2
    assert session["diagnosis"][0]["cause"] == "port-closed" == session["verdict"]["cause"]
    assert session["diagnosis"][0]["evidence"]
    report = (tmp_path / "r.md").read_text()
    assert "port-closed" in report
    # The verdict is the command's output (stdout); progress stays on stderr.
    assert done.stdout.startswith("verdict: port-closed"), done.stdout
    assert "verdict" not in done.stderr and "[handshake] tcp.burst: " in done.stderr


def test_report_command_renders_a_saved_session_again(tmp_path: Path) -> None:
    port = closed_port()
    first = cli("diagnose", f"127.0.0.1:{port}", "--attempts", "2", "--quiet", "--json", str(tmp_path / "s.json"))
    assert first.returncode == 1, first.stderr
    again = cli("report", str(tmp_path / "s.json"), "-o", str(tmp_path / "again.md"))
    assert again.returncode == 0, again.stderr
    assert "port-closed" in (tmp_path / "again.md").read_text()
    refused = cli("report", str(tmp_path / "s.json"), "-o", str(tmp_path / "again.md"))
    assert refused.returncode == 2 and "exists" in refused.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_ends_the_run_cleanly_and_still_writes_what_was_gathered(sig: signal.Signals, tmp_path: Path) -> None:
    # A listener that completes handshakes (the kernel does) but never reads or answers:
    # the payload probe waits for its whole timeout, so the run is still busy when we interrupt.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)
        port = silent.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "wizard", "diagnose", f"127.0.0.1:{port}", "--timeout", "30",
             "--hold", "30", "--payload", "hello\\r\\n", "--json", str(tmp_path / "s.json"),
             "--report", str(tmp_path / "r.md")],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # Interrupt once a check has finished (its progress line is on stderr), however
            # busy the machine is.
            import select

            seen = ""
            deadline = time.monotonic() + 60
            assert proc.stderr is not None
            while "] " not in seen and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stderr], [], [], 1.0)
                if ready:
                    line = proc.stderr.readline()
                    assert line, "diagnose ended before a check finished"
                    seen += line
            assert proc.poll() is None, seen
            proc.send_signal(sig)
            out, rest = proc.communicate(timeout=30)
            err = seen + rest
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
    assert proc.returncode == 3, err
    # Above the verdict: the interruption, and the steps it left unrun (the payload probe
    # waits 30 s, so the handshake step never finished).
    first, second, verdict = out.splitlines()[:3]
    assert first == f"reset-wizard: interrupted by {sig.name}: the verdict covers only the checks that finished", out
    assert second.startswith("not run: ") and "handshake" in second, out
    assert verdict.startswith("verdict: ") and "no-reset-observed" not in out and "succeeded" not in out, out
    session = json.loads((tmp_path / "s.json").read_text())
    assert session["interrupted"] is True
    assert any(check for step in session["steps"] for check in step["checks"])
    assert (tmp_path / "r.md").read_text().strip()


async def test_output_checks_ask_about_existing_files_and_refuse_what_cannot_be_written(tmp_path: Path) -> None:
    from wizard.hosts.files import check_output, existing

    (tmp_path / "r.md").write_text("mine")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere")
    assert await existing([tmp_path / "r.md", tmp_path / "dangling.json", tmp_path / "new.md"]) == [
        tmp_path / "r.md", tmp_path / "dangling.json"]
    assert await check_output(str(tmp_path / "r.md"), "report", force=True) == tmp_path / "r.md"
    assert await check_output(None, "report", force=False) is None
    with pytest.raises(WizardError, match=r"^report exists: "):
        await check_output(str(tmp_path / "r.md"), "report", force=False)
    with pytest.raises(WizardError, match=f"^bad json path: {tmp_path} is a directory$"):
        await check_output(str(tmp_path), "json", force=True)
