"""Pilot tests of the keys and the focus: what a terminal user presses, and what it does."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, Markdown, Static, TextArea
from textual.widgets._collapsible import CollapsibleTitle

from tests.ui.helpers import SIZE, make_app, open_export, run_all, start, type_target, until
from tests.ui.scripted import ScriptedEngine
from wizard.ui.keys import BINDINGS
from wizard.ui.screens.export_modal import ExportModal
from wizard.ui.screens.modals import HELP, ConfirmModal, HelpScreen
from wizard.ui.screens.summary import CauseView
from wizard.ui.widgets.checkview import CheckView


def _shown(app: Any) -> dict[str, str]:
    """The bindings the footer shows now: action -> its label."""
    return {b.binding.action: b.binding.description for b in app.screen.active_bindings.values()
            if b.binding.show}


def _focused_item(app: Any) -> Any:
    """The check or cause whose title line has the focus."""
    focused = app.focused
    assert isinstance(focused, CollapsibleTitle), focused
    return focused.parent


async def _palette(pilot: Pilot, query: str) -> None:
    """Ctrl+P, type ``query``, run the first command it finds."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    await pilot.press(*query)
    commands = pilot.app.screen.query_one(CommandList)
    await until(pilot, lambda: commands.option_count > 0 and commands.highlighted == 0)
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette))
    await pilot.pause()


# ----- help --------------------------------------------------------------------------------
async def test_question_mark_and_f1_open_the_help_once_the_focus_left_the_form() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await until(pilot, lambda: app.step_states.get("identify") == "warn")
        assert not isinstance(app.focused, (Input, TextArea))
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press(key)  # the same key closes it
            await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


def test_the_help_lists_every_binding_shown_and_numbers_no_step_wrongly() -> None:
    def spelled(key: str) -> str:
        """How the help writes a key: Esc, ?, F1, Ctrl+N, q, 4."""
        *mods, last = key.split("+")
        last = {"escape": "Esc", "question_mark": "?", "f1": "F1", "enter": "Enter"}.get(
            last, last.upper() if mods else last)
        return "+".join([*(m.capitalize() for m in mods), last])

    for binding in BINDINGS:
        assert not isinstance(binding, tuple)
        for key in binding.key.split(","):
            assert spelled(key) in HELP, key
    # A Markdown ordered list renumbers its items ("1, 2, 3. Verdict"): the steps are a table.
    assert not re.search(r"^\s*\d+\. ", HELP, re.M)
    for key in ("Ctrl+P", "Shift+Enter", "Ctrl+J", "j / k", "Space"):
        assert key in HELP


async def test_the_help_screen_numbers_the_steps_itself_not_as_a_markdown_list() -> None:
    # An ordered list is renumbered by Markdown: "7. Verdict" was shown as "3. Verdict".
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        markdown = app.screen.query_one(Markdown)
        await until(pilot, lambda: bool(markdown.query("MarkdownTable")))
        assert not markdown.query("MarkdownOrderedList")
        assert len(markdown.query("MarkdownTable")) == 2  # the steps, the keys


# ----- q, and focus leaving the form ---------------------------------------------------------
async def test_q_is_typed_in_a_field_and_quits_elsewhere_with_the_same_question() -> None:
    engine = ScriptedEngine()
    engine.gates[("identify", 1)] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await type_target(pilot, "q")
        assert app.screen.query_one("#target", Input).value == "q" and app.return_code is None
        await pilot.press("backspace", *"127.0.0.1:8080", "enter")
        await until(pilot, lambda: ("identify", 1) in app.running)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "still running" in app.screen.message
        await pilot.click("#stay")
        engine.gates[("identify", 1)].set()
        await until(pilot, lambda: not app.run_in_progress())
        await pilot.press("q")  # results gathered, not saved: asked again
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "not saved" in app.screen.message
        await pilot.click("#discard")
        await until(pilot, lambda: app.return_code is not None)


async def test_digits_are_typed_in_the_form_and_jump_to_steps_once_a_run_started() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await type_target(pilot, "127.0.0.1:808")
        await pilot.press("0")
        assert app.screen.query_one("#target", Input).value == "127.0.0.1:8080"
        await pilot.press("enter")
        await until(pilot, lambda: app.step_states.get("identify") == "warn")
        # The run took the focus off the form: to the first check of step 1.
        assert isinstance(_focused_item(app), CheckView)
        await pilot.press("4")
        await until(pilot, lambda: app.screen.name == "step:firewall")
        await pilot.press("1")
        await until(pilot, lambda: app.screen.name == "target")
        assert app.screen.query_one("#target", Input).value == "127.0.0.1:8080"


