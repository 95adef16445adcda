"""The command line (I/O: writes the files it is asked for): parsing, validation, exit codes, progress.

Everything a person types is validated before anything is probed or written; a bad input
is one line on stderr and exit 2. The headless path never imports textual: the TUI and
rich are imported lazily, only when they are used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from wizard import __version__
from wizard.model import Answers, Checklist, Session, WizardError, parse_target
from wizard.model.inputs import (SIDES, parse_attempts, parse_context, parse_duration, parse_hold,
                                 parse_time, parse_timeout)
from wizard.probes import Host, HostError, LocalHost, Probes, host_for
from wizard.probes.files import check_logs, check_output, read_payload, write_atomic

# parse_duration and parse_time stay importable from here: the rules live in wizard.model.inputs.
__all__ = ["EXIT_BAD_INPUT", "EXIT_DIAGNOSED", "EXIT_FAILED", "EXIT_OK", "build_parser", "main",
           "parse_duration", "parse_time", "read_payload", "write_atomic"]

EXIT_OK, EXIT_DIAGNOSED, EXIT_BAD_INPUT, EXIT_FAILED = 0, 1, 2, 3
COMMANDS = ("diagnose", "demo", "report", "checks", "lab")
PROG = "reset-wizard"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one WizardError line instead of usage text."""

    def error(self, message: str) -> NoReturn:
        raise WizardError("bad option", message)


# -- the parser ---------------------------------------------------------------------------
def _diagnose_options(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--server", default="local", metavar="CONTEXT", help="local, netns:NAME or ssh:[user@]host[:port]")
    add("--log", action="append", default=[], metavar="PATH", help="log file or glob to excerpt (repeatable)")
    add("--journal", action="append", default=[], metavar="UNIT", help="systemd unit, or a .journal file, whose journal to excerpt")
    add("--at", metavar="TIME", help="when the reset was seen (RFC 3339, HH:MM, -10m)")
    add("--window", metavar="DURATION", help="how far around --at to look in logs (default 15m)")
    add("--error", metavar="TEXT", help="the error message as the user saw it")
    add("--side", choices=SIDES, default="unknown", help="where the error was seen")
    add("--payload", metavar="TEXT|@FILE", help=r"what the probe sends after the handshake (\r\n honoured)")
    add("--hold", metavar="SECONDS", default="0", help="idle this long on the probe connection, then send again")
    add("--attempts", metavar="N", default="10", help="handshakes in the burst probe (1-1000)")
    add("--timeout", metavar="SECONDS", default="3", help="per-probe timeout (0-60]")
    add("--no-capture", action="store_true", help="do not sniff packets even when allowed")
    add("--json", metavar="PATH", help="write the whole session as JSON")
    add("--report", metavar="PATH", help="write the Markdown incident report")
    add("--no-redact", action="store_true", help="keep secrets and addresses in the report")
    add("--redact-addresses", action="store_true", help="also replace IP addresses and host names")
    add("--force", action="store_true", help="overwrite existing --json / --report files")
    add("--quiet", action="store_true", help="no progress on stderr, only the verdict")
    add("--allow-tracefs-mount", action="store_true",
        help="let kernel.resets mount tracefs when it is missing (unmounted again afterwards)")


def build_parser() -> _Parser:
    root = _Parser(prog=PROG, description="Find out why a TCP connection was reset.")
    root.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    tui = sub.add_parser("tui", help="open the TUI (the default: reset-wizard [TARGET])")
    tui.add_argument("target", nargs="?", metavar="TARGET")
    tui.add_argument("--server", default="local", metavar="CONTEXT")

    d = sub.add_parser("diagnose", help="run the whole checklist headless")
    d.add_argument("target", nargs="?", metavar="TARGET", help="host:port, [v6]:port or a URL")
    d.add_argument("--json-schema", action="store_true", help="print the JSON schema of the session and exit")
    _diagnose_options(d)

    demo = sub.add_parser("demo", help="a built-in loopback scenario that resets connections")
    demo.add_argument("--headless", action="store_true", help="run diagnose against it without the TUI")
    for name in ("--json", "--report"):
        demo.add_argument(name, metavar="PATH")
    demo.add_argument("--force", action="store_true")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--no-redact", action="store_true")

    r = sub.add_parser("report", help="render a saved session again as Markdown")
    r.add_argument("session", metavar="SESSION.json")
    r.add_argument("-o", "--output", metavar="FILE.md")
    r.add_argument("--no-redact", action="store_true")
    r.add_argument("--redact-addresses", action="store_true")
    r.add_argument("--force", action="store_true")

    lab = sub.add_parser("lab", help="the fault lab: scenarios in network namespaces (root)")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="list|up|down", parser_class=_Parser, required=True)
    lab_sub.add_parser("list", help="every scenario with its explanation")
    up = lab_sub.add_parser("up", help="build a scenario and print how to diagnose it")
    up.add_argument("name", metavar="NAME")
    dn = lab_sub.add_parser("down", help="remove a lab (all labs without NAME)")
    dn.add_argument("name", nargs="?", metavar="NAME")

    c = sub.add_parser("checks", help="list every check and what it needs")
    # Regenerates checklists/connection-reset.schema.json (see tests/unit/test_schema.py).
    c.add_argument("--checklist-schema", action="store_true", help=argparse.SUPPRESS)
    return root


