"""The app's dialogs that end in something: export (and its toast), quit (and its question).

Kept out of wizard.ui.app, which holds the run; these read the session and the controller's
``saved`` and ask the person.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual.screen import ModalScreen

from wizard.ui.keys import AppBase

if TYPE_CHECKING:
    from wizard.model import Session
    from wizard.ui.controller import WizardController


class DialogActions(AppBase):
    """Export and quit, for the app."""

    if TYPE_CHECKING:
        controller: WizardController
        export_dir: Path
        redact: bool
        clock: Callable[[], datetime]
        _quit_after_export: bool

        @property
        def session(self) -> Session | None: ...
        def run_in_progress(self) -> bool: ...
        def action_cancel_run(self) -> None: ...

    def action_export(self) -> None:
        if self.session is None:
            self.notify("Nothing to export yet: start with step 1.", severity="warning")
            return
        if isinstance(self.screen, ModalScreen):
            return
        from wizard.ui.screens.export_modal import ExportModal

        self.controller.conclude()
        stamp = self.clock().strftime("%Y%m%d-%H%M%S")
        default = self.export_dir / f"reset-wizard-{stamp}.md"
        self.push_screen(ExportModal(self.session, str(default), redact=self.redact), self._exported)

    def _exported(self, paths: list[str] | None) -> None:
        if paths:
            self.controller.saved = True
            self.notify("\n".join(f"• {p}" for p in paths),
                        title=f"Wrote {len(paths)} file{'s' if len(paths) != 1 else ''}", timeout=10)
            if self._quit_after_export:
                self.exit(0)
        self._quit_after_export = False

    async def action_quit(self) -> None:
        running = self.run_in_progress()
        if not running and (not self.controller.gathered() or self.controller.saved):
            self.exit(0)
            return
        if isinstance(self.screen, ModalScreen):
            return
        from wizard.ui.screens.modals import ConfirmModal

        message = ("Checks are still running. " if running else "The results are not saved. ") + \
            "Save what was gathered before quitting?"
        self.push_screen(ConfirmModal("Quit reset-wizard?", message, [
            ("stay", "Stay", "default"), ("discard", "Quit without saving", "error"),
            ("save", "Save and quit", "primary")], cancel="stay"), self._quit_answer)

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "discard":
            self.action_cancel_run()
            self.exit(0)
        elif answer == "save":
            self.action_cancel_run()
            self._quit_after_export = True
            self.call_after_refresh(self.action_export)
