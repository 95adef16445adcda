"""Step 5 check: the server kernel's own account of the probe, from its reset and drop tracepoints.

Runs in step "app-errors" next to kernel.counters: both read the server's kernel around one
probe, but where the counters say *that* a reset was sent, the trace says for which flow, why
(the kernel's ``sk_rst_reason``) and in which process, so its signals outrank the counters'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from wizard.diag.kernel.io.tracing import KernelTrace, TraceCapture, TraceUnavailable
from wizard.diag.kernel.parse.tracelines import Endpoint, TraceEvent
from wizard.engine.bracket import watched_probe, watches_bracket_probe
from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    payload_for,
    probe_address,
    register,
)
from wizard.model import CheckResult, Status
from wizard.model.wording import plural

#: tcp_send_reset reason -> (signal, what it means); reasons not listed raise ktrace.rst_sent only
RST_REASONS: dict[str, tuple[str, str]] = {
    "NO_SOCKET": ("ktrace.rst_no_socket", "no socket owns that address and port"),
    "TCP_ABORT_ON_CLOSE": ("ktrace.rst_abort_on_close", "the application closed with unread data"),
    "TCP_ABORT_ON_DATA": ("ktrace.rst_abort_on_data", "data arrived for a socket the application had closed"),
    "TCP_STATE": ("ktrace.rst_disconnect",
                  "the application aborted the connection (close with SO_LINGER 0, or a listener "
                  "closed with connections still queued)"),
    "TCP_DISCONNECT_WITH_DATA": ("ktrace.rst_disconnect", "the application disconnected with data unsent"),
    "TCP_ABORT_ON_LINGER": ("ktrace.rst_abort_on_linger", "the FIN_WAIT2 linger time ran out"),
    "TCP_ABORT_ON_MEMORY": ("ktrace.rst_abort_on_memory", "the kernel ran short of TCP memory or orphan slots"),
    "TCP_KEEPALIVE_TIMEOUT": ("ktrace.rst_keepalive_timeout", "the keepalive timer gave up on the peer"),
}
DROP_SIGNALS = {"TCP_LISTEN_OVERFLOW": "ktrace.drop_listen_overflow", "NETFILTER_DROP": "ktrace.drop_netfilter",
                "PROTO_MEM": "ktrace.drop_memory"}
SETTLE_S = 0.3  # a reset sent while the probe closes lands just after it returns

# Drops are tied to the probe by time only (kfree_skb has no addresses and tracefs sees every
# namespace of the kernel): weighed as hints, never as the decisive fact.
DROP_STRENGTH = 0.6


class KernelTraceParams(CheckParams):
    allow_mount: bool = Field(default=False, description="mount tracefs when missing (then unmount)")
    buffer_kb: int = Field(default=512, ge=64, le=16384)


def flow_events(cap: TraceCapture, server: Endpoint, client: Endpoint | None) -> list[TraceEvent]:
    """Reset events of the probe's flow: the server endpoint on one side, the probe's local
    endpoint (when known) on the other. Tracefs is global, so everything else is other traffic."""
    found = []
    for e in cap.events:
        if e.event not in ("tcp_send_reset", "tcp_receive_reset") or e.local is None:
            continue
        if not e.local.same(server.address, server.port):
            continue
        if client is not None and (e.remote is None or not e.remote.same(client.address, client.port)):
            continue
        found.append(e)
    return found


def died_before(cap: TraceCapture, rst: TraceEvent) -> str:
    """How the process that sent ``rst`` had begun to exit before it (its sched_process_exit
    traced earlier in the same task), or "" when it had not: a crash, a kill or an exit
    closes the task's sockets after that tracepoint, a close() the running program makes
    comes before it."""
    if not rst.in_process_context:
        return ""
    for e in cap.events:
        if e.event == "sched_process_exit" and e.pid == rst.pid and e.ts <= rst.ts:
            return f"sched_process_exit {(rst.ts - e.ts) * 1000:.1f} ms before the reset"
    return ""


def _ms(cap: TraceCapture, e: TraceEvent) -> float | None:
    return round((e.ts - cap.started) * 1000, 1) if cap.started else None


def annotation(cap: TraceCapture, e: TraceEvent) -> dict[str, Any]:
    """One entry of the ``rst_reasons`` list the report, the TUI and the ladder merge."""
    assert e.local is not None and e.remote is not None
    return {"flow": f"{e.local.display}->{e.remote.display}", "ms": _ms(cap, e),
            "reason": e.reason or "unknown", "state": e.state,
            "comm": e.comm if e.in_process_context else "", "pid": e.pid if e.in_process_context else 0}


def describe(e: TraceEvent) -> str:
    who = f" (process {e.comm}[{e.pid}])" if e.in_process_context else ""
    meaning = RST_REASONS.get(e.reason, ("", ""))[1]
    return (f"the server's kernel sent RST {e.local.display if e.local else '?'} -> "
            f"{e.remote.display if e.remote else '?'} because {e.reason or 'an unnamed reason'}"
            f"{who}" + (f": {meaning}" if meaning else ""))


@register
class KernelResetsCheck(Check[KernelTraceParams]):
    id = "kernel.resets"
    title = "The kernel's reasons for resets and drops"
    step = "app-errors"
    Params = KernelTraceParams
    needs_root = "server"
    reads_server = True
    emits = ("ktrace.rst_sent", "ktrace.no_server_rst", *sorted({s for s, _ in RST_REASONS.values()}),
             *sorted(set(DROP_SIGNALS.values())), "ktrace.netfilter_reject", "ktrace.rst_sender_exited")
    description = ("Traces the server context's kernel (tracefs: tcp_send_reset, tcp_receive_reset, "
                   "kfree_skb with drop reasons) in its own instance while one probe runs; quotes the "
                   "kernel's reason for each reset of the probe's flow and each drop.")

    async def run(self, ctx: CheckContext, params: KernelTraceParams) -> CheckResult:
        if await ctx.server_has_target() is False:
            return CheckResult.skipped(
                f"the server context {ctx.server.spec} does not own {ctx.target.host}: its kernel "
                "never sees the probe", "--server with the context that owns the target address")
        if params == _checklist_params(ctx):  # the bracket traced with these very parameters
            try:
                # The bracket's probe, traced: the one the counters, rules and capture also saw.
                got = await watched_probe(ctx, self.id)
            except TraceUnavailable as exc:
                return CheckResult.skipped(exc.reason, exc.fix)
            if got is not None:
                return judge(ctx, *got)
        trace = KernelTrace(ctx.server, ports=(ctx.target.port,), allow_mount=params.allow_mount,
                            buffer_kb=params.buffer_kb)
        # The drops it sees carry no addresses: no other probe may run while it traces.
        async with ctx.traffic.alone():
            try:
                await trace.start()
            except TraceUnavailable as exc:
                return CheckResult.skipped(exc.reason, exc.fix)
            try:
                payload, _ = payload_for(ctx)
                probe = await ctx.probes.tcp.exchange(probe_address(ctx), ctx.target.port, payload,
                                                      ctx.answers.timeout_s)
                await asyncio.sleep(SETTLE_S)
                cap = await trace.stop()
            finally:
                await asyncio.shield(trace.close())
        return judge(ctx, probe, cap)


def _checklist_params(ctx: CheckContext) -> KernelTraceParams | None:
    """This check's parameters in the run's checklist (the bracket's trace uses them)."""
    spec = next((c for step in ctx.checklist.steps for c in step.checks if c.check == KernelResetsCheck.id), None)
    return KernelTraceParams.model_validate(spec.params) if spec is not None else None


@watches_bracket_probe(KernelResetsCheck.id)
async def trace_bracket(ctx: CheckContext) -> Callable[[], Awaitable[TraceCapture]]:
    """Trace the shared bracket's probe (started before it, stopped a settle after it), with
    the checklist's parameters of this check. Raises TraceUnavailable when it cannot."""
    if await ctx.server_has_target() is False:
        raise TraceUnavailable("the server context does not own the target", "")  # the check says so first
    params = _checklist_params(ctx) or KernelTraceParams()
    trace = KernelTrace(ctx.server, ports=(ctx.target.port,), allow_mount=params.allow_mount,
                        buffer_kb=params.buffer_kb)
    await trace.start()

    async def stop() -> TraceCapture:
        try:
            await asyncio.sleep(SETTLE_S)
            return await trace.stop()
        finally:
            await asyncio.shield(trace.close())
    return stop


def judge(ctx: CheckContext, probe: Any, cap: TraceCapture) -> CheckResult:
    """Evidence and signals from one traced probe (pure: no I/O)."""
    f = Findings()
    server = Endpoint(probe.address, probe.port)
    client = _endpoint(probe.local)
    mine = flow_events(cap, server, client)
    sent = [e for e in mine if e.event == "tcp_send_reset"]
    drops = [e for e in cap.events if e.event == "kfree_skb"]
    flow = f"{client.display if client else 'the probe'} -> {server.display}"
    _traced(f, ctx, probe, cap, mine, sent, flow)
    got_reset = probe.kind in ("reset", "refused")
    if got_reset and not sent and "tcp/tcp_send_reset" in cap.enabled and not cap.lost:
        _not_the_kernels(f, probe, drops, flow)
    counted = _dropped(f, ctx, probe, cap, drops)
    if cap.lost:
        f.add("the trace buffer overflowed: some events were lost (a busy server); raise buffer_kb")
    if not sent and not got_reset:
        f.add(f"the server's kernel sent no reset for {flow}")
    return _verdict(f, probe, sent, counted)


def _traced(f: Findings, ctx: CheckContext, probe: Any, cap: TraceCapture, mine: list[TraceEvent],
            sent: list[TraceEvent], flow: str) -> None:
    """What was traced, the probe, the flow's reset events and a signal for each reset sent."""
    f.add(f"traced in tracefs instance {cap.instance}: " + ", ".join(cap.enabled) +
          (f"; could not trace {', '.join(f'{k} ({v})' for k, v in cap.missing.items())}" if cap.missing else ""),
          source=ctx.server.spec, data={"enabled": cap.enabled, "missing": cap.missing,
                                        "mounted_tracefs": cap.mounted, "buffer_overflowed": cap.lost,
                                        "removed_stale": list(cap.removed_stale)})
    f.add(f"probe {flow}: {probe.kind} at {probe.stage}", kind="fact",
          data={"kind": probe.kind, "stage": probe.stage, "local": probe.local})
    if mine:
        f.add(f"{plural(len(mine), 'reset event')} of the probe's flow in the server's kernel",
              kind="command", source=f"{ctx.server.spec}: tracefs instances/{cap.instance}/trace",
              text="\n".join(e.line for e in mine),
              data={"rst_reasons": [annotation(cap, e) for e in sent if e.local and e.remote]})
    for e in sent:
        f.signal("ktrace.rst_sent", describe(e))
        sig = RST_REASONS.get(e.reason)
        if sig:
            f.signal(sig[0], describe(e))
        dying = died_before(cap, e)
        if dying:
            f.signal("ktrace.rst_sender_exited",
                     f"{e.comm}[{e.pid}] was exiting when it sent the reset ({dying}): the reset "
                     f"({e.reason or 'unnamed'}) is its sockets closed by its death, not a close it made")


def _not_the_kernels(f: Findings, probe: Any, drops: list[TraceEvent], flow: str) -> None:
    """The probe was reset but the server's TCP stack sent no reset: netfilter, or the path."""
    nf = [d for d in drops if d.reason == "NETFILTER_DROP"]
    if nf:
        # tcp_send_reset is tied to the flow, but kfree_skb carries neither addresses nor
        # a namespace: the netfilter drop may be another host's (a router namespace on the
        # same kernel), so it is weighed as the hint it is.
        f.signal("ktrace.netfilter_reject",
                 f"netfilter reset {flow}, the server's kernel sent none: the probe was {probe.kind}, "
                 f"tcp_send_reset traced no reset for the flow, and netfilter dropped "
                 f"{plural(len(nf), 'packet')} meanwhile (a reject rule drops the packet and answers "
                 "with its own RST; the drop is tied to the probe by time only)", DROP_STRENGTH)
    else:
        f.signal("ktrace.no_server_rst",
                 f"the probe was {probe.kind} but the server's kernel sent no reset for {flow}: "
                 "something else (a firewall reject or a device on the path) did")


def _dropped(f: Findings, ctx: CheckContext, probe: Any, cap: TraceCapture,
             drops: list[TraceEvent]) -> dict[str, int]:
    """The kernel's drops while the probe ran, by reason (signals only when the probe lost
    packets too: a drop carries no addresses)."""
    counted = _count(drops)
    if drops:
        f.add(f"the server's kernel dropped {plural(len(drops), 'packet')} while the probe ran: "
              + ", ".join(f"{r} ×{n}" for r, n in counted.items())
              + " (kfree_skb carries no addresses: tied to the probe by time only)", kind="command",
              source=f"{ctx.server.spec}: tracefs instances/{cap.instance}/trace",
              text="\n".join(d.line for d in drops[:50]),
              data={"drops": counted})
    for reason, n in counted.items():
        sid = DROP_SIGNALS.get(reason)
        if sid and probe.kind != "ok":
            f.signal(sid, f"the server's kernel dropped {plural(n, 'packet')} because {reason} while the probe "
                          f"{_outcome(probe.kind)}", DROP_STRENGTH)
    if (probe.kind == "timeout" and probe.stage == "connect" and "skb/kfree_skb" in cap.enabled
            and "TCP_LISTEN_OVERFLOW" not in counted):
        # Said so that a missing TCP_LISTEN_OVERFLOW is not read as "the accept queue was fine".
        f.add("no TCP_LISTEN_OVERFLOW drop traced: a SYN that a full accept queue refuses is consumed "
              "without a drop reason (only a handshake's final ACK that finds the queue full is freed "
              "as TCP_LISTEN_OVERFLOW); the ListenOverflows counter counts both", kind="fact")
    return counted


def _verdict(f: Findings, probe: Any, sent: list[TraceEvent], counted: dict[str, int]) -> CheckResult:
    if sent:
        return f.result(Status.WARN, "; ".join(dict.fromkeys(
            f"RST because {e.reason or 'unnamed'}" + (f" in {e.comm}[{e.pid}]" if e.in_process_context else "")
            for e in sent)))
    if any(s.id == "ktrace.netfilter_reject" for s in f.signals):
        return f.result(Status.WARN, "netfilter reset the probe's flow; the server's kernel sent no reset")
    if any(s.id == "ktrace.no_server_rst" for s in f.signals):
        return f.result(Status.WARN, "the client got a reset the server's TCP stack did not send")
    if f.signals:
        return f.result(Status.WARN, "the server's kernel dropped packets while the probe "
                        f"{_outcome(probe.kind)}: " + ", ".join(
                            f"{r} ×{n}" for r, n in counted.items() if r in DROP_SIGNALS))
    return f.result(Status.PASS, "the server's kernel sent no reset and dropped nothing for the probe")


def _outcome(kind: str) -> str:
    return {"timeout": "timed out", "refused": "was refused", "reset": "was reset",
            "closed": "was closed"}.get(kind, f"ended: {kind}")


def _count(drops: list[TraceEvent]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in drops:
        out[d.reason] = out.get(d.reason, 0) + 1
    return out


def _endpoint(local: str) -> Endpoint | None:
    from wizard.diag.kernel.parse.tracelines import parse_endpoint

    return parse_endpoint(local) if local else None
