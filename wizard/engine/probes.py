"""The value types the probes return (pure: types only): what a connection, a name, a port's
protocol, the client's sockets and the wire showed. The probes' Protocols and their bundle
are in ``wizard.engine.contract``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

# One segment as the wire showed it, apart (wizard.engine.wire): analyze's attribution reads
# it without building the other value types; named here too, where the probes' modules look.
from wizard.engine.wire import Direction as Direction
from wizard.engine.wire import PacketEvent as PacketEvent
from wizard.engine.wire import initial_ttl as initial_ttl

OutcomeKind = Literal["ok", "refused", "reset", "eof", "timeout", "unreachable", "error"]
# The stage an exchange ended in: the handshake; the first send and its answer; the idle
# hold (the peer closed or reset while the probe said nothing); the send after the hold.
Stage = Literal["connect", "first-data", "hold", "after-hold"]


@dataclass(frozen=True)
class ConnectOutcome:
    address: str
    port: int
    kind: OutcomeKind
    ms: float
    errno: int | None = None
    message: str = ""
    local: str = ""  # local address:port of the attempt, when it got one

    @property
    def family(self) -> str:
        return "IPv6" if ":" in self.address else "IPv4"


@dataclass(frozen=True)
class ProbeEvent:
    """One thing that happened on a probe connection, ``ms`` after the connect began."""

    ms: float
    what: Literal["syn", "connected", "sent", "received", "eof", "reset", "timeout", "refused",
                  "idle", "error", "closed"]
    detail: str = ""
    size: int = 0


@dataclass(frozen=True)
class ExchangeOutcome:
    """A connection that sends a payload, reads the answer, optionally idles and sends again.

    ``kind`` and ``stage`` say how and where it ended: ``eof`` in stage ``hold`` is a peer
    that closed the idle connection (what a reused keep-alive connection runs into);
    ``timeout`` after ``connect`` is data sent on an open connection and never answered.
    """

    address: str
    port: int
    kind: OutcomeKind
    stage: Stage
    events: list[ProbeEvent] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    first_bytes: bytes = b""
    local: str = ""
    attempt: int = 0
    message: str = ""

    @property
    def connect(self) -> ProbeEvent | None:
        return next((e for e in self.events if e.what in ("connected", "refused", "timeout", "error")), None)

    @property
    def ms(self) -> float:
        return self.events[-1].ms if self.events else 0.0



# -- name resolution: what the DNS probe returns -------------------------------------
@dataclass(frozen=True)
class DnsRecord:
    rtype: str
    value: str
    ttl: int


@dataclass(frozen=True)
class Resolution:
    name: str
    addresses: list[str]
    source: Literal["literal", "hosts", "dns", "system", "none"]
    records: list[DnsRecord] = field(default_factory=list)
    nameserver: str = ""
    ms: float = 0.0
    error: str = ""  # why nothing (or only part) could be resolved

    @property
    def ok(self) -> bool:
        return bool(self.addresses)


# -- what a port speaks: what the protocol probe returns ---------------------------
@dataclass(frozen=True)
class Attempt:
    ok: bool
    detail: str  # the TLS version, the HTTP status line, the banner, or what went wrong
    outcome: str = ""  # ok, reset, eof, timeout, refused, error


@dataclass(frozen=True)
class ProtocolFacts:
    address: str
    port: int
    banner: Attempt
    tls: Attempt
    http: Attempt

    @property
    def speaks(self) -> str:
        """tls, http, banner or unknown: what the port answered to."""
        if self.tls.ok:
            return "tls"
        if self.http.ok:
            return "http"
        if self.banner.ok:
            return "banner"
        return "unknown"


# -- client-side sockets: what the process probe returns ---------------------------
@dataclass(frozen=True)
class SocketHolder:
    """One TCP socket to the target and, when it could be seen, the process holding it."""

    pid: int | None  # None: TIME_WAIT (no owner) or a process we may not inspect
    name: str
    cmdline: str
    username: str
    started: float | None  # process start, seconds since the epoch
    state: str  # ESTABLISHED, CLOSE_WAIT, TIME_WAIT, SYN_SENT, ...
    local: str  # address:port ([v6]:port)
    remote: str

    @property
    def family(self) -> str:
        return "IPv6" if self.remote.startswith("[") else "IPv4"


@dataclass(frozen=True)
class ProcessSockets:
    """Every socket to the target this probe could see, and whether it could see them all."""

    holders: tuple[SocketHolder, ...] = ()
    privileged: bool = True  # without root other users' processes stay anonymous
    hidden: int = 0  # matching sockets whose process could not be identified (not TIME_WAIT)
    truncated: bool = False
    error: str = ""
    ms: float = 0.0
    source: str = "psutil.net_connections(kind='tcp')"
    states: dict[str, int] = field(default_factory=dict)


# -- packets (raw sockets): what the capture and the SYN probes return ------------------
T = TypeVar("T")


@dataclass(frozen=True)
class SynFingerprint:
    """How the target answered a bare SYN: the server's TTL, window and options."""

    address: str
    port: int
    answer: Literal["syn-ack", "rst", "none"]
    ttl: int | None = None
    initial_ttl: int | None = None  # the likely initial TTL (64, 128 or 255)
    hops: int | None = None  # routers between us and the answer: initial_ttl - ttl
    window: int | None = None
    options: tuple[str, ...] = ()
    mss: int | None = None
    wscale: int | None = None
    ip_id: int | None = None
    df: bool = False
    rtt_ms: float = 0.0
    source_port: int = 0
    guard_table: str = ""

    @property
    def has_timestamps(self) -> bool:
        return "Timestamp" in self.options


@dataclass(frozen=True)
class Hop:
    """One TTL of a TCP SYN traceroute: who answered it, and how."""

    ttl: int
    address: str | None
    kind: Literal["time-exceeded", "syn-ack", "rst", "unreachable", "none"]
    rtt_ms: float = 0.0
    reply_ttl: int | None = None

    @property
    def is_target(self) -> bool:
        return self.kind in ("syn-ack", "rst")


@dataclass(frozen=True)
class SizeEcho:
    """One DF-flagged ICMP echo of ``size`` bytes (IP packet size) and what came back."""

    size: int
    answered: bool
    frag_needed_mtu: int | None = None  # ICMP "fragmentation needed" / "packet too big"
    rtt_ms: float = 0.0
    error: str = ""
    reply_ttl: int | None = None  # TTL (hop limit) of the echo reply: the replier's distance
    replier: str | None = None


@dataclass
class Capture(Generic[T]):
    """The packets seen while ``action`` ran, and the action's own result."""

    events: list[PacketEvent]
    result: T
    iface: str
    bpf: str
    action_ms: float  # when the action started, on the capture's clock
    truncated: bool = False
    pcap_path: str = ""
    problems: list[str] = field(default_factory=list)
    reader: str = "scapy AsyncSniffer"  # what read the packets
