"""Step 5 checks: the listeners on the target port in the server context, and the kernel TCP
counters read before and after a probe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wizard.diag.kernel.io.counters import (
    Listener,
    listeners,
    process_start,
    read_counters,
    read_sysctl,
)
from wizard.diag.kernel.parse.counters import moved_signals
from wizard.engine.bracket import shared_bracket
from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    Tool,
    register,
)
from wizard.hosts.base import HostError
from wizard.model import CheckResult, Status
from wizard.model.wording import plural

INTERESTING = ("TcpOutRsts", "TcpEstabResets", "TcpAttemptFails", "TcpExtTCPAbortOnData",
               "TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnMemory", "TcpExtTCPAbortOnTimeout",
               "TcpExtTCPAbortOnLinger", "TcpExtTCPAbortFailed", "TcpExtListenOverflows",
               "TcpExtListenDrops", "TcpExtEmbryonicRsts", "TcpExtTCPChallengeACK",
               "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent")
ABORTS = ("TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnMemory",
          "TcpExtTCPAbortOnTimeout", "TcpExtTCPAbortOnLinger")
SHARED_STRENGTH = 0.7


async def _not_the_server(ctx: CheckContext, f: Findings) -> CheckResult | None:
    """A skip when the server context does not own the target; a fact when nobody knows."""
    owns = await ctx.server_has_target()
    if owns is False:
        return CheckResult.skipped(
            f"the server context {ctx.server.spec} does not have the target's address, so its "
            f"listeners and counters say nothing about {ctx.target.display()}",
            "--server ssh:HOST or --server netns:NAME")
    if owns is None:
        f.add(f"could not tell whether {ctx.server.spec} owns {ctx.target.display()}'s address: "
              "what follows assumes it does")
    return None


def _same_netns(ctx: CheckContext) -> bool:
    return ctx.server.spec == ctx.client.spec


@register
class ListenSocketsCheck(Check[CheckParams]):
    id = "listen.sockets"
    title = "Listening sockets"
    step = "app-errors"
    needs_tools = (Tool("ss", where="server", package="iproute2"),)
    reads_server = True
    emits = ("listener.present", "listener.absent", "listener.wrong_address",
             "listener.queue_full", "listener.queue_ok", "listener.restarted")
    description = ("Lists the sockets listening on the target port in the server context "
                   "(ss -Hltnp): address, process, accept queue against backlog, restarts.")

    async def run(self, ctx: CheckContext, params: CheckParams) -> CheckResult:
        f = Findings()
        skip = await _not_the_server(ctx, f)
        if skip:
            return skip
        out, socks = await listeners(ctx.server)
        if not out.ok:
            f.add(f"ss failed: {out.problem()}", kind="command", source=out.command_line, text=out.err)
            return f.result(Status.ERROR, f"cannot list listeners in {ctx.server.spec}")
        port = ctx.target.port
        on_port = [s for s in socks if s.port == port]
        targets = ctx.target.addresses or [ctx.target.host]
        serving = [s for s in on_port if any(s.serves(a) for a in targets)]
        verb = "listens" if len(on_port) == 1 else "listen"
        f.add(f"{plural(len(on_port), 'socket')} {verb} on port {port} in {ctx.server.spec}", kind="command",
              source=out.command_line, text="\n".join(s.line for s in on_port),
              data={"listeners": [_describe(s) for s in on_port]})
        for name in ("net.ipv4.tcp_abort_on_overflow", "net.core.somaxconn"):
            value = await read_sysctl(ctx.server, name)
            if value is not None:
                f.add(f"{name} = {value}", source="/proc/sys/" + name.replace(".", "/"),
                      data={name: value})
        who = ", ".join(targets)
        if not on_port:
            f.signal("listener.absent", f"nothing listens on port {port} in {ctx.server.spec}")
            return f.result(Status.FAIL, f"nothing listens on port {port}")
        if not serving:
            where = ", ".join(s.display for s in on_port)
            f.signal("listener.wrong_address",
                     f"port {port} is bound only on {where}, not on {who}")
            return f.result(Status.FAIL, f"port {port} listens on {where} only, not on {who}")
        status = Status.PASS
        for s in serving:
            procs = ", ".join(f"{n} (pid {p})" for n, p, _ in s.processes) or "process not shown"
            f.signal("listener.present", f"{s.display} listens ({procs})")
            queue = f"accept queue {s.recv_q} of backlog {s.send_q} on {s.display}"
            if s.send_q > 0 and s.recv_q >= s.send_q:
                f.signal("listener.queue_full", f"{queue}: full")
                status = Status.WARN
            else:
                f.signal("listener.queue_ok", queue)
        if await self._restarted(ctx, f, serving):
            status = Status.WARN
        full = any(s.send_q > 0 and s.recv_q >= s.send_q for s in serving)
        verb = "serves" if len(serving) == 1 else "serve"
        return f.result(status, f"{plural(len(serving), 'listener')} {verb} {ctx.target.display()}"
                        + ("; the accept queue is full" if full else ""))

    async def _restarted(self, ctx: CheckContext, f: Findings, serving: list[Listener]) -> bool:
        pids = sorted({p for s in serving for _, p, _ in s.processes})
        if not pids:
            return False
        at = ctx.answers.at
        found = False
        for pid in pids:
            started = await process_start(ctx.server, pid)
            if started is None:
                f.add(f"start time of pid {pid} is unreadable", source=f"/proc/{pid}/stat")
                continue
            when = datetime.fromtimestamp(started, UTC)
            f.add(f"pid {pid} started at {when.isoformat(timespec='seconds')}",
                  source=f"/proc/{pid}/stat", data={"pid": pid, "started": when.isoformat()})
            if at is not None and started > at.timestamp():
                found = True
                f.signal("listener.restarted",
                         f"pid {pid} started at {when.isoformat(timespec='seconds')}, after the "
                         f"reset at {at.isoformat(timespec='seconds')}")
        return found


def _describe(s: Listener) -> dict[str, Any]:
    return {"address": s.display, "recv_q": s.recv_q, "send_q": s.send_q,
            "processes": [{"name": n, "pid": p, "fd": fd} for n, p, fd in s.processes]}


@register
class KernelCountersCheck(Check[CheckParams]):
    id = "kernel.counters"
    title = "Kernel TCP counters"
    step = "app-errors"
    reads_server = True
    emits = ("server.rst_sent", "server.no_rst_sent", "server.abort_on_data",
             "server.abort_on_close", "server.listen_overflow", "server.abort_on_memory")
    description = ("Reads the server context's TCP counters (/proc/net/snmp, /proc/net/netstat) "
                   "before and after one probe: which of OutRsts, TCPAbortOn*, ListenOverflows moved.")

    @staticmethod
    async def read_state(ctx: CheckContext) -> dict[str, int]:
        """The TCP counters (the part of the shared bracket this check reads)."""
        return await read_counters(ctx.server)

    async def run(self, ctx: CheckContext, params: CheckParams) -> CheckResult:
        f = Findings()
        skip = await _not_the_server(ctx, f)
        if skip:
            return skip
        try:
            b = await shared_bracket(ctx, self.id)
        except HostError as exc:
            return CheckResult.skipped(f"cannot read the counters: {exc.message}",
                                       "run with read access to /proc/net in the server context")
        delta = {k: b.after.get(k, 0) - b.before.get(k, 0) for k in INTERESTING
                 if k in b.before or k in b.after}
        data: dict[str, Any] = {k: {"before": b.before.get(k, 0), "after": b.after.get(k, 0),
                                    "delta": d} for k, d in delta.items()}
        p = b.probe
        data["probe"] = {"kind": p.kind, "stage": p.stage, "ms": p.ms}
        moved = {k: d for k, d in delta.items() if d}
        f.add("counters moved: " + (", ".join(f"{k} +{d}" for k, d in moved.items()) or "none")
              + f" (probe: {p.kind} at {p.stage} after {p.ms:g} ms)", kind="counters",
              source="/proc/net/snmp, /proc/net/netstat", data=data)
        strength = 1.0
        if _same_netns(ctx):
            strength = SHARED_STRENGTH
            f.add(f"the server context {ctx.server.spec} is the client's own network namespace: "
                  "the counters include the probe's client side (and any other local traffic)")
        d = delta.get
        if d("TcpOutRsts", 0) <= 0 and p.kind in ("reset", "refused") and not any(d(k, 0) for k in ABORTS):
            f.signal("server.no_rst_sent",
                     f"the probe was {p.kind} but TcpOutRsts and every TCPAbortOn* stayed still: "
                     "the server's kernel did not send it (a firewall or a device on the path did)",
                     strength)
        for sid, fact in moved_signals(delta, "during the probe"):
            f.signal(sid, fact, strength)
        bad = {"server.no_rst_sent", "server.abort_on_data", "server.abort_on_close",
               "server.abort_on_memory", "server.listen_overflow", "server.rst_sent"}
        status = Status.WARN if any(s.id in bad for s in f.signals) else Status.PASS
        return f.result(status, "moved: " + (", ".join(f"{k} +{v}" for k, v in moved.items()) or "nothing"))
