"""The footer: Textual's, compact when it is narrow, so that more of the keys fit.

Textual's Footer shows the bindings in their order and cuts what does not fit; the app's
bindings are ordered most important first (wizard.ui.keys), and below ``COMPACT_BELOW``
columns the footer drops the spacing between keys so that Quit, Run all, Help and the
step's own keys still fit at 80 columns.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

COMPACT_BELOW = 100


class WizardFooter(Footer):
    """A Footer that turns compact below ``COMPACT_BELOW`` columns (its own width)."""

    def on_resize(self, event: events.Resize) -> None:
        self.compact = self.size.width < COMPACT_BELOW
