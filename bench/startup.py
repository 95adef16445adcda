"""Time to the first frame of reset-wizard beside a bare Textual app (same harness, medians).

Each run is a fresh interpreter (imports count: that is what a person waits for) that
starts the app headless at 120x40 and notes the moment the first frame is painted in which
a text field has the focus, that is, when a person can start typing: for the bare app its
one Input, for reset-wizard step 1's target field. The wizard also notes the frame in
which the whole form is there (the rest of step 1 mounts right after the first frame),
so that moving work after the first frame cannot hide it. The wizard starts as its console
script does, `reset-wizard` with no arguments (wizard.entry.run: the command line parsed,
then the TUI): what that start-up costs or saves counts. textual's App is timed by an
import hook, the same for both apps, whenever the app's code imports it. Runs alternate between the two
apps so both see the same machine load; prints the medians and their ratio (goal: at
most 1.1, issue 16). Bytecode is cached for both, as for an installed package
(bench/diagnose.py).

    .venv/bin/python bench/startup.py [-n RUNS]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.diagnose import bench_env  # noqa: E402

HARNESS = r"""
import sys, time
t0 = time.perf_counter()
which = sys.argv[1]
from importlib.machinery import PathFinder

stamps = {}


def timed(App):
    # Headless, _display discards the frame, but it is handed the rendered update: the
    # frame exists at that moment.
    display, run = App._display, App.run
    from textual.widgets import Input  # (both apps' first frame has one: loaded either way)

    def _display(self, screen, renderable):
        display(self, screen, renderable)
        if renderable is None or screen is not self.screen or not isinstance(self.focused, Input):
            return
        now = time.perf_counter() - t0
        stamps.setdefault("first", now)
        whole = which == "bare" or bool(getattr(screen, "complete", False))
        if whole and "whole" not in stamps:
            stamps["whole"] = now
            print(f"{stamps['first']:.6f} {stamps['whole']:.6f}", flush=True)
            self.call_later(self.exit)

    App._display = _display
    App.run = lambda self, *a, **k: run(self, headless=True, size=(120, 40))


class Patch:
    # textual.app's App is timed as it is imported, whoever imports it and when: the
    # wizard's own start-up is left as `reset-wizard` runs it
    def find_spec(self, name, path=None, target=None):
        if name != "textual.app":
            return None
        sys.meta_path.remove(self)
        spec = PathFinder.find_spec(name, path)
        exec_module = spec.loader.exec_module

        def run_then_time(module):
            exec_module(module)
            timed(module.App)

        spec.loader.exec_module = run_then_time
        return spec


sys.meta_path.insert(0, Patch())
if which == "bare":
    from textual.app import App
    from textual.widgets import Footer, Header, Input

    class Bare(App):
        def compose(self):
            yield Header()
            yield Input(placeholder="host:port")
            yield Footer()

    Bare().run()
else:  # `reset-wizard` with no arguments: the wizard's console script, step 1 empty
    sys.argv = ["reset-wizard"]
    from wizard.entry import run

    run()
"""


def one(which: str) -> tuple[float, float]:
    # bench_env: the wizard's bytecode cached, as textual's is and as an installed package's
    # is (with PYTHONDONTWRITEBYTECODE set, every run compiled the wizard's UI modules anew).
    out = subprocess.run([sys.executable, "-c", HARNESS, which], capture_output=True, text=True,
                         timeout=60, check=True, cwd=ROOT, env=bench_env())
    first, whole = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(whole)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=9)
    args = parser.parse_args()
    one("bare"), one("wizard")  # warm the file cache; not counted
    bare, wizard, whole = [], [], []
    for _ in range(max(args.runs, 1)):  # interleaved so both see the same machine load
        bare.append(one("bare")[0])
        first, complete = one("wizard")
        wizard.append(first)
        whole.append(complete)
    b, w, c = statistics.median(bare), statistics.median(wizard), statistics.median(whole)
    print(f"bare textual app        : median {b * 1000:7.1f} ms over {args.runs} runs")
    print(f"reset-wizard, 1st frame : median {w * 1000:7.1f} ms over {args.runs} runs")
    print(f"reset-wizard, full form : median {c * 1000:7.1f} ms (ratio {c / b:.2f})")
    print(f"ratio                   : {w / b:.2f} (goal <= 1.1): {'met' if w / b <= 1.1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
