"""Pilot tests of the wizard's flow against a scripted engine: the way a person uses it."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Button, Input, Static, TextArea

from tests.ui.helpers import (
    SIZE,
    click_tab,
    drawn_stepper,
    make_app,
    open_export,
    run_all,
    start,
    type_target,
    until,
)
from tests.ui.scripted import ScriptedEngine
from wizard.ui.backend import Skip
from wizard.ui.screens.export_modal import ExportModal
from wizard.ui.screens.modals import ConfirmModal, NoticeModal
from wizard.ui.widgets.checkview import CheckView


async def test_filling_step_one_and_running_all_steps_reaches_the_verdict_and_exports(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    app = make_app(engine, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        assert engine.prepared is not None and engine.prepared[0] == "127.0.0.1:8080"
        assert list(engine.calls) == [(s, None) for s in
                                             ("identify", "connectivity", "server-logs", "firewall",
                                              "app-errors", "handshake")]
        assert app.session is not None
        top = app.session.diagnosis[0]
        # The script's evidence (an abort after data, a worker restart) supports these two.
        assert top.cause in ("abortive-close", "server-crash")
        assert top.confidence >= app.checklist.threshold
        verdict = str(app.screen.query_one(".verdict", Static).render())
        assert f"Most likely: {top.title}" in verdict
        assert all(app.step_states[s] != "pending" for s in app.step_states)

        path = await open_export(pilot)
        preview = app.screen.query_one("#preview", TextArea).text
        assert "127.0.0.1" in preview or "8080" in preview
        assert path.parent == tmp_path
        await pilot.click("#write")
        await until(pilot, lambda: not isinstance(app.screen, ExportModal))
        assert path.read_text() == preview
        session = json.loads(path.with_suffix(".json").read_text())
        assert session["schema"] == 2
        assert session["diagnosis"][0]["cause"] == top.cause == session["verdict"]["cause"]
        assert app.saved


async def test_an_invalid_target_is_explained_beside_the_field_and_nothing_starts() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await type_target(pilot, "example.com")
        problem = str(app.screen.query_one("#err-target", Static).render())
        assert "has no port" in problem
        await pilot.press("enter")
        await pilot.pause()
        assert engine.prepared is None and app.session is None


async def test_a_bad_number_is_explained_beside_its_field_in_the_clis_words() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.complete)  # the field mounts after the first frame
        await pilot.click("#attempts")
        await pilot.press("0")
        # the line `reset-wizard diagnose --attempts 0` prints after "bad attempts: "
        assert str(app.screen.query_one("#err-attempts", Static).render()) == "✗ 0: must be between 1 and 1000"
        await pilot.press("backspace", "5")
        assert str(app.screen.query_one("#err-attempts", Static).render()) == ""


async def test_an_unresolvable_host_is_reported_beside_the_target() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await type_target(pilot, "api.example.invalid:443")
        await pilot.press("enter")
        await until(pilot, lambda: "NXDOMAIN" in str(app.screen.query_one("#err-target", Static).render()))
        assert app.session is None


async def test_going_back_from_the_verdict_shows_the_last_step_with_its_results() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await pilot.press("ctrl+b")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        states = {v.check_id: v.state for v in app.screen.query(CheckView)}
        assert states["tcp.burst"] == "pass" and states["tcp.exchange"] == "fail"
        assert "pending" not in states.values() and "running" not in states.values()
        await pilot.press("ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b")
        await until(pilot, lambda: app.screen.name == "target")


async def test_rerunning_one_check_runs_only_that_check() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await pilot.press("ctrl+b")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        index = engine.index("handshake", "tcp.exchange")
        view = app.screen.query_one(f"#check-{index}", CheckView)
        view.collapsed = False
        await pilot.pause()
        rerun = view.query_one("#rerun", Button)
        rerun.scroll_visible(animate=False)
        await pilot.pause()
        await pilot.click(rerun)
        await until(pilot, lambda: engine.calls[-1] == ("handshake", index) and not app.run_in_progress())
        assert app.session.step("handshake").checks[index].id == "tcp.exchange"


async def test_rerun_step_runs_the_whole_step_again() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await pilot.press("4")
        await until(pilot, lambda: app.screen.name == "step:firewall")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: engine.calls.count(("firewall", None)) == 2 and not app.run_in_progress())


async def test_cancelling_a_run_keeps_finished_checks_and_marks_the_rest_cancelled() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        import asyncio

        index = engine.index("handshake", "tcp.exchange")
        engine.gates[("handshake", index)] = asyncio.Event()
        await pilot.press("6")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: ("handshake", index) in app.running)
        assert app.step_states["handshake"] == "running"
        assert "Running 1 of" in str(app.screen.query_one("#now-running", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: not app.run_in_progress())
        checks = {c.id: c for c in app.session.step("handshake").checks}
        assert checks["tcp.burst"].status == "pass"
        assert checks["tcp.exchange"].status == "skip" and "cancelled" in (checks["tcp.exchange"].reason or "")
        assert app.session.interrupted
        assert app.screen.query_one(f"#check-{index}", CheckView).state == "skip"


async def test_the_interface_keeps_answering_while_a_check_waits() -> None:
    engine = ScriptedEngine()
    import asyncio

    engine.gates[("identify", 0)] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await until(pilot, lambda: ("identify", 0) in app.running)
        await pilot.press("f1")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("escape")
        engine.gates[("identify", 0)].set()
        await until(pilot, lambda: app.step_states.get("identify") == "warn")


async def test_quitting_mid_run_asks_whether_to_save_and_can_quit_without_saving() -> None:
    engine = ScriptedEngine()
    import asyncio

    engine.gates[("identify", 1)] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await until(pilot, lambda: ("identify", 1) in app.running)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "still running" in app.screen.message
        await pilot.click("#discard")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


async def test_quitting_mid_run_and_saving_opens_the_export_dialog(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    import asyncio

    engine.gates[("identify", 1)] = asyncio.Event()
    app = make_app(engine, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await until(pilot, lambda: ("identify", 1) in app.running)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#save")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        assert app.session.interrupted
        # Laid out before it is clicked (a click on a dialog still being arranged misses it).
        # (a busy machine may show the dialog's screen a moment before its widgets are in it)
        await until(pilot, lambda: bool(app.screen.query("#write")) and app.screen.query_one("#write").region.area > 0)
        await pilot.pause()
        await pilot.click("#write")
        # Writing renders the report and the JSON: give a busy machine time for it.
        await until(pilot, lambda: app.return_code is not None, timeout=20)
    written = list(tmp_path.glob("*.md"))
    assert len(written) == 1


async def test_export_never_replaces_a_file_without_asking(tmp_path: Path) -> None:
    app = make_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        path = await open_export(pilot)
        path.write_text("keep me")
        await pilot.click("#write")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#cancel")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        assert path.read_text() == "keep me"
        await pilot.click("#write")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#replace")
        await until(pilot, lambda: not isinstance(app.screen, (ExportModal, ConfirmModal)))
        assert path.read_text() != "keep me"


async def test_notes_typed_in_a_step_go_into_the_session() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await pilot.press("3")
        await until(pilot, lambda: app.screen.name == "step:server-logs")
        notes = app.screen.query_one("#notes", TextArea)
        notes.focus()
        await pilot.press(*"deploy at 03:47")
        # Ctrl+G showed only steps 2 and 6 (3-5 ran beside 2): step 3's screen was built just
        # now, so its notes may reach the session a moment after the keys.
        await until(pilot, lambda: app.session.step("server-logs").notes == "deploy at 03:47")


async def test_without_root_the_skipped_checks_are_announced_with_the_fix() -> None:
    skip = Skip("app-errors", "kernel.counters", "Kernel counters", "needs root (server side)",
                "sudo reset-wizard …, or grant cap_net_raw,cap_net_admin")
    app = make_app(ScriptedEngine(skips=[skip], root_skips=[skip]))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.complete)  # the notice mounts with the form
        await until(pilot, lambda: "Kernel counters" in str(app.screen.query_one("#root-notice", Static).render()))
        await type_target(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, NoticeModal))
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.name == "target")


async def test_run_all_ends_on_the_verdict_even_when_the_skipped_checks_notice_was_open() -> None:
    skip = Skip("app-errors", "kernel.counters", "Kernel counters", "needs root (server side)",
                "sudo reset-wizard …, or grant cap_net_raw,cap_net_admin")
    app = make_app(ScriptedEngine(skips=[skip], root_skips=[skip]))
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, key="ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, NoticeModal))
        await until(pilot, lambda: all(app.step_states.get(s) not in ("pending", "running")
                                       for s in ("connectivity", "handshake")))
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.name == "summary")


async def test_jumping_before_step_one_is_refused_with_a_hint() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await click_tab(pilot, "firewall")
        await pilot.pause()
        assert app.screen.name == "target"


async def test_export_into_a_missing_directory_says_so_in_the_clis_words_and_writes_nothing(tmp_path: Path) -> None:
    app = make_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await open_export(pilot)
        target = tmp_path / "rwin-missing" / "r.md"
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.click("#write")
        error = app.screen.query_one("#export-error", Static)
        await until(pilot, lambda: "does not exist" in str(error.render()))
        assert str(error.render()) == f"✗ {target}: directory {target.parent} does not exist"
        assert isinstance(app.screen, ExportModal)
        assert list(tmp_path.iterdir()) == []


async def test_export_replaces_only_the_file_it_asked_about(tmp_path: Path) -> None:
    app = make_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        path = await open_export(pilot)
        path.with_suffix(".json").write_text("old session")
        await pilot.click("#write")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        asked = str(app.screen.query_one(".dialog-message", Static).render())
        assert str(path.with_suffix(".json")) in asked and f"{path}\n" not in asked
        await pilot.click("#replace")
        await until(pilot, lambda: not isinstance(app.screen, (ExportModal, ConfirmModal)))
        assert path.with_suffix(".json").read_text() != "old session"
        assert path.read_text().startswith("#")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, path.with_suffix(".json").name])


def test_the_forms_validators_fail_with_the_clis_message_for_every_bad_value() -> None:
    from tests.unit.test_inputs import BAD
    from wizard.ui.fields import problem
    from wizard.ui.screens.target import FIELDS, FieldValidator

    parsers = {name: parse for name, _label, _ph, parse in FIELDS}
    for field, _option, value, title in BAD:
        result = FieldValidator(parsers[field]).validate(value)
        expected = problem(parsers[field], value)
        assert expected is not None and expected.title == title, (field, value)
        assert not result.is_valid and result.failure_descriptions == [expected.message], (field, value)
    assert FieldValidator(parsers["attempts"]).validate("").is_valid


async def test_the_verdicts_tab_shows_the_verdicts_state_in_a_shape_not_only_a_colour() -> None:
    from wizard.ui.steps import GLYPHS
    from wizard.ui.widgets.stepper import Stepper

    def verdict_tab() -> str:
        """The verdict's tab as the stepper in sight draws it."""
        text = app.screen.query_one(Stepper).tab_text("summary")
        return text if text in drawn_stepper(pilot) else f"not drawn: {text}"

    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        assert verdict_tab().startswith(GLYPHS["pending"])  # not yet
        await run_all(pilot)
        await until(pilot, lambda: app.screen.name == "summary")
        assert app.session is not None and app.session.verdict is not None
        assert app.session.verdict.kind == "cause"
        await until(pilot, lambda: verdict_tab() == "★ Verdict")
        assert "a cause diagnosed" in app.screen.query_one(Stepper).tip("summary")
        # Rerunning a step makes the verdict stale until it is shown again...
        await pilot.press("6")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: verdict_tab() == "· Verdict")
        await until(pilot, lambda: not app.run_in_progress())
        # ...and a run cancelled part-way gives an interrupted verdict, a shape of its own.
        import asyncio

        index = engine.index("handshake", "tcp.exchange")
        engine.gates[("handshake", index)] = asyncio.Event()
        await pilot.press("ctrl+r")
        await until(pilot, lambda: ("handshake", index) in app.running)
        await pilot.press("escape")
        await until(pilot, lambda: not app.run_in_progress())
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.name == "summary")
        kind = app.session.verdict.kind
        await until(pilot, lambda: verdict_tab() == f"{GLYPHS[{'cause': 'diagnosed'}.get(kind, kind)]} Verdict")
    assert len({GLYPHS[s] for s in ("pending", "diagnosed", "no-cause", "no-reset", "interrupted")}) == 5
