"""Checks of step 2 (connectivity): name resolution, a TCP handshake to every address, ICMP echo."""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, dataclass

from pydantic import Field

from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    NoParams,
    Tool,
    register,
)
from wizard.hosts.commands import CommandOutput
from wizard.model import CheckResult, Status
from wizard.model.contexts import command_in
from wizard.model.wording import plural

MAX_PING_ADDRESSES = 4


NO_ADDRESS = "the target has no resolved address to connect to"


def _addresses(ctx: CheckContext) -> list[str]:
    """Resolved addresses only: a bare name handed to a socket or ping would be resolved again."""
    if ctx.target.addresses:
        return list(ctx.target.addresses)
    if ctx.resolution is not None and ctx.resolution.addresses:
        return list(ctx.resolution.addresses)
    return [ctx.target.host] if ctx.target.is_address else []


def _family(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


@register
class DnsResolveCheck(Check[NoParams]):
    id = "dns.resolve"
    title = "Name resolution"
    step = "connectivity"
    Params = NoParams
    description = "How the target's name resolves: literal, /etc/hosts or DNS; IPv4 and IPv6 addresses."

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        res = ctx.resolution
        if res is None:
            res = await ctx.probes.dns.resolve(ctx.target.host, min(ctx.answers.timeout_s, 5.0))
        f = Findings()
        name = ctx.target.host
        v4 = [a for a in res.addresses if _family(a) == "IPv4"]
        v6 = [a for a in res.addresses if _family(a) == "IPv6"]
        source = {"literal": "the target is an address already; nothing was resolved",
                  "hosts": f"{name} is listed in /etc/hosts, so DNS is not asked",
                  "dns": f"{name} resolved through DNS" + (f" (nameserver {res.nameserver})"
                                                         if res.nameserver else ""),
                  "system": f"{name} resolved through the system resolver (getaddrinfo)",
                  "none": f"{name} did not resolve"}[res.source]
        f.add(source, source=res.source, data={"source": res.source, "ms": res.ms})
        if res.records:
            lines = [f"{name}. {r.ttl} IN {r.rtype} {r.value}" for r in res.records]
            f.add(plural(len(res.records), "DNS record"), kind="table",
                  source=f"DNS query A/AAAA {name}" + (f" @{res.nameserver}" if res.nameserver else ""),
                  text="\n".join(lines),
                  data={"records": [{"type": r.rtype, "value": r.value, "ttl": r.ttl}
                                    for r in res.records]})
            dns_addrs = {r.value for r in res.records if r.rtype in ("A", "AAAA")}
            if dns_addrs and set(res.addresses) != dns_addrs:
                f.add("the system resolver and DNS disagree: the application uses "
                      f"{', '.join(res.addresses)}, DNS says {', '.join(sorted(dns_addrs))}",
                      data={"system": res.addresses, "dns": sorted(dns_addrs)})
        if res.addresses:
            f.add(f"IPv4: {', '.join(v4) or 'none'}; IPv6: {', '.join(v6) or 'none'}",
                  data={"ipv4": v4, "ipv6": v6})
        if res.error:
            f.add(f"resolution problem: {res.error}")
        if not res.ok:
            return f.result(Status.FAIL, f"{name} does not resolve: {res.error or 'no address'}")
        families = " and ".join(x for x, a in (("IPv4", v4), ("IPv6", v6)) if a)
        status = Status.WARN if res.error else Status.PASS
        what = "is an address" if res.source == "literal" else f"resolves ({res.source})"
        count = plural(len(res.addresses), f"{families} address", f"{families} addresses")
        return f.result(status, f"{name} {what}: {count}")


def _every(total: int) -> str:
    return "the one address" if total == 1 else f"all {total} addresses"


@register
class TcpConnectCheck(Check[NoParams]):
    id = "tcp.connect"
    title = "TCP handshake to every address"
    step = "connectivity"
    Params = NoParams
    emits = ("connect.ok", "connect.refused", "connect.timeout", "connect.reset",
             "connect.unreachable", "connect.partial")
    description = "Connects to every resolved address concurrently and classifies each outcome."

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        addresses = _addresses(ctx)
        if not addresses:
            return CheckResult.skipped(NO_ADDRESS, "check the name (dns.resolve) or give an address")
        port = ctx.target.port
        async with ctx.traffic.shared():  # never inside another check's bracketed window
            outcomes = await asyncio.gather(*(ctx.probes.tcp.connect(a, port, ctx.answers.timeout_s)
                                              for a in addresses))
        f = Findings()
        for o in outcomes:
            where = f"[{o.address}]:{port}" if ":" in o.address else f"{o.address}:{port}"
            detail = {"ok": "handshake completed",
                      "refused": "refused: an RST answered the SYN (nothing accepted it)",
                      "timeout": "no answer to the SYN: packets are dropped (not a reset)",
                      "reset": "reset during the handshake",
                      "unreachable": f"unreachable: {o.message}",
                      "eof": "closed during the handshake"}.get(o.kind, f"failed: {o.message}")
            f.add(f"{o.family} {where}: {detail} in {o.ms:.1f} ms",
                  source=f"TCP connect {where} (timeout {ctx.answers.timeout_s:g}s)",
                  data={"address": o.address, "port": port, "kind": o.kind, "ms": o.ms,
                        "errno": o.errno, "local": o.local})
        total = len(outcomes)
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.kind] = counts.get(o.kind, 0) + 1
        ok = counts.get("ok", 0)
        if ok == total:
            f.signal("connect.ok", f"{_every(total)} completed the TCP handshake on port {port}")
            return f.result(Status.PASS, f"the handshake completes on every address ({total})")
        for kind, signal in (("refused", "connect.refused"), ("timeout", "connect.timeout"),
                             ("reset", "connect.reset"), ("unreachable", "connect.unreachable")):
            n = counts.get(kind, 0)
            if n:
                which = ", ".join(o.address for o in outcomes if o.kind == kind)
                f.signal(signal, f"{n} of {plural(total, 'address')}: {kind} on port {port}: {which}",
                         strength=round(n / total, 3))
        if counts.get("refused"):
            f.add("refused means an RST answered the SYN: the reset happens at the handshake, "
                  "so nothing accepted the connection (no listener, or a reject rule)")
        if counts.get("timeout"):
            f.add("a timeout means the SYN went unanswered: something drops packets; that is not a reset")
        if ok:
            good = [o for o in outcomes if o.kind == "ok"]
            bad = [o for o in outcomes if o.kind != "ok"]
            fams = sorted({o.family for o in bad} - {o.family for o in good})
            f.signal("connect.partial", f"{ok} of {plural(total, 'address')} connect, "
                     f"{', '.join(o.address for o in bad)} do not", strength=round(len(bad) / total, 3))
            if fams:
                f.add(f"only {'/'.join(fams)} fails: clients that prefer it get errors while others "
                      "work (e.g. broken IPv6 routing or a firewall for one family)")
            return f.result(Status.WARN, f"{ok} of {plural(total, 'address')} connect; "
                            + ", ".join(f"{o.address} {o.kind}" for o in bad))
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        return f.result(Status.FAIL, f"no address completes the handshake ({summary})")