# -- validation ---------------------------------------------------------------------------
@dataclass
class Outputs:
    json: Path | None
    report: Path | None
    force: bool


async def build_answers(args: argparse.Namespace, server: Host) -> Answers:
    """Answers from the options, by the rules the TUI's step-1 form uses (wizard.model.inputs);
    what needs I/O (log files, a payload file) is checked here, after the pure rules."""
    hold, attempts, timeout = parse_hold(args.hold), parse_attempts(args.attempts), parse_timeout(args.timeout)
    at, window = parse_time(args.at), parse_duration(args.window)
    return Answers(
        error=args.error, at=at, window_s=window, side=args.side,
        logs=await check_logs(args.log, server), journal=args.journal,
        payload=await read_payload(args.payload), hold_s=hold, attempts=attempts,
        timeout_s=timeout, capture=not args.no_capture)


# -- writing ------------------------------------------------------------------------------
def write_outputs(session: Session, outputs: Outputs, redact: bool, redact_addresses: bool) -> list[str]:
    from wizard.report import render_json, render_report

    written = []
    if outputs.json:
        write_atomic(outputs.json, render_json(session, redact=redact, redact_addresses=redact_addresses),
                     outputs.force)
        written.append(str(outputs.json))
    if outputs.report:
        write_atomic(outputs.report, render_report(session, redact=redact, redact_addresses=redact_addresses),
                     outputs.force)
        written.append(str(outputs.report))
    return written


