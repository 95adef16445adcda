"""One check in a step: pending, running, then its result with evidence, rerun and copy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Collapsible, Static
from textual.widgets.collapsible import CollapsibleTitle

from wizard.ui.steps import GLYPHS
from wizard.ui.widgets.evidence import EvidenceView, evidence_text
from wizard.ui.widgets.fixes import fix_plain, fix_text, rerun_of
from wizard.ui.widgets.items import KeyedItem

QUEUED_GLYPH = "…"
STATUS_WORD = {"pending": "waiting", "queued": "queued", "running": "running", "pass": "PASS", "warn": "WARN",
               "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}


def result_text(result: Any, rerun: Sequence[str] | None = None) -> str:
    """A check's result as plain text, for the clipboard; ``rerun`` completes its fix."""
    lines = [f"[{result.status}] {result.title or result.id}: {result.summary}"]
    if result.reason and result.reason not in result.summary:
        lines.append(f"reason: {result.reason}")
    if result.fix:
        lines += fix_plain(result.fix, rerun)
    for ev in result.evidence:
        lines.append("")
        lines.append(evidence_text(ev))
    return "\n".join(lines)


class CheckView(KeyedItem):
    """A check of the step; its title line carries the status, the body the evidence."""

    class RerunRequested(Message):
        def __init__(self, step: str, index: int) -> None:
            super().__init__()
            self.step = step
            self.index = index

    def __init__(self, step: str, index: int, check_id: str, title: str) -> None:
        super().__init__(title=title, collapsed=True, id=f"check-{index}", classes="check -pending")
        self.step = step
        self.index = index
        self.check_id = check_id
        self.check_title = title
        self.result: Any = None
        self.state = "pending"
        self._styled = ""
        self._render_title()

    def compose(self) -> ComposeResult:
        yield from super().compose()

    def _render_title(self, spinner: str = "") -> None:
        glyphs = {**GLYPHS, "queued": QUEUED_GLYPH}
        glyph = spinner if self.state == "running" and spinner else glyphs.get(self.state, "·")
        word = STATUS_WORD.get(self.state, self.state)
        shown = self.result is not None and self.state not in ("running", "queued")
        summary = f" — {self.result.summary}" if shown else ""
        title = f"{glyph} {word:<7} {self.check_title}{summary}"
        old = str(self.title)
        if self._styled == self.state and title[1:] == old[1:] and cell_len(title) == cell_len(old):
            self._turn_spinner(title)
        else:
            self.title = title
        if self._styled != self.state:
            # Restyling is the costly part (the spinner redraws the title ten times a second),
            # and only the title's style depends on the state: the body (the evidence) is not
            # restyled with it.
            self._styled = self.state
            for name in STATUS_WORD:
                self.set_class(name == self.state, f"-{name}", update=False)
            for line in self.query_children(CollapsibleTitle):  # not a walk of the evidence
                line.update_node_styles()

    def _turn_spinner(self, title: str) -> None:
        """The title with another glyph of the same width (the spinner's next frame), redrawn
        without a layout: Collapsible's title would lay out the whole screen again, ten times a
        second while a check runs, for a line whose size cannot change. The line is the one
        CollapsibleTitle makes of its label (its symbol, a space, the label)."""
        lines = self.query_children(CollapsibleTitle)
        if not lines:  # not composed yet
            self.title = title
            return
        if title == str(self.title):
            return
        self.set_reactive(Collapsible.title, title)
        line = lines.first()
        label = Content.from_text(title)
        line.set_reactive(CollapsibleTitle.label, label)
        symbol = line.collapsed_symbol if line.collapsed else line.expanded_symbol
        line.update(Content.assemble(symbol, " ", label), layout=False)

    def mark_queued(self) -> None:
        """A run will start this check (its old result, if any, stays until the new one)."""
        self.state = "queued"
        self._render_title()

    def unqueue(self) -> None:
        """Not started after all: back to its last result, or to waiting."""
        if self.result is not None:
            self.show_result(self.result)
        else:
            self.state = "pending"
            self._render_title()

    def mark_running(self) -> None:
        self.state = "running"
        self._render_title()

    def tick(self, spinner: str) -> None:
        if self.state == "running":
            self._render_title(spinner)

    def show_result(self, result: Any) -> None:
        body = self.query_children(Collapsible.Contents).first()
        if (self.state == str(result.status) and (self.has_deferred_body() or body.query_children(ResultBody))
                and result == self.result):
            return  # shown already (a step's sync after each result arrived on its own)
        self.result = result
        self.state = str(result.status)
        self._render_title()
        if not body.is_attached:
            # Shown before the body is mounted (a panel syncing as it mounts): try once it is.
            self.call_after_refresh(self.show_result, result)
            return
        body.remove_children()
        # Open what needs attention; a pass stays one line until asked for. Opened or closed
        # before the new body is there: the change restyles the check, and the body is
        # styled as it mounts anyway. A closed check's body (its evidence: tables, logs,
        # a ladder) is made when it is opened: most checks of a run pass and stay closed,
        # and making their bodies was a fifth of the UI thread's work in a run-all.
        self.defer_body(None)
        self.collapsed = self.state in ("pass", "skip")
        if self.collapsed:
            self.defer_body(lambda: [ResultBody(self.step, self.index, result)])
        else:
            body.mount(ResultBody(self.step, self.index, result))


class ResultBody(Vertical):
    """The body of a finished check: summary, skip reason and fix, evidence, actions."""

    def __init__(self, step: str, index: int, result: Any) -> None:
        super().__init__(classes="result-body")
        self.step = step
        self.index = index
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        summary = Text(r.summary)
        if r.duration_ms:
            summary.append(f"   ({r.duration_ms} ms)", style="dim")
        yield Static(summary, classes="result-summary")
        if r.reason and r.reason not in r.summary:
            yield Static(Text(f"Why: {r.reason}"), classes="result-reason")
        if r.fix:
            yield Static(fix_text(r.fix, rerun_of(getattr(self.app, "session", None)), indent="")[1:],
                         classes="result-fix")
        for ev in r.evidence:
            yield EvidenceView(ev)
        if r.signals:
            signals = Text("Signals: ", style="dim")
            signals.append(", ".join(s.id for s in r.signals), style="dim italic")
            yield Static(signals, classes="result-signals")
        with Horizontal(classes="result-actions"):
            yield Button("Rerun check", id="rerun", variant="default", compact=True)
            yield Button("Copy evidence", id="copy", variant="default", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "rerun":
            self.post_message(CheckView.RerunRequested(self.step, self.index))
        elif event.button.id == "copy":
            self.app.copy_to_clipboard(result_text(self.result, rerun_of(getattr(self.app, "session", None))))
            self.app.notify(f"Copied the evidence of {self.result.title or self.result.id}",
                            title="Copied", timeout=3)
