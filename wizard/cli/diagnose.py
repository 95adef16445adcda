"""`reset-wizard diagnose TARGET`: the whole checklist, headless (I/O: probes, writes files).

Every input is checked before anything is probed or written (one line, exit 2). Progress
goes to stderr; the verdict to stdout, unless --json - or --report - takes stdout, when it
goes to stderr too. Ctrl-C, SIGTERM and SIGHUP end the run cleanly: what was gathered is
written, the console says what was not run, and the exit status is 3.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from wizard.cli.console import interruption_lines, say, verdict_lines
from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError
from wizard.model.questions import question

if TYPE_CHECKING:
    from wizard.engine.contract import CheckContext, Probes
    from wizard.engine.runner import Runner
    from wizard.hosts.base import Host
    from wizard.model import Answers, Checklist, Session

#: the command takes over SIGINT, SIGTERM and SIGHUP from start-up itself, just before its
#: first probe (wizard.entry)
OWNS_SIGNALS = True

DESCRIPTION = """\
Run the six steps of the connection-reset checklist against TARGET without the TUI:
identify, connectivity, server logs, firewall, application errors, handshake. Server-side
evidence is read in the --server context. Progress goes to stderr, the verdict to stdout;
--json and --report write the session and the Markdown report (- is stdout: then the
verdict goes to stderr). Every input is checked before anything is probed or written."""

EXAMPLES = (
    "reset-wizard diagnose 127.0.0.1:8080 --json session.json --report report.md",
    "sudo reset-wizard diagnose https://api.example.com --server ssh:admin@web1 \\\n"
    "      --log '/var/log/nginx/*.log' --at -10m --error 'curl: (56) Recv failure: Connection reset by peer'",
)

EXIT = {status: status.meaning for status in ExitStatus}

STDOUT = "-"

#: the step-1 questions answered by options, in their order (wizard.model.questions)
ANSWER_OPTIONS = ("error", "at", "window", "side", "server", "logs", "journal", "payload", "hold",
                  "attempts", "timeout")


def options(p: argparse.ArgumentParser) -> None:
    target = question("target")
    p.add_argument("target", nargs="?", metavar=target.metavar, help=target.help)
    p.add_argument("--json-schema", action="store_true", help="print the JSON schema of the session and exit")
    for key in ANSWER_OPTIONS:
        q = question(key)
        if key in ("logs", "journal"):
            p.add_argument(q.option, action="append", default=[], metavar=q.metavar, help=q.help)
        else:
            p.add_argument(q.option, default=q.default or None, metavar=q.metavar, help=q.help)
    capture = question("capture")
    p.add_argument(capture.option, action="store_true", help=capture.help)
    output_options(p)
    p.add_argument("--redact-addresses", action="store_true", help="also replace IP addresses and host names")
    p.add_argument("--allow-tracefs-mount", action="store_true",
                   help="let kernel.resets mount tracefs where it is missing (it unmounts what it mounted)")


def output_options(p: argparse.ArgumentParser) -> None:
    """The options of what a run writes (diagnose, demo --headless)."""
    add = p.add_argument
    add("--json", metavar="PATH", help="write the whole session as JSON (- is stdout)")
    add("--report", metavar="PATH", help="write the Markdown incident report (- is stdout)")
    add("--force", action="store_true", help="overwrite existing --json / --report files")
    add("--no-redact", action="store_true", help="keep secrets and addresses in the outputs")
    add("--quiet", action="store_true", help="no progress on stderr, only the verdict")


def run(args: argparse.Namespace, probes: Probes | None = None) -> int:
    if args.json_schema:
        import json

        from wizard.model import Session

        print(json.dumps(Session.model_json_schema(by_alias=True), indent=2))
        return ExitStatus.OK
    from wizard.cli.signals import run_async

    return run_async(diagnose(args, probes))


# -- what is written, and where ------------------------------------------------------------
@dataclass
class Outputs:
    json: Path | str | None  # a checked path, STDOUT, or None
    report: Path | str | None
    force: bool

    @property
    def verdict_stream(self) -> TextIO:
        """stdout, unless an output takes it."""
        return sys.stderr if STDOUT in (self.json, self.report) else sys.stdout


async def check_outputs(args: argparse.Namespace) -> Outputs:
    from wizard.hosts.files import check_output

    if args.json == STDOUT and args.report == STDOUT:
        raise WizardError("bad output paths", "--json and --report cannot both write to stdout (-)")
    paths = [STDOUT if text == STDOUT else await check_output(text, what, args.force)
             for text, what in ((args.json, "json"), (args.report, "report"))]
    json_path, report_path = paths
    if isinstance(json_path, Path) and isinstance(report_path, Path) \
            and json_path.resolve() == report_path.resolve():
        raise WizardError("bad output paths", "--json and --report name the same file")
    return Outputs(json_path, report_path, args.force)


def write_outputs(session: Session, outputs: Outputs, redact: bool, redact_addresses: bool) -> list[str]:
    """Writes the asked outputs; the names of the files written (stdout is not named)."""
    if outputs.json is None and outputs.report is None:
        return []  # the verdict alone: the report's modules are not even loaded
    from wizard.hosts.files import write_atomic
    from wizard.report import render_json_parts, render_report

    written = []
    for dest, render in ((outputs.json, render_json_parts), (outputs.report, render_report)):
        if dest is None:
            continue
        # the session JSON in parts: a watch's events are read one at a time, never all held
        parts = render(session, redact=redact, redact_addresses=redact_addresses)
        if dest == STDOUT:
            text = parts if isinstance(parts, str) else "".join(parts)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()
        else:
            write_atomic(Path(dest), parts, outputs.force)
            written.append(str(dest))
    return written


# -- the run -------------------------------------------------------------------------------
async def build_answers(args: argparse.Namespace, server: Host) -> Answers:
    """Answers from the options, by the rules the TUI's step-1 form uses (wizard.model.inputs);
    what needs I/O (log files, a payload file) is checked here, after the pure rules."""
    from wizard.hosts.files import check_logs, read_payload
    from wizard.model import Answers
    from wizard.model import inputs as rules

    hold, attempts = rules.parse_hold(args.hold), rules.parse_attempts(args.attempts)
    timeout, side = rules.parse_timeout(args.timeout), rules.parse_side(args.side)
    at, window = rules.parse_time(args.at), rules.parse_duration(args.window)
    journal = rules.parse_journal(args.journal)
    rules.parse_logs(args.log)
    payload = rules.parse_payload(args.payload)  # its shape before any file is read
    return Answers(
        error=args.error, at=at, window_s=window, side=side,
        logs=await check_logs(args.log, server), journal=journal,
        payload=await read_payload(payload), hold_s=hold, attempts=attempts,
        timeout_s=timeout, capture=not args.no_capture)


def checklist_for(allow_tracefs_mount: bool) -> Checklist:
    """The shipped checklist; with --allow-tracefs-mount, kernel.resets may mount tracefs.

    Its 63 signature regexes are not compiled with ``re`` to check them at load (~7 ms of
    start-up, before the first check): the logs checks match with Hyperscan, or compile a
    linear form of a regex when they need it, and the shipped checklist's regexes are
    compiled by its tests (tests/unit/test_checklist.py)."""
    from wizard.engine.discovery import load

    checklist = load(compile_signatures=False)
    if not allow_tracefs_mount:
        return checklist
    steps = []
    for step in checklist.steps:
        specs = [spec.model_copy(update={"params": {**spec.params, "allow_mount": True}})
                 if spec.check == "kernel.resets" else spec for spec in step.checks]
        steps.append(step.model_copy(update={"checks": specs}))
    return checklist.model_copy(update={"steps": steps})


async def diagnose(args: argparse.Namespace, probes: Probes | None = None) -> int:
    """The command's body: checked inputs, the run, the outputs, the verdict, the exit status.

    It owns the ending signals (``OWNS_SIGNALS``): start-up's handlers, which end the
    process at once, give way to the run's, which cancel it, just before the first probe."""
    import asyncio  # here, not with the module: analyze takes its outputs' helpers and runs without a loop

    from wizard.cli.signals import cancel_on_signals

    # Until the run starts, start-up's handlers stay: nothing is probed or made yet, so a
    # signal ends the process at once, even in the middle of loading the checks.
    session, ctx, outputs, runner = await _prepared(args, probes)
    from wizard.entry import collect_again

    collect_again()  # start-up is over (the checks and the checklist are loaded)
    body = asyncio.current_task()
    assert body is not None
    with cancel_on_signals(body) as caught:
        # The handlers stay until the outputs are written and the verdict said: a signal that
        # comes after the last check (the run is complete) no longer cancels anything, and is
        # not left to the default action, which would kill the process in the middle of a write.
        try:
            await runner.run_all(session)
        except asyncio.CancelledError:
            if caught.signal is None:
                raise
            body.uncancel()
            session.interrupted = True
            runner.conclude(session)
        written = write_outputs(session, outputs, not args.no_redact, args.redact_addresses)
        stream = outputs.verdict_stream
        if session.interrupted:
            for line in interruption_lines(session, ctx.checklist, caught.name):
                say(line, stream)
        lines, _ = verdict_lines(session)
        for line in lines:
            say(line, stream)
        if written and not args.quiet:
            say(f"wrote {', '.join(written)}")
        status = exit_status(session)
        caught.finished(status)
    return status


