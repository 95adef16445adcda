"""Resets in real traffic turned into a session (I/O): capture files now, the live watch too.

The same tracker and the same attribution serve both sources; the result is a Session
whose observation holds every reset, whose handshake step holds one check result with the
signals of all of them, and whose diagnosis is the usual analysis of those signals.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from wizard import __version__
from wizard.analysis import conclude
from wizard.diag.packets.io.gather import gather
from wizard.diag.packets.io.pcaplib import CaptureError
from wizard.diag.packets.io.prefetch import take
from wizard.diag.packets.parse.flows import Tracker
from wizard.diag.packets.parse.sightings import to_event
from wizard.diag.packets.parse.twoends import FlowIndex, judge
from wizard.model import CheckResult, Evidence, Session, Signal, Status, ToolInfo
from wizard.model.checklist import Checklist
from wizard.model.errors import WizardError
from wizard.model.observed import CaptureSummary, Observation, ResetEvent
from wizard.model.session import Context
from wizard.model.target import Target
from wizard.model.wording import plural

MAX_EVENTS = 10_000  # events kept in a session; past it they are counted
MAX_LADDERS = 20  # ladders in the report's evidence
SIGNAL_OF = {"server-kernel": "rst.from_server_kernel", "server-app": "rst.from_server_app",
             "server-firewall": "rst.from_server_firewall", "server-host": "rst.from_server_host",
             "path": "rst.from_path",
             "unknown": "rst.unattributed"}


class Deadline:
    """The CPU-work timeout of an analysis: checked every few thousand packets."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise TimeoutError(f"the analysis did not finish within {self.seconds:g}s")


def track(path: str, port: int | None, deadline: Deadline, every_flow: bool = False
          ) -> tuple[Tracker, CaptureSummary]:
    """Read one capture through the tracker: every RST sighted, flows bounded. With
    ``every_flow`` the flows without a reset are kept too (the two-ended proof needs them).
    A read begun at start-up (wizard.diag.packets.io.prefetch) is taken when it asked the same."""
    try:
        got = take(path, port, every_flow, deadline.left())
        if got is None:
            got = gather(path, port, every_flow, deadline.check)
    except CaptureError as exc:
        raise WizardError(exc.title, exc.message) from None
    tracker = got.tracker
    summary = CaptureSummary(source=path, reader=got.reader, linktype=got.linktype, packets=tracker.packets,
                             flows=tracker.flows_seen, resets=len(tracker.sightings), first=_dt(tracker.first_ts),
                             last=_dt(tracker.last_ts))
    return tracker, summary


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def analyze_captures(paths: list[str], port: int | None, checklist: Checklist,
                     timeout_s: float = 600.0) -> Session:
    """The session of one capture, or of two (near the client, then near the server)."""
    deadline = Deadline(timeout_s)
    started = datetime.now(UTC)
    tracked = [track(p, port, deadline, every_flow=len(paths) == 2) for p in paths]
    observation = Observation(sources=[s for _, s in tracked])
    if len(tracked) == 2:
        tracked[0][1].side, tracked[1][1].side = "client", "server"
        observation.events = _two_ended(tracked[0], tracked[1])
    else:
        tracker, summary = tracked[0]
        observation.events = [to_event(i + 1, s, summary.source) for i, s in enumerate(tracker.sightings[:MAX_EVENTS])]
        observation.dropped_events = max(0, len(tracker.sightings) - MAX_EVENTS)
    observation.count()
    session = Session(tool=ToolInfo(version=__version__), started_at=started, target=_target(tracked, port),
                      context=Context(client=socket.gethostname(), server="capture"), mode="analyze",
                      observation=observation)
    session.step("handshake").checks.append(observed_result(observation, "capture"))
    conclude(checklist, session)
    session.finished_at = datetime.now(UTC)
    return session


