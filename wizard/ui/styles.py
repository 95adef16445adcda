"""The wizard's style sheets, each parsed only once what it styles is about to mount.

wizard.tcss (the app's CSS_PATH) holds what step 1's first frame shows; form.tcss the rest of
step 1's form, its notice, every screen's nav bar (they mount right after that frame) and the
stepper's looks that frame does not show (hovered, a step's state);
run.tcss all else (a step's checks and evidence, the verdict, the dialogs). Added in that
order, they cascade as the three files would in a row.
"""

from __future__ import annotations

from pathlib import Path

from textual.css.stylesheet import Stylesheet

HERE = Path(__file__).parent
FIRST_FRAME = HERE / "wizard.tcss"
FORM = HERE / "form.tcss"
RUN = HERE / "run.tcss"


def add(stylesheet: Stylesheet, *files: Path) -> None:
    """Add style sheets not added yet, in their order (parsed as the next widget is styled)."""
    for file in files:
        path = str(file.resolve())
        if not stylesheet.has_source(path, ""):
            # add_source, not read: read leaves Textual's rule map as it was
            stylesheet.add_source(file.read_text(encoding="utf-8"), read_from=(path, ""))
