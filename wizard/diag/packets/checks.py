"""Step 6 at packet level: capture and attribute resets, SYN fingerprint, traceroute, PMTU, protocol."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import Field

from wizard.diag.packets.capturing import (
    COUNTER_FILES,
    CaptureParams,
    packet_probe,
    probe_port,
    shared_capture,
)
from wizard.diag.packets.io.libpcap import LIBPCAP_FIX
from wizard.diag.packets.io.nftguard import NFT_TIMEOUT, GuardError
from wizard.diag.packets.parse.attribution import (
    Attribution,
    ServerShape,
    Timing,
    attribute,
    burst_timing,
    flows,
    ladder,
    packet_table,
    server_shape,
    timing,
)
from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    Tool,
    probe_address,
    register,
)
from wizard.engine.probes import Capture, Hop, PacketEvent, SizeEcho, SynFingerprint
from wizard.model import CheckResult, Status
from wizard.model.cancel import within
from wizard.model.contexts import command_in
from wizard.model.wording import plural

NO_ROOT = (" Without root (no raw sockets) it is skipped, and step 6 relies on the socket-level "
           "probes: it then cannot see who sent a reset (TTL, options, IP ID), only that one came.")
NFT = Tool("nft", where="client", package="nftables")


async def fingerprint(ctx: CheckContext, timeout: float = 2.0) -> SynFingerprint:
    """The server's SYN-ACK fingerprint, taken once per run by whichever check asks first;
    bounded: a SYN probe never waits longer than its timeout plus the guard's nft calls."""
    probe = packet_probe(ctx)
    return await within(
        ctx.once("syn_fingerprint", lambda: probe.syn(probe_address(ctx), ctx.target.port, timeout)),
        timeout + 2 * NFT_TIMEOUT)


async def echo_distance(ctx: CheckContext, timeout: float = 2.0) -> SizeEcho | None:
    """One small ICMP echo to the target, shared per run: its reply's TTL is the server's
    distance when no SYN-ACK can be had (every SYN to the port is reset on the way)."""
    probe = packet_probe(ctx)
    echoes = await within(
        ctx.once("server_echo", lambda: probe.df_echo(probe_address(ctx), [84], timeout)), timeout + 1)
    return next((e for e in echoes if e.answered and e.reply_ttl is not None), None)


async def shape_elsewhere(ctx: CheckContext, f: Findings, groups: dict[int, list[Any]],
                          mine: int | None) -> ServerShape | None:
    """The server's shape when the probe connection got no SYN-ACK (a reset to the SYN):
    from another connection of this capture, the run's SYN probe, or an ICMP echo."""
    for port, flow in sorted(groups.items(), key=lambda kv: kv[1][0].ms if kv[1] else 0.0):
        other = server_shape(flow) if port != mine else None
        if other is not None:
            return ServerShape(other.ttl, other.has_timestamps, other.window, None,
                               f"SYN-ACK on another connection (port {port})")
    try:
        fp = await fingerprint(ctx)
    except (TimeoutError, GuardError, OSError) as exc:
        fp = None
        f.add(f"no SYN fingerprint: {exc or 'timed out'}", source="packets.synprobe")
    if fp is not None and fp.answer == "syn-ack" and fp.ttl is not None:
        return ServerShape(fp.ttl, fp.has_timestamps, fp.window or 0, None, "SYN probe's SYN-ACK")
    if fp is not None:
        f.add(f"the SYN probe got no SYN-ACK either ({fp.answer}"
              f"{f', TTL {fp.ttl}' if fp.ttl is not None else ''})", source="packets.synprobe",
              data={"answer": fp.answer, "ttl": fp.ttl})
    try:
        echo = await echo_distance(ctx)
    except (TimeoutError, OSError) as exc:
        echo = None
        f.add(f"no ICMP echo from the server: {exc or 'timed out'}", source="path.pmtu")
    if echo is not None and echo.reply_ttl is not None:
        return ServerShape(echo.reply_ttl, False, 0, None, "ICMP echo reply", by_hops=True)
    return None


async def trace(ctx: CheckContext, max_ttl: int = 16, timeout: float = 2.0) -> list[Hop]:
    probe = packet_probe(ctx)
    return await ctx.once("packets.traceroute",
                          lambda: probe.traceroute(probe_address(ctx), ctx.target.port, max_ttl, timeout))