def _two_ended(near_client: tuple[Tracker, CaptureSummary], near_server: tuple[Tracker, CaptureSummary]
               ) -> list[ResetEvent]:
    (ct, cs), (st, ss) = near_client, near_server
    at_client = FlowIndex(list(ct.flows.values()), ct.sightings)
    at_server = FlowIndex(list(st.flows.values()), st.sightings)
    events: list[ResetEvent] = []
    twins: set[int] = set()
    for s in ct.sightings:
        verdict = judge(s, "client", at_server)
        # The sender is read where it sent from: the server's RSTs at the server's end.
        there = verdict.other if s.toward == "client" else None
        ev = to_event(len(events) + 1, there or s, ss.source if there else cs.source,
                      from_server_end=there is not None)
        if verdict.other is not None:
            twins.add(id(verdict.other))
        _prove(ev, verdict.proof, verdict.detail)
        events.append(ev)
    for s in st.sightings:
        if id(s) in twins:
            continue
        verdict = judge(s, "server", at_client)
        # seen near the server only: toward the client, it left the server's end (lost on the way)
        ev = to_event(len(events) + 1, s, ss.source, from_server_end=s.toward == "client")
        _prove(ev, verdict.proof, verdict.detail)
        events.append(ev)
    events.sort(key=lambda e: e.at)
    for i, ev in enumerate(events[:MAX_EVENTS]):
        ev.n = i + 1
    return events[:MAX_EVENTS]


def _prove(ev: ResetEvent, proof: str, detail: str) -> None:
    ev.proof, ev.proof_detail = proof, detail  # type: ignore[assignment]
    ev.reasons.append(f"two-ended proof: {detail}")
    if proof == "injected":
        ev.sender, ev.sender_words = "path", "something between the two capture points (injected)"


def _target(tracked: list[tuple[Tracker, CaptureSummary]], port: int | None) -> Target:
    """The busiest server endpoint of the captures (or the --port's), as the session's target."""
    servers: Counter[tuple[str, int]] = Counter()
    for tracker, _ in tracked:
        servers.update(tracker.servers)
        for s in tracker.sightings:
            servers[(s.flow.key[2], s.flow.key[3])] += 5
    if not servers:
        name = Path(tracked[0][1].source).name
        where = f" on port {port}" if port else ""
        raise WizardError("no TCP in the capture", f"{name} holds no TCP packets{where}")
    (host, server_port), _ = servers.most_common(1)[0]
    return Target(host=host, port=server_port, addresses=[host])


def observed_result(observation: Observation, where: str) -> CheckResult:
    """The observation as one result of the handshake step: its signals feed the analysis."""
    events = observation.events
    rows = [[k, v] for k, v in observation.by_sender.items()]
    evidence = [Evidence(kind="table", title=f"{plural(len(events), 'reset')} by sender", source=where,
                         data={"columns": ["sender", "resets"], "rows": rows})]
    signals: dict[str, Signal] = {}
    for ev in events:
        sig = SIGNAL_OF.get(ev.sender)
        if sig and sig not in signals:
            n = observation.by_sender[ev.sender]
            signals[sig] = Signal(id=sig, fact=f"{n} of {plural(len(events), 'reset')} {ev.sender_words}; the first: "
                                  f"{ev.flow} at {ev.at:%H:%M:%S.%f} ({ev.reasons[0]})")
        for extra in ev.signals:
            fact = f"reset {ev.n} ({ev.flow}): {ev.timing_detail or extra}"
            signals.setdefault(extra, Signal(id=extra, fact=fact))
    notes = [["kernel", line] for line in observation.kernel] + [["logs", line] for line in observation.logs] \
        + [["capture", note] for src in observation.sources for note in src.notes]
    if notes:
        evidence.append(Evidence(kind="table", title="What the watch read besides the packets", source=where,
                                 data={"columns": ["source", "what it gave"], "rows": notes}))
    for ev in events[:MAX_LADDERS]:
        lines = [f"- {r}" for r in ev.reasons] + [f"- the kernel dropped that second: {d}" for d in ev.drops] \
            + [f"- the flow's TCP state: {st}" for st in ev.states] + [f"- server log: {line}" for line in ev.logs]
        evidence.append(Evidence(kind="ladder", title=f"reset {ev.n}: {ev.flow}, {ev.sender_words}",
                                 source=ev.source, text="\n".join(lines), data=ev.ladder))
    lost = observation.lost_packets
    missed = f"; {plural(lost, 'packet')} lost by the capture, resets among them not seen" if lost else ""
    if not events:
        signals["rst.none_seen"] = Signal(id="rst.none_seen", fact=f"no RST in {where}")
        return CheckResult(id="packets.observed", title="Resets in the observed traffic", status=Status.PASS,
                           summary=f"no reset in the traffic{missed}", evidence=evidence,
                           signals=list(signals.values()))
    senders = ", ".join(f"{v} {k}" for k, v in observation.by_sender.items())
    return CheckResult(id="packets.observed", title="Resets in the observed traffic", status=Status.FAIL,
                       summary=f"{plural(len(events), 'reset')}: {senders}{missed}", evidence=evidence,
                       signals=list(signals.values()))
