"""Step 4 check: is conntrack in the way (table full, INVALID packets, short timeouts), and TCP verdict sysctls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import Field

from wizard.diag.firewall.io.conntrack import (
    ConntrackEntry,
    ConntrackStats,
    Setting,
    ctnetlink_present,
    read_entries,
    read_settings,
    read_stats,
    same_address,
)
from wizard.engine.bracket import shared_bracket
from wizard.engine.contract import Check, CheckContext, CheckParams, Findings, register
from wizard.hosts.base import HostError
from wizard.model import CheckResult, Status

_MOVING = ("invalid", "drop", "early_drop", "insert_failed", "search_restart", "error")
_MAX_ENTRIES = 20


class ConntrackStateParams(CheckParams):
    full_ratio: float = Field(default=0.95, gt=0, le=1, description="count/max at which the table is full")
    short_established_s: int = Field(default=600, ge=1,
                                     description="an established timeout below this forgets idle flows")
    probe: bool = Field(default=True, description="read the counters around one payload probe")


@dataclass
class Reading:
    stats: ConntrackStats
    count: int | None
    entries: list[ConntrackEntry] = field(default_factory=list)
    entries_source: str = ""
    problems: list[str] = field(default_factory=list)


def _setting(settings: tuple[Setting, ...], short: str) -> Setting | None:
    return next((s for s in settings if s.name.endswith("." + short)), None)


@register
class ConntrackStateCheck(Check[ConntrackStateParams]):
    id = "conntrack.state"
    title = "conntrack table and TCP verdict settings"
    step = "firewall"
    Params = ConntrackStateParams
    needs_root = "server"
    reads_server = True
    emits = ("conntrack.table_full", "conntrack.invalid_moved", "conntrack.short_established_timeout",
             "target.forwarded",
             "conntrack.ok", "sysctl.abort_on_overflow", "sysctl.ct_be_liberal", "sysctl.ct_loose_off")
    description = ("Reads nf_conntrack_count against nf_conntrack_max, the conntrack statistics "
                   "(invalid, drop, early_drop, insert_failed) before and after one probe, the "
                   "probe flow's entry, and the kernel settings that change TCP verdicts.")

    @staticmethod
    async def read_state(ctx: CheckContext) -> Reading:
        """The statistics, the table's fill and the port's entries (the part of the shared
        bracket this check reads): the entries are read with the counters, so the reading
        after the probe has them and the handshake's burst need not wait for a listing of its own."""
        return await _reading(ctx, entries=True)

    @classmethod
    async def read_before(cls, ctx: CheckContext) -> Reading:
        """Before the probe only the statistics are compared: the port's entries (conntrack
        -L, the slowest of the bracket's readings, which the probe waits for) are listed in
        the reading after it alone."""
        return await _reading(ctx, entries=False)

    async def run(self, ctx: CheckContext, params: ConntrackStateParams) -> CheckResult:
        f = Findings()
        host = ctx.server
        settings = await read_settings(host)
        rows = [{"name": s.name, "value": s.value, "means": s.means, "note": s.note} for s in settings]
        f.add("kernel settings that change TCP verdicts", kind="table",
              source=", ".join(f"/proc/sys/{s.name.replace('.', '/')}" for s in settings[:1]) + " …",
              text="\n".join(f"{s.name} = {s.value if s.value is not None else '(' + s.note + ')'}"
                             for s in settings), data={"settings": rows})
        self._setting_signals(f, settings)
        count_s = _setting(settings, "nf_conntrack_count")
        if count_s is None or count_s.value is None:
            f.add(f"nf_conntrack is not loaded in {host.spec}: no flow is tracked here, so conntrack "
                  "cannot drop or reset it (not loading the module to look)")
            return f.result(Status.PASS, "conntrack is not in use in the server context")

        probed = params.probe
        if probed:
            br = await shared_bracket(ctx, self.id)
            before, after = br.before, br.after
            f.add(f"probe between the two readings: {br.probe.kind} at {br.probe.stage}",
                  data={"kind": br.probe.kind, "stage": br.probe.stage})
        else:
            before = after = await self.read_state(ctx)
        source, entries, problems = after.entries_source, after.entries, after.problems
        mine = [e for e in entries if any(same_address(e.dst, a) for a in ctx.target.addresses)] \
            if ctx.target.addresses else entries
        for p in (*after.stats.problems, *problems):
            f.add(f"not understood or not read: {p}")
        return self._judge(f, ctx, params, settings, before, after, source, mine, probed)

    @staticmethod
    def _setting_signals(f: Findings, settings: tuple[Setting, ...]) -> None:
        checks = (("tcp_abort_on_overflow", 1, "sysctl.abort_on_overflow",
                   "net.ipv4.tcp_abort_on_overflow = 1: a full accept queue resets handshakes instead of dropping"),
                  ("nf_conntrack_tcp_be_liberal", 1, "sysctl.ct_be_liberal",
                   "nf_conntrack_tcp_be_liberal = 1: only out-of-window RSTs are marked INVALID"),
                  ("nf_conntrack_tcp_loose", 0, "sysctl.ct_loose_off",
                   "nf_conntrack_tcp_loose = 0: flows picked up mid-stream (after a flush or failover) are INVALID"))
        for short, value, sig, fact in checks:
            s = _setting(settings, short)
            if s is not None and s.number == value:
                f.signal(sig, fact)

    def _judge(self, f: Findings, ctx: CheckContext, params: ConntrackStateParams,
               settings: tuple[Setting, ...], before: Reading, after: Reading, source: str,
               entries: list[ConntrackEntry], probed: bool) -> CheckResult:
        maximum = (_setting(settings, "nf_conntrack_max") or Setting("", None)).number
        count = after.count
        deltas = {k: after.stats.counters[k] - before.stats.counters[k] for k in _MOVING
                  if k in after.stats.counters and k in before.stats.counters} if probed else {}
        f.add("conntrack statistics" + (" before and after the probe" if probed else ""), kind="counters",
              source=after.stats.source, text=after.stats.text,
              data={"before": before.stats.counters, "after": after.stats.counters, "delta": deltas})
        problems: list[str] = []
        if count is not None and maximum:
            ratio = count / maximum
            f.add(f"nf_conntrack_count {count} of nf_conntrack_max {maximum} ({ratio:.0%})",
                  source="/proc/sys/net/netfilter/nf_conntrack_count, nf_conntrack_max",
                  data={"count": count, "max": maximum, "ratio": round(ratio, 4)})
            if ratio >= params.full_ratio:
                f.signal("conntrack.table_full", f"nf_conntrack_count {count} is {ratio:.0%} of "
                         f"nf_conntrack_max {maximum}: new flows are dropped")
                problems.append("the table is full")
        dropping = {k: v for k, v in deltas.items() if k in ("drop", "early_drop") and v > 0}
        if dropping:
            f.signal("conntrack.table_full", "conntrack " + ", ".join(f"{k} +{v}" for k, v in dropping.items())
                     + " during the probe: flows were dropped for want of room")
            problems.append("drops moved")
        if deltas.get("invalid", 0) > 0:
            f.signal("conntrack.invalid_moved", f"conntrack invalid +{deltas['invalid']} during the probe: "
                     "packets were judged INVALID (a `ct state invalid` rule drops or rejects them)")
            problems.append("INVALID packets")
        if deltas.get("insert_failed", 0) > 0:
            f.add(f"insert_failed +{deltas['insert_failed']} during the probe (races on insertion, e.g. "
                  "parallel DNS or NAT clashes)")
        if entries:
            f.add(f"the probe's flow as tracked ({len(entries)} entr{'y' if len(entries) == 1 else 'ies'})",
                  kind="command", source=source,
                  text="\n".join(e.line for e in entries[:_MAX_ENTRIES]),
                  data={"entries": [{"state": e.state, "timeout": e.timeout, "src": e.src, "dst": e.dst,
                                     "sport": e.sport, "dport": e.dport} for e in entries[:_MAX_ENTRIES]]})
        elif source:
            f.add(f"no tracked flow to port {ctx.target.port} on the target's addresses ({source})")
        _forwarded(f, ctx, entries)
        est = _setting(settings, "nf_conntrack_tcp_timeout_established")
        if est is not None and est.number is not None and est.number < params.short_established_s \
                and (entries or count):
            f.signal("conntrack.short_established_timeout",
                     f"nf_conntrack_tcp_timeout_established = {est.number} s: a flow idle longer "
                     "is forgotten, and its next packet is INVALID or met with a reset",
                     1.0 if entries else 0.5)
            problems.append(f"established flows forgotten after {est.number} s idle")
        f.add("kernel log lines about the table (\"nf_conntrack: table full, dropping packet\") are "
              "excerpted by logs.excerpt from the kernel log; this check does not read dmesg")
        if not problems:
            f.signal("conntrack.ok", f"conntrack has room ({count} of {maximum}) and its drop and "
                     "invalid counters stayed still" + (" during the probe" if probed else ""))
            return f.result(Status.PASS, f"conntrack has room ({count} of {maximum}), nothing dropped "
                            "or judged INVALID")
        status = Status.FAIL if {"the table is full", "drops moved", "INVALID packets"} & set(problems) \
            else Status.WARN
        return f.result(status, "conntrack: " + "; ".join(problems))


