"""The packet probe (I/O): passive capture (a packet socket; scapy to save a pcap), the SYN
fingerprint, TCP traceroute, DF sizes (scapy).

scapy is imported inside the functions that need it (importing it costs about a second and
must not delay the TUI), with ``conf.verb = 0``. Raw packets go out through one reused
L3 socket per address family, serialised by a lock so two checks never steal each other's
answers; every call is bounded by a timeout (and captures by a packet count). Callers get
the project's value types (PacketEvent, SynFingerprint, Hop, SizeEcho), never scapy packets.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wizard.diag.packets.io.libpcap import libpcap_missing
from wizard.diag.packets.io.live import CaptureError, close_aside
from wizard.diag.packets.io.nftguard import SharedGuard
from wizard.diag.packets.io.scapylib import scapy_modules, warm_scapy
from wizard.diag.packets.io.sniff import Sniffer
from wizard.engine.probes import (
    Capture,
    Hop,
    PacketEvent,
    SizeEcho,
    SynFingerprint,
    initial_ttl,
)
from wizard.hosts.base import Host
from wizard.hosts.local import LocalHost
from wizard.model.cancel import within

T = TypeVar("T")
#: back-to-back probes of a run share one guard table within this; short, so that after a
#: step's raw probes the table is removed while the run's other work goes on (diagnose:
#: the burst's wait for its answers), not on the run's way out (30-40 ms of nft)
GUARD_LINGER_S = 0.1
GRACE_S = 0.03  # after the last connection of a capture ended: late duplicates, stray ACKs
def _is_v6(address: str) -> bool:
    return ":" in address


def _options(tcp: Any) -> tuple[tuple[str, ...], int | None, int | None]:
    names: list[str] = []
    ts_val = ts_ecr = None
    for opt in tcp.options or []:
        name = opt[0] if isinstance(opt, tuple) else str(opt)
        if name in ("NOP", "EOL"):
            continue
        names.append(str(name))
        if name == "Timestamp" and isinstance(opt[1], tuple):
            ts_val, ts_ecr = opt[1]
    return tuple(names), ts_val, ts_ecr


def event_from_packet(pkt: Any, port: int, t0: float) -> PacketEvent | None:
    """A PacketEvent from a scapy packet (None if it carries no TCP over IP)."""
    sc = scapy_modules()
    ip = pkt.getlayer(sc.IP) or pkt.getlayer(sc.IPv6)
    if ip is None or not pkt.haslayer(sc.TCP):
        return None
    tcp = pkt[sc.TCP]
    v6 = ip.version == 6
    names, ts_val, ts_ecr = _options(tcp)
    return PacketEvent(
        ms=round((float(pkt.time) - t0) * 1000, 2), direction="out" if tcp.dport == port else "in",
        src=str(ip.src), dst=str(ip.dst), sport=int(tcp.sport), dport=int(tcp.dport),
        ttl=int(ip.hlim if v6 else ip.ttl), ip_id=None if v6 else int(ip.id),
        df=False if v6 else bool(int(ip.flags) & 0x2), flags=str(tcp.flags), seq=int(tcp.seq),
        ack=int(tcp.ack), window=int(tcp.window), options=names, ts_val=ts_val, ts_ecr=ts_ecr,
        payload_len=len(bytes(tcp.payload)))


def flows_over(events: list[PacketEvent]) -> bool:
    """Whether every connection seen has ended: a RST, or a FIN from both sides."""
    fins: dict[int, set[str]] = {}
    reset: set[int] = set()
    for ev in list(events):  # the sniffer thread appends while we look
        if ev.is_rst:
            reset.add(ev.client_port)
        elif ev.is_fin:
            fins.setdefault(ev.client_port, set()).add(ev.direction)
        else:
            fins.setdefault(ev.client_port, set())
    return bool(events) and all(p in reset or len(d) == 2 for p, d in fins.items())


async def _settle(events: list[PacketEvent], settle_s: float, over: Callable[[], None] | None = None) -> None:
    """Late RSTs and FINs of the action's last packets: wait until every connection seen is
    over (RST, or FIN both ways), then a short grace; ``settle_s`` bounds it. ``over`` is
    called between the two (the connections are over; the grace is for the capture alone)."""
    deadline = time.monotonic() + settle_s
    # The sniffer's thread fills ``events``: a short poll, bounded by the deadline.
    while time.monotonic() < deadline and not flows_over(events):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if over is not None:
        over()
    await asyncio.sleep(max(0.0, min(GRACE_S, deadline - time.monotonic())))


class TraceProgress:
    """The traceroute's stop condition: the target answered and so did every lower TTL.

    Sees every packet the receiving socket reads (as scapy's stop_filter), so it matches
    the answers to our probes by port and sequence number itself.
    """

    def __init__(self, address: str, sport: int, base: int, max_ttl: int) -> None:
        self.address, self.sport, self.base, self.max_ttl = address, sport, base, max_ttl
        self.answered: set[int] = set()
        self.target_ttl: int | None = None

    def seen(self, pkt: Any) -> bool:
        sc = scapy_modules()
        if pkt.haslayer(sc.IPerror) or pkt.haslayer(sc.IPerror6):  # ICMP quoting our SYN
            inner = pkt.getlayer(sc.TCPerror)
            if inner is not None and int(inner.sport) == self.sport:
                self._answer(int(inner.seq) - self.base, target=False)
        elif pkt.haslayer(sc.TCP):
            tcp = pkt[sc.TCP]
            if int(tcp.dport) == self.sport and ("S" in str(tcp.flags) or "R" in str(tcp.flags)):
                self._answer(int(tcp.ack) - 1 - self.base, target=True)
        return self.complete

    def _answer(self, ttl: int, target: bool) -> None:
        if not 1 <= ttl <= self.max_ttl:
            return
        self.answered.add(ttl)
        if target and (self.target_ttl is None or ttl < self.target_ttl):
            self.target_ttl = ttl

    @property
    def complete(self) -> bool:
        return self.target_ttl is not None and all(t in self.answered for t in range(1, self.target_ttl))


class PacketProbe:
    """Raw-socket probes; needs root (CAP_NET_RAW, and CAP_NET_ADMIN for the guard)."""

    def __init__(self, client: Host | None = None, guard_linger_s: float = GUARD_LINGER_S) -> None:
        self.client = client or LocalHost()  # where the guard's nft runs: this machine
        self._sockets: dict[int, Any] = {}
        self._lock = asyncio.Lock()
        self._guards: dict[str, SharedGuard] = {}
        self.guard_linger_s = guard_linger_s

    def capture_unavailable(self) -> str | None:
        """Why ``capture`` cannot run here (libpcap missing), or None."""
        return libpcap_missing()

    def warm(self) -> None:
        """Start importing scapy in the background so the first probe does not wait for it."""
        warm_scapy()

    def _socket(self, address: str) -> Any:
        family = 6 if _is_v6(address) else 4
        if family not in self._sockets:
            sc = scapy_modules()
            self._sockets[family] = sc.L3RawSocket6() if family == 6 else sc.L3RawSocket()
        return self._sockets[family]

    def close(self) -> None:
        close_aside(*self._sockets.values())  # each release waits on the kernel some milliseconds
        self._sockets.clear()

    async def aclose(self) -> None:
        """Remove every guard table now (the end of a run) and close the raw sockets."""
        for guard in list(self._guards.values()):
            await guard.remove_now()
        self._guards.clear()
        self.close()

    def _guard(self, address: str) -> SharedGuard:
        guard = self._guards.get(address)
        if guard is None:
            guard = self._guards[address] = SharedGuard(address, self.client, self.guard_linger_s)
        return guard

    async def _sr(self, address: str, packets: list[Any], timeout: float,
                  stop_filter: Callable[[Any], bool] | None = None) -> tuple[Any, Any]:
        """Send and wait for the answers: done when all are answered, ``stop_filter`` says
        so, or at ``timeout`` (the upper bound, never a fixed wait)."""
        async with self._lock:
            sock = await asyncio.to_thread(self._socket, address)
            return await within(
                asyncio.to_thread(sock.sr, packets, timeout=timeout, stop_filter=stop_filter),
                timeout + 5)

    async def _send(self, address: str, packet: Any) -> None:
        async with self._lock:
            sock = await asyncio.to_thread(self._socket, address)
            await within(asyncio.to_thread(sock.send, packet), 5)

    # -- passive capture ---------------------------------------------------------------
    async def capture(self, address: str, port: int, action: Callable[[], Awaitable[T]], *,
                      max_packets: int = 500, max_s: float = 60.0, settle_s: float = 0.3,
                      pcap_path: str = "", over: Callable[[], None] | None = None) -> Capture[T]:
        """Sniff the target's address and port while ``action`` runs (bounded in packets and time);
        ``over`` is called once the action's connections are over, before the grace for late packets.

        A packet socket reads the headers (no scapy: the capture starts at once); scapy's
        sniffer only when the packets are to be saved (``pcap_path``), or when the packet
        socket cannot be opened."""
        bpf = f"{'ip6' if _is_v6(address) else 'ip'} and tcp and host {address} and port {port}"
        if not pcap_path:
            t0 = time.time()
            sniffer = Sniffer(bpf, port, t0, max_packets, max_s)
            try:
                sniffer.start()
            except (CaptureError, OSError):
                pass  # scapy's sniffer, below
            else:
                action_ms = round((time.time() - t0) * 1000, 2)
                try:
                    result = await action()
                    await _settle(sniffer.events, settle_s, over)
                finally:
                    events = await asyncio.to_thread(sniffer.stop)
                truncated = len(events) >= max_packets or (time.time() - t0) >= max_s
                return Capture(sorted(events, key=lambda e: e.ms), result, sniffer.iface or "any", bpf,
                               action_ms, truncated, reader="packet socket")
        return await self._capture_scapy(address, port, action, bpf, max_packets=max_packets, max_s=max_s,
                                         settle_s=settle_s, pcap_path=pcap_path, over=over)

    async def _capture_scapy(self, address: str, port: int, action: Callable[[], Awaitable[T]], bpf: str, *,
                             max_packets: int, max_s: float, settle_s: float, pcap_path: str,
                             over: Callable[[], None] | None = None) -> Capture[T]:
        sc = await asyncio.to_thread(scapy_modules)
        v6 = _is_v6(address)
        iface = str((sc.conf.route6 if v6 else sc.conf.route).route(address)[0])
        loopback = iface == "lo" or address.startswith("127.") or address == "::1"
        events: list[PacketEvent] = []
        raw: list[Any] = []
        last: list[tuple[bytes, float]] = []
        t0 = time.time()
        ready = threading.Event()

        def on_packet(pkt: Any) -> None:
            if float(pkt.time) - t0 > max_s:
                return  # the capture's time bound; the sniffer stops at this packet
            data = bytes(pkt.payload)
            # On loopback every packet is seen twice (out and in): keep the first.
            if loopback and last and last[-1][0] == data and float(pkt.time) - last[-1][1] < 0.05:
                return
            last[:] = [(data, float(pkt.time))]
            ev = event_from_packet(pkt, port, t0)
            if ev is not None:
                events.append(ev)
                if pcap_path:
                    raw.append(pkt)

        sniffer = sc.AsyncSniffer(iface=iface, filter=bpf, store=False, prn=on_packet,
                                  count=max_packets, started_callback=ready.set,
                                  stop_filter=lambda _pkt: time.time() - t0 > max_s)
        sniffer.start()
        problems: list[str] = []
        if not await asyncio.to_thread(ready.wait, 3.0):
            problems.append("the sniffer did not start within 3 s; early packets may be missing")
        action_ms = round((time.time() - t0) * 1000, 2)
        try:
            result = await action()
            await _settle(events, settle_s, over)
        finally:
            if sniffer.running:
                await asyncio.to_thread(sniffer.stop, True)
        truncated = len(events) >= max_packets or (time.time() - t0) >= max_s
        saved = ""
        if pcap_path and raw:
            try:
                await asyncio.to_thread(sc.wrpcap, pcap_path, raw)
                saved = pcap_path
            except OSError as exc:
                problems.append(f"could not save {pcap_path}: {exc.strerror or exc}")
        return Capture(sorted(events, key=lambda e: e.ms), result, iface, bpf, action_ms,
                       truncated, saved, problems)

    # -- active probes -----------------------------------------------------------------
    async def syn(self, address: str, port: int, timeout: float = 2.0) -> SynFingerprint:
        """One scapy SYN; the SYN-ACK's TTL, window and options; our RST is sent afterwards."""
        sc = await asyncio.to_thread(scapy_modules)
        async with self._guard(address).port() as (sport, table):
            seq = random.randrange(1 << 31)
            ip = sc.IPv6(dst=address) if _is_v6(address) else sc.IP(dst=address)
            syn = ip / sc.TCP(sport=sport, dport=port, flags="S", seq=seq,
                              options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)),
                                       ("WScale", 7)])
            started = time.monotonic()
            answered, _ = await self._sr(address, [syn], timeout)
            rtt = round((time.monotonic() - started) * 1000, 2)
            if not answered:
                return SynFingerprint(address, port, "none", source_port=sport, guard_table=table)
            reply = answered[0][1]
            ev = event_from_packet(reply, port, 0.0)
            if ev is None:
                return SynFingerprint(address, port, "none", source_port=sport, guard_table=table)
            if ev.is_synack:
                # Close the half-open connection on the server ourselves: RST+ACK, which
                # the guard lets through (it holds back only the kernel's bare RSTs).
                await self._send(address, ip / sc.TCP(sport=sport, dport=port, flags="RA",
                                                      seq=seq + 1, ack=ev.seq + 1))
            opts: dict[str, Any] = dict(o for o in (reply[sc.TCP].options or []) if isinstance(o, tuple))
            first = initial_ttl(ev.ttl)
            return SynFingerprint(
                address, port, "syn-ack" if ev.is_synack else "rst" if ev.is_rst else "none",
                ttl=ev.ttl, initial_ttl=first, hops=first - ev.ttl, window=ev.window,
                options=ev.options, mss=opts.get("MSS"), wscale=opts.get("WScale"),
                ip_id=ev.ip_id, df=ev.df, rtt_ms=rtt, source_port=sport, guard_table=table)

    async def traceroute(self, address: str, port: int, max_ttl: int = 16,
                         timeout: float = 2.0) -> list[Hop]:
        """TCP SYN traceroute: every TTL at once through one socket, answers matched by seq."""
        sc = await asyncio.to_thread(scapy_modules)
        v6 = _is_v6(address)
        base = random.randrange(1 << 30)
        async with self._guard(address).port() as (sport, _table):
            probes = []
            for ttl in range(1, max_ttl + 1):
                ip = sc.IPv6(dst=address, hlim=ttl) if v6 else sc.IP(dst=address, ttl=ttl)
                probes.append(ip / sc.TCP(sport=sport, dport=port, flags="S", seq=base + ttl))
            done = TraceProgress(address, sport, base, max_ttl)
            answered, _ = await self._sr(address, probes, timeout, stop_filter=done.seen)
            reached: list[tuple[Any, Any]] = []
            by_ttl: dict[int, Hop] = {}
            for sent, reply in answered:
                ttl = int(sent.hlim if v6 else sent.ttl)
                rip = reply.getlayer(sc.IPv6) if v6 else reply.getlayer(sc.IP)
                rtt = round((float(reply.time) - float(sent.sent_time or reply.time)) * 1000, 2)
                reply_ttl = int(rip.hlim if v6 else rip.ttl)
                if reply.haslayer(sc.TCP) and (not reply.haslayer(sc.IPerror)
                                               and not reply.haslayer(sc.IPerror6)):
                    flags = str(reply[sc.TCP].flags)
                    kind = "syn-ack" if "S" in flags else "rst" if "R" in flags else "none"
                else:
                    icmp_type = int(getattr(reply.getlayer(2), "type", -1))
                    kind = "time-exceeded" if icmp_type == (3 if v6 else 11) else "unreachable"
                if kind == "syn-ack":
                    reached.append((sent, reply))
                by_ttl[ttl] = Hop(ttl, str(rip.src), kind, max(rtt, 0.0), reply_ttl)  # type: ignore[arg-type]
            for sent, reply in reached:  # close the half-open connections our SYNs left
                await self._send(address, (sc.IPv6(dst=address) if v6 else sc.IP(dst=address))
                                 / sc.TCP(sport=sport, dport=port, flags="RA", seq=int(sent[sc.TCP].seq) + 1,
                                          ack=int(reply[sc.TCP].seq) + 1))
        hops: list[Hop] = []
        for ttl in range(1, max_ttl + 1):
            hop = by_ttl.get(ttl, Hop(ttl, None, "none"))
            hops.append(hop)
            if hop.is_target:
                break  # beyond the target every TTL only repeats it
        return hops

    async def df_echo(self, address: str, sizes: list[int], timeout: float = 2.0) -> list[SizeEcho]:
        """ICMP echoes with DF (IPv6 never fragments in flight) of the given IP packet sizes."""
        sc = await asyncio.to_thread(scapy_modules)
        v6 = _is_v6(address)
        iface = str((sc.conf.route6 if v6 else sc.conf.route).route(address)[0])
        mtu = await asyncio.to_thread(_iface_mtu, iface)
        header = 48 if v6 else 28
        results: list[SizeEcho] = []
        probes = []
        for i, size in enumerate(sorted(set(sizes))):
            if mtu and size > mtu:
                results.append(SizeEcho(size, False, error=f"larger than {iface}'s MTU {mtu}"))
                continue
            ident = random.randrange(1 << 16)
            pad = b"\0" * max(size - header, 0)
            if v6:
                probes.append(sc.IPv6(dst=address) / sc.ICMPv6EchoRequest(id=ident, seq=i, data=pad))
            else:
                probes.append(sc.IP(dst=address, flags="DF") / sc.ICMP(id=ident, seq=i) / pad)
        answered, unanswered = await self._sr(address, probes, timeout) if probes else ([], [])
        for sent, reply in answered:
            size = len(bytes(sent))
            too_big = None
            if v6 and reply.haslayer(sc.ICMPv6PacketTooBig):
                too_big = int(reply[sc.ICMPv6PacketTooBig].mtu)
            elif not v6 and reply.haslayer(sc.ICMP) and int(reply[sc.ICMP].type) == 3 \
                    and int(reply[sc.ICMP].code) == 4:
                too_big = int(reply[sc.ICMP].nexthopmtu)
            rtt = round((float(reply.time) - float(sent.sent_time or reply.time)) * 1000, 2)
            rip = reply.getlayer(sc.IPv6) if v6 else reply.getlayer(sc.IP)
            results.append(SizeEcho(size, too_big is None, too_big, max(rtt, 0.0),
                                    reply_ttl=int(rip.hlim if v6 else rip.ttl) if rip is not None else None,
                                    replier=str(rip.src) if rip is not None else None))
        for sent in unanswered:
            results.append(SizeEcho(len(bytes(sent)), False))
        return sorted(results, key=lambda r: r.size)


def _iface_mtu(iface: str) -> int | None:
    try:
        with open(f"/sys/class/net/{iface}/mtu", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None
