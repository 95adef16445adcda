"""The first frame of the TUI (issue 16): what is loaded by the time step 1's target field
can be typed into. Each case starts the real app in a fresh interpreter, headless (the
app itself, or `reset-wizard [TARGET]` through the command line's entry point), and
lists the modules and style sheets present at the first painted frame in which an Input
has the focus (bench/startup.py's moment). What only a run needs (pydantic's models, the
checklist, the engine and the checks, scapy, YAML) and the run screens' styles load after
it; the test fails if the first screen's import graph regains any of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from tests.ui.helpers import SIZE, make_app, until
from tests.ui.scripted import ScriptedEngine

ROOT = Path(__file__).resolve().parents[2]

#: loaded only once the form is out (the checklist load) or once a run starts
HEAVY = ("pydantic", "pydantic_core", "wizard.model.checklist", "wizard.model.session", "wizard.model.results",
         "wizard.engine", "wizard.diag", "wizard.lab", "wizard.redact", "wizard.hosts", "wizard.report",
         "scapy", "yaml", "psutil", "hyperscan", "asyncssh")

HARNESS = r"""
import json, os, sys
from textual.app import App
from textual.widgets import Input

seen = {}
display = App._display

def _display(self, screen, renderable):
    display(self, screen, renderable)
    if seen or renderable is None or screen is not self.screen or not isinstance(self.focused, Input):
        return
    seen["focused"] = self.focused.id
    seen["modules"] = sorted(sys.modules)
    seen["css"] = sorted(os.path.basename(path) for path, _ in self.stylesheet.source if path.endswith(".tcss"))
    print(json.dumps(seen), flush=True)
    os._exit(0)  # nothing after the first frame matters here (the demo would start its server)

App._display = _display
run = App.run
App.run = lambda self, *a, **k: run(self, headless=True, size=(120, 40))
which, args = sys.argv[1], sys.argv[2:]
if which == "app":
    from wizard.ui.app import ResetWizardApp

    ResetWizardApp(*args).run()
else:  # the command line, as `reset-wizard ARGS` runs it
    sys.argv = ["reset-wizard", *args]
    from wizard.entry import run as entry

    entry()
raise SystemExit("no first frame")
"""


def first_frame(which: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", HARNESS, which, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    seen: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def heavy(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize(("which", "args"), [("app", ()), ("app", ("127.0.0.1:8080",)),
                                             ("cli", ()), ("cli", ("127.0.0.1:8080",))],
                         ids=["app", "app-target", "cli", "cli-target"])
def test_the_first_frame_loads_only_the_form(which: str, args: tuple[str, ...]) -> None:
    seen = first_frame(which, *args)
    assert seen["focused"] == "target"
    assert heavy(seen["modules"]) == []
    assert "wizard.ui.screens.target" in seen["modules"]  # the harness did see the form
    # a run's widgets (the checks' and causes' collapsible items) load with the run
    assert "wizard.ui.widgets.items" not in seen["modules"]
    assert seen["css"] == ["wizard.tcss"]  # run.tcss loads with what needs it


def test_a_heavy_module_before_the_first_frame_is_seen() -> None:
    """The check above can fail: an app that loads the checklist before its first frame."""
    code = HARNESS.replace("from wizard.ui.app import ResetWizardApp\n",
                           "from wizard.ui.app import ResetWizardApp\n    import wizard.model.checklist\n")
    done = subprocess.run([sys.executable, "-c", code, "app"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "wizard.model.checklist" in heavy(json.loads(done.stdout.strip().splitlines()[-1])["modules"])


async def test_a_given_target_is_checked_once_the_form_is_out() -> None:
    """A target from the command line is validated after the first frame, with the same
    message beside it and the same refusal to start as a typed one; a good one shows none."""
    engine = ScriptedEngine()
    app = make_app(engine, target="example.com")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.complete and app.checklist is not None)
        assert "has no port" in str(app.screen.query_one("#err-target", Static).render())
        assert app.screen.query_one("#row-target").has_class("-invalid")
        assert app.screen.query_one("#target", Input).has_class("-invalid")
        await pilot.press("enter")
        await pilot.pause()
        assert engine.prepared is None and app.session is None
        await pilot.press("end", *":8080")  # fixed as typed: the problem goes
        assert str(app.screen.query_one("#err-target", Static).render()) == ""
        assert not app.screen.query_one("#row-target").has_class("-invalid")
    app = make_app(target="127.0.0.1:8080")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.complete)
        assert str(app.screen.query_one("#err-target", Static).render()) == ""
        assert app.screen.query_one("#target", Input).has_class("-valid")


COLLECTOR = r"""
import gc, json, sys
from textual.app import App
from textual.widgets import Input

seen = {}
display = App._display

def _display(self, screen, renderable):
    display(self, screen, renderable)
    if "first" in seen or renderable is None or not isinstance(self.focused, Input):
        return
    seen["first"] = gc.isenabled()
    self.set_interval(0.01, lambda: loaded(self))

def loaded(app):
    if app.checklist is None:
        return
    if "loaded" not in seen:
        seen["loaded"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
        print(json.dumps(seen), flush=True)
        app.exit()  # as a person quits: the demo's server and its log go

App._display = _display
run = App.run
App.run = lambda self, *a, **k: run(self, headless=True, size=(120, 40))
sys.argv = ["reset-wizard", *sys.argv[1:]]
from wizard.entry import run as entry

entry()
raise SystemExit("no first frame")
"""


@pytest.mark.parametrize("args", [(), ("demo",)], ids=["tui", "demo"])
def test_the_tuis_start_up_runs_without_the_collector_until_the_checklist_is_in(args: tuple[str, ...],
                                                                                tmp_path: Path) -> None:
    """`reset-wizard` and `reset-wizard demo`: textual's imports and the first frame make
    objects that live as long as the app, as the command line's start-up does, so the
    collector stays off through them (its passes cost some 12 ms of a 180 ms first frame);
    once the checklist is loaded behind the form, what start-up made is frozen and the
    collector is on for what the run makes."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", COLLECTOR, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["first"] is False
    assert seen["loaded"] is True
    assert seen["frozen"] > 0
    assert list(tmp_path.iterdir()) == []  # the demo's server and log went with the app
