"""The stepper: all six steps and the summary, each with its status, always visible."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from wizard.ui.steps import GLYPHS, STEPS


class StepTab(Static):
    """One step of the stepper; a click jumps to it."""

    def __init__(self, step_id: str, number: int, label: str) -> None:
        super().__init__(id=f"tab-{step_id}", classes="step-tab")
        self.step_id = step_id
        self.number = number
        self.label = label
        self.state = "pending"

    def show(self, state: str, current: bool) -> None:
        if (state, current) == getattr(self, "_shown", None):
            return
        self._shown = (state, current)
        self.state = state
        # One class update per tab: each set_class restyles the widget, and the first
        # frame has all seven tabs to draw.
        self.set_classes(["step-tab", f"-{state}", *(["-current"] if current else [])])
        prefix = f"{self.number} " if self.number else ""
        self.update(f"{GLYPHS.get(state, ' ')} {prefix}{self.label}")
        self.tooltip = f"{self.label}: {state} (click to open)"

    async def on_click(self) -> None:
        await self.app.run_action(f"goto('{self.step_id}')")


class Stepper(Horizontal):
    """Reads the app's ``step_states`` and marks the screen's own step as current."""

    def __init__(self, current: str) -> None:
        super().__init__(id="stepper")
        self.current = current

    def compose(self) -> ComposeResult:
        for number, (step_id, label) in enumerate(STEPS, start=1):
            yield StepTab(step_id, number, label)
        yield StepTab("summary", 0, "Verdict")

    def on_mount(self) -> None:
        self.watch(self.app, "step_states", self._states_changed, init=True)

    def _states_changed(self, states: dict[str, str]) -> None:
        for tab in self.query(StepTab):
            tab.show(states.get(tab.step_id, "pending"), tab.step_id == self.current)
