"""Where the shipped checklist is (I/O: looks at the files): apart from the registry of checks,
so that a command which only reads the checklist's causes (``analyze``) loads no check."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_CHECKLIST = "connection-reset.yaml"


def checklist_path(name: str = DEFAULT_CHECKLIST) -> Path:
    """The shipped checklist: inside the wheel, or the repository's checklists/ in a checkout."""
    packaged = resources.files("wizard").joinpath("_checklists", name)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "checklists" / name
