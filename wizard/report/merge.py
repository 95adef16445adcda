"""Many hosts' sessions to one fleet view (pure): per host its verdict and resets, what
tells the hosts that see resets from those that do not, and one wall-clock timeline.

A host is known by its label (the session file's stem: the inventory name when Ansible
fetched it). Only the session's own decision is read: ``diagnosis[0]`` is the verdict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from wizard.model import NO_RESET, Session
from wizard.model.evidence import Table, body
from wizard.model.fleet import Difference, Fleet, HostView, Pointer, TimelineEvent
from wizard.model.results import CheckResult, Evidence

# Server-side signals that say whether the server's end sent the resets the clients got.
SERVER_SIDE = {"server.rst_sent", "server.no_rst_sent", "ktrace.rst_sent", "ktrace.no_server_rst",
               "ktrace.rst_no_socket", "ktrace.rst_abort_on_close", "ktrace.rst_disconnect",
               "ktrace.netfilter_reject", "fw.reject_moved"}
MATCH_WINDOW = timedelta(seconds=5)


def _checks(session: Session) -> dict[str, CheckResult]:
    return {c.id: c for step in session.steps for c in step.checks}


def _evidence(checks: dict[str, CheckResult], check_id: str) -> list[Evidence]:
    check = checks.get(check_id)
    return check.evidence if check is not None else []


def is_reset(outcome: str) -> bool:
    """A probe outcome that was a reset: after the handshake, or to the SYN (refused)."""
    return outcome.startswith(("reset", "refused"))


def probe_counts(checks: dict[str, CheckResult]) -> tuple[int, int, list[str]]:
    """(resets, attempts, source addresses) of the burst and the exchange."""
    resets = attempts = 0
    sources: list[str] = []
    for ev in _evidence(checks, "tcp.burst"):
        table = body(ev)
        if isinstance(table, Table) and "outcome" in table.columns:
            at = table.columns.index("outcome")
            attempts += len(table.rows)
            resets += sum(1 for row in table.rows if len(row) > at and is_reset(str(row[at])))
    for ev in _evidence(checks, "tcp.exchange"):
        data = ev.data
        if "stage" in data and "kind" in data:
            attempts += 1
            resets += is_reset(str(data["kind"]))
        local = str(data.get("local", ""))
        if local:
            host = local.rsplit(":", 1)[0].strip("[]")
            if host not in sources:
                sources.append(host)
    return resets, attempts, sources


def _first_hop(checks: dict[str, CheckResult]) -> str:
    for ev in _evidence(checks, "packets.traceroute"):
        hops = ev.data.get("hops", [])
        if len(hops) > 1:  # one hop is the target itself: no router between
            return str(hops[0].get("address", ""))
    return ""


def _role(session: Session, checks: dict[str, CheckResult], sources: list[str]) -> str:
    """The server end: a session run on the server itself (the probe came from one of the
    target's own addresses, and the listener was read locally)."""
    listen = checks.get("listen.sockets")
    present = listen is not None and any(s.id == "listener.present" for s in listen.signals)
    own = any(a in sources for a in session.target.addresses)
    return "server" if session.context.server == "local" and present and own else "client"


def _observed(session: Session) -> int:
    """Resets seen in real traffic by a watch or an analysis."""
    return len(session.observation.events) + session.observation.dropped_events if session.observation else 0


def view(label: str, file: str, session: Session) -> HostView:
    checks = _checks(session)
    resets, attempts, sources = probe_counts(checks)
    resets += _observed(session)
    # The session's own verdict: diagnosis[0] when the verdict names it (a cause, or
    # no-reset-observed), else no cause of resets (a lead below the threshold is no verdict).
    decided = session.verdict is not None and session.verdict.cause is not None
    top = session.diagnosis[0] if decided and session.diagnosis else None
    verdict = top.cause if top else NO_RESET
    server_said = [f"{s.fact} ({cid})" for cid, s in session.signals() if s.id in SERVER_SIDE]
    return HostView(
        label=label, file=file, client=session.context.client, server_context=session.context.server,
        role=_role(session, checks, sources), target=session.target.display(), addresses=list(session.target.addresses),
        sources=sources, first_hop=_first_hop(checks), verdict=verdict, title=top.title if top else "",
        confidence=top.confidence if top else 0.0, summary=top.summary if top else "",
        saw_reset=verdict != NO_RESET, resets=resets, attempts=attempts, server_said=server_said,
        interrupted=session.interrupted, started_at=session.started_at)


def _subnet(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _attributes(h: HostView) -> dict[str, str]:
    return {
        "target address": ", ".join(sorted(h.addresses)) or "unresolved",
        "first hop": h.first_hop or "direct (no router traced)",
        "source subnet": ", ".join(sorted({_subnet(a) for a in h.sources})) or "unknown",
        "source address": ", ".join(sorted(h.sources)) or "unknown",
        "server context": h.server_context,
    }


def differences(hit: Sequence[HostView], clean: Sequence[HostView]) -> list[Difference]:
    """Attributes whose values among the hosts that saw resets share none with the others'."""
    found = []
    for attribute in _attributes(hit[0]):
        with_resets = sorted({_attributes(h)[attribute] for h in hit})
        without = sorted({_attributes(h)[attribute] for h in clean})
        if not set(with_resets) & set(without):
            found.append(Difference(attribute=attribute, with_resets=with_resets, without_resets=without))
    return found


def _names(hosts: Iterable[HostView]) -> str:
    names = [h.label for h in hosts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def pointer(hosts: Sequence[HostView]) -> Pointer:
    clients = [h for h in hosts if h.role == "client"] or list(hosts)
    hit = [h for h in clients if h.saw_reset]
    clean = [h for h in clients if not h.saw_reset]
    n = len(clients)
    if not hit:
        missing = [h for h in clients if h.interrupted]
        if missing:
            return Pointer(kind="interrupted", hosts=[h.label for h in missing],
                           headline=f"no host saw a reset, but {_names(missing)} did not finish: "
                                    "the fleet is not known to be clean")
        return Pointer(kind="no-resets", headline=f"none of the {n} hosts saw a reset")
    causes = sorted({h.verdict for h in hit})
    if not clean:
        if len(causes) == 1:
            return Pointer(kind="everywhere", hosts=[h.label for h in hit],
                           headline=f"all {n} hosts see resets, and all name {causes[0]}: the cause is what they "
                                    "share (the target's server or the path they all cross), not any one client")
        return Pointer(kind="everywhere-mixed", hosts=[h.label for h in hit],
                       headline=f"all {n} hosts see resets, but their verdicts differ ({', '.join(causes)}): "
                                "read the hosts' reports side by side")
    diffs = differences(hit, clean)
    which = f"only {_names(hit)} ({len(hit)} of {n} hosts) {'sees' if len(hit) == 1 else 'see'} resets"
    names_cause = f" ({causes[0]})" if len(causes) == 1 else f" ({', '.join(causes)})"
    if diffs:
        lead = diffs[0]
        tail = (f": they differ from {_names(clean)} in {lead.attribute} "
                f"({'; '.join(lead.with_resets)} against {'; '.join(lead.without_resets)})")
    else:
        tail = f": nothing the sessions record tells them from {_names(clean)}; compare the hosts' own configuration"
    return Pointer(kind="some-hosts", hosts=[h.label for h in hit], differences=diffs,
                   headline=which + names_cause + tail + _port_is_open(hit, clean))


REFUSALS = {"port-closed", "firewall-reject", "proxy-reject"}


def _port_is_open(hit: Sequence[HostView], clean: Sequence[HostView]) -> str:
    """Refusals seen from some hosts only, while others reach the same address: the port is
    open, so what refuses singles out the sources."""
    if not {h.verdict for h in hit} <= REFUSALS:
        return ""
    reached = {a for h in clean for a in h.addresses} & {a for h in hit for a in h.addresses}
    if not reached:
        return ""
    return (f". The port is open: {_names(clean)} reached {', '.join(sorted(reached))}, so the refusals come from a "
            "rule that singles out the refused hosts' sources (a firewall or proxy ACL, a per-source limit) on "
            "the server or on their path, not from a closed port")


def _reset_times(label: str, session: Session, role: str) -> list[TimelineEvent]:
    events = []
    for step in session.steps:
        for check in step.checks:
            if check.started_at is None:
                continue
            at = check.started_at if check.started_at.tzinfo else check.started_at.replace(tzinfo=UTC)
            if role == "client" and check.id in ("tcp.burst", "tcp.exchange") and probe_counts({check.id: check})[0]:
                events.append(TimelineEvent(at=at, host=label, role="client", what=f"{check.id}: {check.summary}"))
            if role == "server":
                events += [TimelineEvent(at=at, host=label, role="server", what=f"{check.id}: {s.fact}")
                           for s in check.signals if s.id in SERVER_SIDE]
    return events


def _observed_events(label: str, session: Session, role: str) -> list[TimelineEvent]:
    if session.observation is None:
        return []
    return [TimelineEvent(at=ev.at if ev.at.tzinfo else ev.at.replace(tzinfo=UTC), host=label, role=role,
                          flow=ev.flow, what=f"RST toward the {ev.toward} in {ev.flow}: {ev.sender_words}")
            for ev in session.observation.events]


def _match_flows(events: list[TimelineEvent], items: Sequence[tuple[HostView, Session]]) -> None:
    """The same flow seen by two hosts (a client's watch and the server's): say what the
    other end saw, or that it watched then and saw no RST in that flow."""
    for e in events:
        if not e.flow:
            continue
        others = [x for x in events if x.flow == e.flow and x.host != e.host and abs(x.at - e.at) <= MATCH_WINDOW]
        if others:
            e.matched = "; ".join(f"{x.host}: {x.what}" for x in others)
            continue
        watched = [h.label for h, s in items if h.label != e.host and s.mode != "diagnose" and _covers(s, e.at)]
        if watched:
            e.matched = f"{', '.join(watched)} watched then and saw no RST in this flow"


def timeline(items: Sequence[tuple[HostView, Session]]) -> list[TimelineEvent]:
    events = [e for h, s in items for e in _reset_times(h.label, s, h.role)]
    events += [e for h, s in items for e in _observed_events(h.label, s, h.role)]
    _match_flows(events, items)
    servers = [(h, s) for h, s in items if h.role == "server"]
    for e in events:
        if e.role != "client" or not servers or e.flow:
            continue
        near = [x for x in events if x.role == "server" and abs(x.at - e.at) <= MATCH_WINDOW]
        if near:
            e.matched = "; ".join(f"{x.host}: {x.what}" for x in near)
        else:
            covered = [h.label for h, s in servers if _covers(s, e.at)]
            e.matched = f"{', '.join(covered)} ran then and saw no reset sent" if covered else ""
    return sorted(events, key=lambda e: (e.at, e.host))


def _covers(session: Session, at: datetime) -> bool:
    start = session.started_at if session.started_at.tzinfo else session.started_at.replace(tzinfo=UTC)
    end = session.finished_at or start
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return start - MATCH_WINDOW <= at <= end + MATCH_WINDOW


def merge(sessions: Sequence[tuple[str, str, Session]], now: datetime | None = None) -> Fleet:
    """``sessions``: (label, file, session) for each host, in the order given."""
    items = [(view(label, file, s), s) for label, file, s in sessions]
    hosts = [h for h, _ in items]
    return Fleet(merged_at=now or datetime.now(UTC), hosts=hosts, pointer=pointer(hosts), timeline=timeline(items))
