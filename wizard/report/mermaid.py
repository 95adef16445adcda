"""A packet ladder (evidence kind "ladder") as a Mermaid sequenceDiagram.

The data format: ``{"lanes": ["client", "server"], "events": [{"ms": 0.0, "src": "client",
"dst": "server", "label": "SYN", "note": "..."}]}``; ``src``/``dst`` may also be ``"path"``
(a device between the two), which gets its own participant when it is not a lane.
"""

from __future__ import annotations

import re
from typing import Any

from wizard.model.wording import ms_text
from wizard.report.sanitize import clean

_ID = re.compile(r"[^A-Za-z0-9_]")
# Characters that end or alter a Mermaid statement inside message text: written as
# Mermaid's numeric entity codes so the diagram text stays one well-formed statement.
_ENTITIES = {";": "#59;", "#": "#35;", "<": "#60;", ">": "#62;", "%": "#37;", "{": "#123;",
             "}": "#125;", "`": "#96;"}


def _text(value: Any) -> str:
    one = " ".join(clean(str(value)).split())
    return "".join(_ENTITIES.get(ch, ch) for ch in one)


def _ms(value: Any) -> str:
    try:
        return ms_text(float(value))
    except (TypeError, ValueError):
        return ""


def sequence_diagram(data: dict[str, Any]) -> str | None:
    """The diagram text (without fences), or None when ``data`` holds no events."""
    events = data.get("events")
    if not isinstance(events, list) or not events:
        return None
    lanes = [str(x) for x in data.get("lanes") or [] if str(x)]
    for ev in events:
        if not isinstance(ev, dict):
            continue
        for end in (ev.get("src"), ev.get("dst")):
            if end is not None and str(end) and str(end) not in lanes:
                # "path" sits between the two ends, as on the wire.
                lanes.insert(1 if str(end) == "path" and len(lanes) >= 2 else len(lanes), str(end))
    ids: dict[str, str] = {}
    for lane in lanes:
        base = _ID.sub("_", lane) or "lane"
        ident = f"P_{base}"
        n = 2
        while ident in ids.values():
            ident, n = f"P_{base}_{n}", n + 1
        ids[lane] = ident
    lines = ["sequenceDiagram"]
    lines += [f"    participant {ids[lane]} as {_text(lane)}" for lane in lanes]
    for ev in events:
        if not isinstance(ev, dict):
            continue
        src, dst = str(ev.get("src", "")), str(ev.get("dst", ""))
        if src not in ids or dst not in ids:
            continue
        label = _text(ev.get("label", ""))
        when = _ms(ev.get("ms"))
        message = f"{label} ({when})" if when and label else (label or when or "packet")
        # A reset is drawn as a lost/crossed arrow so it stands out.
        arrow = "-x" if re.search(r"\bRST\b", str(ev.get("label", ""))) else "->>"
        lines.append(f"    {ids[src]}{arrow}{ids[dst]}: {message}")
        note = ev.get("note")
        if note:
            lines.append(f"    Note over {ids[dst] if dst != src else ids[src]}: {_text(note)}")
    return "\n".join(lines)
