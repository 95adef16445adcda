"""Targets, sessions and the JSON contract of CLI.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wizard.model import (
    STEP_IDS,
    Answers,
    CheckResult,
    Context,
    Session,
    Status,
    StepResult,
    ToolInfo,
    WizardError,
    parse_target,
    worst,
)


@pytest.mark.parametrize("text, host, port", [
    ("127.0.0.1:8080", "127.0.0.1", 8080),
    ("[::1]:443", "::1", 443),
    ("[2001:DB8::1]:80", "2001:db8::1", 80),
    ("Example.COM:25", "example.com", 25),
    ("http://api.example.com/health", "api.example.com", 80),
    ("https://api.example.com", "api.example.com", 443),
    ("https://[::1]:8443/x", "::1", 8443),
    ("postgres://db.internal", "db.internal", 5432),
    ("web1.example.com:80", "web1.example.com", 80),
    ("1password.example:443", "1password.example", 443),
    ("10.0.0.5.nip.example:80", "10.0.0.5.nip.example", 80),
])
def test_targets_parse_names_addresses_and_urls(text: str, host: str, port: int) -> None:
    target = parse_target(text)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize("text, problem", [
    ("127.0.0.1:0", "bad port"),
    ("127.0.0.1:65536", "bad port"),
    ("127.0.0.1:http", "bad port"),
    ("127.0.0.1", "bad target"),
    ("::1", "bad target"),
    ("::1:80", "bad target"),
    ("[::1]", "bad target"),
    ("[127.0.0.1]:80", "bad target"),
    ("bad_host!:80", "bad target"),
    ("300.1.1.1:80", "bad target"),  # a typo of an address, never looked up as a name
    ("127.1:80", "bad target"),
    ("010.0.0.1:80", "bad target"),
    ("2130706433:80", "bad target"),
    ("https://1.2.3.256/", "bad target"),
    ("web.123:80", "bad target"),
    ("gopher://example.com", "bad target"),
    ("https://example.com:99999", "bad port"),
    ("", "bad target"),
])
def test_bad_targets_name_the_problem_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(WizardError) as info:
        parse_target(text)
    assert info.value.title == problem
    assert "\n" not in info.value.line()


def test_ipv6_target_displays_with_brackets() -> None:
    assert parse_target("[::1]:80").display() == "[::1]:80"


def test_step_status_is_the_worst_of_its_checks() -> None:
    assert worst([Status.PASS, Status.SKIP, Status.WARN]) == Status.WARN
    assert worst([Status.PASS, Status.FAIL, Status.ERROR]) == Status.FAIL
    assert worst([Status.SKIP, Status.SKIP]) == Status.SKIP
    assert worst([]) == Status.SKIP


def _session() -> Session:
    session = Session(tool=ToolInfo(version="0.1.0"),
                      started_at=datetime(2026, 11, 22, 3, 48, tzinfo=UTC),
                      target=parse_target("[::1]:8080"), context=Context(client="box"),
                      answers=Answers(error="curl: (56) Recv failure: Connection reset by peer"))
    step = session.step("handshake")
    step.checks.append(CheckResult(id="tcp.burst", status=Status.FAIL, summary="10 of 10 refused",
                                   duration_ms=12))
    step.refresh_status()
    return session


def test_session_json_has_the_fields_of_the_contract() -> None:
    import json

    data = json.loads(_session().to_json())
    assert data["schema"] == 2
    assert data["verdict"] is None  # not analysed yet
    assert data["tool"]["name"] == "reset-wizard"
    assert data["target"] == {"host": "::1", "port": 8080, "addresses": [], "scheme": None, "path": None}
    assert data["context"]["server"] == "local"
    assert data["steps"][0]["id"] == "handshake" and data["steps"][0]["status"] == "fail"
    check = data["steps"][0]["checks"][0]
    assert {"id", "status", "summary", "evidence", "duration_ms"} <= set(check)
    assert data["diagnosis"] == []


def test_session_round_trips_through_json() -> None:
    session = _session()
    again = Session.from_json(session.to_json())
    assert again == session


def test_session_steps_keep_the_checklist_order() -> None:
    session = _session()
    session.step("identify")
    session.step("firewall")
    assert [s.id for s in session.steps] == ["identify", "firewall", "handshake"]
    assert all(s.id in STEP_IDS for s in session.steps)


@pytest.mark.parametrize("text", ["not json", "[]", '{"schema": 2}', '{"schema": 1, "tool": 3}'])
def test_a_file_that_is_not_a_session_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(WizardError) as info:
        Session.from_json(text, "s.json")
    assert "s.json" in info.value.message and "\n" not in info.value.message


def test_step_result_refreshes_its_status() -> None:
    step = StepResult(id="firewall")
    step.checks = [CheckResult(id="firewall.rules", status=Status.WARN, summary="x")]
    step.refresh_status()
    assert step.status == Status.WARN
