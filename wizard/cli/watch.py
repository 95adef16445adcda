"""`reset-wizard watch TARGET`: the real traffic to a port observed live, every reset attributed (I/O).

Root is needed (a packet socket). Events stream as NDJSON on stdout with --json -; otherwise
one line per reset on stdout and the verdict at the end; --json FILE and --report write the
session when the watch ends: after --for, or at Ctrl-C, SIGTERM or SIGHUP (exit 3 then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from wizard.cli.console import say
from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

if TYPE_CHECKING:
    from wizard.engine.watch import WatchPlan
    from wizard.model import Session

DESCRIPTION = """\
Watch the real traffic to and from TARGET's port for a bounded time (--for, default 10m)
and attribute every reset as it happens: the capture keeps only the port's TCP headers,
filtered in the kernel, with a bounded ring of packets per flow; the kernel's own reset
events (tracefs) give their reason where the kernel has one; the TCP counters are sampled
every second and the server's logs followed from their end (--log, else the usual files;
--journal's units with journalctl -f, its .journal files polled, else the unit of the process
owning the port), each reset with the lines of its second. --probe-every holds a connection of its own, kept
alive with TCP keepalives that often, to catch idle resets when the traffic is quiet.
Read-only, and it leaves nothing behind. Needs root."""

EXAMPLES = (
    "sudo reset-wizard watch 10.0.0.5:443 --for 30m --report resets.md",
    "sudo reset-wizard watch api.example.com:8080 --json - | jq 'select(.type == \"reset\")'",
)

EXIT = {ExitStatus.OK: "finished: no cause of resets found (no reset seen)",
        ExitStatus.DIAGNOSED: "finished: at least one cause reached the checklist's threshold",
        ExitStatus.BAD_INPUT: "bad input: a bad target, duration or output path",
        ExitStatus.FAILED: "the watch could not run (no root, no libpcap) or was interrupted: what was "
                           "gathered is still written"}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="host:port, [IPv6]:port or a URL")
    p.add_argument("--for", dest="duration", metavar="DURATION", default="10m", help="how long to watch")
    p.add_argument("--server", metavar="CONTEXT", default="local",
                   help="where the server's counters and logs are read (local, netns:NAME, ssh:...)")
    p.add_argument("--log", dest="logs", action="append", default=[], metavar="PATH",
                   help="a server log to follow (repeatable, globs); default: the usual files that exist")
    p.add_argument("--journal", action="append", default=[], metavar="UNIT",
                   help="a systemd unit's journal to follow (repeatable), or a .journal file; default: the "
                        "unit of the process owning the port, where journald runs")
    p.add_argument("--probe-every", metavar="DURATION",
                   help="also hold a connection of its own, kept alive this often (idle resets)")
    p.add_argument("--json", metavar="PATH", help="write the session as JSON; - streams the events as NDJSON")
    p.add_argument("--report", metavar="PATH", help="write the Markdown report when the watch ends")
    p.add_argument("--force", action="store_true", help="overwrite existing --json / --report files")
    p.add_argument("--no-redact", action="store_true", help="keep secrets and addresses in the outputs")
    p.add_argument("--redact-addresses", action="store_true", help="also replace IP addresses and host names")
    p.add_argument("--quiet", action="store_true", help="no line per reset, only the verdict")
    p.add_argument("--tui", action="store_true", help="show the watch live in the TUI (events, ladders, rate)")
    p.add_argument("--allow-tracefs-mount", action="store_true",
                   help="mount tracefs where it is missing (unmounted at the end)")


def run(args: argparse.Namespace, probes: object = None) -> int:
    from wizard.cli.signals import run_async

    return run_async(main(args, probes))


def durations(args: argparse.Namespace) -> tuple[float, float]:
    from wizard.model.inputs import parse_duration

    duration = parse_duration(args.duration, title="bad duration")
    every = parse_duration(args.probe_every, title="bad probe interval") if args.probe_every is not None else 0.0
    if not 0 < duration <= 7 * 86400:
        raise WizardError("bad duration", f"--for {args.duration!r}: more than 0 and at most 7 days")
    if args.probe_every is not None and not 0.1 <= every <= duration:
        raise WizardError("bad probe interval", f"--probe-every {args.probe_every!r}: at least 100ms, "
                          "at most --for")
    return duration, every


async def resolved(text: str, probes: object = None) -> object:
    """The target with its addresses, resolved as diagnose resolves it (the run's DNS probe)."""
    from wizard.engine.runner import real_probes
    from wizard.model import parse_target

    target = parse_target(text)
    dns = getattr(probes, "dns", None) or real_probes().dns
    resolution = await dns.resolve(target.host, 5.0)
    if not resolution.ok:
        raise WizardError("unresolvable host", f"{target.host}: {resolution.error or 'no IPv4 or IPv6 address'}")
    return target.model_copy(update={"addresses": list(resolution.addresses)})


def _end_event(session: Session, interrupted: bool, signal: str | None) -> dict[str, object]:
    """The last event of a stream: when it ended, the resets seen (by sender), and why."""
    obs = session.observation
    return {"type": "end", "at": session.finished_at.isoformat() if session.finished_at else None,
            "resets": len(obs.events) if obs else 0, "by_sender": obs.by_sender if obs else {},
            "lost_packets": obs.lost_packets if obs else 0,
            "interrupted": interrupted, "signal": signal}


async def main(args: argparse.Namespace, probes: object = None) -> int:
    from wizard.analysis import diagnosed_causes
    from wizard.cli.analyze import verdict
    from wizard.cli.diagnose import STDOUT, check_outputs, checklist_for, write_outputs
    from wizard.cli.signals import cancel_on_signals
    from wizard.engine.watch import WatchState, watch, watch_session
    from wizard.model import parse_target
    from wizard.model.inputs import parse_journal

    duration, every = durations(args)
    parse_target(args.target)  # a typo is told before any output path is looked at
    if args.tui and STDOUT in (args.json, args.report):
        raise WizardError("bad option", "--tui draws on the terminal, which --json - and --report - "
                          "would write into: give them a file")
    args.journal = parse_journal(args.journal)
    streaming = args.json == STDOUT
    json_arg = args.json
    if streaming:
        args.json = None  # stdout carries the events, not the session
    outputs = await check_outputs(args)
    target = await resolved(args.target, probes)
    if os.geteuid() != 0:
        say("reset-wizard: watch needs root (a packet socket and tracefs); fix: sudo reset-wizard watch ...")
        return ExitStatus.FAILED
    stream = sys.stderr if streaming or outputs.report == STDOUT else sys.stdout
    emit = emitter(streaming, stream, quiet=args.quiet or args.tui)  # the TUI shows the resets itself
    plan = _plan(args, target, duration, every, emit)
    state = WatchState()
    if args.tui:
        return await live_tui(plan, state, outputs, args)
    task = asyncio.ensure_future(watch(plan, state))
    with cancel_on_signals(task) as caught:
        try:
            await task
        except asyncio.CancelledError:
            state.interrupted = True
        except Exception as exc:  # the capture could not start: say why and the fix
            fix = getattr(exc, "fix", "")
            say(f"reset-wizard: watch cannot run: {exc}" + (f"; fix: {fix}" if fix else ""))
            return ExitStatus.FAILED
        checklist = checklist_for(False)
        session = watch_session(plan, state, checklist)
        emit(_end_event(session, state.interrupted, caught.signal.name if caught.signal else None))
        if state.interrupted:
            print(f"interrupted by {caught.signal.name if caught.signal else 'a cancellation'}", file=stream)
        for line in verdict(session, checklist):
            print(line, file=stream if not streaming else sys.stderr)
        for name in write_outputs(session, outputs, not args.no_redact, args.redact_addresses):
            say(f"wrote {name}")
        args.json = json_arg
        status = ExitStatus.FAILED if state.interrupted else \
            ExitStatus.DIAGNOSED if diagnosed_causes(session, checklist) else ExitStatus.OK
        caught.finished(status)
        return status


def emitter(streaming: bool, stream: TextIO, quiet: bool) -> Callable[[Mapping[str, object]], None]:
    """Where a watch's events go: NDJSON on stdout when streaming, else a line per reset on
    ``stream`` unless ``quiet`` (--quiet, or --tui, which draws on that terminal)."""

    def emit(event: Mapping[str, object]) -> None:
        if streaming:
            sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        elif event.get("type") == "reset" and not quiet:
            print(f"{event['n']:>4}  {event['at']}  {event['flow']}  {event['flags']:<3} toward the "
                  f"{event['toward']}: {event['sender_words']}", file=stream, flush=True)

    return emit


def _plan(args: argparse.Namespace, target: object, duration: float, every: float,
          emit: Callable[[Mapping[str, object]], None]) -> WatchPlan:
    from wizard.engine.watch import WatchPlan
    from wizard.hosts.contexts import host_for
    from wizard.redact import redact_text

    server = host_for(args.server)

    async def server_logs() -> list[str]:
        """Step 3's discovery: the logs the server owning the listener names (its configuration, its open files)."""
        from wizard.cli.diagnose import checklist_for
        from wizard.diag.logs.checks.excerpt import server_logs
        from wizard.engine.contract import CheckContext
        from wizard.engine.runner import real_probes
        from wizard.hosts.local import LocalHost
        from wizard.model import Answers

        ctx = CheckContext(target=target, answers=Answers(), checklist=checklist_for(False),  # type: ignore[arg-type]
                           client=LocalHost(), server=server, probes=real_probes())
        return await server_logs(ctx)

    async def server_units() -> list[str]:
        from wizard.diag.logs.io.journalfollow import units_of_port

        return await units_of_port(server, target.port)  # type: ignore[attr-defined]

    return WatchPlan(target=target, duration_s=duration, probe_every_s=every,  # type: ignore[arg-type]
                     allow_mount=args.allow_tracefs_mount, server=server, logs=args.logs, server_logs=server_logs,
                     journal=args.journal, server_units=server_units,
                     clean=(lambda text: text) if args.no_redact else redact_text, emit=emit)


async def live_tui(plan: object, state: object, outputs: object, args: argparse.Namespace) -> int:
    """The watch in the observation viewer: the engine runs in the app's worker."""
    from wizard.analysis import diagnosed_causes
    from wizard.cli.diagnose import checklist_for, write_outputs
    from wizard.engine.watch import watch, watch_session
    from wizard.ui.observe.app import ObserveApp

    checklist = checklist_for(False)

    async def run_watch(push: object) -> object:
        plan.on_reset = push  # type: ignore[attr-defined]
        plan.on_sample = lambda moved: app.sample_seen(moved, state.lost)  # type: ignore[attr-defined]
        try:
            await watch(plan, state)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            state.interrupted = True  # type: ignore[attr-defined]
            raise
        return watch_session(plan, state, checklist)  # type: ignore[arg-type]

    app = ObserveApp(watch_session(plan, state, checklist), run_watch)  # type: ignore[arg-type]
    await app.run_async()
    session = watch_session(plan, state, checklist)  # type: ignore[arg-type]
    for name in write_outputs(session, outputs, not args.no_redact, args.redact_addresses):  # type: ignore[arg-type]
        say(f"wrote {name}")
    # The exit status says what the session says, as a watch without the TUI does.
    if state.interrupted:  # type: ignore[attr-defined]
        return ExitStatus.FAILED
    return ExitStatus.DIAGNOSED if diagnosed_causes(session, checklist) else ExitStatus.OK
