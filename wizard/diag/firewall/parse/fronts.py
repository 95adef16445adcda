"""ufw and firewalld listings into values: the human-level source of the nft/iptables rules.

Pure: no I/O. Front ends write nft/iptables rules; their own listing is quoted beside the
low-level rule that decides, never as a second verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wizard.diag.firewall.parse.rules import Match, port_in


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
            elif not r.ports or any(port_in(p, port) == "yes" for p in r.ports):
                out.append((r, "yes"))
        return out


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
