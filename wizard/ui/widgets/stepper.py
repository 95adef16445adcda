"""The stepper: all six steps and the summary, each with its status, always visible."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
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

    def on_click(self) -> None:
        self.post_message(Stepper.StepChosen(self.step_id))


class Stepper(Horizontal):
    """Shows the steps' states it is given and marks the screen's own step as current."""

    class StepChosen(Message):
        """A step of the stepper was clicked: the person wants to go there."""

        def __init__(self, step: str) -> None:
            super().__init__()
            self.step = step

    def __init__(self, current: str, states: dict[str, str] | None = None) -> None:
        super().__init__(id="stepper")
        self.current = current
        self.states = dict(states or {})

    def compose(self) -> ComposeResult:
        for number, (step_id, label) in enumerate([*STEPS, ("summary", "Verdict")], start=1):
            yield StepTab(step_id, number if step_id != "summary" else 0, label,
                          self.states.get(step_id, "pending"), step_id == self.current)

    def show(self, states: dict[str, str]) -> None:
        self.states = dict(states)
        for tab in self.query(StepTab):
            tab.show(states.get(tab.step_id, "pending"), tab.step_id == self.current)


class StepperScreen:
    """For screens with a stepper: the steps' states the app pushes, kept for compose."""

    step_states: dict[str, str] = {}  # replaced as a whole, never mutated

    def show_states(self, states: dict[str, str]) -> None:
        self.step_states = states
        for stepper in self.query(Stepper):  # type: ignore[attr-defined]
            stepper.show(states)
