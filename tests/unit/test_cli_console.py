"""What a headless run prints: skip lines with their fix, an interruption above the verdict
naming what was not run, no claim of "no reset" from a run that stopped early, and stdout
for whatever `-` asks for."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wizard.analysis import conclude
from wizard.cli.console import interruption_lines, not_run, verdict_lines
from wizard.cli.progress import Progress
from wizard.engine.discovery import load
from wizard.engine.runner import CheckFinished, StepStarted
from wizard.model import CheckResult, Context, Session, Signal, Status, ToolInfo, parse_target

ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = load()


def session(*finished: tuple[str, str, str | None], interrupted: bool = False) -> Session:
    """A session whose checks (step, check id, signal or None) finished; analysed."""
    s = Session(tool=ToolInfo(version="t"), started_at=datetime(2026, 1, 1, tzinfo=UTC),
                target=parse_target("10.0.0.2:8080"), context=Context(client="c", server="local"),
                interrupted=interrupted)
    for step_id, check_id, signal in finished:
        sigs = [Signal(id=signal, fact=f"saw {signal}")] if signal else []
        s.step(step_id).checks.append(CheckResult(id=check_id, status=Status.PASS, summary="", signals=sigs))
    conclude(CHECKLIST, s)
    return s


def test_a_skipped_check_says_on_the_next_line_what_would_make_it_run() -> None:
    out = io.StringIO()
    progress = Progress(quiet=False, stream=out)
    progress(StepStarted("app-errors"))
    skipped = CheckResult.skipped("tracefs is not mounted in the server context",
                                  "mount -t tracefs nodev /sys/kernel/tracing", check_id="kernel.resets")
    progress(CheckFinished("app-errors", 4, skipped))
    progress(CheckFinished("app-errors", 0, CheckResult(id="listen.sockets", status=Status.PASS,
                                                        summary="1 listener serves 10.0.0.2:8080")))
    lines = out.getvalue().splitlines()
    assert lines[0] == "== app-errors"
    assert lines[1].startswith("[app-errors] kernel.resets: skip: tracefs is not mounted in the server context (")
    assert lines[2] == "    fix: mount -t tracefs nodev /sys/kernel/tracing"
    assert lines[3].startswith("[app-errors] listen.sockets: pass: 1 listener serves ")
    assert len(lines) == 4  # a check that ran has no fix line


def test_steps_and_checks_not_run_are_named_from_the_checklist() -> None:
    s = session(("identify", "error.classify", None), ("identify", "client.sockets", None), interrupted=True)
    steps, checks = not_run(s, CHECKLIST)
    assert steps == ["connectivity", "server-logs", "firewall", "app-errors", "handshake"]
    assert checks == ["server.context (identify)"]
    lines = interruption_lines(s, CHECKLIST, "SIGTERM")
    assert lines == ["reset-wizard: interrupted by SIGTERM: the verdict covers only the checks that finished",
                     "not run: steps connectivity, server-logs, firewall, app-errors, handshake; "
                     "check server.context (identify)"]


def test_an_interrupted_run_never_claims_that_nothing_reset() -> None:
    # Every check that finished passed: whole, this run would say no-reset-observed.
    passed = [("connectivity", "tcp.connect", "connect.ok"), ("handshake", "tcp.burst", "burst.all_ok")]
    whole = session(*passed)
    assert whole.diagnosis[0].cause == "no-reset-observed"
    lines, diagnosed = verdict_lines(whole, CHECKLIST)
    assert lines[0].startswith("verdict: no cause of resets found") and not diagnosed
    cut = session(*passed, interrupted=True)
    lines, diagnosed = verdict_lines(cut, CHECKLIST)
    assert not diagnosed
    assert lines == ["verdict: none: the run was interrupted before its checks could tell; no cause is "
                     "claimed and none is ruled out"]


def test_an_interrupted_run_still_names_a_cause_its_finished_checks_prove() -> None:
    cut = session(("connectivity", "tcp.connect", "connect.refused"), ("app-errors", "listen.sockets",
                                                                       "listener.absent"), interrupted=True)
    lines, diagnosed = verdict_lines(cut, CHECKLIST)
    assert diagnosed and lines[0].startswith("verdict: port-closed ")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL)


def test_json_to_stdout_moves_the_verdict_to_stderr(tmp_path: Path) -> None:
    done = run("diagnose", f"127.0.0.1:{closed_port()}", "--attempts", "2", "--json", "-",
               "--report", str(tmp_path / "r.md"))
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["diagnosis"][0]["cause"] == "port-closed"  # stdout is only the JSON
    assert "verdict: port-closed" in done.stderr and f"wrote {tmp_path / 'r.md'}" in done.stderr
    assert (tmp_path / "r.md").is_file() and not (ROOT / "-").exists()


def test_report_to_stdout_is_the_markdown_alone(tmp_path: Path) -> None:
    done = run("diagnose", f"127.0.0.1:{closed_port()}", "--attempts", "2", "--quiet", "--report", "-")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("#") and "port-closed" in done.stdout and "verdict:" not in done.stdout
    assert done.stderr.startswith("verdict: port-closed")


@pytest.mark.parametrize("output", ["--json", "--report"])
def test_a_symlink_output_is_written_through_and_kept(output: str, tmp_path: Path) -> None:
    (tmp_path / "real.out").write_text("old\n")
    (tmp_path / "link.out").symlink_to(tmp_path / "real.out")
    done = run("diagnose", f"127.0.0.1:{closed_port()}", "--attempts", "2", "--quiet", output,
               str(tmp_path / "link.out"), "--force")
    assert done.returncode == 1, done.stderr
    assert (tmp_path / "link.out").is_symlink() and "port-closed" in (tmp_path / "real.out").read_text()


def test_dev_stdout_is_stdout_even_when_stdout_is_a_file(tmp_path: Path) -> None:
    # Redirected to a file, /dev/stdout names an existing file: it is still the stdout asked for,
    # not a file to refuse without --force nor one to replace.
    out_file = tmp_path / "out.md"
    with out_file.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "wizard", "diagnose", f"127.0.0.1:{closed_port()}",
                               "--attempts", "2", "--report", "/dev/stdout", "--json", "/dev/fd/2"],
                              cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True, timeout=90,
                              stdin=subprocess.DEVNULL)
    # /dev/fd/2 is no stdout but a pipe here: refused before the run, one line, nothing written
    assert done.returncode == 2, done.stderr
    assert done.stderr == "reset-wizard: bad json path: /dev/fd/2 is not a regular file (- writes to standard output)\n"
    assert out_file.read_text() == ""
    with out_file.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "wizard", "diagnose", f"127.0.0.1:{closed_port()}",
                               "--attempts", "2", "--report", "/dev/stdout"],
                              cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True, timeout=90,
                              stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    text = out_file.read_text()
    assert text.startswith("#") and "port-closed" in text and "verdict:" not in text
    assert "verdict: port-closed" in done.stderr


@pytest.mark.parametrize("outputs", [["--json", "-", "--report", "-"], ["--json", "/dev/fd/1", "--report", "-"]])
def test_both_outputs_on_stdout_is_bad_input_before_the_demo_starts(
        outputs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from wizard.cli.main import main

    assert main(["demo", "--headless", *outputs]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["reset-wizard: bad output paths: --json and --report cannot both write to stdout (-)"]
