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
from wizard.diag.packets.io.libpcap import libpcap_path
from wizard.diag.packets.io.pcapfile import CaptureFile, Offline, read, sniff_format
from wizard.diag.packets.parse.flows import Tracker, opened_only
from wizard.diag.packets.parse.frames import (
    KNOWN_LINKTYPES,
    Segment,
    decode,
    endpoints_key,
    ip_offset,
    opener_or_reset,
)
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
             "server-firewall": "rst.from_server_firewall", "path": "rst.from_path",
             "unknown": "rst.unattributed"}


class Deadline:
    """The CPU-work timeout of an analysis: checked every few thousand packets."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise TimeoutError(f"the analysis did not finish within {self.seconds:g}s")


def bpf_for(port: int | None) -> str:
    return "tcp" + (f" and port {port}" if port else "")


def _is_tcp(linktype: int, frame: bytes) -> bool:
    """Python's side of the BPF filter 'tcp' (for dpkt's records)."""
    where = ip_offset(linktype, frame)
    if where is None:
        return False
    off, version = where
    if version == 6:  # extension headers may come first: decode() looks past them
        return len(frame) > off + 6
    return len(frame) > off + 9 and frame[off + 9] == 6


# Pass 1 keeps the SYNs (to know where each flow starts) and the RSTs, in libpcap's C.
OPENERS_AND_RESETS = ("(tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn or tcp[tcpflags] & tcp-rst != 0"
                      " or (ip6 and ip6[6] == 6 and (ip6[53] & 0x12 == 0x02 or ip6[53] & 0x04 != 0)))")
MAX_RESET_FLOWS = 5000  # pass 2 reads back this many reset flows; beyond, one full pass


def track(path: str, port: int | None, deadline: Deadline, every_flow: bool = False
          ) -> tuple[Tracker, CaptureSummary]:
    """Read one capture through the tracker: every RST sighted, flows bounded. With
    ``every_flow`` the flows without a reset are kept too (the two-ended proof needs them)."""
    capture = sniff_format(path)
    if not capture.gzipped and libpcap_path() is not None:
        two = _two_passes(capture, port, deadline, every_flow)
        if two is not None:
            return two
    bpf = bpf_for(port)
    linktype, records, reader = read(capture, bpf, _is_tcp)
    if linktype not in KNOWN_LINKTYPES:
        raise WizardError("unsupported capture", f"{path}: link type {linktype} (Ethernet, Linux cooked, "
                          "raw IP and loopback are read)")
    tracker = Tracker(server_port=port)
    feed = tracker.feed
    for n, (ts, frame) in enumerate(records, 1):
        seg = decode(linktype, ts, frame)
        if seg is not None:
            feed(seg)
        if not n & 0x3FFF:
            deadline.check()
    summary = CaptureSummary(
        source=path, reader=f"{reader} ({capture.format}{', gzip' if capture.gzipped else ''}), filter '{bpf}'",
        linktype=linktype, packets=tracker.packets, flows=tracker.flows_seen, resets=len(tracker.sightings),
        first=_dt(tracker.first_ts), last=_dt(tracker.last_ts))
    return tracker, summary


def _two_passes(capture: CaptureFile, port: int | None, deadline: Deadline, every_flow: bool
                ) -> tuple[Tracker, CaptureSummary] | None:
    """libpcap in two passes: the SYNs and RSTs (where each reset flow starts and ends),
    then only the reset flows, read back from their SYN's offset. None: too many resets."""
    bpf = f"{bpf_for(port)} and {OPENERS_AND_RESETS}"
    off = Offline(capture.path)
    try:
        linktype = off.linktype
        if linktype not in KNOWN_LINKTYPES:
            return None
        off.set_filter(bpf)
        starts: dict[bytes, tuple[int, float, bytes]] = {}
        resets: list[tuple[bytes, Segment, int]] = []
        seen = 0
        next_record, tell = off.next, off.tell
        while (rec := next_record()) is not None:
            seen += 1
            ts, frame = rec
            quick = opener_or_reset(linktype, frame)
            if quick is None:
                continue
            key, bits = quick
            if bits & 0x04:
                seg = decode(linktype, ts, frame)
                if seg is not None:
                    rkey = endpoints_key(linktype, frame, reverse=True)
                    resets.append((key if key in starts else rkey or b"", seg, tell()))
            else:
                starts[key] = (tell(), ts, frame)
            if not seen & 0x3FFF:
                deadline.check()
        if len(resets) > MAX_RESET_FLOWS:
            return None
        tracker = Tracker(server_port=port)
        # One read-back per flow, up to its last RST (a flow reset both ways is read once).
        last: dict[bytes, int] = {}
        for flow_key, _rst, end in resets:
            if flow_key in starts:
                last[flow_key] = max(end, last.get(flow_key, 0))
        for flow_key, rst, _end in resets:
            if flow_key not in starts:
                tracker.feed(rst)  # the flow began before the capture did: the RST alone
            elif (stop := last.pop(flow_key, None)) is not None:
                _read_back(off, linktype, tracker, starts[flow_key], stop)
            deadline.check()
        _opened(tracker, starts, linktype, every_flow)
        tracker.packets += seen
        reader = f"libpcap ({capture.format}), two passes: filter '{bpf}', then the reset flows"
        return tracker, CaptureSummary(source=capture.path, reader=reader, linktype=linktype,
                                       packets=tracker.packets, flows=tracker.flows_seen,
                                       resets=len(tracker.sightings), first=_dt(tracker.first_ts),
                                       last=_dt(tracker.last_ts))
    finally:
        off.close()


