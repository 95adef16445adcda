"""Benchmark (I/O): the TUI's run to the verdict beside `reset-wizard demo --headless`.

    .venv/bin/python bench/tui.py [--rounds N]

Each round is two fresh interpreters, in alternating order. One runs `demo --headless
--quiet` (timed from start to exit, imports included: what a person waits for). The other
drives the real app (Textual's Pilot, headless, 120x40, the real engine) against its own
demo server, with the answers `reset-wizard demo` fills in: once step 1 can be typed into
it presses Ctrl+G and times until the first frame that shows the verdict (the run ended
too). While it waits it polls with asyncio, not Pilot's pause, which walks and messages
every widget of the screen each time. Both must name the demo's cause. Prints the
medians and their ratio (goal: at most 1.2). Bytecode is cached as for an installed
package (bench/diagnose.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.diagnose import bench_env, peak_mb  # noqa: E402

GOAL = 1.2
TIMEOUT = 120

DRIVE = r"""
import asyncio, json, sys, time
from wizard.cli.demo import demo_answers
from wizard.lab.demo import start_demo
from wizard.ui.app import ResetWizardApp

shown = {}

class Timed(ResetWizardApp):
    # Headless, _display discards the frame, but it is handed the rendered update: the
    # frame exists at that moment (as in bench/startup.py).
    def _display(self, screen, renderable):
        super()._display(screen, renderable)
        if renderable is not None and screen is self.screen and screen.name == "summary" \
                and self.session is not None and self.session.diagnosis and screen.query(".verdict"):
            shown.setdefault("verdict", time.monotonic())

async def main() -> None:
    with start_demo() as demo:
        app = Timed(demo.target, answers=demo_answers(demo), demo=True)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.checklist is None or not app.screen.query("#target"):
                await pilot.pause(0.01)
            started = time.monotonic()
            await pilot.press("ctrl+g")
            # Polled without Pilot: its pause posts a message to every widget of the screen
            # and forces a refresh each time, work a person at a terminal does not add.
            while "verdict" not in shown or app.run_in_progress():
                await asyncio.sleep(0.01)
            took = shown["verdict"] - started
            cause = app.session.diagnosis[0].cause
            await pilot.press("ctrl+q")
    print(json.dumps({"seconds": took, "cause": cause}))

asyncio.run(main())
"""


def tui_round() -> tuple[float, str]:
    done = subprocess.run([sys.executable, "-c", DRIVE], cwd=ROOT, env=bench_env(), capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"the TUI run failed:\n{done.stderr[-2000:]}")
    got = json.loads(lines[-1])
    return float(got["seconds"]), str(got["cause"])


def headless_round() -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "wizard", "demo", "--headless", "--quiet", "--json", "-"],
                          cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)
    took = time.monotonic() - started
    diagnosis = json.loads(done.stdout).get("diagnosis") or [{}]
    return took, str(diagnosis[0].get("cause", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    headless_round()  # fills the bytecode cache; not counted
    tui: list[float] = []
    head: list[float] = []
    causes: set[tuple[str, str]] = set()
    for n in range(args.rounds):
        for who in (("tui", "headless") if n % 2 == 0 else ("headless", "tui")):
            seconds, cause = tui_round() if who == "tui" else headless_round()
            (tui if who == "tui" else head).append(seconds)
            causes.add((who, cause))
    t, h = statistics.median(tui), statistics.median(head)
    ratio = t / h if h else float("inf")
    print(f"the demo scenario, {args.rounds} rounds interleaved, fresh interpreters")
    print(f"{'':34}{'median':>9}{'min':>9}{'max':>9}")
    print(f"{'TUI: Ctrl+G to the verdict':34}{t:8.2f}s{min(tui):8.2f}s{max(tui):8.2f}s")
    print(f"{'demo --headless, start to exit':34}{h:8.2f}s{min(head):8.2f}s{max(head):8.2f}s")
    print(f"ratio TUI/headless: {ratio:.2f} (goal <= {GOAL}): {'met' if ratio <= GOAL else 'NOT met'}")
    print(f"top cause: {', '.join(f'{w} {c}' for w, c in sorted(causes))}")
    print(f"peak memory of any process run (the TUI's driver, app and demo): {peak_mb():.0f} MB (goal < 150)")
    return 0 if len({c for _, c in causes}) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
