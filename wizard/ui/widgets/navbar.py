"""The nav bar (back, rerun, run all, next) shared by every step screen, and its button actions.

Kept apart from the step screen so that step 1's first frame does not import the step
panel and its evidence widgets.
"""

from __future__ import annotations

from textual.containers import Horizontal
from textual.widgets import Button


def nav_bar(first: bool = False) -> Horizontal:
    """Back, rerun, run all, next: the same buttons on every step."""
    return Horizontal(
        Button("◂ Back", id="back", disabled=first, tooltip="Ctrl+B", compact=True),
        Button("Rerun step", id="rerun-step", tooltip="Ctrl+R", compact=True),
        Button("Run all to the verdict", id="run-all", tooltip="Ctrl+G", compact=True),
        Button("Next ▸", id="next", variant="primary", tooltip="Ctrl+N", compact=True),
        classes="nav-bar")


class NavButtons:
    """Maps the nav bar's buttons to the app's actions."""

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        action = {"back": "back", "next": "next", "rerun-step": "rerun_step",
                  "run-all": "run_all"}.get(event.button.id or "")
        if action:
            event.stop()
            await self.app.run_action(action)  # type: ignore[attr-defined]
