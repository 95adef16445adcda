"""The stepper: all six steps and the summary, each with its status, always visible.

One widget that draws its seven tabs on its one line (a widget per tab cost the first frame
seven widgets' styling, layout and message pumps). Each tab is drawn in the styles of its
state, the current step's and the hovered tab's: component classes (``stepper--…``,
wizard.tcss), so the look stays in the stylesheet and follows the theme. A click on a tab
jumps to its step; the tooltip is the hovered tab's.

When the stepper is narrower than its full labels need (an 80-column terminal), it turns
compact: each step is its number and state glyph (``1✓ 2✓ 3✗ 4✓ 5· ▶6◌ Handshake V``) and
only the current step keeps its label, so that every step and the verdict stay in sight.
The switch follows the stepper's own width on each resize, not a guess at the terminal.
"""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from wizard.ui.steps import GLYPHS, STEPS, VERDICT_WORDS

TAB_PADDING = 2  # a tab's blank cell on either side of its text, in cells

#: states drawn bold: on a hovered tab their bold replaces the hover's underline
BOLD_STATES = frozenset({"running", "fail", "diagnosed"})
#: states whose colour is its own on the current tab too (the others take the current's)
OWN_COLOUR_WHEN_CURRENT = frozenset({"running", "error", "skip"})
STATES = ("running", "pass", "warn", "fail", "error", "skip", "diagnosed", "no-reset", "no-cause",
          "interrupted")


def tab_text(number: int, label: str, state: str, current: bool = False, compact: bool = False) -> str:
    """A tab's text (without its padding)."""
    glyph = GLYPHS.get(state, " ")
    if not compact:
        prefix = f"{number} " if number else ""
        return f"{glyph} {prefix}{label}"
    # Compact: the number (V for the verdict) and the glyph; the current step is
    # marked without colour too (▶) and keeps its label.
    short = f"{number}{glyph}" if number else f"V{glyph}"
    return f"▶{short} {label}" if current else short


def full_width(number: int, label: str) -> int:
    """Cells a tab takes with its full label (its padding included)."""
    return cell_len(tab_text(number, label, "pending")) + TAB_PADDING


def tip(label: str, state: str) -> str:
    said = VERDICT_WORDS.get(state, state) if label == "Verdict" else state
    return f"{label}: {said} (click to open)"


def components(state: str, current: bool, hovered: bool) -> tuple[str, ...]:
    """The component classes a tab is drawn in, in the order their styles apply.

    Component styles are laid one over the other (a later colour wins, text styles add up),
    not cascaded as rules are, so the order and the choice here are the cascade: the current
    tab's background and bold over the hover's, a state's colour over the base's and, but for
    ``OWN_COLOUR_WHEN_CURRENT``, the current's over a state's, a bold state's over the hover's
    underline."""
    names = ["stepper--tab"]
    if current:
        names.append("stepper--current")
    elif hovered:
        names.append("stepper--hover")
    if state in STATES and (not current or state in OWN_COLOUR_WHEN_CURRENT):
        names.append(f"stepper--{state}")
    if hovered and not current and state not in BOLD_STATES:
        names.append("stepper--underline")
    return tuple(names)


def _tabs() -> list[tuple[str, int, str]]:
    return [(step_id, number if step_id != "summary" else 0, label)
            for number, (step_id, label) in enumerate([*STEPS, ("summary", "Verdict")], start=1)]


TABS = _tabs()
#: the content width the stepper needs to show every step with its full label
FULL_WIDTH = sum(full_width(n, label) for _, n, label in TABS)


class Stepper(Widget):
    """Shows the steps' states it is given and marks the screen's own step as current."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "stepper--tab", "stepper--current", "stepper--hover", "stepper--underline",
        *(f"stepper--{state}" for state in STATES)}

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
        self.hovered: str | None = None

    # ----- what it shows --------------------------------------------------------------
    def state(self, step_id: str) -> str:
        return self.states.get(step_id, "pending")

    def tab_text(self, step_id: str) -> str:
        """The text of a step's tab as it is shown (without its padding)."""
        number, label = next((n, lb) for s, n, lb in TABS if s == step_id)
        return tab_text(number, label, self.state(step_id), step_id == self.current, self.compact)

    def tip(self, step_id: str) -> str:
        """The tooltip of a step's tab."""
        label = next(lb for s, _, lb in TABS if s == step_id)
        return tip(label, self.state(step_id))

    def spans(self) -> list[tuple[str, int, int]]:
        """Each tab as (step id, first cell, cells), from the content's left edge."""
        out, x = [], 0
        for step_id, *_ in TABS:
            width = cell_len(self.tab_text(step_id)) + TAB_PADDING
            out.append((step_id, x, width))
            x += width
        return out

    def tab_at(self, x: int) -> str | None:
        """The step whose tab is at cell ``x`` of the content, if any."""
        return next((s for s, left, width in self.spans() if left <= x < left + width), None)

    def show(self, states: dict[str, str]) -> None:
        if states == self.states:
            return
        self.states = dict(states)
        self._shown_changed()

    def _shown_changed(self) -> None:
        if self.hovered is not None:
            self.tooltip = self.tip(self.hovered)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width  # the content's
        segments: list[Segment] = []
        for step_id, *_ in TABS:
            look = self.get_visual_style(*components(self.state(step_id), step_id == self.current,
                                                     step_id == self.hovered)).rich_style
            pad = Style.from_color(bgcolor=look.bgcolor)  # padding: the tab's background alone
            segments += [Segment(" ", pad), Segment(self.tab_text(step_id), look), Segment(" ", pad)]
        strip = Strip(segments).crop(0, width)
        blank = Style.from_color(bgcolor=self.visual_style.rich_style.bgcolor)
        return strip.extend_cell_length(width, blank) if y == 0 else Strip.blank(width, blank)

    # ----- events ---------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        compact = self.size.width < FULL_WIDTH  # the content width, the padding left out
        if compact != self.compact:
            self.compact = compact
            self.set_class(compact, "-compact")
            self._shown_changed()

    def _hover(self, step_id: str | None) -> None:
        if step_id != self.hovered:
            self.hovered = step_id
            self.tooltip = None if step_id is None else self.tip(step_id)
            self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        self._hover(None if offset is None else self.tab_at(offset.x))

    def on_leave(self, event: events.Leave) -> None:
        self._hover(None)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        step_id = None if offset is None else self.tab_at(offset.x)
        if step_id is not None:
            self.post_message(self.StepChosen(step_id))


class StepperScreen:
    """For screens with a stepper: the steps' states the app pushes, kept for compose.

    Only the screen in sight redraws its stepper when they change; one out of sight does
    so when it is shown again (a run-all changes them some twenty times)."""

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
