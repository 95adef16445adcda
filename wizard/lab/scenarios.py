"""The fault lab's scenarios (pure data): one per cause of CAUSES.md, and variants of each.

A scenario says what the lab builds (which server misbehaves how, which nftables rules and
sysctls go into the router or the server namespace, the path MTU), how `diagnose` is run
against it (payload, hold, attempts), the cause a correct diagnosis names and the evidence
the report must cite. Variants change ports, address families, payloads, timings and which
namespace does what, so that a verdict cannot come from a coincidence of one setup.
``{port}`` in a ruleset is the scenario's port.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    id: str
    cause: str
    explanation: str
    family: int = 4
    port: int = 8080
    server: tuple[str, ...] | None = ("http",)
    bind: str = "::"
    server_nft: str = ""
    router_nft: str = ""
    server_sysctls: tuple[str, ...] = ()
    router_sysctls: tuple[str, ...] = ()
    router_mtu: int | None = None
    tls: bool = False
    payload: str | None = None
    hold: float = 0.0
    attempts: int = 6
    tls_payload: bool = False      # the client speaks TLS (the trigger sends nothing it cannot)
    evidence: tuple[str, ...] = ()   # regexes the report must match: the decisive evidence
    real: str = ""                 # real server software (wizard.lab.real.SOFTWARE) instead of `server`
    conf: str | None = None        # its configuration's scenario part (None: a healthy default)
    upstream: tuple[str, ...] | None = None  # a lab server on 127.0.0.1, port + 1000, behind `real`
    client: str = ""               # how the test's real client triggers it: curl (default) or keepalive
    scheme: str = ""               # the target as a URL with this scheme (as the user typed it)
    said: str = ""                 # regex: what the real client says on the wire (real scenarios)
    rst: bool = True               # whether an RST reaches the real client (checked by capture)
    via_router: bool = False       # the target (and the server context) is the router: a port forward
    path: str = ""                 # the real client's URL path (real scenarios; default "/")
    quote: str = ""                # regex: the deciding directive, rule or log line with its file:line
    held: int = 0                  # connections the lab opens from the client and holds (wizard.lab.holder)
    closed: bool = False           # the server's FIN reaches the real client (a refusal in-band, no RST)

    @property
    def base(self) -> str:
        return self.id.split("/", 1)[0]


def _input(body: str, family: str = "inet", table: str = "rwlab") -> str:
    return (f"table {family} {table} {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
            f"  {body}\n }}\n}}\n")


def _forward(body: str, extra: str = "") -> str:
    return (f"table inet rwlab_router {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n"
            f"  {body}\n }}\n{extra}}}\n")


# The handshake is not tracked, so with tcp_loose=0 the client's ACK and data are INVALID:
# conntrack's view of an asymmetric path or of a failover.
_NOTRACK_HANDSHAKE = (
    " chain pre {{ type filter hook prerouting priority raw; policy accept;\n"
    "  tcp dport {port} tcp flags & (syn|ack) == syn notrack\n }}\n"
    " chain out {{ type filter hook output priority raw; policy accept;\n"
    "  tcp sport {port} tcp flags & (syn|ack) == syn|ack notrack\n }}\n").replace("{{", "{").replace("}}", "}")

_PMTU_NO_ICMP = ("table inet rwlab_router {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
                 "  icmp type destination-unreachable icmp code frag-needed counter drop\n"
                 "  icmpv6 type packet-too-big counter drop\n }\n}\n")

BIG_UPLOAD = "POST /upload HTTP/1.1\\r\\nHost: lab\\r\\nContent-Length: 6000\\r\\n\\r\\n" + "u" * 6000

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "port-closed", "port-closed",
        "Nothing listens on the port. The server's kernel answers each SYN with a reset (RST/ACK, "
        "window 0), which the client reports as \"connection refused\", not \"reset by peer\": the "
        "connection never existed. The server's TcpOutRsts counter moves; no firewall rule is involved.",
        server=None, evidence=(r"refused",)),
    Scenario("port-closed/v6", "port-closed", "The same over IPv6, on another port.",
             family=6, port=9000, server=None, evidence=(r"refused",)),
    Scenario("port-closed/loopback-bind", "port-closed",
             "A service runs, but bound to 127.0.0.1 only: from the network the port is closed.",
             server=("http",), bind="127.0.0.1", evidence=(r"127\.0\.0\.1",)),

    Scenario(
        "firewall-reject", "firewall-reject",
        "A server listens, but an nftables rule on the server host answers every new connection to "
        "the port with `reject with tcp reset`. The reset has the kernel's stateless shape, yet the "
        "server's TcpOutRsts stays still (netfilter's resets bypass the TCP counters); the rule's own "
        "counter is what moves.",
        server_nft=_input("tcp dport {port} counter reject with tcp reset"),
        evidence=(r"reject with tcp reset",)),
    Scenario("firewall-reject/v6-ip6-table", "firewall-reject",
             "The same in an ip6 table, only for new connections, over IPv6 to a database port.",
             family=6, port=5432,
             server_nft=_input("tcp dport {port} ct state new counter reject with tcp reset", family="ip6"),
             evidence=(r"reject with tcp reset",)),

    Scenario(
        "firewall-drop", "firewall-drop",
        "An nftables rule on the server drops the SYNs silently. The client sees timeouts, not resets: "
        "a drop is not a reset, and the wizard says so. The rule's counter moves during the probe.",
        server_nft=_input("tcp dport {port} counter drop"), evidence=(r"counter moved by \d+ during the probe",)),
    Scenario("firewall-drop/v6-policy", "firewall-drop",
             "A default-deny input chain over IPv6: established traffic and ICMPv6 pass, the port is "
             "not allowed, so its SYNs reach the final drop.",
             family=6, port=2222,
             server_nft=_input("ct state established,related accept\n  meta l4proto ipv6-icmp accept\n"
                               "  tcp dport 22 accept\n  counter drop"),
             evidence=(r"counter moved by \d+ during the probe",)),

    Scenario(
        "listen-backlog-overflow", "listen-backlog-overflow",
        "The application listens with a tiny backlog and has stopped accepting: its accept queue is "
        "full, so the kernel drops new SYNs. Clients see timeouts (with tcp_abort_on_overflow=1 some "
        "see resets). `ss -ltn` shows Recv-Q above the backlog and ListenOverflows moves.",
        server=("backlog", "--backlog", "1"), evidence=(r"ListenOverflows|Recv-Q",)),
    Scenario("listen-backlog-overflow/v6-abort", "listen-backlog-overflow",
             "The same over IPv6 with a backlog of 2 and tcp_abort_on_overflow=1 on the server.",
             family=6, port=9000, server=("backlog", "--backlog", "2"),
             server_sysctls=("net.ipv4.tcp_abort_on_overflow=1",), evidence=(r"ListenOverflows|Recv-Q",)),

    Scenario(
        "abortive-close", "abortive-close",
        "The server reads the request, then closes with SO_LINGER set to zero: its kernel sends a "
        "reset from the live socket (RST/ACK in sequence, timestamps, window above 0) instead of a "
        "FIN. The server's TCPAbortOnData moves.",
        server=("linger0",), evidence=(r"TCPAbortOnData",)),
    Scenario("abortive-close/v6-text", "abortive-close",
             "The same over IPv6, on another port, with a one-line text protocol instead of HTTP.",
             family=6, port=7000, server=("linger0",), payload="PING lab\\r\\n", evidence=(r"TCPAbortOnData",)),

    Scenario(
        "unread-data-close", "unread-data-close",
        "The server reads only the first bytes of the request, answers early (413) and closes while "
        "the rest is still unread in its receive queue: Linux then sends a reset instead of a FIN "
        "(RFC 2525), and the server's TCPAbortOnClose moves.",
        server=("unread", "--read", "16"), evidence=(r"TCPAbortOnClose",)),
    Scenario("unread-data-close/v6-upload", "unread-data-close",
             "The same over IPv6 with a 6 kB upload, of which the server reads 64 bytes.",
             family=6, port=9000, server=("unread", "--read", "64"), payload=BIG_UPLOAD,
             evidence=(r"TCPAbortOnClose",)),

    Scenario(
        "server-crash", "server-crash",
        "A supervisor runs the server; the worker dies on each request with an unhandled exception "
        "(its traceback in the log), the kernel closes its connections, and the supervisor restarts "
        "it after 0.2 s. Clients see the connection end without an answer, and refusals while "
        "the worker is down.",
        server=("crash",), evidence=(r"Traceback|restarting the server",)),
    Scenario("server-crash/v6-segfault", "server-crash",
             "The same over IPv6, but the worker dies by SIGSEGV with the request unread, so the kernel "
             "resets the connection; the supervisor logs the signal.",
             family=6, port=8000, server=("crash", "--signal", "SIGSEGV"),
             evidence=(r"SIGSEGV|Segmentation fault",)),

    Scenario(
        "middlebox-reset", "middlebox-reset",
        "A firewall on the router between client and server resets established flows as soon as "
        "data is sent. The reset pretends to come from the server, but its TTL is one hop closer "
        "than the SYN-ACK's and the server's counters show no reset sent.",
        router_nft=_forward("tcp dport {port} ct state established tcp flags & psh == psh counter "
                            "reject with tcp reset"),
        evidence=(r"path|TTL",)),
    Scenario("middlebox-reset/v6-keyword", "middlebox-reset",
             "An IPS-like rule on the router resets only payloads that start with a keyword (BLOCKME), "
             "over IPv6 on another port.",
             family=6, port=7000, payload="BLOCKME please\\r\\n",
             router_nft=_forward("tcp dport {port} @ih,0,56 0x424c4f434b4d45 counter reject with tcp reset"),
             evidence=(r"path|TTL",)),

    Scenario(
        "idle-timeout", "idle-timeout",
        "The router tracks connections with an established timeout of 3 s and resets packets of "
        "flows it no longer knows (ct state invalid). Fresh connections work; the probe that idles "
        "longer than the timeout is reset on its next send, by the router.",
        router_nft=_forward("ct state invalid counter reject with tcp reset"),
        router_sysctls=("net.netfilter.nf_conntrack_tcp_timeout_established=3",
                        "net.netfilter.nf_conntrack_tcp_loose=0"),
        hold=6, evidence=(r"hold",)),
    Scenario("idle-timeout/v6-5s", "idle-timeout",
             "The same over IPv6 on another port, with a 5 s timeout and an 8 s hold.",
             family=6, port=5000,
             router_nft=_forward("ct state invalid counter reject with tcp reset"),
             router_sysctls=("net.netfilter.nf_conntrack_tcp_timeout_established=5",
                             "net.netfilter.nf_conntrack_tcp_loose=0"),
             hold=8, evidence=(r"hold",)),

    Scenario(
        "rate-limit", "rate-limit",
        "An nftables rule on the server lets a burst of 16 new connections through, then one per minute, and resets "
        "the rest: in a burst of handshakes the first succeed and the later ones are refused.",
        server_nft=_input("tcp dport {port} ct state new limit rate over 1/minute burst 16 packets counter "
                          "reject with tcp reset"),
        attempts=24,
        evidence=(r"limit rate over",)),
    Scenario("rate-limit/v6-router", "rate-limit",
             "The limit sits on the router instead, over IPv6 on another port: SYNs beyond the first "
             "few in a minute are reset by the path.",
             family=6, port=6379,
             router_nft=_forward("tcp dport {port} tcp flags & (syn|ack) == syn limit rate over 1/minute "
                                 "burst 16 packets counter reject with tcp reset"),
             attempts=24, evidence=(r"later|attempt",)),

    Scenario(
        "protocol-mismatch", "protocol-mismatch",
        "The port speaks TLS and the client sends plain HTTP. The TLS server fails the handshake, "
        "logs it, and closes with the rest of the request unread, so the client gets a reset right "
        "after its first data.",
        port=8443, server=("tls",), tls=True, payload="GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n",
        evidence=(r"(?i)TLS",)),
    Scenario("protocol-mismatch/v6-tls-to-plain", "protocol-mismatch",
             "The other way round over IPv6: a TLS ClientHello to a plain HTTP server on port 443.",
             family=6, port=443, server=("http",), tls_payload=True, evidence=(r"(?i)TLS|HTTP",)),

    Scenario(
        "conntrack-table-full", "conntrack-table-full",
        "The connection-tracking table is full, so new flows are dropped. nf_conntrack_max cannot be "
        "lowered inside a network namespace, so the lab caps tracked connections to the port at 0 "
        "with an nft `ct count over` rule: the same symptom (SYNs dropped, timeouts).",
        server_nft=_input("tcp dport {port} ct count over 0 counter drop"), evidence=(r"ct count over",)),
    Scenario("conntrack-table-full/v6-reject", "conntrack-table-full",
             "The same over IPv6 on another port, with the flows over the cap reset instead of dropped.",
             family=6, port=8000, server_nft=_input("tcp dport {port} ct count over 0 counter reject with tcp reset"),
             evidence=(r"ct count over",)),

    Scenario(
        "conntrack-invalid", "conntrack-invalid",
        "conntrack on the server never saw the handshake (as after a failover or on an asymmetric "
        "path) and, with tcp_loose=0, judges the client's packets INVALID; a `ct state invalid` rule "
        "resets them. conntrack's invalid counter and the rule's counter move.",
        server_nft="table inet rwlab {\n" + _NOTRACK_HANDSHAKE +
                   " chain input { type filter hook input priority 0; policy accept;\n"
                   "  ct state invalid counter reject with tcp reset\n }\n}\n",
        server_sysctls=("net.netfilter.nf_conntrack_tcp_loose=0",), evidence=(r"ct state invalid",)),
    Scenario("conntrack-invalid/v6-drop", "conntrack-invalid",
             "The same over IPv6 on another port, with the INVALID packets dropped instead of reset.",
             family=6, port=9000,
             server_nft="table inet rwlab {\n" + _NOTRACK_HANDSHAKE +
                        " chain input { type filter hook input priority 0; policy accept;\n"
                        "  ct state invalid counter drop\n }\n}\n",
             server_sysctls=("net.netfilter.nf_conntrack_tcp_loose=0",), evidence=(r"ct state invalid",)),

    Scenario(
        "keepalive-race", "keepalive-race",
        "The server closes idle keep-alive connections after 1.5 s. A client that keeps a pooled "
        "connection longer and then reuses it writes into a connection the server already closed "
        "(FIN): the write is reset or the read meets EOF.",
        server=("http", "--idle", "1.5"), hold=3, evidence=(r"(?i)idle|hold",)),
    Scenario("keepalive-race/v6-2.5s", "keepalive-race",
             "The same over IPv6 on another port, with a 2.5 s keep-alive timeout and a 4 s hold.",
             family=6, port=8000, server=("http", "--idle", "2.5"), hold=4, evidence=(r"(?i)idle|hold",)),

    Scenario(
        "path-mtu-blackhole", "path-mtu-blackhole",
        "The router's link to the server has an MTU of 1200 and the router's ICMP \"fragmentation "
        "needed\" messages are dropped: small packets pass, large ones vanish. Transfers hang; "
        "nothing is reset.",
        server=("http", "--big"), router_mtu=1200, router_nft=_PMTU_NO_ICMP, evidence=(r"(?i)pmtu|MTU|DF",)),
    Scenario("path-mtu-blackhole/v6", "path-mtu-blackhole",
             "The same over IPv6 (link MTU 1280, ICMPv6 packet-too-big dropped), on another port.",
             family=6, port=9000, server=("http", "--big"), router_mtu=1280, router_nft=_PMTU_NO_ICMP,
             evidence=(r"(?i)pmtu|MTU|DF",)),

    Scenario(
        "port-forward/dead-backend", "port-closed",
        "The target is a gateway that forwards the port (an nftables DNAT, as a port forward or a "
        "load balancer's address does) to a backend where nothing listens. The backend's kernel "
        "refuses the connection one hop beyond the target; the gateway's own counters and kernel "
        "send nothing, and its conntrack entry names the backend: diagnose that host next.",
        server=None, via_router=True,
        router_nft="table ip rwlab_nat {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n"
                   "  tcp dport {port} counter dnat to 10.213.20.2:9\n }\n}\n",
        evidence=(r"forwards .* to 10\.213\.20\.2:9\b", r"refused")),
    Scenario("port-forward/v6-dead-backend", "port-closed",
             "The same over IPv6 on another port, forwarded to a backend port where nothing listens.",
             family=6, port=9443, server=None, via_router=True,
             router_nft="table ip6 rwlab_nat {\n chain pre {\n  type nat hook prerouting priority dstnat; "
                        "policy accept;\n  tcp dport {port} counter dnat to [fd13:20::2]:10443\n }\n}\n",
             evidence=(r"forwards .* to \\?\[fd13:20::2\\?\]:10443", r"refused")),

    Scenario(
        "no-reset-observed", "no-reset-observed",
        "A healthy HTTP server behind a plain router. Every probe succeeds; the honest verdict is "
        "that no reset was observed, with advice on catching an intermittent one.",
        evidence=(r"(?i)no reset",)),
    Scenario("no-reset-observed/v6-hold", "no-reset-observed",
             "The same over IPv6 on another port, with a 1 s idle hold that the server tolerates.",
             family=6, port=8000, hold=1, evidence=(r"(?i)no reset",)),
)


def all_scenarios() -> tuple[Scenario, ...]:
    """The lab's own servers' scenarios, then the real servers' (wizard.lab.realscenarios)."""
    from wizard.lab.realscenarios import REAL_SCENARIOS

    return SCENARIOS + REAL_SCENARIOS


def by_id(name: str) -> Scenario:
    for s in all_scenarios():
        if s.id == name:
            return s
    raise KeyError(name)
