"""Resets in real traffic turned into a session (I/O): capture files now, the live watch too.

The same tracker and the same attribution serve both sources; the result is a Session
whose observation holds every reset, whose handshake step holds one check result with the
signals of all of them, and whose diagnosis is the usual analysis of those signals.
"""

from __future__ import annotations

import socket
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from wizard import __version__
from wizard.analysis import conclude
from wizard.diag.kernel.parse.counters import moved_signals
from wizard.diag.packets.io.gather import gather
from wizard.diag.packets.io.pcaplib import CaptureError
from wizard.diag.packets.io.prefetch import take
from wizard.diag.packets.parse.attribution import SENDER_SIGNAL
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
# A watch samples the server's counters once a second: the second of a reset holds the rest of
# the host's traffic too, so what moved in it speaks for the reset less than a probe's bracket.
SECOND_STRENGTH = 0.7
NAMES_ADDRESS, NAMES_NOBODY = 0.8, 0.5  # a log line of a reset's second that names its client's address only, or nobody
SAMPLED_EVENTS = 300  # the resets whose counters and log lines are weighed: all, or an even sample


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
        got = gather(path, port, every_flow, deadline.check, first=take(path, port, deadline.left()))
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
    session.step("handshake").checks.append(observed_result(observation, "capture", checklist))
    conclude(checklist, session)
    session.finished_at = datetime.now(UTC)
    return session


def _two_ended(near_client: tuple[Tracker, CaptureSummary], near_server: tuple[Tracker, CaptureSummary]
               ) -> list[ResetEvent]:
    (ct, cs), (st, ss) = near_client, near_server
    at_client = FlowIndex(list(ct.flows.values()), ct.sightings)
    at_server = FlowIndex(list(st.flows.values()), st.sightings)
    events: list[ResetEvent] = []
    paired: set[int] = set()  # the RSTs of either capture found at the other end
    for s in ct.sightings:
        verdict = judge(s, "client", at_server, paired)
        # The sender is read where it sent from: the server's RSTs at the server's end.
        there = verdict.other if s.toward == "client" else None
        ev = to_event(len(events) + 1, there or s, ss.source if there else cs.source,
                      from_server_end=there is not None)
        _prove(ev, verdict.proof, verdict.detail)
        events.append(ev)
    for s in st.sightings:
        if id(s) in paired:
            continue
        verdict = judge(s, "server", at_client, paired)
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


def evidence_signals(observation: Observation, checklist: Checklist | None) -> list[Signal]:
    """What came with the resets besides their packets, weighed as diagnose weighs it: the
    server's counters that moved in a reset's second, and the server's log lines of that
    second that match a signature of ``checklist``, each quoted with its source. A signal's
    strength is the share of the resets it came with (of an even sample of them), so that a
    line beside one reset in a hundred does not outweigh the line beside every one, and a line
    that names the reset's client (its address and port) counts more than one of that second
    that names nobody (``_nearness``)."""
    events = observation.events
    sample = events[::max(1, -(-len(events) // SAMPLED_EVENTS))]
    said = _lines_signals(list(dict.fromkeys(line for ev in sample for line in ev.logs)), checklist)
    found: dict[str, tuple[str, float]] = {}  # signal -> its first fact, its strength
    times: Counter[str] = Counter()  # signal -> resets of the sample it came with
    weight: defaultdict[str, float] = defaultdict(float)  # signal -> its strengths summed over those resets
    for ev in sample:
        own = {sid: (fact, SECOND_STRENGTH)
               for sid, fact in moved_signals(ev.counters, f"in the second of reset {ev.n} ({ev.flow})")}
        for line in ev.logs:
            near = _nearness(line, ev)
            for sid, fact in said[line].items():
                if near > own.get(sid, ("", 0.0))[1]:
                    own[sid] = (fact, near)
        for sid, hit in own.items():
            if hit[1] > found.get(sid, ("", 0.0))[1]:
                found[sid] = hit  # the fact quoted is the line that weighs most
            weight[sid] += hit[1]
            times[sid] += 1
    out = []
    for sid, (fact, _) in found.items():
        with_n = "" if times[sid] == len(sample) else f"; beside {times[sid]} of {plural(len(sample), 'reset')}"
        out.append(Signal(id=sid, fact=fact + with_n, strength=round(max(0.01, weight[sid] / len(sample)), 3)))
    return out


def _nearness(line: str, ev: ResetEvent) -> float:
    """How surely a log line of a reset's second is about that reset: it names the reset's
    client with its port, its address only, or nobody (the second's other traffic)."""
    if ev.client in line:
        return 1.0
    address = ev.client.rpartition(":")[0].strip("[]")
    return NAMES_ADDRESS if address and address in line else NAMES_NOBODY


def _lines_signals(lines: list[str], checklist: Checklist | None) -> dict[str, dict[str, str]]:
    """What each log line raises through the signatures it matches (step 3's Python matcher,
    ``Selector.ids``, and its ``line_signal``): signal -> the line quoted with its signature."""
    if not lines or checklist is None:
        return {line: {} for line in lines}
    # a capture's resets come with no log lines: the matcher loads only for a watch's
    from wizard.diag.logs.io.cut import Selector
    from wizard.diag.logs.parse.servers import line_signal
    from wizard.model.cancel import Stop  # asyncio with it: a capture's analysis runs without

    signatures = checklist.signatures
    matched = Selector.of([sig.regex for sig in signatures]).ids(lines, Stop())
    out: dict[str, dict[str, str]] = {}
    for line, ids in zip(lines, matched, strict=True):
        raised = out[line] = {}
        for k in ids:
            sid, meaning = line_signal(signatures[k].id, signatures[k].cls, line)
            if sid and sid not in raised:
                quoted = line if len(line) <= 300 else line[:299] + "…"
                raised[sid] = f"{quoted} ({signatures[k].id}{': ' + meaning if meaning else ''})"
    return out


def observed_result(observation: Observation, where: str, checklist: Checklist | None = None) -> CheckResult:
    """The observation as one result of the handshake step: its signals feed the analysis,
    with what the events' counters and log lines say (:func:`evidence_signals`)."""
    events = observation.events
    rows = [[k, v] for k, v in observation.by_sender.items()]
    evidence = [Evidence(kind="table", title=f"{plural(len(events), 'reset')} by sender", source=where,
                         data={"columns": ["sender", "resets"], "rows": rows})]
    signals: dict[str, Signal] = {}
    for ev in events:
        sig = SENDER_SIGNAL.get(ev.sender)  # a client's own RST raises none
        if sig and sig not in signals:
            n = observation.by_sender[ev.sender]
            signals[sig] = Signal(id=sig, fact=f"{n} of {plural(len(events), 'reset')} {ev.sender_words}; the first: "
                                  f"{ev.flow} at {ev.at:%H:%M:%S.%f} ({ev.reasons[0]})")
        for extra in ev.signals:
            fact = f"reset {ev.n} ({ev.flow}): {ev.timing_detail or extra}"
            signals.setdefault(extra, Signal(id=extra, fact=fact))
    for said in evidence_signals(observation, checklist):
        signals.setdefault(said.id, said)
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