# -- progress -----------------------------------------------------------------------------
class Progress:
    """Live progress on stderr: rich on a terminal, one plain line per check otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.monotonic()
        self.console: Any = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False)

    def __call__(self, event: Any) -> None:
        from wizard.runner import CheckFinished, StepStarted

        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        if isinstance(event, StepStarted):
            self._out(f"== {event.step}", f"[bold]== {event.step}[/]")
        elif isinstance(event, CheckFinished):
            r = event.result
            status = r.status.value
            # A skipped check's summary already starts "skipped: ..."; say it once.
            summary = r.summary.removeprefix("skipped: ") if status == "skip" else r.summary
            plain = f"[{event.step}] {r.id}: {status}: {summary} ({r.duration_ms} ms, +{elapsed:.1f}s)"
            colour = {"pass": "green", "warn": "yellow", "fail": "red", "error": "magenta"}.get(status, "dim")
            self._out(plain, f"  [{colour}]{status:5}[/] {r.id}: {_escape(summary)} "
                             f"[dim]({r.duration_ms} ms, +{elapsed:.1f}s)[/]")

    def _out(self, plain: str, rich_text: str) -> None:
        if self.console is not None:
            self.console.print(rich_text)
        else:
            print(plain, file=sys.stderr, flush=True)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def verdict_lines(session: Session, checklist: Checklist) -> tuple[list[str], bool]:
    from wizard.analysis import diagnosed_causes

    found = diagnosed_causes(session, checklist)
    if not found:
        first = session.diagnosis[0] if session.diagnosis else None
        detail = f": {first.summary}" if first else ""
        return [f"verdict: no cause of resets found{detail}"], False
    lines = [f"verdict: {f.cause} ({f.confidence:.0%}): {f.summary}" for f in found[:3]]
    if session.close_call:
        a, b = session.close_call.causes
        lines.append(f"close call between {a} and {b}: {session.close_call.separate_with}")
    return lines, True


# -- commands -----------------------------------------------------------------------------
def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def diagnose_command(args: argparse.Namespace, probes: Probes | None = None) -> int:
    from wizard.runner import Runner, prepare

    if args.target is None:
        raise WizardError("missing target", "give host:port, [v6]:port or a URL")
    parse_target(args.target)  # the cheapest check first: no context opened for a typo
    outputs = Outputs(await check_output(args.json, "json", args.force),
                      await check_output(args.report, "report", args.force), args.force)
    if outputs.json and outputs.report and outputs.json.resolve() == outputs.report.resolve():
        raise WizardError("bad output paths", "--json and --report name the same file")
    server = host_for(parse_context(args.server))
    answers = await build_answers(args, server)
    session, ctx = await prepare(args.target, answers, args.server, probes=probes, server=server,
                                 checklist=_checklist(getattr(args, "allow_tracefs_mount", False)))
    runner = Runner(ctx, Progress(args.quiet))

    task = asyncio.ensure_future(runner.run_all(session))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        session.interrupted = True
        runner.conclude(session)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    written = write_outputs(session, outputs, not args.no_redact, getattr(args, "redact_addresses", False))
    lines, diagnosed = verdict_lines(session, ctx.checklist)
    for line in lines:
        _say(line)
    if written and not args.quiet:
        _say(f"wrote {', '.join(written)}")
    if session.interrupted:
        _say(f"{PROG}: interrupted: the analysis covers only the checks that finished"
             + (f"; wrote {', '.join(written)}" if written else ""))
        return EXIT_FAILED
    return EXIT_DIAGNOSED if diagnosed else EXIT_OK


def demo_tui() -> int:
    """`reset-wizard demo`: the TUI against the demo scenario. Textual runs its own event
    loop, so this must not be called from inside asyncio.run."""
    from wizard.lab.demo import start_demo
    from wizard.ui.app import run_tui  # textual loads only here

    with start_demo() as demo:
        return run_tui(demo.target, answers=Answers(error=demo.error, logs=[str(demo.log_path)],
                                                    payload=demo.payload), demo=True)


def _checklist(allow_tracefs_mount: bool) -> Checklist:
    """The shipped checklist; with --allow-tracefs-mount, kernel.resets may mount tracefs."""
    from wizard.checks.registry import load

    checklist = load()
    if not allow_tracefs_mount:
        return checklist
    steps = []
    for step in checklist.steps:
        specs = [spec.model_copy(update={"params": {**spec.params, "allow_mount": True}})
                 if spec.check == "kernel.resets" else spec for spec in step.checks]
        steps.append(step.model_copy(update={"checks": specs}))
    return checklist.model_copy(update={"steps": steps})


def lab_command(args: argparse.Namespace) -> int:
    from wizard.lab.commands import lab_down, lab_list, lab_up

    if args.lab_command == "list":
        return lab_list()
    if args.lab_command == "up":
        return lab_up(args.name)
    return lab_down(args.name)


async def demo_command(args: argparse.Namespace) -> int:
    from wizard.lab.demo import start_demo

    with start_demo() as demo:
        argv = ["diagnose", demo.target, "--log", str(demo.log_path), "--error", demo.error,
                "--payload", demo.payload, "--attempts", "5", "--window", "10m"]
        for name in ("json", "report"):
            if getattr(args, name):
                argv += [f"--{name}", getattr(args, name)]
        argv += [flag for flag in ("--force", "--quiet", "--no-redact") if getattr(args, flag[2:].replace("-", "_"))]
        if not args.quiet:
            _say(f"demo: a loopback server on {demo.target} that resets after each request; log {demo.log_path}")
        return await diagnose_command(build_parser().parse_args(argv))


async def report_command(args: argparse.Namespace) -> int:
    from wizard.report import render_report

    out = await check_output(args.output, "report", args.force)
    try:
        data = await LocalHost().read(args.session, max_bytes=64 << 20)
    except HostError as exc:
        raise WizardError("unreadable session", f"{args.session}: {str(exc).removeprefix(f'cannot read {args.session}: ')}") from None
    session = Session.from_json(data.decode("utf-8", "replace"), args.session)
    text = render_report(session, redact=not args.no_redact, redact_addresses=args.redact_addresses)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text, args.force)
    return EXIT_OK


def checks_command(args: argparse.Namespace) -> int:
    import json

    from wizard.checks import all_checks

    if args.checklist_schema:
        print(json.dumps(Checklist.model_json_schema(by_alias=True), indent=2))
        return EXIT_OK
    rows = [("ID", "STEP", "NEEDS", "TITLE")]
    for cls in sorted(all_checks().values(), key=lambda c: (_step_index(c.step), c.id)):
        needs = [f"root({cls.needs_root})"] if cls.needs_root else []
        needs += [f"{t.name}({t.where})" for t in cls.needs_tools]
        if getattr(cls, "reads_server", False):
            needs.append("server context")
        rows.append((cls.id, cls.step, ", ".join(needs) or "-", cls.title))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return EXIT_OK


def _step_index(step: str) -> int:
    from wizard.model import STEP_IDS

    return STEP_IDS.index(step) if step in STEP_IDS else len(STEP_IDS)


def _normalise(argv: list[str]) -> list[str]:
    """``reset-wizard [TARGET]`` means the TUI; subcommands and --help/--version pass."""
    if not argv or (argv[0] not in (*COMMANDS, "tui") and argv[0] not in ("-h", "--help", "--version")):
        return ["tui", *argv]
    return argv


def _crash_report(exc: BaseException) -> str:
    fd, path = tempfile.mkstemp(prefix="reset-wizard-crash-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return path


def main(argv: list[str] | None = None, *, probes: Probes | None = None) -> int:
    """Entry point of `reset-wizard`; ``probes`` replaces the real ones in tests."""
    args_list = _normalise(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(args_list)
        if args.command == "diagnose" and args.json_schema:
            import json

            print(json.dumps(Session.model_json_schema(by_alias=True), indent=2))
            return EXIT_OK
        if args.command == "tui":
            from wizard.ui.app import run_tui  # textual loads only here

            return run_tui(args.target, server=args.server)
        if args.command == "checks":
            return checks_command(args)
        if args.command == "lab":
            return lab_command(args)
        if args.command == "demo" and not args.headless:
            return demo_tui()
        runner = {"diagnose": lambda: diagnose_command(args, probes), "demo": lambda: demo_command(args),
                  "report": lambda: report_command(args)}[args.command]
        return asyncio.run(runner())
    except WizardError as exc:
        _say(exc.line())
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say(f"{PROG}: interrupted")
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in a file
        _say(f"{PROG}: the run failed: {type(exc).__name__}: {exc} (traceback in {_crash_report(exc)})")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
