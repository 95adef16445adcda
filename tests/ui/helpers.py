"""Helpers for the UI tests: a deterministic app, waiting for a condition, steady cursors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.ui.scripted import FIXED, ScriptedEngine
from wizard.ui.app import ResetWizardApp

SIZE = (120, 40)


def make_app(engine: ScriptedEngine | None = None, export_dir: Path | None = None, **kw: Any) -> ResetWizardApp:
    """The real app with a scripted engine, a fixed clock and a frozen monotonic clock."""
    return ResetWizardApp(engine=engine or ScriptedEngine(), clock=lambda: FIXED, monotonic=lambda: 1000.0,
                          export_dir=export_dir or Path("/tmp"), **kw)


async def until(pilot: Pilot, condition: Callable[[], Any], timeout: float = 15.0) -> None:
    """Pause until ``condition()`` holds; fail with the condition's source after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def steady(pilot: Pilot) -> None:
    """No blinking cursors, then let the screen settle: snapshots must not depend on timing."""
    # Every screen of the stack: a modal shows the screen below it, cursor and all.
    for screen in pilot.app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def drawn_stepper(pilot: Pilot) -> str:
    """The stepper's line as it is drawn on the screen in sight."""
    from wizard.ui.widgets.stepper import Stepper

    return pilot.app.screen.query_one(Stepper).render_line(0).text


async def click_tab(pilot: Pilot, step_id: str, cell: int | None = None) -> None:
    """Click a step's tab, found where the stepper draws its text: at ``cell`` of its text
    (-1: the blank before it, len(text): the blank after it), by default its middle."""
    from wizard.ui.widgets.stepper import Stepper

    stepper = pilot.app.screen.query_one(Stepper)
    text = stepper.tab_text(step_id)
    x = drawn_stepper(pilot).index(text) + (len(text) // 2 if cell is None else cell)
    await pilot.click(stepper, offset=(stepper.gutter.left + x, 0))


async def type_target(pilot: Pilot, text: str = "127.0.0.1:8080") -> None:
    await pilot.click("#target")
    await pilot.press(*text)


async def start(pilot: Pilot, text: str = "127.0.0.1:8080", key: str = "enter") -> None:
    """Once the form can be read, fill step 1's target and start (Enter) or run all (Ctrl+G)."""
    await until(pilot, lambda: pilot.app.checklist is not None)
    await type_target(pilot, text)
    await pilot.press(key)


async def run_all(pilot: Pilot, text: str = "127.0.0.1:8080") -> None:
    """Fill step 1 with a target and run every step to the verdict."""
    await start(pilot, text, "ctrl+g")
    await until(pilot, lambda: pilot.app.screen.name == "summary" and not pilot.app.run_in_progress())
    await pilot.pause()


async def open_export(pilot: Pilot) -> Path:
    """Open the export dialog (Ctrl+S) and return the report path it proposes."""
    from textual.widgets import Input

    from wizard.ui.screens.export_modal import ExportModal

    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(pilot.app.screen, ExportModal))
    return Path(pilot.app.screen.query_one("#path", Input).value)