def _opened(tracker: Tracker, starts: dict[bytes, tuple[int, float, bytes]], linktype: int,
            every_flow: bool) -> None:
    """The flows pass 1 saw open, counted (and kept, with ``every_flow``, up to the cap)."""
    tracker.flows_seen = max(tracker.flows_seen, len(starts))
    for i, (_offset, ts, frame) in enumerate(starts.values()):
        if not every_flow and i >= 1000:
            break  # a sample is enough to name the busiest server
        syn = decode(linktype, ts, frame)
        if syn is None:
            continue
        key = (syn.src, syn.sport, syn.dst, syn.dport)
        tracker.servers[(syn.dst, syn.dport)] += 0 if key in tracker.flows else 1
        if every_flow and key not in tracker.flows and len(tracker.flows) < tracker.max_flows:
            tracker.flows[key] = opened_only(syn)


def _read_back(off: Offline, linktype: int, tracker: Tracker, start: tuple[int, float, bytes], end: int) -> None:
    """Feed one reset flow to the tracker: its SYN, every packet after it up to ``end``."""
    offset, ts, frame = start
    syn = decode(linktype, ts, frame)
    if syn is None:
        return
    a, b = syn.src, syn.dst
    off.set_filter(f"tcp and host {a} and host {b} and port {syn.sport} and port {syn.dport}")
    off.seek(offset)
    tracker.feed(syn)
    while off.tell() < end and (rec := off.next()) is not None:
        seg = decode(linktype, rec[0], rec[1])
        if seg is not None:
            tracker.feed(seg)


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
        ev = to_event(len(events) + 1, verdict.other if verdict.other and s.toward == "client" else s,
                      ss.source if verdict.other and s.toward == "client" else cs.source)
        if verdict.other is not None:
            twins.add(id(verdict.other))
        _prove(ev, verdict.proof, verdict.detail)
        events.append(ev)
    for s in st.sightings:
        if id(s) in twins:
            continue
        verdict = judge(s, "server", at_client)
        ev = to_event(len(events) + 1, s, ss.source)
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
    notes = [["kernel", line] for line in observation.kernel] + [["logs", line] for line in observation.logs]
    if notes:
        evidence.append(Evidence(kind="table", title="What the watch read besides the packets", source=where,
                                 data={"columns": ["source", "what it gave"], "rows": notes}))
    for ev in events[:MAX_LADDERS]:
        lines = [f"- {r}" for r in ev.reasons] + [f"- the kernel dropped that second: {d}" for d in ev.drops] \
            + [f"- the flow's TCP state: {st}" for st in ev.states] + [f"- server log: {line}" for line in ev.logs]
        evidence.append(Evidence(kind="ladder", title=f"reset {ev.n}: {ev.flow}, {ev.sender_words}",
                                 source=ev.source, text="\n".join(lines), data=ev.ladder))
    if not events:
        signals["rst.none_seen"] = Signal(id="rst.none_seen", fact=f"no RST in {where}")
        return CheckResult(id="packets.observed", title="Resets in the observed traffic", status=Status.PASS,
                           summary="no reset in the traffic", evidence=evidence, signals=list(signals.values()))
    senders = ", ".join(f"{v} {k}" for k, v in observation.by_sender.items())
    return CheckResult(id="packets.observed", title="Resets in the observed traffic", status=Status.FAIL,
                       summary=f"{plural(len(events), 'reset')}: {senders}", evidence=evidence,
                       signals=list(signals.values()))
