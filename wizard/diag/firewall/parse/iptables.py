"""iptables-save listings into values, and folding iptables-nft rules into the nft chains they live in.

Pure: no I/O; never raises on bad input (see ``Ruleset.problems``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from typing import cast

from wizard.diag.firewall.parse.rules import (
    LIMIT_MATCHES,
    Chain,
    Rule,
    Ruleset,
    Selector,
    Verdict,
)

# Where iptables' built-in chains hook and at which priority (NF_IP_PRI_*).
_IPT_HOOKS = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward",
              "OUTPUT": "output", "POSTROUTING": "postrouting"}
_IPT_PRIO = {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}

_COUNTS = re.compile(r"^\[(\d+):(\d+)\]\s+")


def _ports(value: str) -> tuple[str, ...]:
    return tuple(v.replace(":", "-") for v in value.split(",") if v)


def _selector(option: str, arg: str, op: str) -> Selector | None:
    """The selector an iptables option with a value makes, or None (not one of these)."""
    if option in ("-p", "--protocol"):
        return Selector("proto", op, (arg.lower(),))
    if option in ("-s", "--source", "-d", "--destination"):
        return Selector("saddr" if option in ("-s", "--source") else "daddr", op, tuple(arg.split(",")))
    if option in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        return Selector("dport", op, _ports(arg))
    if option in ("--sport", "--source-port", "--sports", "--source-ports"):
        return Selector("sport", op, _ports(arg))
    if option in ("-i", "--in-interface"):
        return Selector("iif", op, (arg.rstrip("+") + ("*" if arg.endswith("+") else ""),))
    if option in ("--ctstate", "--state"):
        return Selector("ct state", op, tuple(v.lower() for v in arg.split(",")))
    return None


def _target(option: str, arg: str, target: str, reject_with: str) -> tuple[Verdict, str, str]:
    """What ``-j ARG`` or ``-g ARG`` makes of the verdict, the target and the reject's answer."""
    if option == "-g":
        return "goto", arg, reject_with
    if arg in ("ACCEPT", "DROP", "RETURN", "REJECT"):
        verdict = cast(Verdict, arg.lower())
        return verdict, target, "icmp-port-unreachable" if arg == "REJECT" else ""
    return "jump", arg, reject_with  # a user chain, or a non-verdict target (LOG, DNAT)


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
        elif (sel := _selector(t, arg, op)) is not None:
            sels.append(sel)
        elif t == "-m":
            module = arg
            if module in LIMIT_MATCHES:
                limits.append(f"-m {module}")
        elif t in ("-j", "-g"):
            verdict, target, reject_with = _target(t, arg, target, reject_with)
        elif t == "--reject-with":
            reject_with = "tcp reset" if arg == "tcp-reset" else arg
        elif t == "--syn":
            step = 1  # matches the opening SYN: like ct state new
        elif t.startswith("--"):
            # An option of a match module; its values run to the next option.
            j = i + 1
            while j < len(toks) and not toks[j].startswith("-") and toks[j] != "!":
                j += 1
            if module in LIMIT_MATCHES and limits:
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

