"""The app's moves between steps and its run actions (start, go to a step, next, back, rerun,
run all, cancel), for the app: what each does is asked of the controller and the screens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual.app import App

from wizard.ui import steps

if TYPE_CHECKING:
    from wizard.model import Session
    from wizard.ui.controller import WizardController
    from wizard.ui.screens.target import TargetScreen

# A mixin of the app: typed as an App, a plain class at run time.
if TYPE_CHECKING:
    AppBase = App[int]
else:
    AppBase = object


class NavActions(AppBase):
    """Moving between the steps and starting, rerunning or cancelling runs."""

    if TYPE_CHECKING:
        controller: WizardController
        step_states: dict[str, str]
        clock: Callable[[], datetime]

        @property
        def session(self) -> Session | None: ...
        def run_in_progress(self) -> bool: ...
        def current_step(self) -> str: ...
        def _target_screen(self) -> TargetScreen: ...
        async def _show(self, step_id: str) -> None: ...
        def run_remaining(self) -> Any: ...
        def run_one_step(self, step_id: str, only: int | None = None) -> Any: ...
        def start_run(self, target: str, answers: dict[str, Any], server: str, then_all: bool) -> Any: ...

    def _busy(self) -> bool:
        if self.run_in_progress():
            self.notify("Checks are running: wait, or press Esc to cancel them.", title="Busy",
                        severity="warning")
            return True
        return False

    def _form_changed(self) -> bool:
        return self.controller.form_changed(self._target_screen().collect())

    def action_start(self, then_all: bool = False) -> None:
        if self._busy():
            return
        collected = self._target_screen().collect()
        if collected is None:
            self.notify("Fix the fields marked ✗ first.", title="Step 1", severity="warning")
            return
        if self.session is not None and not self.controller.form_changed(collected):
            if then_all:
                self.run_remaining()
            else:
                self.call_later(self.action_goto, 'connectivity')
            return
        target, answers, server = collected
        typed_at = self._target_screen().field_text("at")
        if answers["at"] is not None or typed_at.strip():
            from wizard.ui.fields import moment

            answers["at"] = moment(typed_at, self.clock())
        self.start_run(target, answers, server, then_all)

    async def action_goto(self, step_id: str) -> None:
        if step_id != "identify" and self.session is None:
            self.notify("Fill in step 1 and press Enter first.", title="Not started", severity="warning")
            return
        await self._show(step_id)
        if step_id not in ("identify", "summary") and self.step_states.get(step_id) == "pending" \
                and not self.run_in_progress():
            self.run_one_step(step_id)

    async def action_next(self) -> None:
        current = self.current_step()
        if current == "identify" and (self.session is None or self._form_changed()):
            self.action_start()
            return
        following = steps.neighbour(current, 1)
        if following:
            await self.action_goto(following)

    async def action_back(self) -> None:
        previous = steps.neighbour(self.current_step(), -1)
        if previous:
            await self.action_goto(previous)

    def action_rerun_step(self) -> None:
        if self.session is None:
            self.action_start()
        elif self.current_step() != "summary" and not self._busy():
            self.run_one_step(self.current_step())

    def action_run_all(self) -> None:
        if self.session is None or (self.current_step() == "identify" and self._form_changed()):
            self.action_start(then_all=True)
        elif not self._busy():
            self.run_remaining()

    def action_cancel_run(self) -> None:
        cancelled = [w for w in self.workers if w.group == "run" and w.is_running]
        for worker in cancelled:
            worker.cancel()
