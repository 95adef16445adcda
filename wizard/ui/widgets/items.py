"""Keys for the lists of a screen (a step's checks, the verdict's causes): j/k and the
arrows move between them, Enter and space open or close one.

Each item is a Collapsible whose title line takes the focus; the keys are bound on the item,
so they win over the scrolling body's arrows while the focus is in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.binding import Binding, BindingType
from textual.widget import AwaitMount, Widget
from textual.widgets import Collapsible


class KeyedItem(Collapsible):
    """A Collapsible in a list of its kind (a check, a cause), with the list's keys.

    A closed item's body may be deferred (``defer_body``): made and mounted when the item is
    first opened, not with the item. Most of a list stays closed (the checks that passed,
    the verdict's weaker causes), and making, styling and mounting bodies no one opens was
    a large part of showing a step or the verdict, on the thread the engine shares."""

    #: makes the body of a closed item, once it is opened; None when there is none to make
    _deferred: Callable[[], Sequence[Widget]] | None = None

    BINDINGS = [
        Binding("j,down", "move(1)", "Next", show=False),
        Binding("k,up", "move(-1)", "Previous", show=False),
        Binding("space", "flip", "Open/close", show=False),
    ]

    def __init__(self, *children: Widget, title: str, collapsed: bool = True, id: str | None = None,
                 classes: str = "") -> None:
        # In its collapsed state's class from the start: Textual's Collapsible adds it as it
        # mounts, and the change restyles the item and all it holds, just after mounting
        # styled them (a run's checks, the verdict's causes: a fifth of the summary's styling).
        super().__init__(*children, title=title, collapsed=collapsed, id=id,
                         classes=f"{classes} -collapsed" if collapsed else classes)

    def defer_body(self, make: Callable[[], Sequence[Widget]] | None) -> None:
        """The body ``make`` returns is mounted when the item is opened (None: no body to make)."""
        self._deferred = make

    def has_deferred_body(self) -> bool:
        return self._deferred is not None

    def watch_collapsed(self, collapsed: bool) -> None:
        if not collapsed and self._deferred is not None:
            # Opened: Textual scrolls the item into view after the next refresh, when its new
            # body may not be laid out yet; once it is, scrolled again.
            self.call_later(self._opened, self._mount_deferred())

    async def _opened(self, mounted: AwaitMount) -> None:
        await mounted
        self.call_after_refresh(self.scroll_visible)

    async def make_body(self) -> None:
        """Make a closed item's body now, as if it were open (for snapshots of every item
        opened at once: their scrolling then follows bodies already there)."""
        if self._deferred is not None:
            await self._mount_deferred()

    def _mount_deferred(self) -> AwaitMount:
        make, self._deferred = self._deferred, None
        assert make is not None
        return self.query_children(Collapsible.Contents).first().mount(*make())

    def action_move(self, delta: int) -> None:
        items = [w for w in self.screen.query(KeyedItem) if type(w) is type(self)]
        if self not in items:
            return
        index = items.index(self) + delta
        if 0 <= index < len(items):
            focus_item(items[index])

    def action_flip(self) -> None:
        self.collapsed = not self.collapsed


def focus_item(item: Collapsible) -> bool:
    """Focus an item's title line (it scrolls into view); False when it has none yet."""
    titles = item.query("CollapsibleTitle")
    if not titles:
        return False
    titles.first().focus()
    return True


def focus_first_item(root: Widget) -> bool:
    """Focus the first item under ``root``; False when there is none."""
    found = root.query(KeyedItem)
    return bool(found) and focus_item(found.first())


#: for a screen holding a list: j/k and the arrows, when the focus is elsewhere, go to it
SCREEN_BINDINGS: list[BindingType] = [Binding("j,k,down,up", "focus_items", "Checks", show=False)]


class ItemsScreen:
    """For a screen holding a list: ``action_focus_items`` focuses its first item."""

    def action_focus_items(self) -> None:
        focus_first_item(self)  # type: ignore[arg-type]
