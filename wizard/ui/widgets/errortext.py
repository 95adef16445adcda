"""The error text box of step 1: several lines, yet Enter starts the diagnosis as in every
other field. Shift+Enter adds a line; Ctrl+J does too, for terminals that send Shift+Enter
as a plain Enter (most do, tmux and screen among them)."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

#: the keys that add a line (Ctrl+J is the newline character itself)
NEWLINE_KEYS = ("shift+enter", "ctrl+j", "newline")


class ErrorText(TextArea):
    """A TextArea where Enter submits (posts :class:`ErrorText.Submitted`)."""

    class Submitted(Message):
        """Enter was pressed in the error text."""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted())
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self.replace("\n", start, end, maintain_selection_offset=False)
            return
        await super()._on_key(event)
