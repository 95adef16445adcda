"""Firewall rules as values: parse nft JSON/text, iptables-save, ufw and firewalld listings.

Pure: no I/O. The parsers never raise on bad input; what they could not read is listed in
``Ruleset.problems`` (or the front end's ``problems``) so the check can say so instead of
pretending the ruleset is empty. Matching and the chain walk live in ``fwwalk``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Match = Literal["yes", "may", "no"]
Verdict = Literal["accept", "drop", "reject", "jump", "goto", "return", "none"]

# Where iptables' built-in chains hook and at which priority (NF_IP_PRI_*).
_IPT_HOOKS = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward",
              "OUTPUT": "output", "POSTROUTING": "postrouting"}
_IPT_PRIO = {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}
_HOOK_ORDER = {"ingress": 0, "prerouting": 1, "input": 2, "forward": 2, "output": 3, "postrouting": 4}
_FAMILY_HINT = {"ip": "ipv4", "ip6": "ipv6", "ipv4": "ipv4", "ipv6": "ipv6"}
_LIMIT_XT = {"limit", "hashlimit", "connlimit", "recent"}


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


# --------------------------------------------------------------------------- nft JSON

def _text(value: Any) -> str:
    """An nft JSON right-hand side as nft's text would write it."""
    if isinstance(value, dict):
        if "set" in value:
            return ",".join(_text(v) for v in value["set"]) if isinstance(value["set"], list) else "?"
        if "range" in value and isinstance(value["range"], list) and len(value["range"]) == 2:
            return f"{_text(value['range'][0])}-{_text(value['range'][1])}"
        if "prefix" in value and isinstance(value["prefix"], dict):
            return f"{value['prefix'].get('addr')}/{value['prefix'].get('len')}"
        return "?"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _values(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict) and isinstance(value.get("set"), list):
        return tuple(_text(v) for v in value["set"])
    if isinstance(value, list):
        return tuple(_text(v) for v in value)
    return (_text(value),)


def _selector(m: dict[str, Any]) -> list[Selector]:
    left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
    op = "!=" if op == "!=" else "=="
    vals = _values(right)
    if isinstance(left, dict) and isinstance(left.get("payload"), dict):
        proto, fld = left["payload"].get("protocol"), left["payload"].get("field")
        if fld in ("dport", "sport"):
            out = [Selector(fld, op, vals)]
            if proto in ("tcp", "udp", "sctp", "dccp", "udplite"):
                out.append(Selector("proto", "==", (proto,)))
            return out
        if fld in ("saddr", "daddr") and proto in ("ip", "ip6"):
            return [Selector(fld, op, vals), Selector("nfproto", "==", ("ipv4" if proto == "ip" else "ipv6",))]
        if fld in ("protocol", "nexthdr") and proto in ("ip", "ip6"):
            return [Selector("proto", op, vals)]
        if proto in ("tcp", "udp"):  # tcp flags and the like: condition within the protocol
            return [Selector("proto", "==", (proto,)), Selector("other", op, (f"{proto} {fld}",))]
    if isinstance(left, dict) and isinstance(left.get("meta"), dict):
        key = left["meta"].get("key")
        if key == "l4proto":
            return [Selector("proto", op, vals)]
        if key in ("iif", "iifname"):
            return [Selector("iif", op, vals)]
        if key == "nfproto":
            return [Selector("nfproto", op, vals)]
    if isinstance(left, dict) and isinstance(left.get("ct"), dict) and left["ct"].get("key") == "state":
        return [Selector("ct state", op, vals)]
    return [Selector("other", op, (json.dumps(m, sort_keys=True)[:120],))]


def _key_field(key: Any) -> str:
    """The Selector field a map key (the left side of ``vmap``) stands for; "other" if unknown."""
    if isinstance(key, dict):
        if isinstance(key.get("payload"), dict):
            fld, proto = key["payload"].get("field"), key["payload"].get("protocol")
            if fld in ("dport", "sport", "saddr", "daddr"):
                return fld
            if fld in ("protocol", "nexthdr") and proto in ("ip", "ip6"):
                return "proto"
        if isinstance(key.get("meta"), dict):
            return {"l4proto": "proto", "iif": "iif", "iifname": "iif",
                    "nfproto": "nfproto"}.get(str(key["meta"].get("key")), "other")
        if isinstance(key.get("ct"), dict) and key["ct"].get("key") == "state":
            return "ct state"
    return "other"