@register
class PacketsCaptureCheck(Check[CaptureParams]):
    id = "packets.capture"
    title = "Capture the handshake and attribute every reset"
    step = "handshake"
    Params = CaptureParams
    needs_root = "client"
    reads_server = True
    emits = ("rst.from_server_kernel", "rst.from_server_app", "rst.from_server_firewall",
             "rst.from_server_host", "rst.from_path", "rst.from_beyond", "rst.unattributed", "rst.ttl_mismatch",
             "rst.no_timestamps",
             "rst.after_hold_from_path", "rst.none_seen", "rst.path_hop", "timing.reset_to_syn",
             "timing.reset_before_data", "timing.reset_after_first_data", "timing.reset_after_bytes",
             "timing.reset_after_hold", "timing.reset_after_server_fin", "timing.reset_beyond_nth",
             "timing.no_answer")
    description = ("Sniffs the target's address and port while a payload probe (and its idle hold) "
                   "runs, draws the ladder from the real packets, and says for every RST who sent "
                   "it (server kernel, server application, server firewall or the path) and when."
                   + NO_ROOT)

    async def run(self, ctx: CheckContext, params: CaptureParams) -> CheckResult:
        missing = packet_probe(ctx).capture_unavailable()
        if missing:
            return CheckResult.skipped(missing, command_in(ctx.client.spec, LIBPCAP_FIX, root=ctx.client_root,
                                                           in_netns=False))
        f = Findings()
        cap, deltas = await shared_capture(ctx, params)
        groups = flows(cap.events)
        mine = probe_port(cap, groups)
        main = groups.get(mine, []) if mine is not None else []
        source = f"{cap.reader} on {cap.iface}, filter '{cap.bpf}'"
        f.add(f"{plural(len(cap.events), 'packet')} captured ({plural(len(groups), 'connection')})", kind="packets",
              source=source, text=packet_table(cap.events),
              data={"truncated": cap.truncated, "probe_port": mine})
        for problem in cap.problems:
            f.add(problem, source=source)
        if cap.pcap_path:
            f.add(f"capture saved as {cap.pcap_path}", kind="file", source=cap.pcap_path)
        if deltas is not None:
            f.add("server counters that moved during the capture", kind="counters",
                  source=f"{', '.join(COUNTER_FILES)} in {ctx.server.spec}", data={"deltas": deltas})
        if not main:
            f.add("the probe's own connection was not seen in the capture", source=source)
            return f.result(Status.WARN, "no packets of the probe connection were captured")
        attributions, when = await self._judge(ctx, f, cap, groups, mine, deltas, source, params)
        lad = ladder(main, attributions)
        f.add("the probe connection as a ladder", kind="ladder", source=source, data=lad.as_data())
        if not attributions:
            f.signal("rst.none_seen", f"no RST in {plural(len(main), 'packet')} of the probe connection")
            if when.kind == "no-answer":
                return f.result(Status.FAIL, when.detail)
            return f.result(Status.PASS, f"no reset on the wire ({when.detail})")
        senders = ", ".join(dict.fromkeys(a.note() for a in attributions))
        return f.result(Status.FAIL, f"{when.kind}: RST {senders}")

    async def _judge(self, ctx: CheckContext, f: Findings, cap: Capture[Any], groups: dict[int, list[PacketEvent]],
                     mine: int | None, deltas: dict[str, int] | None, source: str,
                     params: CaptureParams) -> tuple[list[Attribution], Timing]:
        """Who sent each RST of the probe's connection, and when in the exchange it came."""
        main = groups.get(mine, []) if mine is not None else []
        shape = server_shape(main)
        if shape is None and any(e.direction == "in" and e.is_rst for e in main):
            shape = await shape_elsewhere(ctx, f, groups, mine)
            if shape is not None:
                f.add(f"no SYN-ACK on the probe connection: the server's shape from the {shape.source} "
                      f"(TTL {shape.ttl}, {plural(shape.hops, 'router')} away)", source=source,
                      data={"ttl": shape.ttl, "hops": shape.hops, "source": shape.source})
        attributions = [attribute(ev, main, shape, deltas) for ev in main if ev.direction == "in" and ev.is_rst]
        when = timing(main)
        for att in attributions:
            f.add(f"RST at {att.rst.ms:.1f} ms {att.note()}", source=source,
                  text="\n".join(f"- {r}" for r in att.reasons),
                  data={"sender": att.sender, "ttl": att.rst.ttl, "window": att.rst.window,
                        "ip_id": att.rst.ip_id, "options": list(att.rst.options),
                        "hop_distance": att.hop_distance})
            for sig in att.signals:
                f.signal(sig, f"RST at {att.rst.ms:.1f} ms: {att.note()}")
            if att.sender == "path" and when.kind == "reset-after-hold":
                f.signal("rst.after_hold_from_path", "the RST after the idle hold came from the path")
        f.add(f"timing: {when.kind}", source=source, text=when.detail, data=asdict(when))
        if when.kind not in ("ok", "closed"):
            f.signal(f"timing.{when.kind.replace('-', '_')}", when.detail)
        burst = burst_timing([fl for p, fl in groups.items() if fl and fl[0].ms >= cap.action_ms - 1]) \
            if params.burst else None
        if burst is not None:
            f.add(f"burst: {burst.kind}", source=source, text=burst.detail)
            f.signal("timing.reset_beyond_nth", burst.detail)
        await self._name_hop(ctx, f, attributions)
        return attributions, when

    async def _name_hop(self, ctx: CheckContext, f: Findings, attributions: list[Any]) -> None:
        path = [a for a in attributions if a.sender == "path" and a.hop_distance is not None]
        if not path:
            return
        try:
            hops = await trace(ctx)
        except (GuardError, OSError) as exc:
            f.add(f"traceroute to name the resetting hop failed: {exc}", source="packets.traceroute")
            return
        distance = path[0].hop_distance or 0
        hop = next((h for h in hops if h.ttl == distance + 1), None)
        if hop is not None and hop.address:
            f.add(f"the path RST's distance ({plural(distance, 'router')}) matches hop {hop.ttl}: {hop.address}",
                  source="packets.traceroute", data=asdict(hop))
            f.signal("rst.path_hop", f"hop {hop.ttl} ({hop.address}) is at the RST's distance")


