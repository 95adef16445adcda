"""The export dialog: path, Markdown + JSON, redaction on by default, preview, no silent overwrite.

The paths are checked by the CLI's rules and written through wizard.hosts.files: an
existing file is replaced only after the person says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static, TextArea

from wizard.hosts import files
from wizard.model import WizardError
from wizard.ui import export
from wizard.ui.screens.modals import ConfirmModal


class MarkedCheckbox(Checkbox):
    """A checkbox whose mark says its state without colour (NO_COLOR): ✓ on, ✗ off."""

    def __init__(self, label: str, value: bool, **kw: Any) -> None:
        super().__init__(label, value, **kw)
        self.BUTTON_INNER = self._mark(value)

    @staticmethod
    def _mark(value: bool) -> str:
        return "✓" if value else "✗"

    def watch_value(self) -> None:
        self.BUTTON_INNER = self._mark(self.value)
        super().watch_value()


#: below these columns or rows the dialog is drawn small
SMALL_BELOW = (100, 32)


class ExportModal(ModalScreen[list[str] | None]):
    """Returns the paths written (absolute), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, session: Any, default_path: str, redact: bool = True) -> None:
        super().__init__(classes="modal")
        self.session = session
        self.default_path = default_path
        self.redact = redact

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog export-dialog"):
            yield Static("Export the report", classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Static("Markdown report", classes="form-label")
                yield Input(self.default_path, id="path", compact=True)
            yield Static("", id="json-path", classes="dim")
            yield Static("", id="export-dir", classes="dim")
            with Horizontal(classes="export-options"):
                yield MarkedCheckbox("Redact secrets", self.redact, id="redact", compact=True)
                yield MarkedCheckbox("Redact addresses too", False, id="redact-addresses", compact=True)
                yield MarkedCheckbox("Write the JSON session", True, id="json", compact=True)
            yield Static("Preview", classes="section-title")
            yield TextArea("", id="preview", read_only=True, show_line_numbers=False, soft_wrap=True)
            yield Static("", id="export-error", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Write", id="write", variant="primary")

    def on_mount(self) -> None:
        self._refresh_preview()
        self.query_one("#path", Input).focus()

    def on_resize(self, event: events.Resize) -> None:
        # At 80x24 the dialog keeps its checkboxes on one line and its buttons in view: less
        # padding, a shorter preview (wizard.tcss, .export-dialog.-small).
        self.query_one(".export-dialog").set_class(self.size.width < SMALL_BELOW[0]
                                                   or self.size.height < SMALL_BELOW[1], "-small")

    def options(self) -> dict[str, bool]:
        return {"redact": self.query_one("#redact", Checkbox).value,
                "redact_addresses": self.query_one("#redact-addresses", Checkbox).value}

    def paths(self) -> list[Path]:
        """The files to write, as full paths (a relative name is in the current directory)."""
        typed = self.query_one("#path", Input).value.strip()
        md = Path(typed).expanduser().absolute() if typed else Path()
        out = [md]
        if self.query_one("#json", Checkbox).value and md.name:  # no name yet: no JSON beside it
            out.append(export.json_path_for(md))
        return out

    def _refresh_preview(self) -> None:
        self.markdown = export.render_markdown(self.session, **self.options())
        self.query_one("#preview", TextArea).load_text(self.markdown)
        self._show_paths()

    def _show_paths(self) -> None:
        paths = self.paths()
        self.query_one("#json-path", Static).update(
            f"and the JSON session: {paths[1]}" if len(paths) > 1 else "(no JSON session)")
        folder = paths[0].parent if str(paths[0]) != "." else Path.cwd()
        here = " (the current directory)" if folder == Path.cwd() else ""
        self.query_one("#export-dir", Static).update(f"Files go to {folder}{here}")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id in ("redact", "redact-addresses"):
            self._refresh_preview()
        else:
            self._show_paths()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_paths()
        self.query_one("#export-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.write()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "write":
            self.write()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, message: str) -> None:
        self.query_one("#export-error", Static).update(f"✗ {message}" if message else "")

    @work(exclusive=True, group="export")
    async def write(self) -> None:
        paths = self.paths()
        try:
            await self._check(paths)
            existing = await files.existing(paths)
        except WizardError as exc:
            self.show_error(exc.message)
            return
        if existing:
            answer = await self.app.push_screen_wait(ConfirmModal(
                "Replace existing files?", "These files exist already:\n  "
                + "\n  ".join(str(p) for p in existing) + "\nReplace them?",
                [("cancel", "Keep them", "default"), ("replace", "Replace", "error")]))
            if answer != "replace":
                return
        try:
            texts = [self.markdown]
            if len(paths) > 1:
                texts.append(export.render_session_json(self.session, **self.options()))
            for path, text in zip(paths, texts, strict=False):
                # Only what the person agreed to replace is replaced: a file that appeared
                # since the question is kept (write_atomic refuses it without force).
                await asyncio.to_thread(files.write_atomic, path, text, path in existing)
        except WizardError as exc:
            self.show_error(exc.message)
            return
        except OSError as exc:
            self.show_error(f"cannot write: {exc.strerror or exc}")
            return
        self.dismiss([str(p) for p in paths])

    @staticmethod
    async def _check(paths: list[Path]) -> None:
        """The CLI's rules for --report/--json paths; an existing file is asked about, not refused."""
        if not str(paths[0]) or str(paths[0]) == ".":
            raise WizardError("bad report path", "give a file name for the report")
        for path, what in zip(paths, ("report", "json"), strict=False):
            await files.check_output(path, what, force=True)
