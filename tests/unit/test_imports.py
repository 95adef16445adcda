"""Import hygiene: the layer contracts hold, and the headless modules load no UI or scapy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADLESS = ["wizard.model", "wizard.analysis", "wizard.redact", "wizard.hosts", "wizard.diag", "wizard.engine.discovery",
            "wizard.report", "wizard.engine.runner", "wizard.cli.main", "wizard.cli.diagnose", "wizard.cli.parser", "wizard.lab.demo"]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else [shutil.which("lint-imports") or "lint-imports"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_headless_modules_import_neither_textual_rich_nor_scapy() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {HEADLESS!r}:\n"
        "    importlib.import_module(name)\n"
        "from wizard.engine.discovery import all_checks; all_checks()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'scapy'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_wizard_model_names_load_with_their_submodule_only() -> None:
    """wizard.model's names resolve lazily to their submodule's objects, every one listed;
    a submodule without models (errors, questions) loads without pydantic, as the command
    line's parser and the TUI's first frame need."""
    code = (
        "import importlib, json, sys\n"
        "import wizard.model.errors, wizard.model.questions\n"
        "light = 'pydantic' in sys.modules\n"
        "import wizard.model as m\n"
        "wrong = [n for n in m.__all__ if getattr(m, n) is not getattr(importlib.import_module(\n"
        "         'wizard.model.' + m._WHERE[n]), n)]\n"
        "print(json.dumps([light, sorted(m.__all__) == sorted(m._WHERE), wrong, hasattr(m, 'nothing')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, True, [], False]