async def _prepared(args: argparse.Namespace, probes: Probes | None) -> tuple[Session, CheckContext, Outputs, Runner]:
    """The checked inputs, the session and its context, ready to run: nothing probed yet."""
    from wizard.cli.progress import Progress
    from wizard.engine.runner import Runner, prepare
    from wizard.hosts.contexts import host_for
    from wizard.model import parse_target
    from wizard.model.contexts import parse_context

    if args.target is None:
        raise WizardError("missing target", "give host:port, [v6]:port or a URL")
    parse_target(args.target)  # the cheapest check first: no context opened for a typo
    outputs = await check_outputs(args)
    server = host_for(parse_context(args.server))
    answers = await build_answers(args, server)
    session, ctx = await prepare(args.target, answers, args.server, probes=probes, server=server,
                                 checklist=checklist_for(args.allow_tracefs_mount))
    if outputs.json is not None or outputs.report is not None:
        import wizard.report  # noqa: F401 - loaded now, not after a signal, when every moment counts
    # Quiet, no fix is printed: the command line (and the redaction it needs) is not made.
    rerun = None if args.quiet else rerun_line(args)
    return session, ctx, outputs, Runner(ctx, Progress(args.quiet, rerun=rerun))


def rerun_line(args: argparse.Namespace) -> list[str] | None:
    """This command line for the console's fixes to repeat; its secrets (an --error or a
    --payload with a token) redacted unless --no-redact; None when it was not typed."""
    typed = getattr(args, "argv", None)
    if not typed:
        return None
    if args.no_redact:
        return list(typed)
    from wizard.redact import redact_text

    def redacted(token: str) -> str:
        # a typed payload's \r\n escapes are its line breaks: a header is redacted line by line
        lines = token.replace("\\r\\n", "\n").replace("\\n", "\n")
        done = redact_text(lines)
        return token if done == lines else done.replace("\n", "\\r\\n")

    return [redacted(token) for token in typed]


def exit_status(session: Session) -> ExitStatus:
    """What a finished run exits with, read from the session's verdict alone."""
    if session.interrupted:
        return ExitStatus.FAILED
    return ExitStatus.DIAGNOSED if session.verdict is not None and session.verdict.diagnosed else ExitStatus.OK


__all__ = ["DESCRIPTION", "EXAMPLES", "EXIT", "build_answers", "diagnose", "exit_status", "options", "run"]