def _verdict_of(value: Any) -> tuple[str, str]:
    """A map entry's verdict (``{"jump": {"target": "svc"}}``) as (verdict, target)."""
    if isinstance(value, dict) and len(value) == 1:
        kind, arg = next(iter(value.items()))
        if kind in ("accept", "drop", "return", "continue"):
            return kind, ""
        if kind in ("jump", "goto") and isinstance(arg, dict):
            return kind, str(arg.get("target", "?"))
    return "none", _text(value)[:40]


def _entries(elem: Any) -> tuple[tuple[str, str, str], ...]:
    out = []
    for pair in elem if isinstance(elem, list) else []:
        if isinstance(pair, list) and len(pair) == 2:
            key = pair[0].get("elem", {}).get("val", pair[0]) if isinstance(pair[0], dict) and "elem" in pair[0] else pair[0]
            out.append((_text(key), *_verdict_of(pair[1])))
    return tuple(out)


def _limit_text(lim: dict[str, Any]) -> str:
    over = "over " if lim.get("inv") else ""
    unit = f" {lim['rate_unit']}" if lim.get("rate_unit") not in (None, "packets") else ""
    return f"limit rate {over}{lim.get('rate')}{unit}/{lim.get('per', 'second')}"


def _nft_rule(r: dict[str, Any]) -> Rule:
    sels: list[Selector] = []
    limits: list[str] = []
    verdict: Verdict = "none"
    target = reject_with = ""
    packets = nbytes = None
    opaque = False
    vmap_key = vmap_ref = ""
    vmap: tuple[tuple[str, str, str], ...] = ()
    for e in r.get("expr") or []:
        if not isinstance(e, dict) or not e:
            continue
        kind, val = next(iter(e.items()))
        if kind == "match" and isinstance(val, dict):
            sels += _selector(val)
        elif kind == "counter" and isinstance(val, dict):
            packets, nbytes = int(val.get("packets", 0)), int(val.get("bytes", 0))
        elif kind in ("accept", "drop", "return"):
            verdict = kind  # type: ignore[assignment]
        elif kind in ("jump", "goto") and isinstance(val, dict):
            verdict, target = kind, str(val.get("target", ""))  # type: ignore[assignment]
        elif kind == "reject":
            verdict = "reject"
            if isinstance(val, dict) and val.get("type") == "tcp reset":
                reject_with = "tcp reset"
            else:
                # nft's default reject answers TCP with ICMP port unreachable, not a reset.
                kind_ = val.get("type", "icmp") if isinstance(val, dict) else "icmp"
                reject_with = f"{kind_} {val.get('expr', 'port-unreachable') if isinstance(val, dict) else 'port-unreachable'}"
        elif kind == "limit" and isinstance(val, dict):
            limits.append(_limit_text(val))
        elif kind == "meter" and isinstance(val, dict):
            stmt = val.get("stmt") if isinstance(val.get("stmt"), dict) else {}
            inner = f" ({_limit_text(stmt['limit'])})" if isinstance(stmt.get("limit"), dict) else (
                f" (ct count {'over ' if stmt['ct count'].get('inv') else ''}{stmt['ct count'].get('val')})"
                if isinstance(stmt.get("ct count"), dict) else "")
            limits.append(f"meter {val.get('name', '?')}{inner}")
        elif kind == "ct count" and isinstance(val, dict):
            limits.append(f"ct count {'over ' if val.get('inv') else ''}{val.get('val')}")
        elif kind == "xt" and isinstance(val, dict):
            opaque = True
            name = str(val.get("name", "?"))
            if val.get("type") == "target":
                if name == "REJECT":
                    verdict, reject_with = "reject", "?"
                elif name in ("ACCEPT", "DROP", "RETURN"):
                    verdict = name.lower()  # type: ignore[assignment]
                else:
                    target = name
            elif name in _LIMIT_XT:
                limits.append(name)
            else:
                sels.append(Selector("other", "==", (f"xt match {name}",)))
        elif kind == "vmap" and isinstance(val, dict):
            vmap_key = _key_field(val.get("key"))
            data = val.get("data")
            if isinstance(data, str) and data.startswith("@"):
                vmap_ref = data[1:]
            elif isinstance(data, dict) and isinstance(data.get("set"), list):
                vmap = _entries(data["set"])
            else:
                sels.append(Selector("other", "==", ("verdict map not understood",)))
        elif kind == "queue":
            target = "queue"
    return Rule("nft", str(r.get("family", "?")), str(r.get("table", "?")), str(r.get("chain", "?")),
                int(r.get("handle", 0) or 0), verdict=verdict, target=target, reject_with=reject_with,
                packets=packets, bytes=nbytes, selectors=tuple(sels), limits=tuple(limits), opaque=opaque,
                vmap_key=vmap_key, vmap=vmap, vmap_ref=vmap_ref)