class SynParams(CheckParams):
    timeout_s: float = Field(default=2.0, gt=0, le=30)


@register
class PacketsSynprobeCheck(Check[SynParams]):
    id = "packets.synprobe"
    title = "Fingerprint the server's SYN-ACK"
    step = "handshake"
    Params = SynParams
    needs_root = "client"
    needs_tools = (NFT,)
    emits = ("syn.answered", "syn.refused", "syn.unanswered")
    description = ("Sends one raw SYN and records the SYN-ACK's TTL, hop distance, window and "
                   "options: the fingerprint every RST is compared with. The local kernel's own "
                   "RST for it is held back by a one-port nftables rule that exists only during "
                   "the probe." + NO_ROOT)

    async def run(self, ctx: CheckContext, params: SynParams) -> CheckResult:
        f = Findings()
        try:
            fp = await fingerprint(ctx, params.timeout_s)
        except GuardError as exc:
            return CheckResult.skipped(str(exc), "install nftables and run as root")
        except TimeoutError:
            f.add("the SYN probe did not finish in time (the RST guard's nft calls hung?)",
                  source="packets.synprobe")
            return f.result(Status.WARN, "no SYN fingerprint: the probe timed out")
        source = f"scapy SYN from port {fp.source_port} (RST guard table {fp.guard_table})"
        f.add(f"answer to a bare SYN: {fp.answer}", source=source, data=asdict(fp))
        if fp.answer == "syn-ack":
            hops = fp.hops if fp.hops is not None else 0  # a SYN-ACK always has its TTL
            f.signal("syn.answered", f"SYN-ACK with TTL {fp.ttl} ({plural(hops, 'router')} away), "
                     f"window {fp.window}, options {', '.join(fp.options) or 'none'}")
            return f.result(Status.PASS, f"SYN-ACK: TTL {fp.ttl} ({plural(hops, 'hop')}), window {fp.window}, "
                            f"{'timestamps' if fp.has_timestamps else 'no timestamps'}")
        if fp.answer == "rst":
            f.signal("syn.refused", f"RST to the SYN, TTL {fp.ttl}, window {fp.window}")
            return f.result(Status.FAIL, f"the SYN was answered with RST (TTL {fp.ttl}): refused")
        f.signal("syn.unanswered", f"no answer within {params.timeout_s:g}s")
        return f.result(Status.WARN, "the SYN was not answered (dropped)")


class TraceParams(CheckParams):
    max_ttl: int = Field(default=16, ge=1, le=32)
    timeout_s: float = Field(default=2.0, gt=0, le=10)


