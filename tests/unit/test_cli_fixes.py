"""A skipped check's fix on the console: each way on its own line, a command as it is pasted
(this run's command line where the fix reruns it, secrets redacted), prose left as prose."""

from __future__ import annotations

import io
import shlex

import pytest

from wizard.cli.diagnose import rerun_line
from wizard.cli.fixes import fix_lines, ways
from wizard.cli.parser import parse
from wizard.cli.progress import Progress
from wizard.engine.runner import CheckFinished
from wizard.model import CheckResult

TRACEFS = "mount -t tracefs nodev /sys/kernel/tracing (or let the wizard mount it: --allow-tracefs-mount)"
RERUN = ["diagnose", "10.0.0.2:8080", "--log", "/var/log/app.log"]


def test_the_command_and_the_alternative_option_are_lines_of_their_own() -> None:
    assert fix_lines(TRACEFS, RERUN) == [
        "fix: mount -t tracefs nodev /sys/kernel/tracing",
        "or:  reset-wizard diagnose 10.0.0.2:8080 --log /var/log/app.log --allow-tracefs-mount"
        "  # let the wizard mount it"]
    # without a command line to repeat (the demo's), the option is named, not a guessed command
    assert fix_lines(TRACEFS) == ["fix: mount -t tracefs nodev /sys/kernel/tracing",
                                  "or:  rerun with --allow-tracefs-mount (let the wizard mount it)"]


@pytest.mark.parametrize("fix, lines", [
    ("run as root: sudo reset-wizard ... (or grant cap_net_raw,cap_net_admin)",
     ["fix: sudo reset-wizard diagnose 10.0.0.2:8080 --log /var/log/app.log  # run as root",
      "or:  grant cap_net_raw,cap_net_admin"]),
    ('run as root (sudo), or allow unprivileged ping: sysctl -w net.ipv4.ping_group_range="0 2147483647"',
     ["fix: run as root (sudo)",
      'or:  sysctl -w net.ipv4.ping_group_range="0 2147483647"  # allow unprivileged ping']),
    ("--log PATH (or --journal UNIT)",
     ["fix: reset-wizard diagnose 10.0.0.2:8080 --log /var/log/app.log --log PATH",
      "or:  reset-wizard diagnose 10.0.0.2:8080 --log /var/log/app.log --journal UNIT"]),
    ("apt install libpcap0.8", ["fix: apt install libpcap0.8"]),
    # prose that starts like a command is no command to paste
    ("apt install nftables (nft) or iptables; run as root in the server context",
     ["fix: apt install nftables (nft) or iptables; run as root in the server context"]),
    ("--server ssh:HOST or --server netns:NAME", ["fix: --server ssh:HOST or --server netns:NAME"]),
])
def test_each_way_of_a_fix_is_pasted_as_a_command_or_kept_as_prose(fix: str, lines: list[str]) -> None:
    assert fix_lines(fix, RERUN) == lines


def test_every_command_line_a_fix_prints_is_one_the_shell_splits() -> None:
    for fix in (TRACEFS, "run as root: sudo reset-wizard ...", "--error 'the message you saw'"):
        for line in fix_lines(fix, ["diagnose", "h.example:1", "--error", "it's reset"]):
            command = line.split(" ", 1)[1].strip().split("  # ")[0]
            assert shlex.split(command)[0] in ("mount", "sudo", "reset-wizard"), line
    assert ways("a, or b (or c)") == ["a", "b", "c"]


def test_the_console_prints_the_ways_under_the_skipped_check() -> None:
    out = io.StringIO()
    progress = Progress(quiet=False, stream=out, rerun=RERUN)
    progress(CheckFinished("app-errors", 4, CheckResult.skipped("tracefs is not mounted in the server context",
                                                                TRACEFS, check_id="kernel.resets")))
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("[app-errors] kernel.resets: skip: tracefs is not mounted")
    assert lines[2:] == ["    fix: mount -t tracefs nodev /sys/kernel/tracing",
                         "    or:  reset-wizard diagnose 10.0.0.2:8080 --log /var/log/app.log "
                         "--allow-tracefs-mount  # let the wizard mount it"]


def test_the_command_line_a_fix_repeats_has_its_secrets_redacted_unless_no_redact() -> None:
    typed = ["diagnose", "10.0.0.2:80", "--payload", "GET / HTTP/1.1\\r\\nAuthorization: Bearer s3cr3tT0ken\\r\\n"]
    shown = rerun_line(parse(typed))
    assert shown is not None and shown[:3] == typed[:3]
    assert "s3cr3tT0ken" not in " ".join(shown)
    assert rerun_line(parse([*typed, "--no-redact"])) == [*typed, "--no-redact"]


def test_a_real_run_prints_its_own_command_line_as_the_fix_to_paste() -> None:
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "wizard", "diagnose", f"127.0.0.1:{port}", "--attempts", "2"],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    skipped = lines.index(next(line for line in lines if " error.classify: skip: " in line))
    assert lines[skipped + 1] == (f"    fix: reset-wizard diagnose 127.0.0.1:{port} --attempts 2 "
                                  "--error 'the message you saw'")
    # a local run as root is told nothing about sudo over ssh
    assert not any("passwordless" in line or "sudo -n" in line for line in lines if "fix:" in line or "or: " in line)
