"""What a server's configuration says about resets, as values with their source (pure).

A ``Setting`` is one directive as the running server reads it: its value, its duration in
seconds where it is one, and the file and line it comes from; a setting that is not written
anywhere carries the server's default and says so. A ``Rule`` is a directive that ends
connections on a condition (an ACL reject, a connection limit), with the condition's verdict
for the probe's source address where it can be decided from the configuration alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    """One configuration value as the running server uses it, with where it is written."""

    server: str  # nginx, haproxy, apache, caddy, gunicorn, uvicorn, node, redis, postgresql
    name: str  # keepalive_timeout, "timeout client", KeepAliveTimeout, ...
    value: str
    seconds: float | None  # durations in seconds; None for what is not one
    path: str  # the file it is written in ("" for a default)
    line: int  # its line (0 for a default or a command-line argument)
    context: str = ""  # the block or section: "http", "server :443", "frontend fe", ...
    default: bool = False  # not written anywhere: the server's documented default

    @property
    def where(self) -> str:
        if self.default:
            return f"{self.server} default"
        if self.line:
            return f"{self.path}:{self.line}"
        return self.path

    def quote(self) -> str:
        """``file:line: name value`` (or ``name value (default)``), as the report quotes it."""
        if self.default:
            return f"{self.name} {self.value} ({self.server} default, not set in the configuration)"
        return f"{self.where}: {self.name} {self.value}" + (f" [{self.context}]" if self.context else "")


@dataclass(frozen=True)
class Rule:
    """A directive that rejects or limits connections, and whether it applies to the probe."""

    server: str
    kind: str  # "reject" (an ACL, deny, pg_hba reject) or "limit" (a connection/rate cap)
    text: str  # the directive as written
    path: str
    line: int
    context: str = ""
    #: True: the rule matches the probe's source address; False: it does not; None: it
    #: depends on what the configuration cannot tell (a header, a counter, a file of addresses)
    matches: bool | None = None
    why: str = ""  # how the condition was judged
    limit: float | None = None  # for limits: the threshold (connections, or requests per period)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def quote(self) -> str:
        return f"{self.where}: {self.text}" + (f" [{self.context}]" if self.context else "")


@dataclass
class ServerConfig:
    """What one running server's configuration says, as far as it was read."""

    server: str  # the component: nginx, haproxy, ...
    pid: int
    files: list[str] = field(default_factory=list)  # the files read, in order
    settings: list[Setting] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # log files named by the configuration
    tls_ports: list[int] = field(default_factory=list)  # ports its configuration serves with TLS
    plain_ports: list[int] = field(default_factory=list)  # ports it serves without TLS
    #: where each port's listen directive is written: "file:line: listen 8443 ssl"
    listens: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read or decided
    #: the server refused the wizard's own read of its configuration over a limit, in its words
    #: (Redis's "ERR max number of clients reached" to redis-cli CONFIG GET)
    refusals: list[str] = field(default_factory=list)

    @property
    def component(self) -> str:
        return f"{DISPLAY.get(self.server, self.server)}, pid {self.pid}"

    def get(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)


DISPLAY = {"nginx": "nginx", "haproxy": "HAProxy", "apache": "Apache httpd", "caddy": "Caddy",
           "gunicorn": "gunicorn", "uvicorn": "uvicorn", "node": "Node.js", "redis": "Redis",
           "postgresql": "PostgreSQL"}

_NGINX_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000,
                "y": 31536000}
_HAPROXY_UNITS = {"us": 1e-6, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PG_UNITS = {"us": 1e-6, "ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}


def nginx_seconds(text: str) -> float | None:
    """nginx time: "75", "75s", "1m30s", "500ms" (no unit means seconds)."""
    parts = re.findall(r"(\d+)(ms|[smhdwMy])?", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return float(sum(int(n) * _NGINX_UNITS[u or "s"] for n, u in parts))


def haproxy_seconds(text: str) -> float | None:
    """HAProxy time: "30s", "5000" (no unit means milliseconds), "1m"."""
    m = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", text)
    if not m:
        return None
    return int(m.group(1)) * (_HAPROXY_UNITS[m.group(2)] if m.group(2) else 0.001)


def go_seconds(text: str) -> float | None:
    """A Go duration as Caddy writes it: "30s", "1m30s", "500ms", "2d" (Caddy's extra unit)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def pg_seconds(text: str, unit: str = "ms") -> float | None:
    """A PostgreSQL time setting: "10s", "5min", "0", or a bare number in the setting's unit."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*", text)
    if not m:
        return None
    return float(m.group(1)) * _PG_UNITS[m.group(2) or unit]


def plain_seconds(text: str) -> float | None:
    """A number of seconds ("30", "2.5")."""
    try:
        return float(text)
    except ValueError:
        return None


def default(server: str, name: str, value: str, seconds: float | None = None) -> Setting:
    return Setting(server, name, value, seconds, "", 0, default=True)


def address_in(source: str, spec: str) -> bool | None:
    """Whether address ``source`` is ``spec`` (an address or a network, IPv4-mapped IPv6
    read as IPv4); None when either is not an address (a hostname, a file, a variable)."""
    import ipaddress

    try:
        src = ipaddress.ip_address(source.split("%")[0])
        net = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return None
    if isinstance(src, ipaddress.IPv6Address) and src.ipv4_mapped is not None:
        src = src.ipv4_mapped
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{max(0, net.prefixlen - 96)}")
    if src.version != net.version:
        return False
    return src in net


def peers_of(ss_text: str) -> list[str]:
    """The peer addresses of ``ss -Htn state established`` lines (Recv-Q Send-Q Local Peer),
    without their ports, IPv4-mapped IPv6 read as IPv4."""
    out: list[str] = []
    for line in ss_text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        peer = parts[3]
        host = peer.rsplit(":", 1)[0].strip("[]")
        if host.lower().startswith("::ffff:") and "." in host:
            host = host[7:]
        out.append(host.split("%")[0])
    return out
