"""The step screen, reused for steps 2-6: stepper, guidance, live checks, evidence, notes."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from wizard.ui import steps
from wizard.ui.widgets.footer import WizardFooter
from wizard.ui.widgets.items import SCREEN_BINDINGS, ItemsScreen
from wizard.ui.widgets.navbar import NavButtons, nav_bar
from wizard.ui.widgets.steppanel import StepPanel
from wizard.ui.widgets.stepper import Stepper, StepperScreen


class StepScreen(ItemsScreen, NavButtons, StepperScreen, Screen):
    """One checklist step; the app feeds its panel while the step runs."""

    BINDINGS = SCREEN_BINDINGS
    # The first check takes the focus (j/k and the arrows move on from it); the body would.
    AUTO_FOCUS = "CheckView > CollapsibleTitle"

    def __init__(self, step: Any, titles: dict[str, str], states: dict[str, str]) -> None:
        super().__init__(name=f"step:{step.id}", classes="step-screen")
        self.step = step
        self.step_id = step.id
        self.titles = titles
        self.step_states = states
        self._panel = StepPanel(self.step, self.titles)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Stepper(self.step_id, self.step_states)
        with VerticalScroll(id="body"):
            yield Static(f"Step {steps.number(self.step_id)} of 6 · {self.step.title}", classes="step-title")
            yield self._panel
        yield nav_bar()
        yield WizardFooter()

    def panel(self) -> StepPanel:
        """The step's panel, composed or not: what is pushed into it is shown once it is."""
        return self._panel
