"""The footer: Textual's, compact when it is narrow, showing only the keys that fit whole.

Textual's Footer shows the bindings in their order and cuts what does not fit (``^s Expo``);
the app's bindings are ordered most important first (wizard.ui.keys). Below ``COMPACT_BELOW``
columns the footer drops the spacing between keys, and a key that would not fit whole before
the command palette's is hidden with every key after it: the footer's priorities.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

COMPACT_BELOW = 100


class WizardFooter(Footer):
    """A Footer that turns compact below ``COMPACT_BELOW`` columns (its own width) and shows
    the keys that fit whole, the first first."""

    def on_resize(self, event: events.Resize) -> None:
        self.compact = self.size.width < COMPACT_BELOW
        for key in self.query(FooterKey):
            key.display = True
        self.call_after_refresh(self.fit_keys)

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """Hide the keys from the first one that crosses the command palette's key (or the edge)."""
        if not self.size.width:  # not laid out yet: the next resize fits them
            return
        keys = [k for k in self.query(FooterKey) if not k.has_class("-command-palette")]
        palette = [k for k in self.query(FooterKey) if k.has_class("-command-palette")]
        limit = self.size.width - sum(k.outer_size.width for k in palette)
        cut = False
        for key in keys:
            cut = cut or key.virtual_region.right + key.styles.margin.right > limit
            key.display = not cut

    def visible_keys(self) -> list[str]:
        """The keys shown, as their labels read (for tests)."""
        return [k.key_display for k in self.query(FooterKey) if k.display]
