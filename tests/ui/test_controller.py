"""The controller (session and run bookkeeping) and the typed runner messages, without a screen."""

from __future__ import annotations

import asyncio

import pytest

from tests.ui.scripted import FIXED, ScriptedEngine
from wizard.engine import runner
from wizard.model import Answers, CheckResult, Status
from wizard.ui import messages
from wizard.ui.controller import WizardController


def test_every_runner_event_becomes_the_message_of_its_own_class() -> None:
    result = CheckResult(id="tcp.connect", status=Status.PASS, summary="ok")
    assert isinstance(messages.from_event(runner.StepStarted("connectivity")), messages.StepStarted)
    started = messages.from_event(runner.CheckStarted("connectivity", 1, "tcp.connect", "TCP connect"))
    assert isinstance(started, messages.CheckStarted)
    assert (started.step, started.index, started.check, started.title) == (
        "connectivity", 1, "tcp.connect", "TCP connect")
    finished = messages.from_event(runner.CheckFinished("connectivity", 1, result))
    assert isinstance(finished, messages.CheckFinished) and finished.result is result
    with pytest.raises(TypeError):
        messages.from_event(object())


def _controller() -> tuple[WizardController, list[dict[str, str]]]:
    engine = ScriptedEngine()
    heard: list[dict[str, str]] = []
    controller = WizardController(engine, lambda: FIXED, lambda: 5.0, heard.append)
    session = asyncio.run(engine.prepare("127.0.0.1:8080", Answers(), "local"))
    controller.begin(session, ("127.0.0.1:8080", {}, "local"))
    return controller, heard


def test_cancelling_turns_running_checks_into_skips_and_keeps_finished_ones() -> None:
    controller, heard = _controller()
    assert heard[-1] == dict.fromkeys(controller.states, "pending")
    controller.steps_began(["connectivity", "firewall"])
    controller.check_started("connectivity", 0)
    controller.check_finished("connectivity", 0, CheckResult(id="dns.resolve", status=Status.PASS, summary="ok"))
    controller.check_started("connectivity", 1)
    controller.check_started("firewall", 0)
    assert controller.running_in("connectivity") == {1: 5.0}
    cancelled = controller.cancelled(["connectivity", "firewall"])
    assert [(s, i) for s, i, _ in cancelled] == [("connectivity", 1), ("firewall", 0)]
    assert all(r.status == "skip" and "cancelled" in (r.reason or "") for _, _, r in cancelled)
    assert controller.running == {}
    assert controller.session is not None and controller.session.interrupted
    assert [c.id for c in controller.session.step("connectivity").checks][:1] == ["dns.resolve"]
    assert heard[-1]["connectivity"] != "running" and heard[-1]["firewall"] != "running"


def test_the_steps_left_run_in_the_runners_groups() -> None:
    controller, _ = _controller()
    controller.set_state("identify", "pass")
    assert controller.groups_to_run() == [["connectivity", "server-logs", "firewall", "app-errors"], ["handshake"]]
    assert not controller.form_changed(("127.0.0.1:8080", {}, "local"))
    assert controller.form_changed(("127.0.0.1:9090", {}, "local"))
