"""Tracefs text as values: the tracepoints' ``format`` files and the lines of ``trace``.

Pure: no I/O. What a tracepoint offers is read from its format file (fields, reason symbol
tables), never hard-coded; trace lines become ``TraceEvent``s with their endpoints.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

#: kfree_skb reasons worth reporting: each explains a reset or a lost handshake
DROP_REASONS = ("NETFILTER_DROP", "TCP_LISTEN_OVERFLOW", "SOCKET_BACKLOG", "PROTO_MEM",
                "TCP_INVALID_SEQUENCE", "TCP_RESET", "IP_RPFILTER", "XFRM_POLICY",
                "SECURITY_HOOK", "BPF_CGROUP_EGRESS")
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD


# -- format files ---------------------------------------------------------------------------
_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]+);", re.M)
_SYMBOLIC = re.compile(r"__print_symbolic\(REC->(\w+),((?:\s*\{[^}]*\},?)+)\)")
_PAIR = re.compile(r"\{\s*([^,]+?)\s*,\s*\"([^\"]*)\"\s*\}")


def format_fields(text: str) -> dict[str, str]:
    """The event's own fields (name -> C type) from its ``format`` file, common_* left out."""
    found: dict[str, str] = {}
    for m in _FIELD.finditer(text):
        decl = m.group("decl").strip()
        name = re.sub(r"\[.*\]$", "", decl.split()[-1]).lstrip("*")
        if not name.startswith("common_"):
            found[name] = decl[: decl.rfind(decl.split()[-1])].strip()
    return found


def format_symbols(text: str, field_name: str) -> dict[int, str]:
    """The numeric -> symbol table ``__print_symbolic`` prints for ``field_name`` (numeric keys only)."""
    for m in _SYMBOLIC.finditer(text):
        if m.group(1) != field_name:
            continue
        table: dict[int, str] = {}
        for key, name in _PAIR.findall(m.group(2)):
            try:
                table[int(key, 0)] = name
            except ValueError:
                continue  # a C name such as TCP_ESTABLISHED: its value is not in the file
        return table
    return {}


def drop_filter(symbols: dict[int, str], reasons: tuple[str, ...] = DROP_REASONS,
                ip_only: bool = True) -> str:
    """A kfree_skb filter for the wanted reasons this kernel knows ("" when it knows none)."""
    wanted = sorted(num for num, name in symbols.items() if name in reasons)
    if not wanted:
        return ""
    expr = " || ".join(f"reason == {n}" for n in wanted)
    if ip_only:
        expr = f"({expr}) && (protocol == {ETH_P_IP} || protocol == {ETH_P_IPV6})"
    return expr


# -- trace lines ----------------------------------------------------------------------------
_LINE = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:\S{4,5}\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<rest>.*)$")
_KV = re.compile(r"(\w+)(?:=|: )(\[[^\]]*\]:\d+|\S+)")


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int

    @property
    def display(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    def same(self, address: str, port: int) -> bool:
        return self.port == port and _norm(self.address) == _norm(address)


def _norm(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def parse_endpoint(text: str) -> Endpoint | None:
    """``127.0.0.1:80`` or ``[::1]:80`` as printed by ``%pISpc``."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\s]+):(\d+)", text)
    if not m:
        return None
    addr, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return Endpoint(_norm(addr), int(port))


@dataclass(frozen=True)
class TraceEvent:
    """One parsed trace line. ``local``/``remote`` are seen from the host whose kernel logged it:
    for tcp_send_reset the sender and the receiver of the RST, for tcp_receive_reset the socket
    that got it and its peer. kfree_skb carries no addresses."""

    ts: float
    comm: str
    pid: int
    cpu: int
    event: str
    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    state: str = ""
    local: Endpoint | None = None
    remote: Endpoint | None = None
    line: str = ""

    @property
    def in_process_context(self) -> bool:
        """The event fired in a syscall of ``comm`` (not in softirq, where comm is incidental)."""
        flags = self.fields.get("_flags", "")
        return len(flags) >= 3 and flags[2] not in "sShHT" and self.pid != 0


def parse_line(line: str) -> TraceEvent | None:
    """One line of ``trace`` in the default format; None for headers and unknown shapes."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    m = _LINE.match(line)
    if not m:
        return None
    flags = re.search(r"\]\s+(\S{4,5})\s+\d+\.\d+:", line)
    fields = dict(_KV.findall(m.group("rest")))
    if flags:
        fields["_flags"] = flags.group(1)
    event = m.group("event")
    local = remote = None
    if event == "tcp_send_reset":
        local = parse_endpoint(fields.get("src", ""))
        remote = parse_endpoint(fields.get("dest", ""))
    elif event in ("tcp_receive_reset", "inet_sock_set_state"):
        v6 = fields.get("family") == "AF_INET6"
        la = fields.get("saddrv6" if v6 else "saddr", "")
        ra = fields.get("daddrv6" if v6 else "daddr", "")
        if la and fields.get("sport", "").isdigit():
            local = Endpoint(_norm(la), int(fields["sport"]))
        if ra and fields.get("dport", "").isdigit():
            remote = Endpoint(_norm(ra), int(fields["dport"]))
    return TraceEvent(ts=float(m.group("ts")), comm=m.group("comm").strip(), pid=int(m.group("pid")),
                      cpu=int(m.group("cpu")), event=event, fields=fields,
                      reason=fields.get("reason", ""), state=fields.get("state", ""),
                      local=local, remote=remote, line=line.rstrip())


def parse_trace(text: str) -> list[TraceEvent]:
    return [e for e in (parse_line(line) for line in text.splitlines()) if e is not None]
