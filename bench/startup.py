"""Time to the first frame of reset-wizard beside a bare Textual app (same harness, medians).

Each run is a fresh interpreter (imports count: that is what a person waits for) that
starts the app headless and stops at its first screen refresh. Prints both medians and
their ratio; the goal is at most 1.2.

    .venv/bin/python bench/startup.py [-n RUNS]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

HARNESS = r"""
import sys, time
t0 = time.perf_counter()
which = sys.argv[1]
from textual.app import App
if which == "bare":
    from textual.widgets import Footer, Header, Input

    class Base(App):
        def compose(self):
            yield Header()
            yield Input(placeholder="host:port")
            yield Footer()
else:
    from wizard.ui.app import ResetWizardApp as Base

class Timed(Base):
    def on_mount(self):
        # call_after_refresh runs once the first frame has been painted.
        self.call_after_refresh(self.stamp)

    def stamp(self):
        print(f"{time.perf_counter() - t0:.6f}", flush=True)
        self.exit()

Timed().run(headless=True, size=(120, 40))
"""


def one(which: str) -> float:
    out = subprocess.run([sys.executable, "-c", HARNESS, which], capture_output=True, text=True,
                         timeout=60, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=9)
    args = parser.parse_args()
    bare, wizard = [], []
    for _ in range(args.runs):  # interleaved so both see the same machine load
        bare.append(one("bare"))
        wizard.append(one("wizard"))
    b, w = statistics.median(bare), statistics.median(wizard)
    print(f"bare textual app : median {b * 1000:7.1f} ms over {args.runs} runs")
    print(f"reset-wizard     : median {w * 1000:7.1f} ms over {args.runs} runs")
    print(f"ratio            : {w / b:.2f} (goal <= 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
