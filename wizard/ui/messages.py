"""The runner's events as Textual messages (pure): one class per event, past-tense names.

The engine thread hands the app a runner event; :func:`from_event` turns it into the
message of its type (matched on the event's class, never on its name), which the app
posts to itself and handles on the UI thread like any other message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from wizard.model import CheckResult, StepResult


class StepStarted(Message):
    """The runner began a step (all its checks, or one of them)."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step


class CheckStarted(Message):
    """A check of a step began; ``index`` is its place in the checklist's step."""

    def __init__(self, step: str, index: int, check: str, title: str) -> None:
        super().__init__()
        self.step, self.index, self.check, self.title = step, index, check, title


class CheckFinished(Message):
    """A check ended with ``result`` (a copy: the engine keeps its own)."""

    def __init__(self, step: str, index: int, result: CheckResult) -> None:
        super().__init__()
        self.step, self.index, self.result = step, index, result


class StepFinished(Message):
    """The runner ended a step; ``result`` holds every check it has so far."""

    def __init__(self, step: str, result: StepResult) -> None:
        super().__init__()
        self.step, self.result = step, result


def from_event(event: Any) -> Message:
    """The message for one runner event (wizard.engine.runner's dataclasses)."""
    # The runner loads with the checks, after the first frame: imported here, not above.
    from wizard.engine import runner

    match event:
        case runner.CheckStarted(step=step, index=index, check=check, title=title):
            return CheckStarted(step, index, check, title)
        case runner.CheckFinished(step=step, index=index, result=result):
            return CheckFinished(step, index, result)
        case runner.StepStarted(step=step):
            return StepStarted(step)
        case runner.StepFinished(step=step, result=result):
            return StepFinished(step, result)
    raise TypeError(f"not a runner event: {event!r}")
