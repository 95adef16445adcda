"""A step's body: its guidance, what is running now, its checks' results, and notes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, ProgressBar, Static, TextArea

from wizard.model.wording import plural
from wizard.ui.widgets.checkview import CheckView

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StepPanel(Vertical):
    """Built from the checklist's step; the app pushes results and check events into it."""

    class NotesChanged(Message):
        """The person edited the step's notes."""

        def __init__(self, step: str, text: str) -> None:
            super().__init__()
            self.step = step
            self.text = text

    def __init__(self, step: Any, titles: dict[str, str]) -> None:
        super().__init__(id=f"panel-{step.id}", classes="step-panel")
        self.step = step
        self.titles = titles
        self.started: dict[int, float] = {}
        #: checks a run will start (asked for, not begun yet)
        self.queued: set[int] = set()
        # What the app pushed last (shown again once the panel is composed).
        self.result: Any = None
        self.now = 0.0
        # Made in compose and kept: each event of a run looked them up by a query, which
        # walks the whole panel (every check's evidence) on the thread the engine shares.
        self._views: list[CheckView] = []
        self._status: Static | None = None
        self._bar: ProgressBar | None = None

    def compose(self) -> ComposeResult:
        self._status = Static("", id="now-running")
        self._bar = ProgressBar(total=len(self.step.checks), show_eta=False, id="step-progress")
        self._views = [CheckView(self.step.id, index, spec.check, self.titles.get(spec.check, spec.check))
                       for index, spec in enumerate(self.step.checks)]
        yield Static(Text(" ".join(self.step.guidance.split())), classes="guidance")
        with Vertical(classes="run-status"):
            yield self._status
            yield self._bar
        with Vertical(classes="checks"):
            yield from self._views
        yield Label("Notes for this step (they go into the report):", classes="notes-label")
        yield TextArea(id="notes", classes="notes", soft_wrap=True, tab_behavior="focus")

    def on_mount(self) -> None:
        self._show()

    def views(self) -> list[CheckView]:
        return [v for v in self._views if v.is_attached]

    def _view(self, index: int) -> CheckView | None:
        """The check's view; None before the panel is composed, or while it is torn down
        (a result arriving as the app quits): what was pushed is shown on mount."""
        if not self.is_mounted:
            return None
        return next((v for v in self.views() if v.index == index), None)

    def sync(self, result: Any, running: dict[int, float], now: float, queued: set[int] | None = None) -> None:
        """Show the step as the app knows it: finished results, running and queued checks, notes."""
        self.result = result
        self.started = dict(running)
        self.queued = set(queued or ())
        self.now = now
        if self.is_mounted:
            self._show()

    def _show(self) -> None:
        done = {c.id: c for c in self.result.checks} if self.result is not None else {}
        if self.result is not None:
            notes = self.query_one("#notes", TextArea)
            if notes.text != self.result.notes:
                notes.load_text(self.result.notes)
        for view in self.views():
            if view.index in self.started:
                view.mark_running()
            elif view.index in self.queued:
                view.mark_queued()
            elif view.check_id in done:
                view.show_result(done[view.check_id])
            elif view.state == "queued":  # the run ended (or was cancelled) before it started
                view.unqueue()
        self.tick(self.now)

    def check_started(self, index: int, at: float) -> None:
        self.started[index] = at
        self.queued.discard(index)
        view = self._view(index)
        if view is not None:
            view.mark_running()
            self.tick(at)

    def check_finished(self, index: int, result: Any) -> None:
        self.started.pop(index, None)
        self.queued.discard(index)
        view = self._view(index)
        if view is not None:
            view.show_result(result)
            self.tick(None)

    def tick(self, now: float | None) -> None:
        views = self.views()
        running = [v for v in views if v.state == "running"]
        queued = sum(1 for v in views if v.state == "queued")
        finished = sum(1 for v in views if v.state not in ("pending", "running", "queued"))
        bar, status = self._bar, self._status
        if bar is None or status is None or not bar.is_attached or not status.is_attached:
            return  # not composed yet: shown again on mount
        bar.update(progress=finished)
        if self.has_class("-running") != bool(running or queued):
            # Only the progress bar's style depends on it: restyling the whole panel (every
            # check and its evidence) each time a step starts or ends cost the run its pace.
            self.set_class(bool(running or queued), "-running", update=False)
            bar.update_node_styles()
        if not running and queued:
            # Asked for, not begun: the runner starts them in a moment (or after a stage).
            status.update(Text.assemble((f"◌ Starting {queued} of {plural(len(views), 'check')}…", "bold"),
                                        ("   Esc cancels", "dim italic")))
            return
        if not running:
            status.update(Text(f"{finished} of {plural(len(views), 'check')} done", style="dim")
                          if finished else Text("Not run yet: Ctrl+R runs this step", style="dim"))
            return
        now = now if now is not None else max(self.started.values(), default=0.0)
        first = min((self.started.get(v.index, now) for v in running), default=now)
        elapsed = max(0.0, now - first)
        frame = SPINNER[int(elapsed * 10) % len(SPINNER)]
        for view in running:
            view.tick(frame)
        names = ", ".join(v.check_title for v in running)
        line = Text(f"{frame} Running {len(running)} of {len(views)}: ", style="bold")
        line.append(names)
        if queued:
            line.append(f"   {queued} queued", style="dim")
        line.append(f"   {elapsed:.1f}s", style="dim")
        line.append("   Esc cancels", style="dim italic")
        # One line high (run.tcss) at the panel's width: a new line of text cannot change its
        # size, and a layout of the whole screen ten times a second was most of a tick's work.
        status.update(line, layout=False)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "notes":
            self.post_message(self.NotesChanged(self.step.id, event.text_area.text))
