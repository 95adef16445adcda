"""`reset-wizard report SESSION.json`: a saved session rendered again as Markdown (I/O)."""

from __future__ import annotations

import argparse
import sys

from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

DESCRIPTION = """\
Render a session saved with --json (or the TUI's export) again as the Markdown incident
report: after editing its notes, or with other redaction. The report goes to stdout, or
to -o FILE (never over an existing file without --force)."""

EXAMPLES = (
    "reset-wizard report session.json > report.md",
    "reset-wizard report session.json -o report.md --redact-addresses --force",
)

EXIT = {ExitStatus.OK: "the report was written",
        ExitStatus.BAD_INPUT: "bad input: an unreadable or invalid session, or a bad -o path",
        ExitStatus.FAILED: "rendering failed (a crash report names its file)"}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION.json", help="a session written by --json or the TUI")
    p.add_argument("-o", "--output", metavar="FILE.md", help="write the report here (default: stdout; - is stdout)")
    p.add_argument("--no-redact", action="store_true", help="keep secrets and addresses in the report")
    p.add_argument("--redact-addresses", action="store_true", help="also replace IP addresses and host names")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o file")


def run(args: argparse.Namespace, probes: object = None) -> int:

    from wizard.cli.signals import run_async

    return run_async(render(args))


async def render(args: argparse.Namespace) -> int:
    from wizard.hosts.base import HostError
    from wizard.hosts.files import check_output, write_atomic
    from wizard.hosts.local import LocalHost
    from wizard.model import Session
    from wizard.report import render_report

    out = None if args.output in (None, "-") else await check_output(args.output, "report", args.force)
    try:
        data = await LocalHost().read(args.session, max_bytes=64 << 20)
    except HostError as exc:
        reason = str(exc).removeprefix(f"cannot read {args.session}: ")
        raise WizardError("unreadable session", f"{args.session}: {reason}") from None
    session = Session.from_json(data.decode("utf-8", "replace"), args.session)
    text = render_report(session, redact=not args.no_redact, redact_addresses=args.redact_addresses)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text, args.force)
    return ExitStatus.OK