# Objects of a ruleset listing that do not decide a verdict by themselves.
_OTHER_OBJECTS = {"metainfo", "table", "element", "flowtable", "counter", "quota",
                  "ct helper", "limit", "ct timeout", "ct expectation", "secmark", "synproxy"}


def parse_nft_json(text: str, listing: str = "") -> Ruleset:
    """``nft -j list ruleset``; ``listing`` (``nft -a list ruleset``) supplies the exact rule text."""
    rs = Ruleset()
    try:
        doc = json.loads(text)
        items = doc["nftables"] if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ValueError("no 'nftables' list")
    except (ValueError, KeyError, TypeError) as exc:
        rs.problems.append(f"nft JSON unreadable: {str(exc)[:120]}")
        return rs
    texts = parse_nft_text(listing) if listing else {}
    for item in items:
        try:
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(f"unexpected item {str(item)[:60]}")
            kind, obj = next(iter(item.items()))
            if kind not in ("chain", "rule", "set", "map") and kind not in _OTHER_OBJECTS:
                raise ValueError(f"unknown object {kind[:30]!r}")
            if kind == "chain":
                rs.add_chain(Chain("nft", str(obj["family"]), str(obj["table"]), str(obj["name"]),
                                   str(obj.get("hook", "")), int(obj.get("prio", 0) or 0),
                                   str(obj.get("policy", "accept" if "hook" in obj else "")),
                                   str(obj.get("type", ""))))
            elif kind == "rule":
                rule = _nft_rule(obj)
                line = texts.get((rule.family, rule.table, rule.chain, rule.handle), "")
                rs.add_rule(replace(rule, text=line or f"(handle {rule.handle}, text not listed)"))
            elif kind == "map":
                flags = obj.get("flags", [])
                rs.maps[(str(obj["family"]), str(obj["table"]), str(obj["name"]))] = NamedMap(
                    _entries(obj.get("elem", [])) if obj.get("map") == "verdict" else (),
                    bool({"dynamic", "timeout"} & set(flags if isinstance(flags, list) else [flags])))
            elif kind == "set":
                elem = obj.get("elem", [])
                flags = obj.get("flags", [])
                dynamic = bool({"dynamic", "timeout"} & set(flags if isinstance(flags, list) else [flags]))
                rs.sets[(str(obj["family"]), str(obj["table"]), str(obj["name"]))] = NamedSet(
                    tuple(_text(e.get("elem", {}).get("val", "?") if isinstance(e, dict) and "elem" in e else e)
                          for e in (elem if isinstance(elem, list) else [elem])), dynamic)
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as exc:
            rs.problems.append(f"nft JSON item skipped ({type(exc).__name__}: {str(exc)[:80]})")
    return rs


_TABLE_RE = re.compile(r"^table\s+(\S+)\s+(\S+)\s*\{")
_CHAIN_RE = re.compile(r"^\s*chain\s+(\S+)\s*\{")
_HANDLE_RE = re.compile(r"\s+# handle (\d+)\s*$")


def parse_nft_text(text: str) -> dict[tuple[str, str, str, int], str]:
    """``nft -a list ruleset``: (family, table, chain, handle) -> the rule's line without the handle comment."""
    out: dict[tuple[str, str, str, int], str] = {}
    family = table = chain = ""
    for raw in text.splitlines():
        if m := _TABLE_RE.match(raw):
            family, table, chain = m.group(1), m.group(2), ""
            continue
        if m := _CHAIN_RE.match(raw):
            chain = m.group(1)
            continue
        h = _HANDLE_RE.search(raw)
        if h and chain and not raw.lstrip().startswith(("chain ", "set ", "map ", "table ")):
            out[(family, table, chain, int(h.group(1)))] = raw[: h.start()].strip()
    return out


