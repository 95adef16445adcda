"""Live progress of a headless run on stderr (I/O): rich on a terminal, plain lines otherwise.

One line per finished check; a skipped check says what would make it run (its ``fix``) on
the lines after it, each way on its own line, a command as it is pasted (wizard.cli.fixes).
rich is imported only when stderr is a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from wizard.cli.fixes import fix_lines

_COLOUR = {"pass": "green", "warn": "yellow", "fail": "red", "error": "magenta"}


class Progress:
    """Called with each runner event; prints what a person watching wants to see."""

    def __init__(self, quiet: bool, stream: TextIO | None = None, rerun: Sequence[str] | None = None) -> None:
        self.quiet = quiet
        self.rerun = rerun  # this run's command line, for fixes that rerun it (wizard.cli.fixes)
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.console: Any = None
        self._shown = ""  # the step whose header was printed last
        if not quiet and self.stream.isatty():
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False)

    def __call__(self, event: object) -> None:
        from wizard.engine.runner import CheckFinished, StepStarted

        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        if isinstance(event, StepStarted):
            self._shown = ""  # a step that starts anew has its header again
        elif isinstance(event, CheckFinished):
            # Steps 2-5 overlap: a step's header comes with its first line, and again when
            # its lines follow another step's.
            if event.step != self._shown:
                self._shown = event.step
                self._out(f"== {event.step}", f"[bold]== {event.step}[/]")
            r = event.result
            status = r.status.value
            # A skipped check's summary already starts "skipped: ..."; say it once.
            summary = r.summary.removeprefix("skipped: ") if status == "skip" else r.summary
            timing = f"({r.duration_ms} ms, +{elapsed:.1f}s)"
            colour = _COLOUR.get(status, "dim")
            self._out(f"[{event.step}] {r.id}: {status}: {summary} {timing}",
                      f"  [{colour}]{status:5}[/] {r.id}: {_escape(summary)} [dim]{timing}[/]")
            if status == "skip" and r.fix:
                for line in fix_lines(r.fix, self.rerun):
                    label, text = line.split(" ", 1)
                    self._out(f"    {line}", f"        [dim]{label}[/] {_escape(text)}")

    def _out(self, plain: str, rich_text: str) -> None:
        if self.console is not None:
            self.console.print(rich_text)
        else:
            print(plain, file=self.stream, flush=True)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
