"""`reset-wizard open SESSION.json`: a saved session (diagnose, watch or analyze) in the TUI, read-only (I/O).

textual is imported only when the viewer opens; the session is read and checked first.
"""

from __future__ import annotations

import argparse

from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

DESCRIPTION = """\
Show a saved session in the terminal, read-only: the resets of a watch or an analysis as
a list, the selected one's ladder and reasons beside it, resets per second over the top;
a diagnose session's causes. `e` exports the report (and the JSON), so a session can be
sent to a colleague and opened there."""

EXAMPLES = (
    "reset-wizard open session.json",
    "sudo reset-wizard watch 10.0.0.5:443 --for 1h --json watch.json && reset-wizard open watch.json",
)

EXIT = {ExitStatus.OK: "the viewer was closed",
        ExitStatus.BAD_INPUT: "bad input: an unreadable or invalid session",
        ExitStatus.FAILED: "the viewer failed (a crash report names its file)"}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION.json", help="a session written by diagnose, watch, analyze or the TUI")


def load_session(path: str) -> object:
    from wizard.model import Session

    try:
        with open(path, "rb") as handle:
            data = handle.read(64 << 20)
    except OSError as exc:
        raise WizardError("unreadable session", f"{path}: {exc.strerror or exc}") from None
    return Session.from_json(data.decode("utf-8", "replace"), path)


def run(args: argparse.Namespace, probes: object = None) -> int:
    session = load_session(args.session)
    from wizard.ui.observe.app import run_observe  # textual loads only here

    return run_observe(session)  # type: ignore[arg-type]