def _forwarded(f: Findings, ctx: CheckContext, entries: list[ConntrackEntry]) -> None:
    """A tracked flow of the probe whose reply comes from elsewhere: the server context forwards
    the target (DNAT, a port forward, a load balancer's VIP) and what answers, or resets, is
    one hop beyond it. The next server context is that backend."""
    targets = sorted({e.forwarded_to for e in entries if e.forwarded_to})
    if not targets:
        return
    example = next(e for e in entries if e.forwarded_to)
    f.signal("target.forwarded",
             f"{ctx.server.spec} forwards {ctx.target.display()} to {', '.join(targets)} (conntrack: the "
             f"reply comes from {example.forwarded_to}, state {example.state or '?'}): the connection ends "
             f"beyond the target, not in this context; diagnose the backend next (--server for the host "
             f"of {targets[0]})")


async def _reading(ctx: CheckContext, *, entries: bool) -> Reading:
    """The statistics and the table's fill, and with ``entries`` the port's entries."""
    use_tool = await _use_tool(ctx)
    stats, (source, found, problems) = await asyncio.gather(
        read_stats(ctx.server, use_tool),
        read_entries(ctx.server, ctx.target.port, use_tool) if entries else _no_entries())
    try:
        count = int((await ctx.server.read_text("/proc/sys/net/netfilter/nf_conntrack_count", 64)).strip())
    except (ValueError, HostError):  # a bad value or the module gone: unknown
        count = None
    return Reading(stats, count, found, source, problems)


async def _no_entries() -> tuple[str, list[ConntrackEntry], list[str]]:
    return "", [], []


async def _use_tool(ctx: CheckContext) -> bool:
    """Whether conntrack(8) can talk to the kernel here (asked once a run)."""
    return bool(await ctx.once("ct.tool", lambda: ctnetlink_present(ctx.server)))
