"""The stepper: all six steps and the summary, each with its status, always visible.

When the stepper is narrower than its full labels need (an 80-column terminal), it turns
compact: each step is its number and state glyph (``1✓ 2✓ 3✗ 4✓ 5· ▶6◌ Handshake V``) and
only the current step keeps its label, so that every step and the verdict stay in sight.
The switch follows the stepper's own width on each resize, not a guess at the terminal.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from wizard.ui.steps import GLYPHS, STEPS, VERDICT_WORDS

TAB_PADDING = 2  # .step-tab's horizontal padding, in cells


class StepTab(Static):
    """One step of the stepper; a click jumps to it."""

    def __init__(self, step_id: str, number: int, label: str, state: str = "pending",
                 current: bool = False, compact: bool = False) -> None:
        # Built in its state, so that the first frame does not restyle each tab once more.
        super().__init__(self._text(number, label, state, current, compact), id=f"tab-{step_id}",
                         classes=" ".join(self._classes_for(state, current)))
        self.step_id = step_id
        self.number = number
        self.label = label
        self.state = state
        self.compact = compact
        self._shown = (state, current, compact)
        self.tooltip = self._tip(label, state)

    @staticmethod
    def _classes_for(state: str, current: bool) -> list[str]:
        return ["step-tab", f"-{state}", *(["-current"] if current else [])]

    @staticmethod
    def _text(number: int, label: str, state: str, current: bool = False, compact: bool = False) -> str:
        glyph = GLYPHS.get(state, " ")
        if not compact:
            prefix = f"{number} " if number else ""
            return f"{glyph} {prefix}{label}"
        # Compact: the number (V for the verdict) and the glyph; the current step is
        # marked without colour too (▶) and keeps its label.
        short = f"{number}{glyph}" if number else f"V{glyph}"
        return f"▶{short} {label}" if current else short

    @staticmethod
    def full_width(number: int, label: str) -> int:
        """Cells the tab takes with its full label (its padding included)."""
        return cell_len(StepTab._text(number, label, "pending")) + TAB_PADDING

    @staticmethod
    def _tip(label: str, state: str) -> str:
        said = VERDICT_WORDS.get(state, state) if label == "Verdict" else state
        return f"{label}: {said} (click to open)"

    def show(self, state: str, current: bool, compact: bool | None = None) -> None:
        compact = self.compact if compact is None else compact
        if (state, current, compact) == getattr(self, "_shown", None):
            return
        changed_classes = self._shown[:2] != (state, current)
        self._shown = (state, current, compact)
        self.state = state
        self.compact = compact
        if changed_classes:
            # One class update per tab: each set_class restyles the widget.
            self.set_classes(self._classes_for(state, current))
        self.update(self._text(self.number, self.label, state, current, compact))
        self.tooltip = self._tip(self.label, state)

    def on_click(self) -> None:
        self.post_message(Stepper.StepChosen(self.step_id))


def _tabs() -> list[tuple[str, int, str]]:
    return [(step_id, number if step_id != "summary" else 0, label)
            for number, (step_id, label) in enumerate([*STEPS, ("summary", "Verdict")], start=1)]


#: the content width the stepper needs to show every step with its full label
FULL_WIDTH = sum(StepTab.full_width(n, label) for _, n, label in _tabs())


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
        self.compact = False

    def compose(self) -> ComposeResult:
        for step_id, number, label in _tabs():
            yield StepTab(step_id, number, label, self.states.get(step_id, "pending"),
                          step_id == self.current, self.compact)

    def on_resize(self, event: events.Resize) -> None:
        compact = self.size.width < FULL_WIDTH  # the content width, the padding left out
        if compact != self.compact:
            self.compact = compact
            self.set_class(compact, "-compact")
            self.show(self.states)

    def show(self, states: dict[str, str]) -> None:
        self.states = dict(states)
        for tab in self.query(StepTab):
            tab.show(states.get(tab.step_id, "pending"), tab.step_id == self.current, self.compact)


class StepperScreen:
    """For screens with a stepper: the steps' states the app pushes, kept for compose.

    Only the screen in sight restyles its stepper when they change; one out of sight does
    so when it is shown again (a run-all changes them some twenty times, and restyling the
    tabs of every screen each time took the engine's thread a quarter of a second)."""

    step_states: dict[str, str] = {}  # replaced as a whole, never mutated
    _shown_once = False

    def show_states(self, states: dict[str, str]) -> None:
        self.step_states = states
        if self.is_current:  # type: ignore[attr-defined]
            self._show_states()

    def _show_states(self) -> None:
        for stepper in self.query(Stepper):  # type: ignore[attr-defined]
            stepper.show(self.step_states)

    async def on_screen_resume(self, event: events.ScreenResume) -> None:
        if not self._shown_once:
            # Shown for the first time: composed and styled just now. Textual restyles a
            # screen it shows again (what changed while it was away); doing so for a new
            # one styled every widget twice, as a run-all opens a screen per group.
            self._shown_once = True
            event.refresh_styles = False
        self._show_states()  # before the screen's first frame in sight
