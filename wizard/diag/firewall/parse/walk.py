"""Which firewall rules a connection meets: match rules against a flow, walk chains in hook order.

Pure: no I/O. Every answer is yes / may / no: "may" where a match cannot be decided
statically (client addresses, marks, sets and maps filled at run time, opaque matches).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any

from wizard.diag.firewall.parse.rules import (
    Chain,
    Match,
    NamedSet,
    Rule,
    Ruleset,
    Selector,
    port_in,
)

_PROTO_NUM = {"6": "tcp", "17": "udp"}
# A rule's or selector's family (nft's ip/ip6, a flow's ipv4/ipv6) as the flow names it.
_FAMILY_NF = {"ip": "ipv4", "ip6": "ipv6", "ipv4": "ipv4", "ipv6": "ipv6"}
_HOOK_ORDER = {"ingress": 0, "prerouting": 1, "input": 2, "forward": 2, "output": 3, "postrouting": 4}


@dataclass(frozen=True)
class Flow:
    """The connection a rule is judged against: TCP to ``port`` on one of ``daddrs``."""

    port: int
    nfproto: str = ""  # ipv4 / ipv6; empty when not known
    daddrs: tuple[str, ...] = ()

    @property
    def loopback(self) -> bool:
        return bool(self.daddrs) and all(_is_loopback(a) for a in self.daddrs)


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def _port_match(value: str, port: int, sets: dict[tuple[str, str, str], NamedSet], rule: Rule) -> Match:
    if value.startswith("@"):
        named = sets.get((rule.family, rule.table, value[1:]))
        if named is None:
            return "may"
        hit = any(_port_match(e, port, sets, rule) == "yes" for e in named.elements)
        return "yes" if hit else ("may" if named.dynamic else "no")
    return port_in(value, port)


def _addr_in(value: str, addrs: tuple[str, ...]) -> Match:
    if value.startswith("@") or not addrs:
        return "may"
    try:
        net = ipaddress.ip_network(value.replace(" ", ""), strict=False)
    except ValueError:
        return "may"
    inside = [ipaddress.ip_address(a) in net for a in addrs
              if ipaddress.ip_address(a).version == net.version]
    return "yes" if inside and all(inside) else ("may" if any(inside) else "no")


def _any_of(values: tuple[str, ...], judge: Any) -> Match:
    results = [judge(v) for v in values] or ["may"]
    return "yes" if "yes" in results else ("may" if "may" in results else "no")


def _negate(m: Match) -> Match:
    return {"yes": "no", "no": "yes", "may": "may"}[m]  # type: ignore[return-value]


def _judge(sel: Selector, rule: Rule, flow: Flow, sets: dict[tuple[str, str, str], NamedSet]) -> Match:
    if sel.field == "proto":
        m = _any_of(sel.values, lambda v: "yes" if _PROTO_NUM.get(v, v) == "tcp" else "no")
    elif sel.field == "dport":
        m = _any_of(sel.values, lambda v: _port_match(v, flow.port, sets, rule))
    elif sel.field == "daddr":
        m = _any_of(sel.values, lambda v: _addr_in(v, flow.daddrs))
    elif sel.field == "nfproto":
        if not flow.nfproto:
            return "may"
        m = "yes" if any(_FAMILY_NF.get(v, v) == flow.nfproto for v in sel.values) else "no"
    elif sel.field == "iif" and flow.loopback:
        m = "yes" if "lo" in sel.values else "no"
    elif sel.field == "ct state":
        # The connection's first packet is "new"; a rule for established packets may hit it later.
        if sel.op == "!=":
            return "yes" if "new" not in sel.values else "may"
        return "yes" if "new" in sel.values else "may"
    else:
        return "may"  # client address and port, marks, interfaces, opaque matches
    return _negate(m) if sel.op == "!=" else m


def matches_port(rule: Rule, port: int, *, flow: Flow | None = None,
                 sets: dict[tuple[str, str, str], NamedSet] | None = None) -> Match:
    """Whether ``rule`` applies to TCP connections to ``port``: yes, may (undecidable), or no."""
    flow = flow or Flow(port)
    if flow.nfproto and _FAMILY_NF.get(rule.family) not in (None, flow.nfproto):
        return "no"
    result: Match = "may" if rule.opaque else "yes"
    for sel in rule.selectors:
        m = _judge(sel, rule, flow, sets or {})
        if m == "no":
            return "no"
        if m == "may":
            result = "may"
    return result


def is_final(rule: Rule, match: Match) -> bool:
    """Whether every packet of the connection that reaches ``rule`` stops there."""
    return match == "yes" and not rule.limits and rule.verdict in ("accept", "drop", "reject")


# --------------------------------------------------------------------------- the walk

@dataclass(frozen=True)
class Hit:
    """A rule (or a base chain's policy, ``rule`` None) the connection may meet, and how it got there."""

    chain: Chain
    rule: Rule | None
    match: Match
    path: tuple[str, ...]  # "inet filter input", "jump svc", ...
    final: bool = False

    @property
    def verdict(self) -> str:
        return self.rule.verdict if self.rule else self.chain.policy

    @property
    def text(self) -> str:
        if self.rule:
            return self.rule.text
        return f"{self.chain.label}: policy {self.chain.policy}"

    def describe(self) -> str:
        end = self.rule.verdict_text() if self.rule else f"policy {self.chain.policy}"
        return " → ".join((*self.path, end))


_MAX_DEPTH = 16
_MAP_VERDICTS = {"accept", "drop", "return", "jump", "goto"}


def expand(rule: Rule, rs: Ruleset) -> list[Rule]:
    """A verdict-map rule as one rule per entry, the entry's key a selector; other rules as they are.

    ``tcp dport vmap { 80 : accept, 443 : drop }`` thus decides port 443 exactly; a map keyed
    on something the flow does not fix (the client's address) gives "may" entries, and a
    named map that is filled at run time adds a "may" rule whose verdict is unknown.
    """
    if not rule.vmap and not rule.vmap_ref:
        return [rule]
    entries, dynamic = rule.vmap, False
    if rule.vmap_ref:
        named = rs.maps.get((rule.family, rule.table, rule.vmap_ref))
        if named is None:
            return [replace(rule, target=f"verdict from map @{rule.vmap_ref} (not listed)",
                            selectors=(*rule.selectors, Selector("other", "==", (f"@{rule.vmap_ref}",))))]
        entries, dynamic = named.entries, named.dynamic
    out = [replace(rule, selectors=(*rule.selectors, Selector(rule.vmap_key or "other", "==", (key,))),
                   verdict=verdict if verdict in _MAP_VERDICTS else "none",  # type: ignore[arg-type]
                   target=target, vmap=(), vmap_ref="")
           for key, verdict, target in entries]
    if dynamic:
        out.append(replace(rule, selectors=(*rule.selectors, Selector("other", "==", ("map filled at run time",))),
                           verdict="none", target="verdict from a map filled at run time",
                           vmap=(), vmap_ref=""))
    return out


def _walk_chain(rs: Ruleset, chain: Chain, flow: Flow, path: tuple[str, ...],
                stack: tuple[tuple[str, str, str, str], ...]) -> tuple[list[Hit], str]:
    """Hits in one chain; the end is accept/drop/reject (certain), return (to the caller) or ""."""
    hits: list[Hit] = []
    for rule in (e for r in rs.rules.get(chain.key, []) for e in expand(r, rs)):
        m = matches_port(rule, flow.port, flow=flow, sets=rs.sets)
        if m == "no":
            continue
        hits.append(Hit(chain, rule, m, path, is_final(rule, m)))
        sure = m == "yes" and not rule.limits
        if rule.verdict in ("jump", "goto"):
            key = (chain.source, chain.family, chain.table, rule.target)
            sub = rs.chains.get(key)
            if sub is None or key in stack or len(stack) >= _MAX_DEPTH:
                continue
            sub_hits, end = _walk_chain(rs, sub, flow, (*path, f"{rule.verdict} {rule.target}"),
                                        (*stack, key))
            hits += sub_hits
            if sure and end in ("accept", "drop", "reject"):
                return hits, end
            if sure and rule.verdict == "goto":
                return hits, "return"  # goto never comes back here
        elif rule.verdict == "return" and sure:
            return hits, "return"
        elif is_final(rule, m):
            return hits, rule.verdict
    return hits, ""


def walk(rs: Ruleset, flow: Flow, hook: str = "input") -> list[Hit]:
    """Every rule the connection may meet on its way to ``hook`` (input, or forward on a router).

    Base chains run in hook and priority order, each ending in a certain verdict or its
    policy. An accept ends only its own chain (later base chains still see the packet); a
    certain drop or reject ends the walk.
    """
    hooks = ("ingress", "prerouting", hook)
    bases = [c for c in rs.chains.values() if c.hook in hooks and
             (not flow.nfproto or _FAMILY_NF.get(c.family) in (None, flow.nfproto)) and
             c.family != "bridge"]
    bases.sort(key=lambda c: (_HOOK_ORDER.get(c.hook, 9), c.prio, c.family, c.table, c.name))
    hits: list[Hit] = []
    for chain in bases:
        chain_hits, end = _walk_chain(rs, chain, flow, (chain.label,), (chain.key,))
        hits += chain_hits
        if end in ("drop", "reject"):
            break
        if end != "accept":
            hits.append(Hit(chain, None, "yes", (chain.label,), True))
            if chain.policy == "drop":
                break
    return hits
