"""Many hosts' sessions to one fleet view (pure): per host its verdict and resets, what
tells the hosts that see resets from those that do not, and one wall-clock timeline.

A host is known by its label (the session file's stem: the inventory name when Ansible
fetched it). Only the session's own decision is read: its ``verdict`` and ``diagnosis[0]``.
The merged verdict is decided once here (``decide``) and every output reads it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from wizard.model import NO_RESET, Session
from wizard.model.evidence import Table, body
from wizard.model.fleet import Difference, Fleet, FleetFinding, FleetVerdict, HostView, Pointer, TimelineEvent
from wizard.model.results import CheckResult, Evidence

# Server-side signals that say whether the server's end sent the resets the clients got.
SERVER_SIDE = {"server.rst_sent", "server.no_rst_sent", "ktrace.rst_sent", "ktrace.no_server_rst",
               "ktrace.rst_no_socket", "ktrace.rst_abort_on_close", "ktrace.rst_disconnect",
               "ktrace.netfilter_reject", "fw.reject_moved"}
# A host's firewall rules that turn connections away (facts of its configuration, not
# events: they are quoted beside the hosts they single out, never put on the timeline).
RULES = {"fw.reject_rule", "fw.reject_icmp_rule", "fw.drop_rule", "fw.rate_limit_rule", "fw.ct_count_rule",
         "fw.reject_only_limited"}
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
    # The session's own verdict, as its analysis decided it: diagnosis[0] when the verdict
    # names it (a cause, or no-reset-observed); a lead below the threshold is no verdict.
    verdict = session.verdict
    kind = verdict.kind if verdict is not None else ("interrupted" if session.interrupted else "no-cause")
    named = verdict is not None and verdict.cause is not None
    top = session.diagnosis[0] if named and session.diagnosis else None
    server_said = [f"{s.fact} ({cid})" for cid, s in session.signals() if s.id in SERVER_SIDE]
    rules = list(dict.fromkeys(s.fact for _, s in session.signals() if s.id in RULES))
    trace = checks.get("kernel.resets")
    traced = trace is not None and trace.status.value not in ("skip", "error")
    seen = resets > 0 or (verdict is not None and verdict.reset_observed is True)
    return HostView(
        label=label, file=file, client=session.context.client, server_context=session.context.server,
        role=_role(session, checks, sources), target=session.target.display(), addresses=list(session.target.addresses),
        sources=sources, first_hop=_first_hop(checks), kind=kind, verdict=top.cause if top else "",
        title=top.title if top else "", confidence=top.confidence if top else 0.0,
        summary=top.summary if top else (verdict.statement if verdict is not None else ""),
        saw_reset=kind == "cause" or (kind != "no-reset" and seen), resets=resets, attempts=attempts,
        server_said=server_said, rules=rules, traced=traced, interrupted=session.interrupted,
        started_at=session.started_at)


def verdict_words(h: HostView) -> str:
    """A host's verdict as the fleet's tables and sentences name it."""
    if h.verdict:
        return h.verdict
    return "interrupted" if h.kind == "interrupted" else "no cause found"


def _subnet(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def attributes(h: HostView) -> dict[str, str]:
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
    for attribute in attributes(hit[0]):
        with_resets = sorted({attributes(h)[attribute] for h in hit})
        without = sorted({attributes(h)[attribute] for h in clean})
        if not set(with_resets) & set(without):
            found.append(Difference(attribute=attribute, with_resets=with_resets, without_resets=without))
    return found


def _names(hosts: Iterable[HostView]) -> str:
    names = [h.label for h in hosts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def pointer(hosts: Sequence[HostView]) -> Pointer:
    clients = _judged(hosts)
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
    causes = sorted({verdict_words(h) for h in hit})
    if not clean:
        if len(causes) == 1 and all(h.kind == "cause" for h in hit):
            return Pointer(kind="everywhere", hosts=[h.label for h in hit],
                           headline=f"all {n} hosts see resets, and all name {causes[0]}: the cause is what they "
                                    "share (the target's server or the path they all cross), not any one client")
        if causes == ["no cause found"]:
            return Pointer(kind="everywhere-mixed", hosts=[h.label for h in hit],
                           headline=f"all {n} hosts see resets, with no cause found on any of them: what they "
                                    "share (the target's server, the path they all cross) is where to look")
        return Pointer(kind="everywhere-mixed", hosts=[h.label for h in hit],
                       headline=f"all {n} hosts see resets, but their verdicts differ ({', '.join(causes)}): "
                                "read the hosts' reports side by side")
    diffs = differences(hit, clean)
    which = f"only {_names(hit)} ({len(hit)} of {n} hosts) {'sees' if len(hit) == 1 else 'see'} resets"
    whose = "its verdict" if len(hit) == 1 else ("their verdict" if len(causes) == 1 else "their verdicts")
    names_cause = f" ({whose}: {', '.join(causes)})"
    if diffs:
        lead = diffs[0]
        tail = (f": {'it differs' if len(hit) == 1 else 'they differ'} from {_names(clean)} in {lead.attribute} "
                f"({'; '.join(lead.with_resets)} against {'; '.join(lead.without_resets)})")
    else:
        tail = f": nothing the sessions record tells them from {_names(clean)}; compare the hosts' own configuration"
    rules = singling_rules(hosts, hit, clean)
    sources = "source" if len(hit) == 1 else "sources"
    named = (f", and {_rule_owner(rules)} has the rule that names {_names(hit)}'s {sources} alone: "
             f"{rules[0].split(': ', 1)[1]}" if rules else "")
    return Pointer(kind="some-hosts", hosts=[h.label for h in hit], differences=diffs, rules=rules,
                   headline=which + names_cause + tail + _port_is_open(hit, clean, short=bool(rules)) + named)


def _rule_owner(rules: Sequence[str]) -> str:
    owners = list(dict.fromkeys(r.split(": ", 1)[0] for r in rules))
    return f"{_names_of(owners)}'s firewall" if len(owners) == 1 else f"the firewalls of {_names_of(owners)}"


def _names_of(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The addresses and prefixes a rule's text names (10.1.2.3, 10.1.2.0/24, fd00::/64)."""
    found = []
    for token in re.split(r"[\s,{}()\[\]]+", text):
        try:
            found.append(ipaddress.ip_network(token.strip(".;"), strict=False))
        except ValueError:
            continue
    return found


