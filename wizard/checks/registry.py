"""The registry of checks, and loading the checklist against it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from wizard.checks.base import Check
from wizard.model import Checklist, load_checklist

_REGISTRY: dict[str, type[Check]] = {}

DEFAULT_CHECKLIST = "connection-reset.yaml"


def register(cls: type[Check]) -> type[Check]:
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"check id {cls.id} registered twice")
    _REGISTRY[cls.id] = cls
    return cls


def all_checks() -> dict[str, type[Check]]:
    _load_builtin()
    return dict(_REGISTRY)


def get_check(check_id: str) -> type[Check]:
    return all_checks()[check_id]


def _load_builtin() -> None:
    # Importing the modules registers their checks.
    from wizard.checks import (app, connectivity, firewall, handshake, identify,  # noqa: F401
                               conntrack, kernel_trace, logs, packets, process)


def checklist_path(name: str = DEFAULT_CHECKLIST) -> Path:
    """The shipped checklist: inside the wheel, or the repository's checklists/ in a checkout."""
    packaged = resources.files("wizard").joinpath("_checklists", name)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "checklists" / name


def load(path: Path | None = None) -> Checklist:
    checks = all_checks()
    emitted = {s for c in checks.values() for s in c.emits}
    return load_checklist(path or checklist_path(), {k: v.Params for k, v in checks.items()}, emitted)
