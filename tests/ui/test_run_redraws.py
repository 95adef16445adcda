"""What a run redraws: the spinner's frames redraw a check's title line without a layout of
the screen, and the line reads as the title would make it; an item mounts in its state."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import ProgressBar, Static
from textual.widgets.collapsible import CollapsibleTitle

from tests.ui.helpers import make_app, run_all, start, until
from tests.ui.scripted import ScriptedEngine
from wizard.ui.screens.summary import CauseView
from wizard.ui.steps import STEP_IDS
from wizard.ui.widgets.checkview import CheckView
from wizard.ui.widgets.items import KeyedItem


class OneCheck(App[None]):
    def compose(self) -> ComposeResult:
        yield CheckView("handshake", 0, "handshake.burst", "A burst of connections")


def line(view: CheckView) -> str:
    return str(view.query_one(CollapsibleTitle).render())


async def test_a_spinner_frame_redraws_the_title_without_a_layout() -> None:
    app = OneCheck()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(CheckView)
        view.mark_running()
        await pilot.pause()
        title = view.query_one(CollapsibleTitle)
        assert not title._layout_required
        laid_out = title._layout_updates
        view.tick("⠙")
        assert str(view.title).startswith("⠙ running")
        assert line(view) == f"▶ {view.title}"  # as Collapsible makes it: symbol, space, title
        assert title._layout_updates == laid_out and not title._layout_required
        view.state = "pass"
        view.tick("⠹")  # not running: nothing changes
        assert str(view.title).startswith("⠙")


async def test_a_new_title_of_another_length_is_laid_out() -> None:
    app = OneCheck()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(CheckView)
        view.mark_queued()
        await pilot.pause()
        title = view.query_one(CollapsibleTitle)
        laid_out = title._layout_updates
        view.mark_running()  # another word, another state: the full path
        assert title._layout_updates > laid_out
        assert line(view) == f"▶ {view.title}"


def test_an_item_is_made_in_its_collapsed_state_s_class() -> None:
    # Collapsible adds -collapsed as it mounts, which restyles the item and all it holds
    # just after they were styled: an item made closed has it from the start.
    assert CheckView("handshake", 0, "handshake.burst", "A burst").has_class("check", "-pending", "-collapsed")
    assert KeyedItem(title="open", collapsed=False, classes="cause").classes == {"cause"}


async def test_a_closed_item_mounts_closed() -> None:
    app = OneCheck()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        view = app.query_one(CheckView)
        assert view.collapsed and view.has_class("-collapsed")
        assert not view.query_one(CheckView.Contents).display
        view.collapsed = False
        await pilot.pause()
        assert not view.has_class("-collapsed") and view.query_one(CheckView.Contents).display


async def test_the_heap_is_frozen_while_a_run_runs_and_given_back_after() -> None:
    app = make_app()
    frozen_during: list[int] = []
    async with app.run_test(size=(120, 40)) as pilot:
        assert gc.get_freeze_count() == 0
        real = app.engine.run_groups

        async def watched(*args: Any, **kw: Any) -> Any:
            frozen_during.append(gc.get_freeze_count())
            return await real(*args, **kw)

        app.engine.run_groups = watched  # type: ignore[method-assign]
        await run_all(pilot)
        assert frozen_during and frozen_during[0] > 0  # what was there before the run: frozen
        await until(pilot, lambda: gc.get_freeze_count() == 0)  # collected as usual after it
        assert app.screen.query(".verdict")


async def test_a_closed_cause_s_body_is_made_when_it_is_opened() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await run_all(pilot)
        first, second, *_ = app.screen.query(CauseView)
        # The first cause is open with its bar, summary and evidence; the closed ones hold
        # their title line only until they are opened.
        assert first.query(ProgressBar) and first.query(".cause-summary")
        assert second.collapsed and not second.query(ProgressBar) and not second.query(".cause-summary")
        second.collapsed = False
        await until(pilot, lambda: bool(second.query(".cause-summary")))
        summary = second.query_one(".cause-summary", Static)
        assert str(summary.render()) == second.finding.summary
        assert second.query_one(ProgressBar).progress == round(second.finding.confidence * 100)
        second.collapsed = True
        await pilot.pause()
        second.collapsed = False  # opened again: the body made the first time, not a second one
        await pilot.pause()
        assert len(second.query(".cause-summary")) == 1


async def test_a_step_shown_as_it_ended_is_not_shown_again_when_the_run_ends() -> None:
    engine = ScriptedEngine()
    engine.step_gates["handshake"] = asyncio.Event()
    app = make_app(engine)
    done: Counter[str] = Counter()
    async with app.run_test(size=(120, 40)) as pilot:
        real = app.controller.step_done

        def counted(step_id: str, result: Any) -> None:
            done[step_id] += 1
            real(step_id, result)

        app.controller.step_done = counted  # type: ignore[method-assign]
        await start(pilot, key="ctrl+g")
        await until(pilot, lambda: all(app.step_states.get(s) not in ("running", "pending")
                                       for s in STEP_IDS[:-1]))
        engine.step_gates["handshake"].set()
        await until(pilot, lambda: app.screen.name == "summary" and not app.run_in_progress())
        # Each step's result was taken in once, as its StepFinished came (or, for one whose
        # message came after the run's end, then); steps 1-5 were not redacted and synced again.
        assert dict(done) == dict.fromkeys(STEP_IDS, 1)


async def test_the_verdict_s_screen_is_made_while_the_last_step_runs() -> None:
    engine = ScriptedEngine()
    last = len(engine.results["handshake"]) - 1
    engine.gates[("handshake", last)] = asyncio.Event()
    app = make_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, key="ctrl+g")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        summary = app.get_screen("summary")
        # Out of sight, before the step's last check has ended: composed, styled, laid out.
        await until(pilot, lambda: summary.is_running and bool(summary.query("#stepper")) and summary.size.width)
        assert app.run_in_progress() and app.screen.name == "step:handshake"
        assert not summary.query(".verdict")  # the verdict itself is made when it is shown
        engine.gates[("handshake", last)].set()
        await until(pilot, lambda: app.screen is summary and bool(summary.query(".verdict")))
