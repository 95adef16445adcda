"""The step screen, reused for steps 2-6: stepper, guidance, live checks, evidence, notes."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from wizard.ui import steps
from wizard.ui.widgets.checkview import CheckView
from wizard.ui.widgets.navbar import NavButtons, nav_bar
from wizard.ui.widgets.steppanel import StepPanel
from wizard.ui.widgets.stepper import Stepper


class StepScreen(NavButtons, Screen):
    """One checklist step; the app feeds its panel while the step runs."""

    BINDINGS = [Binding("escape", "app.cancel_run", "Cancel run")]

    def __init__(self, step: Any) -> None:
        super().__init__(name=f"step:{step.id}", classes="step-screen")
        self.step = step
        self.step_id = step.id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Stepper(self.step_id)
        with VerticalScroll(id="body"):
            yield Static(f"Step {steps.number(self.step_id)} of 6 · {self.step.title}", classes="step-title")
            yield StepPanel(self.step)
        yield nav_bar()
        yield Footer()

    def panel(self) -> StepPanel:
        return self.query_one(StepPanel)

    def on_screen_resume(self) -> None:
        self.panel().sync()

    def on_check_view_rerun_requested(self, event: CheckView.RerunRequested) -> None:
        app: Any = self.app
        app.rerun_check(event.step, event.index)
