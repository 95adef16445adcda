"""Step 1: the form (target, error text, time, side, server context, logs, probe options).

Every field is validated as it is typed, with the CLI's rules and messages (wizard.model.inputs
through wizard.ui.fields), and the problem is shown beside the field. Submitting starts the diagnosis; the identify
step's checks then run below the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Header, Input, Select, Static

from wizard.ui import fields, styles
from wizard.ui.widgets.footer import WizardFooter
from wizard.ui.widgets.navbar import NavButtons, nav_bar
from wizard.ui.widgets.stepper import Stepper, StepperScreen

if TYPE_CHECKING:  # the identify panel (and its evidence widgets) load once a run starts
    from wizard.ui.widgets.steppanel import StepPanel


class FieldValidator(Validator):
    """Adapts a wizard.ui.fields parser to a Textual validator: the failure is the message
    of the parser's WizardError, the very line the CLI prints after its title."""

    def __init__(self, parse: Callable[[str], Any]) -> None:
        super().__init__()
        self.parse = parse

    def validate(self, value: str) -> ValidationResult:
        problem = fields.problem(self.parse, value)
        return self.failure(problem.message) if problem is not None else self.success()


class FormInput(Input):
    """A field of the form. Once the target is filled in, Enter is the app's Start (what the
    footer shows, and it starts from any field); before, the field's own Enter submits, and
    the start says what is missing."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "submit" and getattr(self.app, "has_target", lambda: False)():
            return False  # the app's Enter binding takes it
        return super().check_action(action, parameters)


# id, label, placeholder, parser
FIELDS: tuple[tuple[str, str, str, Callable[[str], Any]], ...] = (
    ("target", "Target", "host:port, [IPv6]:port or a URL", fields.target),
    ("at", "When it happened", "2026-11-22T03:48:08Z or 03:48 (empty: just now)", fields.moment),
    ("window", "Search logs around it", "15m", fields.window),
    ("server", "Server evidence in", "local, netns:NAME or ssh:[user@]host[:port]", fields.context),
    ("logs", "Log files", "paths or globs, comma separated", fields.paths),
    ("payload", "Probe payload", r"empty: chosen by port; GET / HTTP/1.1\r\n\r\n or @FILE", fields.payload),
    ("hold", "Hold idle (s)", "0", fields.hold),
    ("attempts", "Handshake attempts", "10", fields.attempts),
    ("timeout", "Probe timeout (s)", "3", fields.timeout),
)


class TargetScreen(NavButtons, StepperScreen, Screen):
    """The step 1 form, and below it the identify step's checks once started."""

    class FormComplete(Message):
        """Every field of the form is mounted: it may be read and filled in."""

    # Focus lands on the target straight away: focusing the scrolling body first (Textual's
    # default) and then the field restyles the whole form twice before the first frame.
    AUTO_FOCUS = "#target"

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(name="target", classes="target-screen")
        self.values = values or {}
        self.complete = False
        self._status = ""

    def compose(self) -> ComposeResult:
        # The first frame holds only what is needed to start typing: the target. Every
        # widget costs styling, layout and a message pump before that frame, so the rest of
        # the form is mounted right after it (_complete), before anything reads it.
        yield Header()
        yield Stepper("identify", self.step_states)
        with VerticalScroll(id="body"):
            yield Static("Step 1 of 6 · What failed, and where?", classes="step-title")
            # The form's rows sit in the body itself, with no container of their own (one
            # widget less to style and lay out before the first frame). A target given on the
            # command line is checked once the form is out: its parser's model loads pydantic,
            # which the first frame does without.
            yield self._row(*FIELDS[0], check=not self.values.get("target"))
        yield WizardFooter()

    def _rest(self) -> list[Horizontal]:
        """The form's rows after the target, in their order on screen."""
        # A TextArea: its document machinery is not needed to draw the target.
        from wizard.ui.widgets.errortext import ErrorText

        rows = [
            Horizontal(Static("Error text (paste)", classes="form-label"),
                       ErrorText(self.values.get("error", ""), id="error", classes="error-text",
                                 soft_wrap=True, tab_behavior="focus",
                                 tooltip="Enter starts; Shift+Enter or Ctrl+J adds a line"),
                       classes="form-row", id="row-error"),
            Horizontal(Static("Seen on", classes="form-label"),
                       Select([("the client", "client"), ("the server", "server"), ("not sure", "unknown")],
                              value=self.values.get("side", "unknown"), allow_blank=False, id="side",
                              compact=True),
                       classes="form-row"),
        ]
        rows += [self._row(*field) for field in FIELDS[1:]]
        rows.append(Horizontal(Static("", classes="form-label"),
                               Button("Start diagnosis ▸", id="start", variant="primary",
                                      tooltip="Enter or Ctrl+N"),
                               Static("", id="start-status", classes="start-status"),
                               classes="form-row form-buttons"))
        return rows

    def _row(self, name: str, label: str, placeholder: str, parse: Callable[[str], Any], *,
             check: bool = True) -> Horizontal:
        browse = [Button("Browse…", id="browse", compact=True, tooltip="Pick a log file")] if name == "logs" else []
        return Horizontal(
            # A Static, not a Label: Label's default styles (a few variants' rules) would be
            # parsed before the first frame for what .form-label sets anyway (the export
            # dialog's labels are Statics too).
            Static(label, classes="form-label"),
            # The value given (a pre-filled target) is kept when the field takes the focus:
            # the first key typed edits it instead of replacing it.
            FormInput(self.values.get(name, ""), placeholder=placeholder, id=name, compact=True,
                  validators=[FieldValidator(parse)] if check else [], validate_on=["changed", "submitted"],
                  select_on_focus=False),
            *browse,
            Static("", id=f"err-{name}", classes="field-error"),
            classes="form-row", id=f"row-{name}")

    def on_mount(self) -> None:
        self.call_after_refresh(self._complete)

    async def _complete(self) -> None:
        styles.add(self.app.stylesheet, styles.FORM)  # the styles of what mounts now
        # and the stepper's looks when hovered and in its states (its component styles are
        # taken as it is styled: again now)
        self.app.update_styles(self.query_one(Stepper))
        body = self.query_one("#body")
        await body.mount_all(self._rest(), after="#row-target")
        if not self.is_attached:  # the app quit within its first frame
            return
        # Below the title, the notice (hidden until there is one); below the form, the slot of
        # the identify step's checks: neither is in sight in the first frame.
        await body.mount(Static("", id="root-notice", classes="notice"), after=body.query_one(".step-title"))
        await body.mount(Vertical(id="identify-slot"))
        target = self.query_one("#target", Input)
        if not target.validators:  # the given target (compose), checked as if just typed
            target.validators.append(FieldValidator(fields.target))
            self.show_problem("target", target.validate(target.value))
        # The nav bar too: it sits at the bottom, under the form's focus, and its four
        # buttons each cost two restyles.
        await self.mount(nav_bar(first=True), before=self.query_one(WizardFooter))
        self.complete = True
        if self._status:
            self.set_status(self._status)
        self.post_message(self.FormComplete())

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_problem(event.input.id or "", event.validation_result)
        if event.input.id == "target":
            self.app.refresh_bindings()  # Enter (Start) is shown once there is a target

    def show_problem(self, name: str, result: ValidationResult | str | None) -> None:
        if isinstance(result, ValidationResult):
            message = "" if result.is_valid else "; ".join(result.failure_descriptions)
        else:
            message = result or ""
        try:
            self.query_one(f"#err-{name}", Static).update(f"✗ {message}" if message else "")
        except Exception:
            return
        self.query_one(f"#row-{name}").set_class(bool(message), "-invalid")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.app.run_action("start")

    async def on_error_text_submitted(self, event: Message) -> None:
        event.stop()
        await self.app.run_action("start")

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            event.stop()
            await self.app.run_action("start")
        elif event.button.id == "browse":
            event.stop()
            from wizard.ui.screens.modals import FilePickerModal

            self.app.push_screen(FilePickerModal(), self._picked)
        else:
            await super().on_button_pressed(event)

    def _picked(self, path: str | None) -> None:
        if path:
            logs = self.query_one("#logs", Input)
            logs.value = ", ".join([*fields.paths(logs.value), path])

    def collect(self) -> tuple[str, dict[str, Any], str] | None:
        """The target, the Answers fields and the server context; None (problems shown) if invalid."""
        raw = {name: self.field_text(name) for name, *_ in FIELDS}
        parsed: dict[str, Any] = {}
        bad = False
        for name, _label, _ph, parse in FIELDS:
            problem = fields.problem(parse, raw[name])
            self.show_problem(name, problem.message if problem is not None else "")
            if problem is None:
                parsed[name] = parse(raw[name])
            bad = bad or problem is not None
        if bad:
            return None
        error = self.field_text("error").strip()
        answers = {"error": error or None, "at": parsed["at"], "window_s": parsed["window"],
                   "side": self.field_text("side"), "logs": parsed["logs"],
                   "payload": parsed["payload"], "hold_s": parsed["hold"],
                   "attempts": parsed["attempts"], "timeout_s": parsed["timeout"]}
        return raw["target"].strip(), answers, parsed["server"]

    def field_text(self, name: str) -> str:
        """What a field holds; before the form is complete, the value it will start with."""
        if not getattr(self, "complete", False):
            return self.values.get(name, "unknown" if name == "side" else "")
        if name == "error":
            return str(self.query_one("#error").text)  # type: ignore[attr-defined]
        if name == "side":
            return str(self.query_one("#side", Select).value)
        return self.query_one(f"#{name}", Input).value

    def set_status(self, text: str) -> None:
        self._status = text
        if self.complete:
            self.query_one("#start-status", Static).update(text)

    def set_root_notice(self, text: str) -> None:
        notice = self.query_one("#root-notice", Static)
        notice.update(text)
        notice.display = bool(text)

    def fill(self, values: dict[str, str]) -> None:
        """Put ``values`` (field id -> text) into the form, as if typed (the demo's)."""
        from textual.widgets import TextArea

        for name, value in values.items():
            if name == "error":
                self.query_one("#error", TextArea).load_text(value)
            elif name == "side":
                self.query_one("#side", Select).value = value
            else:
                self.query_one(f"#{name}", Input).value = value

    async def show_identify(self, step: Any, titles: dict[str, str]) -> StepPanel:
        from wizard.ui.widgets.steppanel import StepPanel

        slot = self.query_one("#identify-slot")
        existing = slot.query(StepPanel)
        if existing:
            return existing.first()
        panel = StepPanel(step, titles)
        await slot.mount(Static(f"Identify · {step.title}", classes="step-title"), panel)
        return panel

    def panel(self) -> StepPanel | None:
        found = self.query(".step-panel")
        return found.first() if found else None  # type: ignore[return-value]


def first_screen(app: App[Any], values: dict[str, str]) -> TargetScreen:
    """Step 1 as the app's first screen, installed as "target" (a run leaves it and comes
    back). Pushed over Textual's default screen, it cost that one's compose, styles and
    layout (its tooltip and toast rack too) before the first frame."""
    screen = TargetScreen(values)
    app.install_screen(screen, "target")
    # Private, as nothing public does it: the result callback that push_screen gives a screen
    # and switch_screen pops from the one it leaves (Textual's default screen is never left:
    # without it, leaving step 1 raised IndexError with the screen stack left empty).
    screen._push_result_callback(screen, None)
    return screen