# --------------------------------------------------------------------------- iptables-save

_COUNTS = re.compile(r"^\[(\d+):(\d+)\]\s+")


def _ports(value: str) -> tuple[str, ...]:
    return tuple(v.replace(":", "-") for v in value.split(",") if v)


def parse_iptables_line(line: str, source: str, family: str, table: str, position: int) -> Rule:
    """One ``[p:b] -A CHAIN ...`` line of ``iptables-save -c``; unknown options become may-selectors."""
    packets = nbytes = None
    body = line
    if m := _COUNTS.match(line):
        packets, nbytes, body = int(m.group(1)), int(m.group(2)), line[m.end():]
    try:
        toks = shlex.split(body)
    except ValueError:
        toks = body.split()
    chain, sels, limits = "?", [], []
    verdict: Verdict = "none"
    target = reject_with = ""
    neg, module, i = False, "", 0
    while i < len(toks):
        t = toks[i]
        arg = toks[i + 1] if i + 1 < len(toks) else ""
        op = "!=" if neg else "=="
        step = 2
        if t == "!":
            neg, i = True, i + 1
            continue
        if t == "-A":
            chain = arg
        elif t in ("-p", "--protocol"):
            sels.append(Selector("proto", op, (arg.lower(),)))
        elif t in ("-s", "--source", "-d", "--destination"):
            sels.append(Selector("saddr" if t in ("-s", "--source") else "daddr", op, tuple(arg.split(","))))
        elif t in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            sels.append(Selector("dport", op, _ports(arg)))
        elif t in ("--sport", "--source-port", "--sports", "--source-ports"):
            sels.append(Selector("sport", op, _ports(arg)))
        elif t in ("-i", "--in-interface"):
            sels.append(Selector("iif", op, (arg.rstrip("+") + ("*" if arg.endswith("+") else ""),)))
        elif t in ("--ctstate", "--state"):
            sels.append(Selector("ct state", op, tuple(v.lower() for v in arg.split(","))))
        elif t == "-m":
            module = arg
            if module in _LIMIT_XT:
                limits.append(f"-m {module}")
        elif t in ("-j", "-g"):
            if t == "-g":
                verdict, target = "goto", arg
            elif arg in ("ACCEPT", "DROP", "RETURN", "REJECT"):
                verdict = arg.lower()  # type: ignore[assignment]
                reject_with = "icmp-port-unreachable" if arg == "REJECT" else ""
            else:
                verdict, target = "jump", arg  # a user chain, or a non-verdict target (LOG, DNAT)
        elif t == "--reject-with":
            reject_with = "tcp reset" if arg == "tcp-reset" else arg
        elif t == "--syn":
            step = 1  # matches the opening SYN: like ct state new
        elif t.startswith("--"):
            # An option of a match module; its values run to the next option.
            j = i + 1
            while j < len(toks) and not toks[j].startswith("-") and toks[j] != "!":
                j += 1
            if module in _LIMIT_XT and limits:
                # The limit's own options say what it limits: keep them in its text.
                limits[-1] = f"{limits[-1]} {' '.join(toks[i:j])}".strip()
            elif module not in ("tcp", "udp", "comment", "multiport", "conntrack", "state"):
                sels.append(Selector("other", op, (f"-m {module} {t} {' '.join(toks[i + 1:j])}".strip(),)))
            step = j - i
        else:
            step = 1
        neg = False
        i += step
    # The counters go in the data, not the quote: they differ between two readings.
    return Rule(source, family, table, chain, position, text=body.strip(), verdict=verdict,
                target=target, reject_with=reject_with, packets=packets, bytes=nbytes,
                selectors=tuple(sels), limits=tuple(limits))