# ----- j/k, arrows, Enter and space ---------------------------------------------------------
async def test_j_k_and_the_arrows_move_between_checks_and_causes_enter_and_space_open() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        causes = list(app.screen.query(CauseView))
        assert len(causes) >= 3
        await until(pilot, lambda: isinstance(app.focused, CollapsibleTitle))
        assert _focused_item(app) is causes[0]
        await pilot.press("j")
        assert _focused_item(app) is causes[1]
        await pilot.press("down")
        assert _focused_item(app) is causes[2]
        await pilot.press("k", "up", "up")  # stops at the first
        assert _focused_item(app) is causes[0]
        await pilot.press("j")
        assert causes[1].collapsed
        await pilot.press("space")
        assert not causes[1].collapsed
        await pilot.press("enter")
        assert causes[1].collapsed

        await pilot.press("6")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        checks = list(app.screen.query(CheckView))
        await until(pilot, lambda: isinstance(app.focused, CollapsibleTitle))
        assert _focused_item(app) is checks[0]
        await pilot.press("down", "j")
        assert _focused_item(app) is checks[2]
        await pilot.press("k")
        assert _focused_item(app) is checks[1]
        # From the nav bar, the arrows come back to the checks.
        app.screen.query_one("#next").focus()
        await pilot.press("down")
        assert _focused_item(app) is checks[0]


# ----- the footer -----------------------------------------------------------------------------
async def test_the_footer_shows_only_what_applies_and_esc_only_while_a_run_goes() -> None:
    engine = ScriptedEngine()
    engine.gates[("identify", 1)] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        shown = _shown(app)
        assert "cancel_run" not in shown and "back" not in shown and "export" not in shown
        assert "rerun_step" not in shown and {"next", "run_all", "help", "quit"} <= set(shown)
        await type_target(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: ("identify", 1) in app.running)
        await until(pilot, lambda: "cancel_run" in _shown(app))
        shown = _shown(app)
        assert shown["cancel_run"] == "Cancel run"
        assert "run_all" not in shown and "rerun_step" not in shown and "export" in shown
        footer = " ".join(str(k.render()) for k in app.screen.query("FooterKey"))
        assert "Cancel run" in footer
        engine.gates[("identify", 1)].set()
        await until(pilot, lambda: not app.run_in_progress())
        await until(pilot, lambda: "cancel_run" not in _shown(app))
        assert {"rerun_step", "run_all", "export"} <= set(_shown(app))
        await until(pilot, lambda: "Cancel run" not in " ".join(str(k.render()) for k in app.screen.query("FooterKey")))
        await run_all_from_here(pilot)
        shown = _shown(app)
        assert "next" not in shown and "rerun_step" not in shown and "run_all" not in shown and "back" in shown


async def test_step_one_shows_enter_to_start_once_there_is_a_target_and_only_there() -> None:
    engine = ScriptedEngine()
    engine.gates[("identify", 1)] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        assert "start" not in _shown(app)  # an empty target: Enter has nothing to start
        await type_target(pilot)
        await until(pilot, lambda: _shown(app).get("start") == "Start")
        # At 80 columns too the footer shows it, first after Quit.
        keys = [str(k.render()) for k in app.screen.query("FooterKey")]
        assert any("Enter" in k and "Start" in k for k in keys[:3]), keys
        await pilot.press("enter")
        await until(pilot, lambda: ("identify", 1) in app.running)
        await until(pilot, lambda: "start" not in _shown(app))  # running: nothing to start
        engine.gates[("identify", 1)].set()
        await until(pilot, lambda: not app.run_in_progress())
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.name == "step:connectivity")
        assert "start" not in _shown(app)  # not on the other steps


async def run_all_from_here(pilot: Pilot) -> None:
    await pilot.press("ctrl+g")
    await until(pilot, lambda: pilot.app.screen.name == "summary" and not pilot.app.run_in_progress())
    await pilot.pause()


# ----- the command palette -----------------------------------------------------------------
async def test_ctrl_p_offers_the_wizards_commands_and_runs_them() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await _palette(pilot, "go to step 4")
        await until(pilot, lambda: app.screen.name == "step:firewall")
        await _palette(pilot, "rerun this step")
        await until(pilot, lambda: engine.calls.count(("firewall", None)) == 2 and not app.run_in_progress())
        assert app.redact
        await _palette(pilot, "toggle redaction")
        assert not app.redact
        await _palette(pilot, "copy evidence: firewall rules")
        assert "Firewall rules" in (app.clipboard or "")
        index = engine.index("handshake", "tcp.exchange")
        await _palette(pilot, "rerun check: probe exchange")
        await until(pilot, lambda: engine.calls[-1] == ("handshake", index) and not app.run_in_progress())
        await _palette(pilot, "go to the verdict")
        await until(pilot, lambda: app.screen.name == "summary")
        await _palette(pilot, "export the report")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        # The dialog starts as the palette left redaction: off.
        assert app.screen.query_one("#redact").value is False


async def test_the_palette_offers_no_rerun_or_export_before_a_run() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"re")
        await pilot.pause(0.3)
        listed = [str(o.prompt) for o in app.screen.query_one(CommandList)._options]
        assert not any("Rerun" in p or "Export" in p or "Copy" in p for p in listed), listed
        assert any("redaction" in p for p in listed)