def _names_source(rule: str, sources: Iterable[str]) -> bool:
    nets = _networks(rule)
    for source in sources:
        try:
            ip = ipaddress.ip_address(source)
        except ValueError:
            continue
        if any(ip.version == n.version and ip in n for n in nets):
            return True
    return False


def singling_rules(hosts: Sequence[HostView], hit: Sequence[HostView], clean: Sequence[HostView]) -> list[str]:
    """Rules in any host's firewall (a server end's, usually) that name a source of every host
    that sees resets and none of the hosts that do not: "HOST: rule"."""
    found = []
    for h in hosts:
        for rule in h.rules:
            named = [_names_source(rule, x.sources) for x in hit], [_names_source(rule, x.sources) for x in clean]
            if all(named[0]) and not any(named[1]):
                found.append(f"{h.label}: {rule}")
    return found


REFUSALS = {"port-closed", "firewall-reject", "proxy-reject"}


def _port_is_open(hit: Sequence[HostView], clean: Sequence[HostView], short: bool = False) -> str:
    """Refusals seen from some hosts only, while others reach the same address: the port is
    open, so what refuses singles out the sources (``short``: a rule that does is quoted next)."""
    if not {h.verdict for h in hit} <= REFUSALS:  # a host with no cause named is no refusal either
        return ""
    reached = {a for h in clean for a in h.addresses} & {a for h in hit for a in h.addresses}
    if not reached:
        return ""
    if short:
        return f". The port is open ({_names(clean)} reached {', '.join(sorted(reached))})"
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


def _server_then(server: HostView, e: TimelineEvent, hosts: Sequence[HostView]) -> str:
    """What a server end that ran at the time of a client's reset recorded, with no event of
    its own then: whether it could have seen a reset sent, and its rules that name the client."""
    said = f"{server.label} ran then and " + ("its kernel trace saw no reset sent" if server.traced else
                                                "recorded no reset sent (its kernel trace did not run)")
    rule = _rule_naming(server, _host(hosts, e.host))
    return said + (f"; its firewall has a rule that names {e.host}'s source ({rule})" if rule else "")


def _host(hosts: Sequence[HostView], label: str) -> HostView | None:
    return next((h for h in hosts if h.label == label), None)


def _rule_naming(server: HostView, client: HostView | None) -> str:
    """The first of the server's rules that names ``client``'s source, or ""."""
    rules = [r for r in server.rules if client is not None and _names_source(r, client.sources)]
    return rules[0].split(":", 1)[0] if rules else ""


