"""What a headless run says when it ends (I/O: prints): the verdict, and any interruption.

An interruption is said above the verdict, with the steps it left unrun; the lines
themselves are built by pure functions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from wizard.cli.parser import PROG

if TYPE_CHECKING:
    from wizard.model import Checklist, Session


def say(line: str, stream: TextIO | None = None) -> None:
    print(line, file=stream or sys.stderr, flush=True)


def not_run(session: Session, checklist: Checklist) -> tuple[list[str], list[str]]:
    """The steps with no finished check, and the unfinished checks of the others."""
    finished = {step.id: {c.id for c in step.checks} for step in session.steps}
    steps: list[str] = []
    checks: list[str] = []
    for step in checklist.steps:
        done = finished.get(step.id, set())
        missing = [spec.check for spec in step.checks if spec.check not in done]
        if not done:
            steps.append(step.id)
        elif missing:
            checks += [f"{check} ({step.id})" for check in missing]
    return steps, checks


def interruption_lines(session: Session, checklist: Checklist, signal_name: str = "") -> list[str]:
    """What an interrupted run says before any verdict: that it was cut short, and what of
    the checklist it never ran."""
    by = f" by {signal_name}" if signal_name else ""
    lines = [f"{PROG}: interrupted{by}: the verdict covers only the checks that finished"]
    steps, checks = not_run(session, checklist)
    parts = ([f"steps {', '.join(steps)}"] if len(steps) > 1 else [f"step {steps[0]}"] if steps else [])
    parts += [f"checks {', '.join(checks)}"] if len(checks) > 1 else [f"check {checks[0]}"] if checks else []
    if parts:
        lines.append("not run: " + "; ".join(parts))
    return lines


def verdict_lines(session: Session, checklist: Checklist | None = None) -> tuple[list[str], bool]:
    """The verdict in at most four lines, and whether a cause was diagnosed: both read from
    the verdict the analysis wrote into the session (an interrupted run that diagnosed
    nothing claims no absence of resets: it did not look everywhere)."""
    verdict = session.verdict
    if verdict is None:
        return ["verdict: none: the session was not analysed"], False
    lines = [f"verdict: {verdict.statement}"]
    if not verdict.diagnosed:
        return lines, False
    lines += [f"also: {f.cause} ({f.confidence:.0%}): {f.summary}" for f in session.diagnosed()[1:3]]
    if session.close_call:
        a, b = session.close_call.causes
        lines.append(f"close call between {a} and {b}: {session.close_call.separate_with}")
    return lines, True
