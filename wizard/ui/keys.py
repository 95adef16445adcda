"""The wizard's keys: the app's bindings, which of them apply now, and the small actions
behind them (help, redaction, moving focus off the form).

What the footer shows follows ``check_action``: a binding that does nothing here (Back on
step 1, Esc with nothing running, Export before a run) is hidden, and the app calls
``refresh_bindings`` whenever what applies changes (a run starts or ends, a session
begins, a screen is shown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from wizard.ui import steps

if TYPE_CHECKING:
    from wizard.model import Session
    from wizard.ui.controller import WizardController

# In the footer's order, most important first: at 80 columns the footer shows what fits
# (Quit comes first anyway, as Textual's own ctrl+q binding).
BINDINGS: list[BindingType] = [
    # Not priority: a field, a button, a check's title take their own Enter first; this one
    # is what the footer shows on step 1 (the form's fields start a run on Enter themselves).
    Binding("enter", "start", "Start", key_display="Enter"),
    Binding("ctrl+g", "run_all", "Run all", priority=True),
    Binding("question_mark,f1", "help", "Help", key_display="?"),
    # Not priority: a dialog's own Esc (close it) comes first.
    Binding("escape", "cancel_run", "Cancel run"),
    Binding("ctrl+n", "next", "Next step", priority=True),
    Binding("ctrl+b", "back", "Back", priority=True),
    Binding("ctrl+r", "rerun_step", "Rerun step", priority=True),
    Binding("ctrl+s", "export", "Export", priority=True),
    Binding("ctrl+q", "quit", "Quit", priority=True),
    # Not priority: in a text field these keys are typed.
    Binding("q", "quit", "Quit", show=False),
    *(Binding(str(n), f"goto('{step}')", f"Step {n}", show=False)
      for n, step in enumerate(steps.STEP_IDS, start=1)),
]


# The mixins below are the app's: typed as an App, they are plain classes at run time.
if TYPE_CHECKING:
    AppBase = App[int]
else:
    AppBase = object


class KeyActions(AppBase):
    """For the app: which of its actions apply now, and the actions that are only keys."""

    if TYPE_CHECKING:
        redact: bool
        controller: WizardController

        @property
        def session(self) -> Session | None: ...
        def run_in_progress(self) -> bool: ...
        def push_step(self, step_id: str) -> None: ...

    def base_screen(self) -> Screen[Any]:
        """The screen under any dialog (the command palette included)."""
        return next(s for s in reversed(self.screen_stack) if not isinstance(s, ModalScreen))

    def current_step(self) -> str:
        """The step shown (under any dialog): a step id, or "summary"."""
        name = self.base_screen().name or ""
        return "identify" if name == "target" else name.removeprefix("step:")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.run_in_progress()
        current = self.current_step()
        applies = {
            "start": current == "identify" and not running and self.has_target(),
            "cancel_run": running,
            "back": current != "identify",
            "next": current != "summary",
            "rerun_step": self.session is not None and current != "summary" and not running,
            # On a step, or the verdict with steps not run yet (a cancelled run-all).
            "run_all": not running and (current != "summary" or bool(self.controller.pending())),
            "export": self.session is not None,
        }
        return applies.get(action, True)

    def has_target(self) -> bool:
        """Whether step 1's target field holds something to start on."""
        from wizard.ui.screens.target import TargetScreen

        screen = self.base_screen()
        return isinstance(screen, TargetScreen) and bool(screen.field_text("target").strip())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A run started or ended: Esc, Ctrl+R and Ctrl+G apply or stop applying.
        if event.worker.group == "run" and event.state in (WorkerState.RUNNING, WorkerState.SUCCESS,
                                                             WorkerState.CANCELLED, WorkerState.ERROR) \
                and self.screen_stack:  # not when the app is closing
            self.refresh_bindings()

    def action_help(self) -> None:
        from wizard.ui.screens.modals import HelpScreen

        if not isinstance(self.screen, ModalScreen):
            self.push_screen(HelpScreen())

    async def _refresh_shown_summary(self) -> None:
        """The verdict on screen again, with the redaction now chosen (if it is still shown)."""
        from wizard.ui.screens.summary import SummaryScreen

        screen = self.screen
        if isinstance(screen, SummaryScreen):
            screen.session = self.controller.shown_session()
            await screen.refresh_verdict()

    def action_toggle_redaction(self) -> None:
        """Exports redacted or not; an open export dialog follows at once."""
        from textual.widgets import Checkbox

        self.redact = not self.redact
        for screen in self.screen_stack:
            for box in screen.query("#redact"):
                if isinstance(box, Checkbox):
                    box.value = self.redact
        # The screen follows: the steps now; the verdict now if shown, else on its next visit.
        for step_id in steps.STEP_IDS:
            self.push_step(step_id)
        self.call_later(self._refresh_shown_summary)
        self.notify("The screen and exports redact secrets." if self.redact else
                    "The screen shows secrets as found; exports will NOT redact them (passwords, tokens, cookies).",
                    title="Redaction " + ("on" if self.redact else "off"),
                    severity="information" if self.redact else "warning")
