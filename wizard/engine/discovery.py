"""The registry of checks, and loading the checklist against it."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from wizard.engine.contract import Check, registered
from wizard.engine.shipped import DEFAULT_CHECKLIST, checklist_path
from wizard.model import Checklist, load_checklist

__all__ = ["DEFAULT_CHECKLIST", "all_checks", "checklist_path", "get_check", "load"]

_LOADED = False


def all_checks() -> dict[str, type[Check[Any]]]:
    _load_builtin()
    return registered()


def get_check(check_id: str) -> type[Check[Any]]:
    return all_checks()[check_id]


def _load_builtin() -> None:
    """Import every check module of every area (``wizard/diag/<area>/checks.py`` or
    ``checks/*.py``): importing a module registers its checks. No list to keep by hand."""
    global _LOADED
    if _LOADED:
        return
    import wizard.diag as areas

    for info in pkgutil.walk_packages(areas.__path__, areas.__name__ + "."):
        parts = info.name.split(".")
        if len(parts) >= 4 and parts[3] == "checks":
            importlib.import_module(info.name)
    _LOADED = True


def load(path: Path | None = None, *, compile_signatures: bool = True) -> Checklist:
    """The checklist (the shipped one unless ``path``), checked against the registered checks.
    ``compile_signatures=False``: its signature regexes are not compiled by ``re`` to check
    them (load_checklist), for a caller whose log matching compiles what it uses itself."""
    checks = all_checks()
    emitted = {s for c in checks.values() for s in c.emits}
    return load_checklist(path or checklist_path(), {k: v.Params for k, v in checks.items()}, emitted,
                          compile_signatures=compile_signatures)