def parse_iptables_save(text: str, source: str = "iptables", family: str = "ip") -> tuple[Ruleset, str]:
    """``iptables-save -c`` into a Ruleset and the backend it names ("nf_tables", "legacy" or "")."""
    rs = Ruleset()
    backend = ""
    table = ""
    positions: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        try:
            if not line:
                continue
            if line.startswith("#"):
                if m := re.search(r"\((nf_tables|legacy)\)", line):
                    backend = m.group(1)
                continue
            if line.startswith("*"):
                table, positions = line[1:].strip(), {}
                if not table:
                    raise ValueError("table without a name")
            elif line == "COMMIT":
                table = ""
            elif line.startswith(":"):
                m = re.match(r"^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?", line)
                if not m or not table:
                    raise ValueError("chain line outside a table")
                name, policy = m.group(1), m.group(2)
                builtin = policy != "-"
                rs.add_chain(Chain(source, family, table, name, _IPT_HOOKS.get(name, "") if builtin else "",
                                   _IPT_PRIO.get(table, 0), policy.lower() if builtin else "", table,
                                   int(m.group(3)) if m.group(3) else None,
                                   int(m.group(4)) if m.group(4) else None))
            elif "-A " in line and table:
                rule = parse_iptables_line(line, source, family, table, 0)
                positions[rule.chain] = positions.get(rule.chain, 0) + 1
                rs.add_rule(replace(rule, handle=positions[rule.chain]))
            else:
                raise ValueError("not an iptables-save line")
        except (ValueError, IndexError) as exc:
            rs.problems.append(f"{source}-save line {n} not understood ({exc}): {line[:80]}")
    # A jump to a chain that does not exist is a target like LOG or DNAT, not a jump.
    for key, rules in rs.rules.items():
        rs.rules[key] = [replace(r, verdict="none") if r.verdict == "jump" and
                         (source, family, r.table, r.target) not in rs.chains else r for r in rules]
    return rs, backend


def merge_iptables(nft: Ruleset, ipt: Ruleset) -> Ruleset:
    """Fold iptables-nft rules into the nft ruleset they live in: same chain, same order.

    nft shows iptables' matches as opaque ``xt`` expressions; where the chain's rule count
    agrees, the nft rule takes its selectors and verdict from the iptables-save line, keeps
    its own handle and counter, and is quoted as the iptables-save line. Chains that do not
    line up are added as their own chains, so nothing read is lost.
    """
    for key, irules in ipt.rules.items():
        _, family, table, chain = key
        nkey = ("nft", family, table, chain)
        nrules = nft.rules.get(nkey)
        if nrules is not None and len(nrules) == len(irules):
            nft.rules[nkey] = [replace(n, text=i.text, alt_text=n.text, selectors=i.selectors,
                                       limits=i.limits, verdict=i.verdict, target=i.target,
                                       reject_with=i.reject_with, opaque=False)
                               for n, i in zip(nrules, irules, strict=True)]
        else:
            if nrules is not None:
                nft.problems.append(f"{family} {table} {chain}: nft and {key[0]}-save disagree "
                                    "on the rules; both are listed")
            nft.add_chain(ipt.chains[key])
            nft.rules[key] = list(irules)
    return nft


def combine(into: Ruleset, other: Ruleset) -> Ruleset:
    into.chains.update(other.chains)
    for key, rules in other.rules.items():
        into.rules[key] = list(rules)
    into.sets.update(other.sets)
    into.maps.update(other.maps)
    into.problems += other.problems
    return into


# --------------------------------------------------------------------------- ufw and firewalld
# Front ends write nft/iptables rules; their own listing is quoted as the human-level source of
# the low-level rule that decides, never as a second verdict.

@dataclass(frozen=True)
class FrontRule:
    tool: str  # ufw, firewalld
    text: str  # the line as the tool prints it
    action: str  # allow, deny, reject, limit (ufw); accept, drop, reject, port, service (firewalld)
    ports: tuple[str, ...]  # "8080", "8000-8100"; empty: any port, or a name (see named)
    proto: str = ""
    named: str = ""  # an application profile or service name: its ports are not listed here
    zone: str = ""


