"""Firewall rules as values: selectors, rules, chains, named sets and maps, a ruleset.

Pure: no I/O. The parsers that build them live beside: ``fwnft`` (nft JSON and text),
``fwipt`` (iptables-save), ``fwfront`` (ufw and firewalld); matching and the chain walk in
``fwwalk``. A parser never raises on bad input: what it could not read goes in
``Ruleset.problems`` so the check can say so instead of pretending the ruleset is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Match = Literal["yes", "may", "no"]
Verdict = Literal["accept", "drop", "reject", "jump", "goto", "return", "none"]

# Matches that limit a rate or a count: a rule with one does not decide every packet.
LIMIT_MATCHES = frozenset({"limit", "hashlimit", "connlimit", "recent"})


def port_in(value: str, port: int) -> Match:
    """Whether a port value as the tools write it (``80``, ``8000-8100``) holds ``port``; "may" for a name."""
    lo, sep, hi = value.partition("-")
    try:
        if sep:
            return "yes" if int(lo) <= port <= int(hi) else "no"
        return "yes" if int(value) == port else "no"
    except ValueError:
        return "may"  # a service name or something the tool wrote we do not know


@dataclass(frozen=True)
class Selector:
    """One condition of a rule: ``field op values`` (values as nft writes them: 80, 8000-8100, @set)."""

    field: str  # proto, dport, sport, saddr, daddr, iif, nfproto, ct state, other
    op: str = "=="  # == or !=
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    source: str  # nft, iptables, ip6tables, iptables-legacy, ip6tables-legacy
    family: str
    table: str
    chain: str
    handle: int  # nft handle; position in the chain for iptables-save
    text: str = ""  # the rule exactly as its tool prints it
    alt_text: str = ""  # the same rule as the other tool prints it (nft vs iptables-save)
    verdict: Verdict = "none"
    target: str = ""  # chain of a jump/goto, or an iptables target that is no verdict
    reject_with: str = ""  # "tcp reset", "icmp port-unreachable", "?" when not known
    packets: int | None = None
    bytes: int | None = None
    selectors: tuple[Selector, ...] = ()
    limits: tuple[str, ...] = ()  # limit rate over, meter, hashlimit, connlimit, ct count
    opaque: bool = False  # nft showed an xt expression: detail is in iptables-save only
    # A verdict map: what it is keyed on (a Selector field) and its (key, verdict, target)
    # entries; ``vmap_ref`` names a map filled elsewhere (``@name``).
    vmap_key: str = ""
    vmap: tuple[tuple[str, str, str], ...] = ()
    vmap_ref: str = ""

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.source, self.family, self.table, self.chain, self.handle)

    @property
    def resets(self) -> bool:
        return self.verdict == "reject" and self.reject_with in ("tcp reset", "tcp-reset")

    @property
    def ct_states(self) -> frozenset[str]:
        return frozenset(v for s in self.selectors if s.field == "ct state" and s.op == "=="
                         for v in s.values)

    def verdict_text(self) -> str:
        if self.verdict == "reject":
            return f"reject with {self.reject_with}" if self.reject_with else "reject"
        if self.verdict in ("jump", "goto"):
            return f"{self.verdict} {self.target}"
        return self.verdict if self.verdict != "none" else (self.target or "no verdict")


@dataclass(frozen=True)
class Chain:
    source: str
    family: str
    table: str
    name: str
    hook: str = ""  # empty for a user chain
    prio: int = 0
    policy: str = ""  # accept / drop for base chains
    type: str = ""
    packets: int | None = None  # iptables-save's policy counter
    bytes: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.source, self.family, self.table, self.name)

    @property
    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass(frozen=True)
class NamedSet:
    elements: tuple[str, ...]
    dynamic: bool  # filled at run time: a port missing now may be there later


@dataclass(frozen=True)
class NamedMap:
    """A named verdict map: (key, verdict, target) entries, as a vmap rule refers to it."""

    entries: tuple[tuple[str, str, str], ...]
    dynamic: bool


@dataclass
class Ruleset:
    chains: dict[tuple[str, str, str, str], Chain] = field(default_factory=dict)
    rules: dict[tuple[str, str, str, str], list[Rule]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], NamedSet] = field(default_factory=dict)
    maps: dict[tuple[str, str, str], NamedMap] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add_chain(self, chain: Chain) -> None:
        self.chains[chain.key] = chain
        self.rules.setdefault(chain.key, [])

    def add_rule(self, rule: Rule) -> None:
        key = (rule.source, rule.family, rule.table, rule.chain)
        if key not in self.chains:
            self.add_chain(Chain(rule.source, rule.family, rule.table, rule.chain))
        self.rules[key].append(rule)

    def all_rules(self) -> list[Rule]:
        return [r for rules in self.rules.values() for r in rules]

    def counters(self) -> dict[tuple[str, str, str, str, int], int]:
        return {r.key: r.packets for r in self.all_rules() if r.packets is not None}



def combine(into: Ruleset, other: Ruleset) -> Ruleset:
    into.chains.update(other.chains)
    for key, rules in other.rules.items():
        into.rules[key] = list(rules)
    into.sets.update(other.sets)
    into.maps.update(other.maps)
    into.problems += other.problems
    return into