# ----- step 1's form ----------------------------------------------------------------------------
async def test_a_prefilled_target_is_kept_when_typing_starts() -> None:
    app = make_app(target="127.0.0.1:8080")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        field = app.screen.query_one("#target", Input)
        assert app.focused is field
        await pilot.press("1")
        assert field.value == "127.0.0.1:80801"
        await pilot.press("backspace")
        await pilot.click("#hold")
        await pilot.click("#target")
        await pilot.press("end", "9")
        assert field.value == "127.0.0.1:80809"


@pytest.mark.parametrize("field", ["window", "timeout", "logs"])
async def test_enter_starts_from_any_single_line_field(field: str) -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await type_target(pilot)
        await pilot.click(f"#{field}")
        await pilot.press("enter")
        await until(pilot, lambda: engine.prepared is not None)


async def test_enter_in_the_error_text_starts_and_shift_enter_or_ctrl_j_add_a_line() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.checklist is not None)
        await type_target(pilot)
        box = app.screen.query_one("#error", TextArea)
        box.focus()
        await pilot.press(*"curl: (56)", "shift+enter", *"line two", "ctrl+j", *"three")
        assert box.text == "curl: (56)\nline two\nthree"
        assert engine.prepared is None
        await pilot.press("enter")
        await until(pilot, lambda: engine.prepared is not None)
        assert engine.prepared[1].error == "curl: (56)\nline two\nthree"


# ----- live progress in a run-all -------------------------------------------------------------
async def test_run_all_shows_the_step_running_before_its_checks_start() -> None:
    engine = ScriptedEngine()
    engine.step_gates["handshake"] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, key="ctrl+g")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        await pilot.pause()
        assert app.step_states["handshake"] == "running"
        line = str(app.screen.query_one("#now-running", Static).render())
        assert "Not run yet" not in line and "Starting 7 of 7 checks" in line
        assert {v.state for v in app.screen.query(CheckView)} == {"queued"}
        assert app.screen.query_one("#step-progress").display
        engine.step_gates["handshake"].set()
        await until(pilot, lambda: app.screen.name == "summary" and not app.run_in_progress())
        states = [v.state for v in app.get_screen("step:handshake").query(CheckView)]
        assert states[:2] == ["pass", "fail"] and "queued" not in states


async def test_rerunning_a_step_shows_the_same_progress() -> None:
    engine = ScriptedEngine()
    app = make_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await pilot.press("4")
        await until(pilot, lambda: app.screen.name == "step:firewall")
        engine.step_gates["firewall"] = asyncio.Event()
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "Starting" in str(app.screen.query_one("#now-running", Static).render()))
        assert {v.state for v in app.screen.query(CheckView)} == {"queued"}
        engine.step_gates["firewall"].set()
        await until(pilot, lambda: not app.run_in_progress())
        assert "queued" not in {v.state for v in app.screen.query(CheckView)}


# ----- export -------------------------------------------------------------------------------------
async def test_export_says_where_the_files_go_and_toasts_their_full_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(export_dir=tmp_path)
    toasts: list[tuple[str, str]] = []
    notify = app.notify

    def spy(message: str, **kw: Any) -> None:
        toasts.append((kw.get("title", ""), message))
        notify(message, **kw)

    async with app.run_test(size=SIZE) as pilot:
        app.notify = spy  # type: ignore[method-assign]
        await run_all(pilot)
        await open_export(pilot)
        where = str(app.screen.query_one("#export-dir", Static).render())
        assert where == f"Files go to {tmp_path} (the current directory)"
        app.screen.query_one("#path", Input).value = "incident.md"  # relative: in the current directory
        await pilot.pause()
        assert str(tmp_path / "incident.json") in str(app.screen.query_one("#json-path", Static).render())
        await pilot.click("#write")
        await until(pilot, lambda: not isinstance(app.screen, ExportModal))
        title, message = toasts[-1]
        assert title == "Wrote 2 files"
        assert message.splitlines() == [f"• {tmp_path / 'incident.md'}", f"• {tmp_path / 'incident.json'}"]
        assert (tmp_path / "incident.md").is_file() and (tmp_path / "incident.json").is_file()


async def test_the_export_checkboxes_read_without_colour() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await open_export(pilot)
        marks = {box.id: box.render().plain for box in app.screen.query("Checkbox")}  # type: ignore[attr-defined]
        assert "✓" in marks["redact"] and "✓" in marks["json"] and "✗" in marks["redact-addresses"]
        await pilot.click("#redact-addresses")
        await pilot.pause()
        assert "✓" in app.screen.query_one("#redact-addresses").render().plain  # type: ignore[attr-defined]


async def test_an_emptied_export_path_is_refused_in_words_not_a_crash(tmp_path: Path) -> None:
    app = make_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await open_export(pilot)
        await pilot.press("ctrl+u")  # the whole path deleted, as a person clears the field
        await pilot.pause()
        assert app.screen.query_one("#path", Input).value == ""
        assert "no JSON" in str(app.screen.query_one("#json-path", Static).render())
        await pilot.click("#write")
        await until(pilot, lambda: "file name" in str(app.screen.query_one("#export-error", Static).render()))
        assert isinstance(app.screen, ExportModal) and list(tmp_path.iterdir()) == []