def _beside_rules(near: str, e: TimelineEvent, servers: Sequence[HostView], hosts: Sequence[HostView]) -> str:
    """What the server ends recorded near a client's reset, and, where none of it names that
    client, the server's rule that does: a server event then may be another host's doing (the
    fleet's runs overlap), a rule naming the client's source is not."""
    client = _host(hosts, e.host)
    if client is not None and _names_source(near, client.sources):
        return near
    rules = [(h.label, _rule_naming(h, client)) for h in servers]
    return near + "".join(f"; {label}'s firewall has a rule that names {e.host}'s source ({rule})"
                          for label, rule in rules if rule)


def timeline(items: Sequence[tuple[HostView, Session]]) -> list[TimelineEvent]:
    events = [e for h, s in items for e in _reset_times(h.label, s, h.role)]
    events += [e for h, s in items for e in _observed_events(h.label, s, h.role)]
    _match_flows(events, items)
    servers = [(h, s) for h, s in items if h.role == "server"]
    hosts = [h for h, _ in items]
    for e in events:
        if e.role != "client" or not servers or e.flow:
            continue
        near = [x for x in events if x.role == "server" and abs(x.at - e.at) <= MATCH_WINDOW]
        if near:
            e.matched = _beside_rules("; ".join(f"{x.host}: {x.what}" for x in near), e,
                                      [h for h, _ in servers], hosts)
        else:
            e.matched = "; ".join(_server_then(h, e, hosts) for h, s in servers if _covers(s, e.at))
    return sorted(events, key=lambda e: (e.at, e.host))


def _covers(session: Session, at: datetime) -> bool:
    start = session.started_at if session.started_at.tzinfo else session.started_at.replace(tzinfo=UTC)
    end = session.finished_at or start
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return start - MATCH_WINDOW <= at <= end + MATCH_WINDOW


def fleet_diagnosis(hosts: Sequence[HostView]) -> list[FleetFinding]:
    """The causes the hosts' verdicts name, the verdict's first: diagnosed causes by how many
    hosts name them, then by the surest host's confidence; no-reset-observed after them."""
    named: dict[str, list[HostView]] = {}
    for h in hosts:
        if h.verdict and h.kind in ("cause", "no-reset"):
            named.setdefault(h.verdict, []).append(h)
    found = [FleetFinding(cause=cause, hosts=[h.label for h in hs], confidence=max(h.confidence for h in hs),
                          diagnosed=all(h.kind == "cause" for h in hs)) for cause, hs in named.items()]
    return sorted(found, key=lambda f: (not f.diagnosed, -len(f.hosts), -f.confidence, f.cause))


def decide(hosts: Sequence[HostView], point: Pointer, diagnosis: Sequence[FleetFinding]) -> FleetVerdict:
    """The merged verdict, once: the pointer's hosts (the clients, or all hosts when none is
    a client) decide it, the pointer's headline says it, the exit status follows it."""
    judged = {h.label for h in _judged(hosts)}
    first = diagnosis[0] if diagnosis else None
    statement = point.headline
    if first is not None and first.diagnosed:
        return FleetVerdict(kind="cause", cause=first.cause, confidence=first.confidence, hosts=list(point.hosts),
                            statement=statement, exit_status=1)
    if point.kind == "interrupted":
        return FleetVerdict(kind="interrupted", hosts=list(point.hosts), statement=statement, exit_status=3)
    if first is not None and first.cause == NO_RESET and judged <= set(first.hosts):
        return FleetVerdict(kind="no-reset", cause=NO_RESET, confidence=min(
            h.confidence for h in hosts if h.label in judged), hosts=sorted(judged, key=[h.label for h in hosts].index),
            statement=statement, exit_status=0)
    return FleetVerdict(kind="no-cause", hosts=list(point.hosts), statement=statement, exit_status=0)


def _judged(hosts: Sequence[HostView]) -> list[HostView]:
    return [h for h in hosts if h.role == "client"] or list(hosts)


def merge(sessions: Sequence[tuple[str, str, Session]], now: datetime | None = None) -> Fleet:
    """``sessions``: (label, file, session) for each host, in the order given."""
    items = [(view(label, file, s), s) for label, file, s in sessions]
    hosts = [h for h, _ in items]
    point = pointer(hosts)
    diagnosis = fleet_diagnosis(_judged(hosts))
    return Fleet(merged_at=now or datetime.now(UTC), verdict=decide(hosts, point, diagnosis), diagnosis=diagnosis,
                 hosts=hosts, pointer=point, timeline=timeline(items))
