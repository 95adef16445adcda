"""Step 1: the form (target, error text, time, side, server context, logs, probe options).

Every field is validated as it is typed, with the CLI's rules and messages (wizard.model.inputs
through wizard.ui.fields), and the problem is shown beside the field. Submitting starts the diagnosis; the identify
step's checks then run below the form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static, TextArea

from wizard.ui import fields
from wizard.ui.screens.step import NavButtons, nav_bar
from wizard.ui.widgets.checkview import CheckView
from wizard.ui.widgets.steppanel import StepPanel
from wizard.ui.widgets.stepper import Stepper


class FieldValidator(Validator):
    """Adapts a wizard.ui.fields parser to a Textual validator: the failure is the message
    of the parser's WizardError, the very line the CLI prints after its title."""

    def __init__(self, parse: Callable[[str], Any]) -> None:
        super().__init__()
        self.parse = parse

    def validate(self, value: str) -> ValidationResult:
        problem = fields.problem(self.parse, value)
        return self.failure(problem.message) if problem is not None else self.success()


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


class TargetScreen(NavButtons, Screen):
    """The step 1 form, and below it the identify step's checks once started."""

    BINDINGS = [Binding("escape", "app.cancel_run", "Cancel run", show=False)]

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(name="target", classes="target-screen")
        self.values = values or {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Stepper("identify")
        with VerticalScroll(id="body"):
            yield Static("Step 1 of 6 · What failed, and where?", classes="step-title")
            yield Static("", id="root-notice", classes="notice")
            with Vertical(id="form"):
                for name, label, placeholder, parse in FIELDS[:1]:
                    yield from self._row(name, label, placeholder, parse)
                with Horizontal(classes="form-row", id="row-error"):
                    yield Label("Error text (paste)", classes="form-label")
                    yield TextArea(self.values.get("error", ""), id="error", classes="error-text",
                                   soft_wrap=True, tab_behavior="focus")
                with Horizontal(classes="form-row"):
                    yield Label("Seen on", classes="form-label")
                    yield Select([("the client", "client"), ("the server", "server"), ("not sure", "unknown")],
                                 value=self.values.get("side", "unknown"), allow_blank=False, id="side",
                                 compact=True)
                for name, label, placeholder, parse in FIELDS[1:]:
                    yield from self._row(name, label, placeholder, parse)
                with Horizontal(classes="form-row form-buttons"):
                    yield Label("", classes="form-label")
                    yield Button("Start diagnosis ▸", id="start", variant="primary", tooltip="Enter or Ctrl+N")
                    yield Static("", id="start-status", classes="start-status")
            yield Vertical(id="identify-slot")
        yield nav_bar(first=True)
        yield Footer()

    def _row(self, name: str, label: str, placeholder: str, parse: Callable[[str], Any]) -> ComposeResult:
        with Horizontal(classes="form-row", id=f"row-{name}"):
            yield Label(label, classes="form-label")
            yield Input(self.values.get(name, ""), placeholder=placeholder, id=name, compact=True,
                        validators=[FieldValidator(parse)], validate_on=["changed", "submitted"])
            if name == "logs":
                yield Button("Browse…", id="browse", compact=True, tooltip="Pick a log file")
            yield Static("", id=f"err-{name}", classes="field-error")

    def on_mount(self) -> None:
        self.query_one("#target", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_problem(event.input.id or "", event.validation_result)

    def show_problem(self, name: str, result: ValidationResult | str | None) -> None:
        if isinstance(result, ValidationResult):
            message = "" if result.is_valid else "; ".join(result.failure_descriptions)
        else:
            message = result or ""
        try:
            self.query_one(f"#err-{name}", Static).update(f"✗ {message}" if message else "")
        except Exception:  # noqa: BLE001 - fields without an error slot
            return
        self.query_one(f"#row-{name}").set_class(bool(message), "-invalid")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
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
        raw = {name: self.query_one(f"#{name}", Input).value for name, *_ in FIELDS}
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
        error = self.query_one("#error", TextArea).text.strip()
        answers = {"error": error or None, "at": parsed["at"], "window_s": parsed["window"],
                   "side": self.query_one("#side", Select).value, "logs": parsed["logs"],
                   "payload": parsed["payload"], "hold_s": parsed["hold"],
                   "attempts": parsed["attempts"], "timeout_s": parsed["timeout"]}
        return raw["target"].strip(), answers, parsed["server"]

    def set_status(self, text: str) -> None:
        self.query_one("#start-status", Static).update(text)

    def set_root_notice(self, text: str) -> None:
        notice = self.query_one("#root-notice", Static)
        notice.update(text)
        notice.display = bool(text)

    async def show_identify(self, step: Any) -> StepPanel:
        slot = self.query_one("#identify-slot")
        existing = slot.query(StepPanel)
        if existing:
            return existing.first()
        panel = StepPanel(step)
        await slot.mount(Static(f"Identify · {step.title}", classes="step-title"), panel)
        return panel

    def panel(self) -> StepPanel | None:
        found = self.query(StepPanel)
        return found.first() if found else None

    def on_screen_resume(self) -> None:
        panel = self.panel()
        if panel is not None:
            panel.sync()

    def on_check_view_rerun_requested(self, event: CheckView.RerunRequested) -> None:
        app: Any = self.app
        app.rerun_check(event.step, event.index)
