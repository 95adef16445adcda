"""Errors meant for a person: a title and one line that names the problem."""

from __future__ import annotations


class WizardError(Exception):
    """A problem with the user's input or environment, not a bug.

    The CLI prints ``message`` as one line and exits 2; the TUI shows it beside the field.
    """

    def __init__(self, title: str, message: str) -> None:
        super().__init__(f"{title}: {message}")
        self.title = title
        self.message = message

    def line(self) -> str:
        return f"reset-wizard: {self.title}: {self.message}"
