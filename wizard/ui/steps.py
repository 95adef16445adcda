"""The six step ids of the checklist (fixed by CLI.md) with short labels for the stepper.

Kept here, free of pydantic, so the first frame needs nothing but textual; the titles and
guidance of the steps come from the checklist once it has loaded.
"""

from __future__ import annotations

STEPS: tuple[tuple[str, str], ...] = (
    ("identify", "Identify"),
    ("connectivity", "Connectivity"),
    ("server-logs", "Server logs"),
    ("firewall", "Firewall"),
    ("app-errors", "App errors"),
    ("handshake", "Handshake"),
)
STEP_IDS = tuple(s for s, _ in STEPS)

GLYPHS = {"pending": "·", "running": "◌", "pass": "✓", "warn": "!", "fail": "✗", "skip": "–",
          "error": "‼",
          # the verdict's own states (the stepper's V): each a shape of its own, for NO_COLOR
          "diagnosed": "★", "no-cause": "?", "no-reset": "○", "interrupted": "‖"}

#: the verdict's kind (wizard.model.session.VerdictKind) -> its state in the stepper
VERDICT_STATES = {"cause": "diagnosed", "no-cause": "no-cause", "no-reset": "no-reset",
                  "interrupted": "interrupted"}
#: the stepper's tooltip for each verdict state
VERDICT_WORDS = {"pending": "not yet", "diagnosed": "a cause diagnosed", "no-cause": "no cause found",
                 "no-reset": "no reset seen", "interrupted": "the run was interrupted"}


def label(step_id: str) -> str:
    return dict(STEPS).get(step_id, step_id)


def number(step_id: str) -> int:
    return STEP_IDS.index(step_id) + 1


def neighbour(step_id: str, delta: int) -> str | None:
    """The step ``delta`` away, "summary" after the last step, None before the first."""
    order = [*STEP_IDS, "summary"]
    index = order.index(step_id) + delta
    return order[index] if 0 <= index < len(order) else None
