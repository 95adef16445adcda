"""The stepper: all six steps and the summary, each with its status, always visible."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from wizard.ui.steps import GLYPHS, STEPS


class StepTab(Static):
    """One step of the stepper; a click jumps to it."""

    def __init__(self, step_id: str, number: int, label: str, state: str = "pending",
                 current: bool = False) -> None:
        # Built in its state, so that the first frame does not restyle each tab once more.
        super().__init__(self._text(number, label, state), id=f"tab-{step_id}",
                         classes=" ".join(self._classes_for(state, current)))
        self.step_id = step_id
        self.number = number
        self.label = label
        self.state = state
        self._shown = (state, current)
        self.tooltip = self._tip(label, state)

    @staticmethod
    def _classes_for(state: str, current: bool) -> list[str]:
        return ["step-tab", f"-{state}", *(["-current"] if current else [])]

    @staticmethod
    def _text(number: int, label: str, state: str) -> str:
        prefix = f"{number} " if number else ""
        return f"{GLYPHS.get(state, ' ')} {prefix}{label}"

    @staticmethod
    def _tip(label: str, state: str) -> str:
        return f"{label}: {state} (click to open)"

    def show(self, state: str, current: bool) -> None:
        if (state, current) == getattr(self, "_shown", None):
            return
        self._shown = (state, current)
        self.state = state
        # One class update per tab: each set_class restyles the widget.
        self.set_classes(self._classes_for(state, current))
        self.update(self._text(self.number, self.label, state))
        self.tooltip = self._tip(self.label, state)

    async def on_click(self) -> None:
        await self.app.run_action(f"goto('{self.step_id}')")


class Stepper(Horizontal):
    """Reads the app's ``step_states`` and marks the screen's own step as current."""

    def __init__(self, current: str) -> None:
        super().__init__(id="stepper")
        self.current = current

    def compose(self) -> ComposeResult:
        states: dict[str, str] = getattr(self.app, "step_states", {})
        for number, (step_id, label) in enumerate([*STEPS, ("summary", "Verdict")], start=1):
            yield StepTab(step_id, number if step_id != "summary" else 0, label,
                          states.get(step_id, "pending"), step_id == self.current)

    def on_mount(self) -> None:
        self.watch(self.app, "step_states", self._states_changed, init=True)

    def _states_changed(self, states: dict[str, str]) -> None:
        for tab in self.query(StepTab):
            tab.show(states.get(tab.step_id, "pending"), tab.step_id == self.current)