@dataclass
class FrontEnd:
    tool: str
    state: str = ""  # active, inactive, or what the tool said
    defaults: str = ""
    rules: list[FrontRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def for_port(self, port: int) -> list[tuple[FrontRule, Match]]:
        out: list[tuple[FrontRule, Match]] = []
        for r in self.rules:
            if r.proto and r.proto != "tcp":
                continue
            if r.named:
                out.append((r, "may"))
            elif not r.ports:
                out.append((r, "yes"))
            elif any(_port_range(p, port) for p in r.ports):
                out.append((r, "yes"))
        return out


def _port_range(value: str, port: int) -> bool:
    lo, sep, hi = value.partition("-")
    try:
        return int(lo) <= port <= int(hi) if sep else int(value) == port
    except ValueError:
        return False


_UFW_RULE = re.compile(r"^(?P<to>.+?)\s{2,}(?P<action>ALLOW|DENY|REJECT|LIMIT)(?: (?:IN|OUT|FWD))?\s+(?P<from>.+)$")


def parse_ufw_status(text: str) -> FrontEnd:
    """``ufw status verbose``: the state, the defaults and each rule line."""
    fe = FrontEnd("ufw")
    table = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("Status:"):
            fe.state = line.split(":", 1)[1].strip()
        elif line.startswith("Default:"):
            fe.defaults = line.split(":", 1)[1].strip()
        elif line.startswith(("Logging:", "New profiles:")):
            continue
        elif line.startswith("To ") and "Action" in line:
            table = True
        elif table and set(line.replace(" ", "")) <= {"-"}:
            continue
        elif table and (m := _UFW_RULE.match(line)):
            to = m.group("to").replace(" (v6)", "").strip()
            spec, _, proto = to.partition("/")
            ports: tuple[str, ...] = ()
            named = ""
            if spec.split(" ")[0] in ("Anywhere",):
                ports = ()
            elif re.fullmatch(r"[\d,:]+", spec):
                ports = tuple(p.replace(":", "-") for p in spec.split(",") if p)
            elif " " in spec and re.fullmatch(r"[\d,:]+", spec.split(" ")[-1]):
                ports = tuple(p.replace(":", "-") for p in spec.split(" ")[-1].split(",") if p)
            else:
                named = spec
            fe.rules.append(FrontRule("ufw", line.strip(), m.group("action").lower(), ports,
                                      proto.split(" ")[0], named))
        else:
            fe.problems.append(f"ufw status line {n} not understood: {line[:80]}")
    if not fe.state:
        fe.problems.append("ufw status: no 'Status:' line")
    return fe


def parse_firewalld_zones(text: str) -> FrontEnd:
    """``firewall-cmd --list-all-zones``: per zone its target, ports, services and rich rules."""
    fe = FrontEnd("firewalld")
    zone, active, in_rich = "", False, False
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            in_rich = False
            continue
        if not raw[0].isspace():
            zone = raw.split()[0]
            active = "(active)" in raw or "active)" in raw
            fe.state = fe.state or ("active" if active else "")
            in_rich = False
            continue
        line = raw.strip()
        if in_rich and raw.startswith(("\t", "        ")) and line.startswith("rule"):
            fe.rules.append(_rich_rule(line, zone, active))
            continue
        key, sep, value = line.partition(":")
        if not sep or not zone:
            fe.problems.append(f"firewall-cmd line {n} not understood: {line[:80]}")
            continue
        value = value.strip()
        in_rich = key == "rich rules"
        label = f"{zone}{' (active)' if active else ''}"
        if key == "target" and value.upper() in ("DROP", "REJECT", "%%REJECT%%"):
            fe.rules.append(FrontRule("firewalld", f"{label}: target: {value}",
                                      value.strip("%").lower(), (), zone=zone))
        elif key == "ports":
            for item in value.split():
                spec, _, proto = item.partition("/")
                fe.rules.append(FrontRule("firewalld", f"{label}: ports: {item}", "accept",
                                          (spec,), proto, zone=zone))
        elif key == "services":
            for item in value.split():
                fe.rules.append(FrontRule("firewalld", f"{label}: services: {item}", "accept", (),
                                          named=item, zone=zone))
        elif in_rich and value.startswith("rule"):
            fe.rules.append(_rich_rule(value, zone, active))
    if not fe.rules and text.strip() and not zone:
        fe.problems.append("firewall-cmd: no zone found")
    return fe


_RICH_PORT = re.compile(r'port port="([\d-]+)" protocol="(\w+)"')


def _rich_rule(line: str, zone: str, active: bool) -> FrontRule:
    action = next((a for a in ("reject", "drop", "accept") if re.search(rf"\b{a}\b", line)), "other")
    m = _RICH_PORT.search(line)
    service = re.search(r'service name="([^"]+)"', line)
    return FrontRule("firewalld", f"{zone}{' (active)' if active else ''}: {line}", action,
                     (m.group(1),) if m else (), m.group(2) if m else "",
                     service.group(1) if service and not m else "", zone)
