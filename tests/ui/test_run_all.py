"""Run all (Ctrl+G) against an engine that starts a group before the one before has ended,
as the real one runs step 1 beside steps 2-5: the screens still come in order, and no check
is left shown as queued or running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.ui.helpers import SIZE, make_app, start, until
from tests.ui.scripted import ScriptedEngine
from wizard.model import StepResult
from wizard.ui.widgets.checkview import CheckView


class BesideEngine(ScriptedEngine):
    """Runs the first two groups side by side, the rest one after another."""

    async def run_groups(self, groups: list[list[str]], emit: Callable[[Any], None]) -> list[StepResult]:
        together = await self.run_steps([s for group in groups[:2] for s in group], emit)
        return together + [step for group in groups[2:] for step in await self.run_steps(group, emit)]


async def test_a_group_that_ends_before_the_one_before_is_shown_after_it_and_nothing_stays_queued() -> None:
    engine = BesideEngine()
    engine.gates[("identify", 0)] = held = asyncio.Event()
    app = make_app(engine)
    shown: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, key="ctrl+g")
        # Steps 2-5 end while step 1 still runs: their results are in, the screen stays on
        # step 1, and the handshake has not started.
        middle = ("connectivity", "server-logs", "firewall", "app-errors")
        await until(pilot, lambda: all(app.controller.states.get(s) not in (None, "pending", "running")
                                       for s in middle))
        await pilot.pause()
        assert app.screen.name == "target" and app.controller.states["identify"] == "running"
        assert ("handshake", None) not in engine.calls and app.controller.states["handshake"] == "pending"
        assert not {s for s, _ in app.controller.queued} - {"identify", "handshake"}
        real_show = app._show

        async def noted(step_id: str) -> None:
            shown.append(step_id)
            await real_show(step_id)

        app._show = noted  # type: ignore[method-assign]
        held.set()
        await until(pilot, lambda: app.screen.name == "summary" and not app.run_in_progress())
        await pilot.pause()
        assert shown == ["connectivity", "handshake", "summary"]
        assert not app.controller.queued and not app.controller.running
        assert app.session is not None and app.session.diagnosis
        views = [v for name in ("step:connectivity", "step:handshake") for v in app.get_screen(name).query(CheckView)]
        assert views and all(v.state not in ("queued", "running", "pending") for v in views)
