"""Step 5 checks: the processes on both ends of the socket (fds against limits, restarts) and
the server's keep-alive / timeout settings compared with the client's idle time."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from wizard.checks.base import Check, CheckContext, CheckParams, Findings, Tool
from wizard.checks.registry import register
from wizard.model import CheckResult, Status
from wizard.probes.hosts import HostError
from wizard.probes.kernel import listeners
from wizard.probes.procinfo import ProcessInfo, Setting, haproxy_settings, nginx_settings, process_info

# Idle times after which common client pools drop a kept-alive connection themselves
# (seconds; None: never). A server that closes sooner races with the pool's next request.
CLIENT_POOLS = {"Go net/http (IdleConnTimeout)": 90.0, "OkHttp": 300.0,
                "Java HttpClient (jdk.httpclient.keepalive.timeout)": 1200.0,
                "Python requests/urllib3": None, "Node http.Agent (keepAlive)": None}
NGINX_DEFAULT_KEEPALIVE = 75.0


def _when(ts: float | None) -> str:
    return "?" if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


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
        summary = (f"{len(before)} listener processes" + (f"; {len(near)} near their fd limit" if near else "")
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
        probe = getattr(ctx.probes, "processes", None)
        if probe is None or not ctx.target.addresses:
            return
        socks = await probe.connections_to(list(ctx.target.addresses), ctx.target.port)
        if socks.error:
            f.add(f"client sockets: {socks.error}", source=socks.source)
            return
        f.add(f"{len(socks.holders)} client sockets to {ctx.target.display()}: "
              + (", ".join(f"{n} {s}" for s, n in sorted(socks.states.items())) or "none"),
              source=socks.source, data={"states": dict(socks.states), "hidden": socks.hidden})
        for pid in sorted({h.pid for h in socks.holders if h.pid is not None})[:8]:
            self._one(ctx, f, await process_info(ctx.client, pid), "client", params)


def _rank(s: Status) -> int:
    return {Status.PASS: 0, Status.WARN: 1}.get(s, 2)


class SettingsParams(CheckParams):
    nginx_conf: str = "/etc/nginx/nginx.conf"
    haproxy_cfg: str = "/etc/haproxy/haproxy.cfg"


@register
class ProcessSettingsCheck(Check[SettingsParams]):
    id = "process.settings"
    title = "Server keep-alive and timeouts"
    step = "app-errors"
    Params = SettingsParams
    reads_server = True
    emits = ("server.keepalive_short", "server.keepalive_ok", "server.reset_timedout")
    description = ("Reads nginx's keepalive_timeout, lingering_close, reset_timedout_connection "
                   "(nginx.conf and its includes) and HAProxy's timeouts, and compares the "
                   "server's keep-alive with the client's idle time (--hold, or common pools).")

    async def run(self, ctx: CheckContext, params: SettingsParams) -> CheckResult:
        f = Findings()
        settings: list[Setting] = []
        read_any = False
        try:
            found, files = await nginx_settings(ctx.server, params.nginx_conf)
            read_any = True
            settings += found
            if not any(s.name == "keepalive_timeout" for s in found):
                settings.append(Setting("nginx", "keepalive_timeout", "75s (default)",
                                        NGINX_DEFAULT_KEEPALIVE, params.nginx_conf, 0))
            f.add(f"nginx: read {len(files)} config files", source=", ".join(files))
        except HostError:
            pass
        try:
            settings += await haproxy_settings(ctx.server, params.haproxy_cfg)
            read_any = True
        except HostError:
            pass
        if not read_any:
            return CheckResult.skipped(f"no nginx or HAProxy configuration in {ctx.server.spec} "
                                       f"({params.nginx_conf}, {params.haproxy_cfg})",
                                       "check.params nginx_conf / haproxy_cfg for other paths")
        f.add(f"{len(settings)} keep-alive and timeout settings", kind="table",
              source=", ".join(sorted({s.path for s in settings})),
              text="\n".join(f"{s.path}:{s.line}: {s.name} {s.value}" for s in settings),
              data={"columns": ["server", "setting", "value", "seconds", "file", "line"],
                    "rows": [[s.server, s.name, s.value, s.seconds, s.path, s.line] for s in settings]})
        for s in settings:
            if s.name == "reset_timedout_connection" and s.value == "on":
                f.signal("server.reset_timedout", f"{s.path}:{s.line}: reset_timedout_connection on "
                         "(nginx resets connections that time out instead of closing them)")
        keepalive = [s for s in settings if s.seconds is not None and s.name in (
            "keepalive_timeout", "timeout http-keep-alive", "timeout client")]
        if not keepalive:
            return f.result(Status.PASS, "no keep-alive timeout could be read")
        shortest = min(keepalive, key=lambda s: s.seconds or 0.0)
        short_s = shortest.seconds or 0.0
        where = f"{shortest.path}:{shortest.line}" if shortest.line else shortest.path
        if ctx.answers.hold_s > 0:
            if ctx.answers.hold_s >= short_s:
                f.signal("server.keepalive_short", f"{where}: {shortest.name} {shortest.value} is "
                         f"shorter than the client's idle time --hold {ctx.answers.hold_s:g}s")
            else:
                f.signal("server.keepalive_ok", f"{shortest.name} {shortest.value} outlasts --hold "
                         f"{ctx.answers.hold_s:g}s", strength=0.5)
        else:
            longer = [f"{name} {v:g}s" for name, v in CLIENT_POOLS.items() if v and v > short_s]
            never = [name for name, v in CLIENT_POOLS.items() if v is None]
            f.add(f"client pools that keep idle connections longer than {short_s:g}s: "
                  + ", ".join(longer + [f"{n} (no idle limit)" for n in never]),
                  data={"client_pools": CLIENT_POOLS})
            f.signal("server.keepalive_short", f"{where}: {shortest.name} {shortest.value}; common "
                     f"client pools keep idle connections longer ({', '.join(longer[:2])})", strength=0.5)
        status = Status.WARN if any(s.id == "server.keepalive_short" for s in f.signals) else Status.PASS
        return f.result(status, f"shortest server keep-alive: {shortest.name} {shortest.value}")