class PingParams(CheckParams):
    count: int = Field(default=3, ge=1, le=10)
    interval_s: float = Field(default=0.2, ge=0.2, le=1.0)


@dataclass(frozen=True)
class PingStats:
    transmitted: int
    received: int
    loss_pct: float
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None


_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received.*?([\d.]+)% packet loss")
_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/\w+)? = ([\d.]+)/([\d.]+)/([\d.]+)")
#: what lets ping open its ICMP socket without root (every group may)
PING_GROUPS = ("sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647")
_NO_PRIVILEGE = re.compile(r"operation not permitted|permission denied", re.I)


def parse_ping(text: str) -> PingStats | None:
    """The statistics lines of iputils ping (pure); None when there are none."""
    m = _SUMMARY.search(text)
    if not m:
        return None
    rtt = _RTT.search(text)
    return PingStats(int(m.group(1)), int(m.group(2)), float(m.group(3)),
                     *(float(x) for x in rtt.groups()) if rtt else (None, None, None))


@register
class IcmpPingCheck(Check[PingParams]):
    id = "icmp.ping"
    title = "ICMP echo"
    step = "connectivity"
    Params = PingParams
    needs_tools = (Tool("ping", where="client", package="iputils-ping"),)
    emits = ("icmp.lost",)
    description = "The system ping to each address: loss and round-trip times."
    beside_next_steps = True  # ICMP echo: no TCP probe's counters or packets see it

    async def run(self, ctx: CheckContext, params: PingParams) -> CheckResult:
        addresses = _addresses(ctx)[:MAX_PING_ADDRESSES]
        if not addresses:
            return CheckResult.skipped(NO_ADDRESS, "check the name (dns.resolve) or give an address")
        timeout = params.count * params.interval_s + 3.0

        async def one(address: str) -> tuple[str, CommandOutput]:
            argv = ["ping", *(["-6"] if ":" in address else []), "-n", "-c", str(params.count),
                    "-i", f"{params.interval_s:g}", "-W", "1", address]
            return address, await ctx.client.run(argv, timeout=timeout, max_bytes=65536)

        # One address (the usual case) is pinged in this task: a task of its own would start
        # only after every check's first steps, and the ping's fixed length counts from its start.
        results = [await one(addresses[0])] if len(addresses) == 1 else await asyncio.gather(*map(one, addresses))
        f = Findings()
        answered: list[str] = []
        lost: list[str] = []
        for address, out in results:
            blob = f"{out.text}\n{out.err}"
            if _NO_PRIVILEGE.search(out.err) and parse_ping(out.text) is None:
                return CheckResult.skipped(
                    f"ping may not open an ICMP socket here: {out.err.splitlines()[0] if out.err else ''}".strip(),
                    "run as root: sudo reset-wizard ... (or allow unprivileged ping: "
                    + command_in(ctx.client.spec, PING_GROUPS, root=ctx.client_root) + ")")
            stats = parse_ping(out.text)
            if stats is None:
                f.add(f"{address}: no ping statistics ({out.problem()})", kind="command",
                      source=out.command_line, text=blob.strip())
                continue
            rtt = (f", rtt min/avg/max {stats.rtt_min}/{stats.rtt_avg}/{stats.rtt_max} ms"
                   if stats.rtt_avg is not None else "")
            f.add(f"{address}: {stats.received} of {stats.transmitted} echo replies "
                  f"({stats.loss_pct:g}% loss){rtt}", kind="command", source=out.command_line,
                  text=out.text.strip(), data=asdict(stats) | {"address": address})
            (answered if stats.received else lost).append(address)
        if lost:
            f.signal("icmp.lost", f"no ICMP echo reply from {', '.join(lost)}",
                     strength=round(len(lost) / len(addresses), 3))
            f.add("ICMP is often filtered: no echo replies alone say nothing about TCP")
        if answered and not lost and len(answered) == len(addresses):
            return f.result(Status.PASS, "the host answers ICMP echo")
        if not answered and not lost:
            return f.result(Status.WARN, "ping gave no statistics")
        if not answered:
            return f.result(Status.WARN, "no ICMP echo replies (often filtered; says nothing about TCP)")
        return f.result(Status.WARN, f"ICMP echo answered by {', '.join(answered)} only")
