"""Step 5 check: the processes on both ends of the socket (fds against limits, restarts)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from wizard.diag.kernel.io.counters import listeners
from wizard.diag.process.io.procinfo import ProcessInfo, process_info
from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    Tool,
    register,
)
from wizard.model import CheckResult, Status
from wizard.model.wording import plural


def _when(ts: float | None) -> str:
    return "?" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _describe(p: ProcessInfo) -> dict:
    return {"pid": p.pid, "name": p.name, "cmdline": p.cmdline, "started": _when(p.started),
            "fds": p.fds, "fd_soft": p.fd_soft, "fd_hard": p.fd_hard}


class ProcessParams(CheckParams):
    fd_warn_ratio: float = Field(default=0.9, gt=0, le=1)


@register
class ProcessListenerCheck(Check[ProcessParams]):
    id = "process.listener"
    title = "Processes on both ends"
    step = "app-errors"
    Params = ProcessParams
    needs_tools = (Tool("ss", where="server", package="iproute2"),)
    reads_server = True
    emits = ("process.fd_near_limit", "process.fd_ok", "process.restarted")
    description = ("The processes that own the listener (/proc in the server context: command, "
                   "start time, open fds against Max open files) and the client's sockets "
                   "(psutil); a pid or start time that changes during the run, or a start "
                   "after --at, is a restart.")

    async def run(self, ctx: CheckContext, params: ProcessParams) -> CheckResult:
        f = Findings()
        out, socks = await listeners(ctx.server)
        if not out.ok:
            return CheckResult.skipped(f"cannot list listeners in {ctx.server.spec}: {out.problem()}",
                                       "run with ss (iproute2) in the server context")
        pids = sorted({p for s in socks if s.port == ctx.target.port for _, p, _ in s.processes})
        if not pids:
            f.add(f"no process is shown for port {ctx.target.port} in {ctx.server.spec} "
                  "(nothing listens, or ss needs root to name the owner)", kind="command",
                  source=out.command_line)
        before = {pid: await process_info(ctx.server, pid) for pid in pids}
        status = Status.PASS
        for info in before.values():
            status = max(status, self._one(ctx, f, info, "server", params), key=_rank)

        await self._client_side(ctx, f, params)

        # read again at the end: a pid gone or a start time changed is a restart during the run
        out2, socks2 = await listeners(ctx.server)
        pids2 = sorted({p for s in socks2 if s.port == ctx.target.port for _, p, _ in s.processes}) if out2.ok else pids
        for pid, info in before.items():
            again = await process_info(ctx.server, pid)
            if again.error or (again.started and info.started and again.started != info.started):
                f.signal("process.restarted", f"listener pid {pid} ({info.name}) went away during "
                         f"the run (now: pids {', '.join(map(str, pids2)) or 'none'})")
                status = Status.WARN
        new = [p for p in pids2 if p not in before]
        if new and before:
            f.signal("process.restarted", f"new listener pids {new} appeared during the run")
            status = Status.WARN
        at = ctx.answers.at
        for info in before.values():
            if at is not None and info.started and info.started > at.timestamp():
                f.signal("process.restarted", f"listener pid {info.pid} ({info.name}) started at "
                         f"{_when(info.started)}, after the reset at {at.isoformat(timespec='seconds')}")
                status = Status.WARN
        near = [s for s in f.signals if s.id == "process.fd_near_limit"]
        summary = (plural(len(before), "listener process") + (f"; {len(near)} near their fd limit" if near else "")
                   + ("; a restart was seen" if any(s.id == "process.restarted" for s in f.signals) else ""))
        return f.result(status, summary)

    def _one(self, ctx: CheckContext, f: Findings, info: ProcessInfo, side: str,
             params: ProcessParams) -> Status:
        where = ctx.server.spec if side == "server" else ctx.client.spec
        if info.error:
            f.add(f"{side} pid {info.pid}: {info.error}", source=f"/proc/{info.pid}")
            return Status.PASS
        fd = (f"{info.fds} open fds of {info.fd_soft if info.fd_soft else 'unlimited'}"
              if info.fds is not None else "open fds not readable")
        f.add(f"{side} pid {info.pid} {info.name} in {where}: started {_when(info.started)}, {fd}",
              source=f"/proc/{info.pid}/stat, /proc/{info.pid}/limits, /proc/{info.pid}/fd",
              text=info.cmdline, data=_describe(info))
        ratio = info.fd_ratio
        if ratio is None:
            return Status.PASS
        if ratio >= params.fd_warn_ratio:
            f.signal("process.fd_near_limit", f"{side} pid {info.pid} ({info.name}) has {info.fds} "
                     f"open fds of its limit {info.fd_soft} ({ratio:.0%})")
            return Status.WARN
        f.signal("process.fd_ok", f"{side} pid {info.pid} ({info.name}): {info.fds} of {info.fd_soft} fds",
                 strength=0.5)
        return Status.PASS

    async def _client_side(self, ctx: CheckContext, f: Findings, params: ProcessParams) -> None:
        probe = ctx.probes.processes
        if probe is None or not ctx.target.addresses:
            return
        socks = await probe.connections_to(list(ctx.target.addresses), ctx.target.port)
        if socks.error:
            f.add(f"client sockets: {socks.error}", source=socks.source)
            return
        f.add(f"{plural(len(socks.holders), 'client socket')} to {ctx.target.display()}: "
              + (", ".join(f"{n} {s}" for s, n in sorted(socks.states.items())) or "none"),
              source=socks.source, data={"states": dict(socks.states), "hidden": socks.hidden})
        for pid in sorted({h.pid for h in socks.holders if h.pid is not None})[:8]:
            self._one(ctx, f, await process_info(ctx.client, pid), "client", params)


def _rank(s: Status) -> int:
    return {Status.PASS: 0, Status.WARN: 1}.get(s, 2)
