"""`reset-wizard merge SESSION.json...`: many hosts' sessions as one fleet report and JSON (I/O)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

DESCRIPTION = """\
Merge the sessions of many hosts (a fleet run with ansible/, or the client and the server
end of the same flows) into one report that leads with what the differences point to: which
hosts see resets and what sets them apart (source subnet, target address, first hop, server
context), every host's verdict, and one wall-clock timeline with each client's reset beside
what the server end saw. A host is named by its session file's stem (web1.json is web1).
Without --json or --report the merged report goes to stdout."""

EXAMPLES = (
    "reset-wizard merge sessions/*.json",
    "reset-wizard merge web1.json web2.json db1.json --report fleet.md --json fleet.json",
)

EXIT = {ExitStatus.OK: "merged: no client's verdict is a cause of resets",
        ExitStatus.DIAGNOSED: ("merged: at least one client's verdict is a cause of resets, the merged verdict's "
                               "(a server end's own session is not counted; with none, every host is a client)"),
        ExitStatus.BAD_INPUT: "bad input: fewer than two sessions, one unreadable or invalid, or a bad output path",
        ExitStatus.FAILED: ("merging failed (a crash report names its file), or no host saw a reset and one did "
                            "not finish: the fleet is not known to be clean")}

MAX_SESSION_BYTES = 64 << 20


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("sessions", metavar="SESSION.json", nargs="+", help="sessions written by --json (two or more)")
    p.add_argument("--json", metavar="PATH", help="write the merged fleet as JSON (- is stdout)")
    p.add_argument("--report", metavar="PATH", help="write the merged Markdown report (- is stdout)")
    p.add_argument("--no-redact", action="store_true", help="keep secrets in the merged report")
    p.add_argument("--force", action="store_true", help="overwrite existing --json / --report files")


def run(args: argparse.Namespace, probes: object = None) -> int:
    _check_sessions(args.sessions)
    from wizard.cli.signals import run_async

    return run_async(merge_files(args))


def _check_sessions(paths: list[str]) -> None:
    if len(paths) < 2:
        raise WizardError("bad input", "merge needs two or more sessions (one is its own report: reset-wizard report)")
    resolved = [str(Path(p).resolve()) for p in paths]
    if len(set(resolved)) != len(resolved):
        raise WizardError("bad input", "the same session file is given twice")


def _labels(paths: list[str]) -> list[str]:
    stems = [Path(p).name.removesuffix(".json") for p in paths]
    dupes = {s for s in stems if stems.count(s) > 1}
    return [f"{Path(p).parent.name}/{s}" if s in dupes else s for p, s in zip(paths, stems, strict=True)]


async def _outputs(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    from wizard.hosts.files import check_output

    if args.json == "-" and args.report == "-":
        raise WizardError("bad output paths", "--json and --report cannot both write to stdout (-)")
    json_out = None if args.json in (None, "-") else await check_output(args.json, "json", args.force)
    report_out = None if args.report in (None, "-") else await check_output(args.report, "report", args.force)
    return json_out, report_out


async def merge_files(args: argparse.Namespace) -> int:
    from wizard.hosts.base import HostError
    from wizard.hosts.files import write_atomic
    from wizard.hosts.local import LocalHost
    from wizard.model import Session
    from wizard.report.fleet import render_fleet
    from wizard.report.merge import merge

    _check_sessions(args.sessions)
    json_out, report_out = await _outputs(args)
    host, loaded = LocalHost(), []
    for path, label in zip(args.sessions, _labels(args.sessions), strict=True):
        try:
            data = await host.read(path, max_bytes=MAX_SESSION_BYTES)
        except HostError as exc:
            raise WizardError("unreadable session", str(exc)) from None
        loaded.append((label, path, Session.from_json(data.decode("utf-8", "replace"), path)))
    fleet = merge(loaded)
    report = render_fleet(fleet, redact=not args.no_redact)
    if json_out is not None:
        write_atomic(json_out, fleet.to_json() + "\n", args.force)
    if report_out is not None:
        write_atomic(report_out, report, args.force)
    if args.json == "-":
        sys.stdout.write(fleet.to_json() + "\n")
    elif args.report == "-" or (args.json is None and args.report is None):
        sys.stdout.write(report)
    else:
        print(fleet.verdict.statement)
    return {int(s): s for s in ExitStatus}[fleet.verdict.exit_status]
