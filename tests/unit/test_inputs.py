"""Step-1 inputs: one set of rules (wizard.model.inputs) gives the CLI and the TUI form the same
verdict and the same one-line message for every bad value."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeDns, FakeProbes
from wizard.cli.main import main
from wizard.hosts.sshargs import parse_ssh_spec
from wizard.model import WizardError, inputs
from wizard.ui import fields

#: (form field, CLI option, value, title): each a value a person could type in either face
BAD = [
    ("target", None, "127.0.0.1:0", "bad port"),
    ("target", None, "127.0.0.1:http", "bad port"),
    ("target", None, "[::1:443", "bad target"),
    ("target", None, "example.com", "bad target"),
    ("at", "--at", "yesterday-ish", "bad time"),
    ("at", "--at", "03:99", "bad time"),
    ("at", "--at", "-soon", "bad time"),
    ("window", "--window", "ten minutes", "bad window"),
    ("window", "--window", "0m", "bad window"),
    ("server", "--server", "docker:web", "unknown context"),
    ("server", "--server", "netns:", "unknown context"),
    ("server", "--server", "netns:a/b", "unknown context"),
    ("server", "--server", "ssh:", "unknown context"),
    ("server", "--server", "ssh:-oProxyCommand=x", "unknown context"),
    ("server", "--server", "ssh:host:99999", "unknown context"),
    ("hold", "--hold", "-1", "bad hold"),
    ("hold", "--hold", "soon", "bad hold"),
    ("hold", "--hold", "inf", "bad hold"),
    ("attempts", "--attempts", "0", "bad attempts"),
    ("attempts", "--attempts", "1001", "bad attempts"),
    ("attempts", "--attempts", "2.5", "bad attempts"),
    ("timeout", "--timeout", "61", "bad timeout"),
    ("timeout", "--timeout", "0", "bad timeout"),
    ("timeout", "--timeout", "nan", "bad timeout"),
    ("payload", "--payload", "@", "unreadable payload"),
    ("payload", "--payload", r"GET \xZZ", "bad payload"),
    ("target", None, "127.0.0.1:\u0668\u0660", "bad port"),
    ("target", None, "ftp://127.0.0.1", "bad target"),
    ("attempts", "--attempts", "\u0661\u0660", "bad attempts"),
    ("window", "--window", "\u0661\u0665m", "bad window"),
    ("at", "--at", "-\u0661\u0660m", "bad time"),
]

FORM = {"target": fields.target, "at": fields.moment, "window": fields.window, "server": fields.context,
        "hold": fields.hold, "attempts": fields.attempts, "timeout": fields.timeout, "payload": fields.payload}


@pytest.mark.parametrize("field, option, value, title", BAD, ids=[f"{b[0]}={b[2]}" for b in BAD])
def test_a_bad_value_gets_the_same_line_from_the_cli_and_the_form(
        field: str, option: str | None, value: str, title: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    problem = fields.problem(FORM[field], value)
    assert isinstance(problem, WizardError) and problem.title == title

    argv = ["diagnose", value] if option is None else ["diagnose", "127.0.0.1:80", f"{option}={value}"]
    code = main([*argv, "--report", str(tmp_path / "r.md")],
                probes=FakeProbes(dns=FakeDns({"app.example.test": ["127.0.0.1"]})))
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"reset-wizard: {title}: {problem.message}"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("45", 45), ("1.5m", 90), ("500ms", 0.5),
    ("10 min", 600), ("", inputs.DEFAULT_WINDOW_S), ("  ", inputs.DEFAULT_WINDOW_S)])
def test_durations_accept_units_and_blank_means_the_default(text: str, seconds: float) -> None:
    assert inputs.parse_duration(text) == seconds


def test_a_clock_time_still_to_come_today_means_yesterday() -> None:
    now = datetime(2026, 11, 22, 1, 0).astimezone()
    assert inputs.parse_time("03:48", now) == datetime(2026, 11, 21, 3, 48).astimezone()
    assert inputs.parse_time("00:30:15", now) == datetime(2026, 11, 22, 0, 30, 15).astimezone()


def test_times_without_an_offset_are_local_and_with_one_are_kept() -> None:
    now = datetime(2026, 11, 22, 3, 48, 8).astimezone()
    assert inputs.parse_time("2026-11-22 03:40", now) == datetime(2026, 11, 22, 3, 40).astimezone()
    assert inputs.parse_time("2026-11-22T03:40:00Z", now).isoformat() == "2026-11-22T03:40:00+00:00"
    assert inputs.parse_time("2026-11-22T03:40:00+02:00", now).utcoffset() == timedelta(hours=2)
    assert inputs.parse_time("-10m", now) == now - timedelta(minutes=10)
    assert inputs.parse_time("", now) is None


@pytest.mark.parametrize("text, value", [("", 0.0), ("0", 0.0), ("2.5", 2.5), ("30s", 30.0)])
def test_hold_is_zero_or_more_seconds(text: str, value: float) -> None:
    assert inputs.parse_hold(text) == value


def test_attempts_and_timeout_bounds_are_those_of_answers() -> None:
    from wizard.model import Answers

    assert inputs.parse_attempts("") == Answers().attempts
    assert inputs.parse_timeout("") == Answers().timeout_s
    assert inputs.parse_attempts("1000") == 1000 and inputs.parse_timeout("60") == 60.0
    Answers(attempts=inputs.parse_attempts("1"), timeout_s=inputs.parse_timeout("0.1"))
    with pytest.raises(WizardError, match="not an integer"):
        inputs.parse_attempts("1_000")


@pytest.mark.parametrize("spec", [
    "local", "", "netns:rwin-a", "ssh:host", "ssh:user@host", "ssh:user@host:2222", "ssh:[::1]:22", "ssh:::1",
    "ssh:10.0.0.1:22"])
def test_good_contexts_pass_by_shape(spec: str) -> None:
    assert inputs.parse_context(spec) == (spec or "local")


@pytest.mark.parametrize("rest", [
    "host", "u@host", "u@host:22", "[::1]:22", "::1", "[::1", "[::1]x", "[::1]:", "host:", "-oX=y",
    "a b", "host:0", "host:abc", "bad user!@host", "user@", "h@st@host"])
def test_the_ssh_shape_rule_agrees_with_the_ssh_probe(rest: str) -> None:
    def verdict(parse) -> str:
        try:
            parse()
        except WizardError as exc:
            return exc.line()
        return "ok"

    assert verdict(lambda: inputs.parse_context(f"ssh:{rest}")) == verdict(lambda: parse_ssh_spec(rest))


def test_log_fields_split_on_commas_and_new_lines() -> None:
    assert inputs.split_list(" /var/log/a.log, /var/log/*.log\n\n/tmp/b ,") == [
        "/var/log/a.log", "/var/log/*.log", "/tmp/b"]
