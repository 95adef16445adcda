"""`reset-wizard analyze CAPTURE [CAPTURE2]`: who sent every RST in capture files (I/O: reads them, writes outputs).

No root is needed and nothing is probed. One line per reset goes to stdout (to stderr when
--json - or --report - takes stdout); --json and --report write the session and the report.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from wizard.cli.console import say
from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

if TYPE_CHECKING:
    from wizard.cli.diagnose import Outputs

T = TypeVar("T")

DESCRIPTION = """\
Read pcap or pcapng files (from tcpdump, dumpcap or tshark; gzip too) and say for every
RST in them who sent it: the server's application, its kernel, its firewall, the client,
or something on the path, from the TTL and hop distance, IP ID, window, options, timing
and sequence fit. Given two captures of the same traffic, the first taken near the client
and the second near the server, each RST is also proved: sent (seen at both ends),
injected (seen near one end only, though the other end's capture has the flow) or lost.
Needs no root; nothing is probed."""

EXAMPLES = (
    "reset-wizard analyze client.pcap --report report.md",
    "reset-wizard analyze client.pcapng server.pcap.gz --port 443 --json -",
)

EXIT = {ExitStatus.OK: "finished: no cause of resets found (no RST in the captures)",
        ExitStatus.DIAGNOSED: "finished: at least one cause reached the checklist's threshold",
        ExitStatus.BAD_INPUT: "bad input: a missing or unreadable capture, a bad --port or output path",
        ExitStatus.FAILED: "the analysis failed or ran out of time (--timeout)"}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE",
                   help="a pcap or pcapng file (.gz too); near the client when two are given")
    p.add_argument("capture2", nargs="?", metavar="CAPTURE2", help="the same traffic captured near the server")
    p.add_argument("--port", metavar="P", help="only the connections to this server port")
    p.add_argument("--timeout", metavar="SECONDS", default="600", help="give up after this long")
    p.add_argument("--json", metavar="PATH", help="write the session as JSON (- is stdout)")
    p.add_argument("--report", metavar="PATH", help="write the Markdown report (- is stdout)")
    p.add_argument("--force", action="store_true", help="overwrite existing --json / --report files")
    p.add_argument("--no-redact", action="store_true", help="keep secrets and addresses in the outputs")
    p.add_argument("--redact-addresses", action="store_true", help="also replace IP addresses and host names")
    p.add_argument("--quiet", action="store_true", help="no line per reset, only the verdict")


def run(args: argparse.Namespace, probes: object = None) -> int:
    return analyze(args)


def checked_inputs(args: argparse.Namespace) -> tuple[list[str], int | None, float]:
    """The captures, the port and the timeout, or one WizardError line (before any reading)."""
    from wizard.diag.packets.io.pcapfile import sniff_format
    from wizard.diag.packets.io.pcaplib import CaptureError
    from wizard.model.target import parse_port

    port = parse_port(args.port) if args.port is not None else None
    try:
        timeout = float(args.timeout) if args.timeout.isascii() else -1.0
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 86400:
        raise WizardError("bad timeout", f"--timeout {args.timeout!r} is not a number of seconds (0 to 86400)")
    paths = [args.capture] + ([args.capture2] if args.capture2 else [])
    for path in paths:
        if not Path(path).is_file():
            raise WizardError("no such capture", f"{path} is not a file")
        try:
            sniff_format(path)
        except CaptureError as exc:
            raise WizardError(exc.title, exc.message) from None
    if len(paths) == 2 and Path(paths[0]).resolve() == Path(paths[1]).resolve():
        raise WizardError("same capture twice", f"{paths[0]}: the two-ended proof needs two captures")
    return paths, port, timeout


def analyze(args: argparse.Namespace) -> int:
    """The command, without an event loop: nothing here waits on more than one thing at a
    time, and asyncio's import (~17 ms of CPU, ssl and logging with it) would come out of
    the start-up that the capture's reading (begun in children) shares the CPU with."""
    from wizard.analysis import diagnosed_causes
    from wizard.cli.diagnose import write_outputs
    from wizard.engine.observe import analyze_captures
    from wizard.engine.shipped import checklist_path
    from wizard.model.checklist import load_checklist

    paths, port, timeout = checked_inputs(args)
    outputs = checked_outputs(args)
    # The causes and weights only: no check runs here, so none is imported to validate its
    # parameters (diagnose does that; the checklist's tests hold it to the registry), and no
    # log line is matched, so the signatures' regexes are not compiled (its tests compile them).
    checklist = load_checklist(checklist_path(), compile_signatures=False)
    if outputs.json is not None or outputs.report is not None:
        # What writes them (~25 ms of imports) loads now, while the children read the captures
        # and the parent has nothing else to do, rather than after their result, before the exit.
        importlib.import_module("wizard.report")
    try:
        session = in_thread(lambda: analyze_captures(paths, port, checklist, timeout))
    except TimeoutError as exc:
        say(f"reset-wizard: analysis failed: {exc}")
        return ExitStatus.FAILED
    stream = outputs.verdict_stream
    observation = session.observation
    if observation is not None and not args.quiet:
        for ev in observation.events:
            proof = f" [{ev.proof}]" if ev.proof else ""
            print(f"{ev.n:>4}  {ev.at:%Y-%m-%d %H:%M:%S.%f}  {ev.flow}  {ev.flags:<3} toward the {ev.toward}: "
                  f"{ev.sender_words}{proof}", file=stream)
    for line in verdict(session, checklist):
        print(line, file=stream)
    # The report's modules load only when there is something to write
    written = write_outputs(session, outputs, not args.no_redact, args.redact_addresses) \
        if outputs.json is not None or outputs.report is not None else []
    for name in written:
        say(f"wrote {name}")
    sys.stdout.flush()
    return ExitStatus.DIAGNOSED if diagnosed_causes(session, checklist) else ExitStatus.OK


def checked_outputs(args: argparse.Namespace) -> Outputs:
    """The --json and --report paths, checked as diagnose checks them; with neither given
    there is nothing to check, and neither the file checks nor their event loop load."""
    from wizard.cli.diagnose import Outputs, check_outputs

    if args.json is None and args.report is None:
        return Outputs(None, None, args.force)
    from wizard.cli.signals import run_async

    return run_async(check_outputs(args))


def in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own, its result or its exception handed back. The main
    thread only waits, in a join that a signal interrupts: libpcap's reading (a capture read
    here when no child read it) runs in C for long stretches, and Ctrl-C, SIGTERM and SIGHUP
    must not wait for it (their KeyboardInterrupt ends the run: wizard.entry). The thread
    is a daemon: an interrupted run ends without it."""
    got: list[tuple[bool, object]] = []

    def target() -> None:
        try:
            got.append((True, work()))
        except BaseException as exc:  # handed to the waiting thread, raised there
            got.append((False, exc))

    thread = threading.Thread(target=target, name="reset-wizard-analyze", daemon=True)
    thread.start()
    thread.join()
    ok, value = got[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def verdict(session: object, checklist: object) -> list[str]:
    from wizard.analysis import diagnosed_causes
    from wizard.model.wording import plural

    obs = session.observation  # type: ignore[attr-defined]
    n = len(obs.events) if obs else 0
    counts = ", ".join(f"{v} {k}" for k, v in (obs.by_sender if obs else {}).items())
    proofs = ", ".join(f"{v} {k}" for k, v in (obs.by_proof if obs else {}).items())
    lines = [plural(n, "reset") + (f": {counts}" if counts else "") + (f" (two-ended: {proofs})" if proofs else "")]
    found = diagnosed_causes(session, checklist)  # type: ignore[arg-type]
    lines += [f"cause: {f.title or f.cause} ({f.confidence:.0%})" for f in found[:3]]
    return lines
