"""A handshake as a ladder diagram: one column per lane, an arrow per packet, with times."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from wizard.model.wording import ms_text

GAP = 34  # columns between two lanes: room for "data 78 B" style labels
TIME_WIDTH = 11

_STYLES = {"rst": "bold red", "syn": "cyan", "fin": "magenta", "data": "green"}


def _style(label: str) -> str:
    low = label.lower()
    for key, style in _STYLES.items():
        if key in low:
            return style
    return ""


def render_ladder(lanes: list[str], events: list[dict[str, Any]], fit: int | None = None) -> Text:
    """The diagram as text; arrows point from ``src`` to ``dst`` lane, labels centred. A note
    goes beside its arrow when the line fits in ``fit`` columns (None: always), else on a line of
    its own under the arrow, from the first lane on; lines never wrap (the view scrolls)."""
    lanes = [str(lane) for lane in lanes] or ["client", "server"]
    column = {lane: TIME_WIDTH + 2 + i * GAP for i, lane in enumerate(lanes)}
    width = TIME_WIDTH + 3 + (len(lanes) - 1) * GAP
    out = Text(no_wrap=True)

    def blank() -> list[str]:
        row = [" "] * width
        for x in column.values():
            row[x] = "│"
        return row

    header = [" "] * (width + 8)
    for lane, x in column.items():
        start = max(0, x - len(lane) // 2)
        header[start:start + len(lane)] = list(lane)
    out.append("".join(header).rstrip() + "\n", style="bold")
    for event in events:
        src, dst = str(event.get("src", lanes[0])), str(event.get("dst", lanes[-1]))
        label = str(event.get("label", ""))
        note = str(event.get("note", "") or "")
        ms = event.get("ms")
        row = blank()
        time_text = ms_text(float(ms)) if isinstance(ms, (int, float)) else str(ms or "")
        row[:TIME_WIDTH] = list(time_text.rjust(TIME_WIDTH))
        if src in column and dst in column and src != dst:
            a, b = column[src], column[dst]
            left, right = min(a, b), max(a, b)
            for x in range(left + 1, right):
                row[x] = "─"
            if b > a:
                row[right - 1] = "▶"
            else:
                row[left + 1] = "◀"
            text = f" {label} "
            start = left + 1 + max(1, (right - left - 1 - len(text)) // 2)
            row[start:start + len(text)] = list(text[: max(0, right - start - 1)])
        elif src in column:
            text = f" {label}"
            x = column[src] + 1
            row[x:x + len(text)] = list(text)
        line = "".join(row)
        out.append(line[:TIME_WIDTH], style="dim")
        out.append(line[TIME_WIDTH:], style=_style(label))
        if note and (fit is None or len(line.rstrip()) + 2 + len(note) <= fit):
            out.append(f"  {note}", style="italic")
        elif note:
            below = blank()
            x = column[lanes[0]] + 2
            below[x:] = list(note)
            out.append("\n" + "".join(below[:x]), style="dim")
            out.append("".join(below[x:]), style="italic")
        out.append("\n")
    out.rstrip()
    return out


class Ladder(Widget):
    """Renders ``render_ladder`` at the width its container gives; sized to the diagram, in
    a view that scrolls sideways (``.sideways``) like the packet table, so no line wraps."""

    DEFAULT_CLASSES = "ladder"

    def __init__(self, lanes: list[str], events: list[dict[str, Any]]) -> None:
        super().__init__()
        self.lanes = lanes
        self.events = events
        self.fit: int | None = None  # the columns the container offers, once laid out

    def _text(self) -> Text:
        return render_ladder(self.lanes, self.events, self.fit)

    def render(self) -> Text:
        return self._text()

    def get_content_width(self, container: Any, viewport: Any) -> int:
        self.fit = max(1, container.width - self.styles.gutter.width)
        return max((cell_len(line) for line in self._text().plain.split("\n")), default=1)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self._text().plain.count("\n") + 1