@register
class PacketsTracerouteCheck(Check[TraceParams]):
    id = "packets.traceroute"
    title = "TCP traceroute to the port"
    step = "handshake"
    Params = TraceParams
    needs_root = "client"
    needs_tools = (NFT,)
    emits = ("trace.incomplete",)
    description = ("A TCP SYN traceroute to the target port with every TTL sent at once, so that "
                   "a path RST's hop distance can be matched to a device." + NO_ROOT)

    async def run(self, ctx: CheckContext, params: TraceParams) -> CheckResult:
        f = Findings()
        try:
            hops = await trace(ctx, params.max_ttl, params.timeout_s)
        except GuardError as exc:
            return CheckResult.skipped(str(exc), "install nftables and run as root")
        text = "\n".join(f"{h.ttl:>2}  {h.address or '*':<40} {h.kind:<14} "
                         f"{'' if h.address is None else f'{h.rtt_ms:.2f} ms'}" for h in hops)
        f.add(f"{plural(len(hops), 'hop')} to port {ctx.target.port}", kind="table",
              source=f"scapy TCP SYN to {probe_address(ctx)}:{ctx.target.port}, TTL 1..{params.max_ttl}",
              text=text, data={"hops": [asdict(h) for h in hops]})
        if hops and hops[-1].is_target:
            return f.result(Status.PASS, f"reached the port in {plural(hops[-1].ttl, 'hop')}")
        f.signal("trace.incomplete", f"no answer from the target within {params.max_ttl} hops")
        return f.result(Status.WARN, "the traceroute did not reach the port")


class PmtuParams(CheckParams):
    sizes: list[int] = Field(default_factory=lambda: [576, 1000, 1280, 1400, 1500])
    timeout_s: float = Field(default=2.0, gt=0, le=10)


@register
class PathPmtuCheck(Check[PmtuParams]):
    id = "path.pmtu"
    title = "Large packets on the path (PMTU)"
    step = "handshake"
    Params = PmtuParams
    needs_root = "client"
    emits = ("pmtu.blackhole", "pmtu.ok")
    description = ("ICMP echoes of growing size with Don't Fragment: if small ones pass and large "
                   "ones vanish without 'fragmentation needed', the path is a PMTU black hole and "
                   "transfers hang (timeouts), which is not a reset." + NO_ROOT)

    async def run(self, ctx: CheckContext, params: PmtuParams) -> CheckResult:
        f = Findings()
        addr = probe_address(ctx)
        probe = packet_probe(ctx)
        echoes = await probe.df_echo(addr, params.sizes, params.timeout_s)
        lost = [e.size for e in echoes if not e.answered and e.frag_needed_mtu is None and not e.error]
        if lost:  # one more try, so a single lost echo is not called a black hole
            again = {e.size: e for e in await probe.df_echo(addr, lost, params.timeout_s)}
            echoes = [again.get(e.size, e) if e.size in lost else e for e in echoes]
        text = "\n".join(f"{e.size:>5} B  " + ("answered" if e.answered else
                         f"fragmentation needed, MTU {e.frag_needed_mtu}" if e.frag_needed_mtu
                         else e.error or "no answer") for e in echoes)
        f.add("DF echoes by size", kind="table", source=f"scapy ICMP echo with DF to {addr}", text=text,
              data={"echoes": [asdict(e) for e in echoes]})
        ok = [e.size for e in echoes if e.answered]
        silent = [e.size for e in echoes if not e.answered and e.frag_needed_mtu is None and not e.error]
        told = [e for e in echoes if e.frag_needed_mtu]
        if not ok:
            return f.result(Status.WARN, "no echo was answered at any size: ICMP is filtered, PMTU unknown")
        if silent and min(silent) > max(ok):
            f.signal("pmtu.blackhole", f"echoes up to {max(ok)} B pass, {min(silent)} B and more vanish "
                     "without 'fragmentation needed'")
            return f.result(Status.FAIL, f"PMTU black hole: packets above {max(ok)} B vanish silently "
                            "(transfers hang; this is a timeout, not a reset)")
        if told:
            f.signal("pmtu.ok", f"the path reports its MTU ({told[0].frag_needed_mtu}): PMTU discovery works")
            return f.result(Status.PASS, f"path MTU {told[0].frag_needed_mtu}, announced by ICMP")
        f.signal("pmtu.ok", f"echoes up to {max(ok)} B pass with DF")
        return f.result(Status.PASS, f"packets up to {max(ok)} B pass with DF")
