"""The command palette's wizard commands (Ctrl+P): run, rerun a step or a check, go to a
step or the verdict, export, toggle redaction, copy a check's evidence.

Each command is offered only where it applies (nothing to rerun before a run, no copy
before a check has a result); they run through the app's actions, so the palette does what
the keys do. With nothing typed, the palette lists the commands of the step shown; typing
searches every step's checks too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from wizard.ui import steps

#: (what the palette shows, its help line, what it runs, whether it belongs to the step shown)
Command = tuple[str, str, Callable[[], Any], bool]


class WizardCommands(Provider):
    """The wizard's own commands, from what the app holds now."""

    def _commands(self) -> Iterator[Command]:
        app: Any = self.app
        act = partial(partial, app.run_action)
        session, running = app.session, app.run_in_progress()
        current = app.current_step()
        if not running:
            yield "Run all steps to the verdict", "Ctrl+G: every step not run yet, then the verdict", \
                act("run_all"), True
        else:
            yield "Cancel the run", "Esc: finished checks keep their results", act("cancel_run"), True
        if session is not None and current != "summary" and not running:
            yield f"Rerun this step ({steps.label(current)})", "Ctrl+R", act("rerun_step"), True
        for number, (step_id, label) in enumerate(steps.STEPS, start=1):
            yield f"Go to step {number}: {label}", f"key {number}", act(f"goto('{step_id}')"), False
        yield "Go to the verdict", "the ranked causes and their evidence", act("goto('summary')"), False
        if session is not None:
            yield "Export the report…", "Ctrl+S: Markdown and JSON", act("export"), True
        state = "on" if app.redact else "off"
        yield f"Toggle redaction of exports (now {state})", "secrets in the report and JSON", \
            act("toggle_redaction"), True
        if session is not None and app.checklist is not None:
            yield from self._check_commands(app, session, current)
        yield "Help: the keys", "? or F1", act("help"), False

    @staticmethod
    def _check_commands(app: Any, session: Any, current: str) -> Iterator[Command]:
        for step in app.checklist.steps:
            done = {c.id: c for c in session.step(step.id).checks}
            here = step.id == current
            where = f"step {steps.number(step.id)}, {steps.label(step.id)}"
            for index, spec in enumerate(step.checks):
                title = app.check_title(spec.check)
                yield f"Rerun check: {title}", where, partial(app.rerun_check, step.id, index), here
                if spec.check in done:
                    yield f"Copy evidence: {title}", where, partial(_copy, app, done[spec.check]), here

    async def discover(self) -> Hits:
        for text, help_text, run, here in self._commands():
            if here or text.startswith(("Go to", "Help")):
                yield DiscoveryHit(text, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, run, _here in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, help=help_text)


def _copy(app: Any, result: Any) -> None:
    from wizard.ui.widgets.checkview import result_text
    from wizard.ui.widgets.fixes import rerun_of

    app.copy_to_clipboard(result_text(result, rerun_of(app.session)))
    app.notify(f"Copied the evidence of {result.title or result.id}", title="Copied", timeout=3)
