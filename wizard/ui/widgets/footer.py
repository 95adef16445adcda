"""The footer: Textual's, compact when it is narrow, showing only the keys that fit whole.

Textual's Footer shows the bindings in their order and cuts what does not fit (``^s Expo``);
the app's bindings are ordered most important first (wizard.ui.keys). Below ``COMPACT_BELOW``
columns the footer drops the spacing between keys, and a key that would not fit whole before
the command palette's is hidden with every key after it: the footer's priorities.

Textual rebuilds the footer each time the bindings may have changed (a focus move, a run
starting or ending, a screen shown): a run-all did so some 25 times, each a mount, two
restyles of every key (a key starts compact and is then bound to the footer's own state)
and a layout, on the thread the engine shares. This one rebuilds only when what it shows
changed, and builds its keys in the footer's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual import events
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

COMPACT_BELOW = 100


class WizardFooter(Footer):
    """A Footer that turns compact below ``COMPACT_BELOW`` columns (its own width) and shows
    the keys that fit whole, the first first."""

    _shown: tuple[Any, ...] | None = None

    def on_resize(self, event: events.Resize) -> None:
        self.compact = self.size.width < COMPACT_BELOW
        for key in self.query(FooterKey):
            key.display = True
        self.call_after_refresh(self.fit_keys)

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit_keys)

    _fit_tries = 0

    def fit_keys(self) -> None:
        """Hide the keys from the first one that crosses the command palette's key (or the edge)."""
        if not self.size.width:  # not laid out yet: the next resize fits them
            return
        keys = [k for k in self.query(FooterKey) if not k.has_class("-command-palette")]
        if any(k.display and not k.virtual_region.width for k in keys) and self._fit_tries < 50:
            # keys just composed, not laid out yet: measured after the next refresh
            self._fit_tries += 1
            self.call_after_refresh(self.fit_keys)
            return
        self._fit_tries = 0
        palette = [k for k in self.query(FooterKey) if k.has_class("-command-palette")]
        limit = self.size.width - sum(k.outer_size.width for k in palette)
        cut = False
        for key in keys:
            cut = cut or key.virtual_region.right + key.styles.margin.right > limit
            key.display = not cut

    def visible_keys(self) -> list[str]:
        """The keys shown, as their labels read (for tests)."""
        return [k.key_display for k in self.query(FooterKey) if k.display]

    def shown_keys(self) -> tuple[Any, ...]:
        """What the footer's keys show: each binding shown, its key, words, state and tip."""
        bindings = self.screen.active_bindings
        keys = tuple((b.key, b.key_display, b.description, b.action, b.group, enabled, tip)
                     for _, b, enabled, tip in bindings.values() if b.show)
        palette = bindings.get(self.app.COMMAND_PALETTE_BINDING)
        return keys, self.show_command_palette, palette[2:] if palette else None

    _rebuilding = False  # a rebuild is asked for and has not composed yet

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if self.is_attached and screen is self.screen:
            if self._rebuilding:
                return  # the rebuild asked for shows the keys as they are when it composes
            if self._bindings_ready and self.shown_keys() == self._shown:
                return  # the same keys as shown
            # (The first call, before the first frame, leaves the keys to that rebuild: they
            # are worked out once, after the frame, instead of before it and again.)
            self._rebuilding = screen.app.app_focus  # when Textual's Footer rebuilds
        super().bindings_changed(screen)

    def compose(self) -> Iterator[Widget]:
        self._rebuilding = False
        if self._bindings_ready:
            self._shown = self.shown_keys()
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                # In the footer's state from the start: no restyle on mount, none when bound
                # (the palette's key is not bound to it, and stays compact as Textual makes it).
                widget.set_reactive(FooterKey.compact, self.compact)
                widget.set_class(self.compact, "-compact", update=False)
            yield widget
