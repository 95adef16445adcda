"""Snapshots of every screen in its interesting states (fixed size, clock and results)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.ui.helpers import SIZE, make_app, run_all, start, steady, type_target, until
from tests.ui.scripted import ScriptedEngine
from wizard.ui.backend import Skip
from wizard.ui.widgets.checkview import CheckView

EXPORT_DIR = Path("/nonexistent-rwui")  # a fixed path for the dialog; nothing is written


async def _settled(pilot: Pilot, screen: str) -> None:
    """Every finished check's result is mounted (results mount a refresh after they arrive;
    a closed check's body once it is opened)."""
    app = pilot.app
    views = lambda: list(app.get_screen(screen).query(CheckView))  # noqa: E731
    await until(pilot, lambda: all(v.state in ("pending", "running") or v.query("ResultBody")
                                   or (v.collapsed and v.result is not None) for v in views()))
    await pilot.pause()


async def _open_all(pilot: Pilot) -> None:
    views = list(pilot.app.screen.query(CheckView))
    for view in views:  # a closed check's body is made as it opens: here all of them are there first
        await view.make_body()
    await pilot.pause()
    for view in views:
        view.collapsed = False


def test_step_one_empty_form(snap_compare) -> None:
    async def before(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.checklist is not None)
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)


def test_step_one_shows_problems_beside_the_fields(snap_compare) -> None:
    async def before(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.checklist is not None)
        await type_target(pilot, "[::1:443")
        await pilot.click("#window")
        await pilot.press(*"soon")
        await pilot.click("#server")
        await pilot.press(*"docker:web")
        await pilot.click("#timeout")
        await pilot.press(*"90")
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)


def test_step_one_without_root_lists_the_skipped_checks(snap_compare) -> None:
    skips = [Skip("app-errors", "kernel.counters", "Kernel counters", "needs root", "sudo reset-wizard …"),
             Skip("firewall", "firewall.rules", "Firewall rules", "needs root", "sudo reset-wizard …")]

    async def before(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.checklist is not None)
        await type_target(pilot)
        await steady(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "NoticeModal")
        # identify runs behind the notice: wait for it so the dimmed background is fixed.
        await until(pilot, lambda: pilot.app.step_states.get("identify") == "warn")
        await _settled(pilot, "target")
        # Where the form is scrolled behind the notice depends on when results mounted.
        pilot.app.get_screen("target").query_one("#body").scroll_home(animate=False)
        await steady(pilot)

    app = make_app(ScriptedEngine(skips=skips, root_skips=skips))
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_a_step_while_its_checks_run(snap_compare) -> None:
    engine = ScriptedEngine()
    engine.gates[("connectivity", 1)] = asyncio.Event()
    engine.gates[("connectivity", 2)] = asyncio.Event()

    async def before(pilot: Pilot) -> None:
        await start(pilot)
        await until(pilot, lambda: pilot.app.step_states.get("identify") == "warn")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: ("connectivity", 2) in pilot.app.running
                    and pilot.app.screen.name == "step:connectivity")
        await until(pilot, lambda: pilot.app.session.step("connectivity").checks)
        await steady(pilot)

    assert snap_compare(make_app(engine), terminal_size=SIZE, run_before=before)


def _step_snapshot(snap_compare, key: str, name: str, size: tuple[int, int] = SIZE,
                   show: str | None = None) -> None:
    async def before(pilot: Pilot) -> None:
        await run_all(pilot)
        await pilot.press(key)
        await until(pilot, lambda: pilot.app.screen.name == name)
        await _open_all(pilot)
        await steady(pilot)
        if show:  # the first such view at the top of the body, where a small screen shows it
            pilot.app.screen.query(show).first().scroll_visible(top=True, animate=False)
            await steady(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


def test_identify_results_below_the_form(snap_compare) -> None:
    async def before(pilot: Pilot) -> None:
        await start(pilot)
        await until(pilot, lambda: pilot.app.step_states.get("identify") == "warn")
        # The step's state changes before the run's worker ends and the panel shows every result.
        await until(pilot, lambda: not pilot.app.run_in_progress())
        pilot.app.push_step("identify")
        await pilot.pause()
        pilot.app.screen.query_one("#identify-slot").scroll_visible(animate=False)
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)


def test_server_logs_with_the_matching_lines_highlighted(snap_compare) -> None:
    _step_snapshot(snap_compare, "3", "step:server-logs")


def test_firewall_rules_as_a_table_with_the_match_marked(snap_compare) -> None:
    _step_snapshot(snap_compare, "4", "step:firewall")


def test_counters_as_before_after_and_delta(snap_compare) -> None:
    _step_snapshot(snap_compare, "5", "step:app-errors")


def test_the_handshake_as_a_ladder(snap_compare) -> None:
    _step_snapshot(snap_compare, "6", "step:handshake")


def test_the_verdict(snap_compare) -> None:
    async def before(pilot: Pilot) -> None:
        await run_all(pilot)
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)


def test_the_export_dialog_with_its_preview(snap_compare) -> None:
    async def before(pilot: Pilot) -> None:
        await run_all(pilot)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "ExportModal")
        await steady(pilot)

    assert snap_compare(make_app(export_dir=EXPORT_DIR), terminal_size=SIZE, run_before=before)


def test_the_help_screen(snap_compare) -> None:
    async def before(pilot: Pilot) -> None:
        await pilot.press("f1")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)


def test_quitting_mid_run_asks(snap_compare) -> None:
    # The run is held inside step 2, on its own screen: step 1's form scrolls with an
    # animation as results mount, which would make the picture depend on timing.
    engine = ScriptedEngine()
    engine.gates[("connectivity", 1)] = asyncio.Event()

    async def before(pilot: Pilot) -> None:
        await start(pilot, key="ctrl+g")
        await until(pilot, lambda: ("connectivity", 1) in pilot.app.running)
        await until(pilot, lambda: pilot.app.screen.name == "step:connectivity")
        await until(pilot, lambda: len(pilot.app.session.step("connectivity").checks) >= 1)
        await _settled(pilot, "step:connectivity")
        await pilot.wait_for_scheduled_animations()
        await steady(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmModal")
        await steady(pilot)

    assert snap_compare(make_app(engine), terminal_size=SIZE, run_before=before)


# ----- the layout at a small and a large terminal -------------------------------------------
# 80x24: the compact stepper (every step and the verdict in sight), the compact footer, and
# tables that scroll sideways; 160x48: the full labels, nothing wrapped or stretched.
LAYOUT_SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.mark.parametrize("size", LAYOUT_SIZES)
def test_layout_step_one(snap_compare, size: tuple[int, int]) -> None:
    async def before(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.checklist is not None)
        await type_target(pilot)
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", LAYOUT_SIZES)
def test_layout_firewall_table(snap_compare, size: tuple[int, int]) -> None:
    _step_snapshot(snap_compare, "4", "step:firewall", size, show=".evidence-table")


@pytest.mark.parametrize("size", LAYOUT_SIZES)
def test_layout_handshake_ladder(snap_compare, size: tuple[int, int]) -> None:
    _step_snapshot(snap_compare, "6", "step:handshake", size, show=".ladder")


@pytest.mark.parametrize("size", LAYOUT_SIZES)
def test_layout_verdict(snap_compare, size: tuple[int, int]) -> None:
    async def before(pilot: Pilot) -> None:
        await run_all(pilot)
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)
