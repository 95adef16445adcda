"""Small dialogs: pick a file, confirm a choice, the skipped-checks notice, help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Markdown, Static

from wizard.model.wording import plural
from wizard.ui.widgets.fixes import fix_text, rerun_of


class FilePickerModal(ModalScreen[str | None]):
    """Browse for a log file; Enter on a file (or Choose) returns its path."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, root: str = "/var/log") -> None:
        super().__init__(classes="modal")
        self.root = root if Path(root).is_dir() else "/"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Static("Pick a log file", classes="dialog-title")
            yield Input(self.root, id="picker-root", compact=True, placeholder="a directory to browse")
            yield DirectoryTree(self.root, id="tree")
            yield Static("", id="picked", classes="dim")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Choose", id="choose", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one(DirectoryTree).focus()
        self.chosen: str | None = None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if Path(event.value).is_dir():
            self.query_one(DirectoryTree).path = event.value

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        if self.chosen == str(event.path):
            self.dismiss(self.chosen)
            return
        self.chosen = str(event.path)
        self.query_one("#picked", Static).update(f"Selected: {self.chosen} (Enter again or Choose)")
        self.query_one("#choose", Button).disabled = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.chosen if event.button.id == "choose" else None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[str]):
    """A question with a few answers; returns the id of the button pressed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, message: str, choices: list[tuple[str, str, str]],
                 cancel: str = "cancel") -> None:
        super().__init__(classes="modal")
        self.title_text, self.message, self.choices, self.cancel_id = title, message, choices, cancel

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(Text(self.message), classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                for ident, label, variant in self.choices:
                    yield Button(label, id=ident, variant=variant)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query(Button).last().focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or self.cancel_id)

    def action_cancel(self) -> None:
        self.dismiss(self.cancel_id)


class NoticeModal(ModalScreen[None]):
    """Which checks will be skipped here, why, and how to enable them."""

    BINDINGS = [Binding("escape,enter", "close", "OK")]

    def __init__(self, skips: list[Any]) -> None:
        super().__init__(classes="modal")
        self.skips = skips

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog notice-dialog"):
            yield Static(f"{plural(len(self.skips), 'check')} will be skipped here", classes="dialog-title")
            body = Text()
            fixes: dict[str, list[str]] = {}
            for skip in self.skips:
                body.append(f"• {skip.title}", style="bold")
                body.append(f"  ({skip.check}): {skip.reason}\n")
                if skip.fix:
                    fixes.setdefault(skip.fix, []).append(skip.title)
            if fixes:
                body.append("\nTo run them:\n", style="bold")
                rerun = rerun_of(getattr(self.app, "session", None))
                for fix, titles in fixes.items():
                    # the checks it enables, then each way on its own line (as the Unknowns)
                    body.append(f"  {', '.join(titles)}:", style="dim")
                    body.append_text(fix_text(fix, rerun))
                    body.append("\n")
            body.append("\nEverything else runs; skipped checks are listed as unknowns in the report.",
                        style="italic")
            yield VerticalScroll(Static(body), classes="notice-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK, continue", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


HELP = """\
# reset-wizard

Walks you through six steps to find out **why a TCP connection was reset**, with the
evidence behind every conclusion.

| key | does |
|---|---|
| Enter | step 1: start the diagnosis (from any field, the error text too) |
| Shift+Enter, Ctrl+J | step 1: a new line in the error text (Ctrl+J where the terminal sends Shift+Enter as Enter) |
| 1 … 6, click the stepper | jump to a step (not while typing in a field) |
| j / k, ↓ / ↑ | next / previous check of a step, or cause of the verdict |
| Enter, Space | open or close the check or cause |
| Tab / Shift+Tab | next / previous field or button |
| Ctrl+N / Ctrl+B | next / previous step |
| Ctrl+G | run every remaining step and show the verdict |
| Ctrl+R | rerun this step (each check has its own *Rerun check* button) |
| Esc | cancel the running checks (shown while something runs) |
| Ctrl+S | export the report (Markdown + JSON, redacted by default) |
| Ctrl+P | commands: run, rerun a step or a check, go to a step, export, redaction, copy evidence |
| ? / F1 | this help |
| q / Ctrl+Q | quit (q not while typing in a field; asks to save what was gathered) |

| step | what it does |
|---|---|
| 1 Identify | the affected application: fill in the form (only the target is required), press **Enter** |
| 2 Connectivity | network connectivity: names, handshakes, ICMP |
| 3 Server logs | the server's logs around the time it happened |
| 4 Firewall | firewall and security settings |
| 5 App errors | application-level errors |
| 6 Handshake | the TCP handshake, probed the way the application connects |
| Verdict | the ranked causes, their evidence and remedies; export the report |

Each step runs its checks when you open it; results open when they need attention.

The footer shows the keys that apply on the screen you are on.
Checks that need root, or a tool that is missing, are **skipped** with the command that
would enable them; they appear as unknowns in the verdict. Notes you type in a step go into
the report.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q,question_mark", "close", "Close help")]

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help-dialog"):
            yield Markdown(HELP)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
