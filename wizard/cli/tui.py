"""`reset-wizard [TARGET]` / `reset-wizard tui [TARGET]`: the Textual wizard (I/O: the terminal).

textual is imported only here, when the TUI opens."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from wizard.cli.status import ExitStatus

if TYPE_CHECKING:
    import argparse

DESCRIPTION = """\
Open the wizard in the terminal: step 1 asks what failed and where, steps 2 to 6 run their
checks with live evidence, and the verdict ranks the causes. TARGET (host:port, [v6]:port or
a URL) pre-fills step 1. `reset-wizard TARGET` is the same as `reset-wizard tui TARGET`."""

EXAMPLES = (
    "reset-wizard 10.0.0.5:443",
    "sudo reset-wizard tui https://api.example.com --server ssh:admin@web1",
)

EXIT = {ExitStatus.OK: "the wizard was closed",
        ExitStatus.BAD_INPUT: ExitStatus.BAD_INPUT.meaning,
        ExitStatus.FAILED: "the wizard failed (a crash report names its file)"}


def options(p: argparse.ArgumentParser) -> None:
    from wizard.model.questions import question

    target, server = question("target"), question("server")
    p.add_argument("target", nargs="?", metavar=target.metavar, help=target.help)
    p.add_argument(server.option, default=server.default, metavar=server.metavar, help=server.help)


def nothing_typed() -> argparse.Namespace:
    """What the parser makes of `reset-wizard` alone (a test holds the two equal): the TUI with
    step 1 empty, the command line that wizard.cli.main opens without loading argparse."""
    return cast("argparse.Namespace", SimpleNamespace(command="tui", target=None, server="local", argv=["tui"]))


def run(args: argparse.Namespace, probes: object = None) -> int:
    from wizard.entry import hold_collection

    started = hold_collection()  # textual's imports and the first frame make no garbage either
    from wizard.ui.app import run_tui  # textual loads only here

    return run_tui(args.target, server=args.server, started=started)
