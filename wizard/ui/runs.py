"""The app's runs of steps, for the app: one step (or one check of it), a group of steps
side by side, or every remaining group in one call to the engine, which starts each group
as the one before ends; the screens follow the runner's messages."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from textual.app import App

from wizard.ui import messages

if TYPE_CHECKING:
    from wizard.model import Session
    from wizard.ui.backend import Engine
    from wizard.ui.controller import WizardController

# A mixin of the app: typed as an App, a plain class at run time.
if TYPE_CHECKING:
    AppBase = App[int]
else:
    AppBase = object


class StepRuns(AppBase):
    """Running steps through the engine and showing what they did."""

    #: runs under way that froze the heap (heap_frozen)
    _frozen = 0

    @contextmanager
    def heap_frozen(self) -> Iterator[None]:
        """No full garbage collection of what was there before a run, while it runs.

        The heap at a run's start (Textual, the checks, pydantic, scapy: some 100 MB of
        objects) is made permanent (gc.freeze) for the run, and given back once the screen
        shows where the run ended (gc.unfreeze: collected as usual from then on). A full
        collection walks every object and holds the interpreter throughout: two of them fell
        in a run to the verdict, 80-130 ms each, with the engine's thread stopped too. The
        run's own garbage is still collected: a collection walks only what the run made."""
        self._frozen += 1
        gc.freeze()
        try:
            yield
        finally:
            self._frozen -= 1
            if not self._frozen:
                self.call_after_refresh(self._thaw)

    def _thaw(self) -> None:
        if not self._frozen:
            gc.unfreeze()

    if TYPE_CHECKING:
        controller: WizardController
        engine: Engine
        _planned: dict[str, list[str]]
        _groups: list[list[str]]
        _begun: set[str]
        _next: int
        _shown: asyncio.Task[None] | None

        @property
        def session(self) -> Session | None: ...
        def push_step(self, step_id: str) -> None: ...
        def panel(self, step_id: str) -> Any: ...
        def _emit(self, event: Any) -> None: ...
        async def _show(self, step_id: str) -> None: ...

    async def _run_steps(self, step_ids: list[str], only: int | None = None) -> None:
        """One step (or one check of it), or steps that may overlap, side by side."""
        assert self.session is not None
        self.controller.steps_began(step_ids, only)
        for step_id in step_ids:  # queued at once: the body says the step runs before its checks start
            self.push_step(step_id)
        try:
            if len(step_ids) == 1:
                results = [await self.engine.run_step(step_ids[0], only, self._emit)]
            else:
                results = await self.engine.run_steps(step_ids, self._emit)
        except asyncio.CancelledError:
            self._cancelled(step_ids)
            raise
        self._steps_done(step_ids, results)

    def _cancelled(self, step_ids: list[str]) -> None:
        for step, index, skipped in self.controller.cancelled(step_ids):
            panel = self.panel(step)
            if panel is not None:
                panel.check_finished(index, skipped)
        for step_id in step_ids:  # what was queued and never started shows as before
            self.push_step(step_id)
        self.notify("The run was cancelled; finished checks keep their results.", title="Cancelled")

    def _steps_done(self, step_ids: list[str], results: list[Any]) -> None:
        for step_id, result in zip(step_ids, results, strict=True):
            self.controller.step_done(step_id, result)
            self.push_step(step_id)

    async def _run_groups(self, groups: list[list[str]]) -> None:
        """Groups of steps one after another, handed to the engine in one call: it starts
        each group as the one before ends, as `diagnose` does, instead of when this thread
        gets round to it. Each group is shown (queued, on its screen) once the one before
        has finished, as the runner's StepFinished messages tell."""
        step_ids = [s for group in groups for s in group]
        self._planned = {s: group for group in groups for s in group}
        self._groups = list(groups)
        self._begun = set()
        self._shown = None
        self._next = 1  # the next group to show
        self._begin_group(groups[0])
        try:
            results = await self.engine.run_groups(groups, self._emit)
            if self._shown is not None:
                await self._shown
        except asyncio.CancelledError:
            self._cancelled(step_ids)
            raise
        finally:
            self._planned, self._groups, self._begun, self._next = {}, [], set(), 0
            if self._shown is not None and not self._shown.done():
                self._shown.cancel()
            self._shown = None
        # Those whose StepFinished has not come yet: the others were shown as it came, with
        # this very result (a step is not changed after it ends); showing every step again
        # held the verdict some 20 ms on redacting and syncing what was on screen already.
        states = self.controller.states
        left = [(s, r) for s, r in zip(step_ids, results, strict=True) if states.get(s) in ("running", "pending")]
        self._steps_done([s for s, _ in left], [r for _, r in left])

    def _begin_group(self, group: list[str]) -> None:
        self._begin_steps(group)
        index = self._groups.index(group)
        after = self._groups[index + 1][0] if index + 1 < len(self._groups) else "summary"
        # Shown in order, each after the one before; the checks do not wait for it.
        self._shown = asyncio.create_task(self._show_after(self._shown, group[0], after))

    def _begin_steps(self, step_ids: list[str]) -> None:
        fresh = [s for s in step_ids if s not in self._begun]
        if not fresh:
            return
        self._begun |= set(fresh)
        self.controller.steps_began(fresh)
        for step_id in fresh:  # queued at once: the body says the step runs before its checks start
            self.push_step(step_id)

    def on_step_started(self, message: messages.StepStarted) -> None:
        # The engine may start a group before the one before has ended (step 1 beside steps
        # 2-5, as `diagnose` runs them): its checks are queued as it starts; its screen still
        # comes after the one before.
        if message.step in self._planned:
            self._begin_steps([message.step])

    def on_step_finished(self, message: messages.StepFinished) -> None:
        group = self._planned.get(message.step)
        if group is None:
            return  # not a run of groups: _run_steps takes the results as they come back
        self._steps_done([message.step], [message.result])
        # Each group is shown once every group before it has ended (a group that started
        # early may end before the one before it does).
        done = self.controller.states
        while 0 < self._next < len(self._groups) and all(
                done.get(s) not in ("running", "pending") for s in self._groups[self._next - 1]):
            self._next += 1
            self._begin_group(self._groups[self._next - 1])

    async def _show_after(self, before: asyncio.Task[None] | None, step_id: str, after: str) -> None:
        if before is not None:
            await before
        await self._show(step_id)
        if step_id != "identify":
            # Once this group's screen is out, the next one's is made while the engine runs
            # the group (step 1 excepted: its panel is being made then, beside the engine).
            self.call_after_refresh(self.premount, after)

    async def premount(self, step_id: str) -> None:
        """Compose, mount and style a step's screen (or the verdict's) out of sight, so that
        showing it is a layout and a paint. A group's checks mostly wait on the network (the
        demo server is silent 0.3 s before each reset), and the UI thread is free meanwhile;
        made as it was shown, the handshake's screen took 70-130 ms of the UI thread as the
        handshake began, and the verdict's frame (header, stepper, buttons, footer) some 35 ms
        after the engine's last result. A screen made already, in sight, or not
        installed is left as it is. (Textual's own way in: what switch_screen does first; then
        a layout at the app's size, which a screen out of sight does without drawing.)"""
        name = step_id if step_id == "summary" else f"step:{step_id}"
        if not self.is_screen_installed(name):
            return
        screen = self.get_screen(name)
        if screen.is_running or screen is self.screen:
            return
        self._load_screen_css(screen)
        await self._get_screen(screen)[1]
        if screen is not self.screen and screen.is_attached:
            screen._refresh_layout(self.size)
