"""`reset-wizard demo`: the built-in loopback scenario, in the TUI or headless (I/O).

The demo server listens on an ephemeral loopback port, resets every connection after
reading the request and writes a log; it needs no root and no network."""

from __future__ import annotations

import argparse
from typing import Any

from wizard.cli.diagnose import output_options
from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

DESCRIPTION = """\
Start a small server on a loopback port that resets every connection after reading the
request, and writes the log lines a real server would; then open the TUI against it (Enter
starts, Ctrl+G runs every step), or with --headless run `diagnose` against it. No root and
no network are needed; the server and its log are removed on exit."""

EXAMPLES = (
    "reset-wizard demo",
    "reset-wizard demo --headless --json session.json --report -",
)

EXIT = {ExitStatus.OK: "the TUI was closed (headless: no cause found)",
        ExitStatus.DIAGNOSED: "headless: a cause was diagnosed (the demo's abortive close)",
        ExitStatus.BAD_INPUT: ExitStatus.BAD_INPUT.meaning,
        ExitStatus.FAILED: ExitStatus.FAILED.meaning}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="run diagnose against it instead of the TUI")
    output_options(p)
    p.add_argument("--allow-tracefs-mount", action="store_true",
                   help="headless: let kernel.resets mount tracefs where it is missing (as diagnose)")


def run(args: argparse.Namespace, probes: object = None) -> int:
    if not args.headless:
        given = [f"--{name}" for name in ("json", "report") if getattr(args, name)]
        if given:
            raise WizardError("bad option", f"{' and '.join(given)} need --headless (the TUI exports with Ctrl+S)")
        return _tui()

    from wizard.cli.signals import run_async

    return run_async(_headless(args))


#: what step 1 says for the demo, in the TUI and headless alike
DEMO_ATTEMPTS, DEMO_WINDOW_S = 5, 600


def demo_answers(demo: Any) -> Any:
    """Step 1's answers for a running demo, the same as the options `--headless` passes."""
    from wizard.model import Answers

    return Answers(error=demo.error, logs=[str(demo.log_path)], payload=demo.payload,
                   attempts=DEMO_ATTEMPTS, window_s=DEMO_WINDOW_S)


def _tui() -> int:
    """The TUI against the demo. Textual runs its own event loop: not inside asyncio.run."""
    from wizard.entry import hold_collection

    started = hold_collection()  # as `reset-wizard`: the collector off until the checklist is in
    from wizard.lab.demo import start_demo
    from wizard.ui.app import run_tui  # textual loads only here

    with start_demo() as demo:
        return run_tui(demo.target, answers=demo_answers(demo), demo=True, started=started)


async def _headless(args: argparse.Namespace) -> int:
    from wizard.cli.console import say
    from wizard.cli.diagnose import check_outputs, diagnose
    from wizard.cli.parser import parse
    from wizard.lab.demo import start_demo

    await check_outputs(args)  # bad output paths end here, before the demo server starts
    with start_demo() as demo:
        argv = ["diagnose", demo.target, "--log", str(demo.log_path), "--error", demo.error,
                "--payload", demo.payload, "--attempts", str(DEMO_ATTEMPTS), "--window", f"{DEMO_WINDOW_S}s"]
        for name in ("json", "report"):
            if getattr(args, name):
                argv += [f"--{name}", getattr(args, name)]
        argv += [flag for flag in ("--force", "--quiet", "--no-redact", "--allow-tracefs-mount")
                 if getattr(args, flag[2:].replace("-", "_"))]
        if not args.quiet:
            say(f"demo: a loopback server on {demo.target} that resets after each request; log {demo.log_path}")
        inner = parse(argv)
        inner.argv = args.argv  # a fix reruns the demo (its port and log are gone after it)
        return await diagnose(inner)
