"""Secrets found in the evidence never reach the screen unredacted: the step panels, the
verdict and the clipboard show what the redacted report would; the session itself keeps the
raw text, so an export with redaction turned off still has it."""

from __future__ import annotations

from tests.ui.helpers import make_app, run_all, until
from tests.ui.scripted import LOG, ScriptedEngine, abortive_close_results
from wizard.model import Evidence, Signal
from wizard.ui.widgets.checkview import CheckView, result_text

TOKEN = "Zq8mW2vR7tY4uP1sK9dF3gH6jL0xC5bN"
LINE = f"2026-11-22T03:48:08.002+00:00 ERROR upstream call failed, Authorization: Bearer {TOKEN}"


def _engine() -> ScriptedEngine:
    results = abortive_close_results()
    logs = results["server-logs"][0]
    logs.evidence = [Evidence(kind="log", title="/var/log/app.log around 03:48:08", source="/var/log/app.log",
                              text=LOG + "\n" + LINE, highlight=[1, 2, 4])]
    logs.signals = [Signal(id="log.crash", fact=f"worker 2 restarting after: Authorization: Bearer {TOKEN}")]
    return ScriptedEngine(results)


def _raw_has_token(app) -> bool:  # type: ignore[no-untyped-def]
    step = next(s for s in app.session.steps if s.id == "server-logs")
    return any(TOKEN in ev.text for c in step.checks for ev in c.evidence)


async def test_the_screen_shows_a_secret_of_the_evidence_redacted() -> None:
    app = make_app(_engine())
    async with app.run_test(size=(160, 48)) as pilot:
        await run_all(pilot)
        assert _raw_has_token(app), "the session must keep the raw evidence for an unredacted export"
        verdict = app.export_screenshot()
        assert "worker 2 restarting" in verdict.replace("&#160;", " ")  # the finding quotes the fact...
        assert TOKEN not in verdict  # ...without the secret
        await app.action_goto("server-logs")
        await until(pilot, lambda: app.screen.name == "step:server-logs")
        views = list(app.screen.query(CheckView))
        await until(pilot, lambda: all(v.result is not None for v in views))
        for view in views:
            view.collapsed = False
        await pilot.pause()
        shown = [result_text(v.result) for v in views]
        assert any("«secret-" in text for text in shown), shown
        assert not any(TOKEN in text for text in shown)  # what the panel holds, and Copy evidence copies
        assert TOKEN not in app.export_screenshot()


async def test_turning_redaction_off_shows_the_raw_evidence_again() -> None:
    app = make_app(_engine())
    async with app.run_test(size=(160, 48)) as pilot:
        await run_all(pilot)
        app.action_toggle_redaction()  # Ctrl+P's "toggle redaction": off, for the screen too
        assert not app.controller.redact and not app.redact
        await app.action_goto("server-logs")
        await until(pilot, lambda: app.screen.name == "step:server-logs")
        views = list(app.screen.query(CheckView))
        await until(pilot, lambda: any(v.result is not None and TOKEN in result_text(v.result) for v in views))
