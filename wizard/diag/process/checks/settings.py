"""Step 5 check: the configuration the server owning the listener really runs with, and
what it says about resets: its keep-alive against the client's idle time, its own request
timeouts, the rules by which it rejects or limits clients (judged against the probe's source
address), and whether the target's port speaks TLS in its configuration."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from wizard.diag.kernel.io.counters import listeners
from wizard.diag.process.io.running import running_configs
from wizard.diag.process.parse.settings import Rule, ServerConfig, Setting, address_in, peers_of
from wizard.engine.contract import (
    Check,
    CheckContext,
    Findings,
    NoParams,
    Tool,
    payload_for,
    probe_address,
    register,
)
from wizard.model import CheckResult, Status
from wizard.model.contexts import root_fix
from wizard.model.wording import plural

# Idle times after which common client pools drop a kept-alive connection themselves
# (seconds; None: never). A server that closes sooner races with the pool's next request.
CLIENT_POOLS = {"Go net/http (IdleConnTimeout)": 90.0, "OkHttp": 300.0,
                "Java HttpClient (jdk.httpclient.keepalive.timeout)": 1200.0,
                "Python requests/urllib3": None, "Node http.Agent (keepAlive)": None}

# The setting after which each server closes an idle kept-alive (or idle client) connection.
KEEPALIVE = {"nginx": ("keepalive_timeout",), "haproxy": ("timeout http-keep-alive",),
             "apache": ("KeepAliveTimeout",), "caddy": ("idle_timeout",), "gunicorn": ("keepalive",),
             "uvicorn": ("timeout_keep_alive",), "node": ("keepAliveTimeout",), "redis": ("timeout",),
             "postgresql": ("idle_session_timeout",)}
# Timeouts after which the server itself gives up on a stalled request (and may reset).
OWN_TIMEOUTS = {"nginx": ("client_header_timeout", "client_body_timeout", "send_timeout"),
                "haproxy": ("timeout http-request", "timeout client"),
                "apache": ("Timeout",), "caddy": ("read_header_timeout", "read_timeout"),
                "gunicorn": ("timeout",), "node": ("headersTimeout", "requestTimeout"),
                "postgresql": ("authentication_timeout", "idle_in_transaction_session_timeout")}


# The timeout that ends a request whose header, or whose body, never arrives in full.
STALLED = {"header": {"nginx": ("client_header_timeout",), "haproxy": ("timeout http-request",),
                      "caddy": ("read_header_timeout",), "node": ("headersTimeout",)},
           "body": {"nginx": ("client_body_timeout",), "caddy": ("read_timeout",), "node": ("requestTimeout",)}}
_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")

# What each server does when its own timeout expires.
GIVES_UP = {"gunicorn": "its master kills a worker silent for longer (a slow request, or a stalled "
                        "client on a sync worker), and the worker's connections end",
            "node": "it ends a request not received in full within it (408 or a close)",
            "postgresql": "it ends a session that stays idle or unauthenticated for longer"}


# Servers that answer a connection beyond their cap in all with an error and close it
# (Redis's maxclients, PostgreSQL's max_connections), rather than leave it waiting.
REFUSES_OVER_CAP = ("redis", "postgresql")


def _is_tls(payload: bytes) -> bool:
    return len(payload) > 2 and payload[0] == 0x16 and payload[1] == 0x03


async def probe_source(ctx: CheckContext) -> str:
    """The address the client's probes come from (the route to the target), "" if unknown."""
    addr = probe_address(ctx)
    out = await ctx.client.run(["ip", "-j", "route", "get", addr], timeout=3, max_bytes=1 << 16)
    try:
        routes = json.loads(out.text) if out.ok else []
    except json.JSONDecodeError:
        return ""
    return next((r.get("prefsrc", "") for r in routes if isinstance(r, dict)), "")


def stalled_part(payload: bytes) -> str:
    """Which part of an HTTP request ``payload`` leaves unfinished: "header" (no blank line
    ends it), "body" (fewer bytes than its Content-Length), or "" (complete, or not HTTP)."""
    if not payload.startswith(_METHODS):
        return ""
    end = payload.find(b"\r\n\r\n")
    if end < 0:
        return "header"
    length = re.search(rb"(?im)^content-length:[ \t]*(\d+)", payload[:end])
    if length and len(payload) - end - 4 < int(length.group(1)):
        return "body"
    return ""


def allowance(rule: Rule) -> tuple[float, str] | None:
    """How many connections or requests a per-client rate rule lets one client make within
    about ten seconds, and which (None: not a rate with a known threshold)."""
    if rule.limit is None:
        return None
    if rule.server == "nginx" and rule.text.startswith("limit_req "):
        burst = re.search(r"\bburst=(\d+)", rule.text)
        return 1 + (int(burst.group(1)) if burst else 0) + int(rule.limit * 10), "requests"
    if rule.server == "haproxy" and re.search(r"_(conn|sess)_rate\b", rule.text):
        return rule.limit, "connections"
    if rule.server == "haproxy" and re.search(r"_http_req_rate\b", rule.text):
        return rule.limit, "requests"
    return None


def _caps_concurrent(text: str) -> bool:
    """Whether a limit counts open connections (not a rate)."""
    return any(k in text for k in ("conn_cur", "limit_conn ", "maxconn", "max_connections", "maxclients"))


async def held_from(ctx: CheckContext, port: int, source: str) -> int | None:
    """How many established connections from ``source`` the server holds on ``port``."""
    if not source:
        return None
    out = await ctx.server.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                               timeout=3, max_bytes=1 << 20)
    if not out.ok:
        return None
    return sum(1 for p in peers_of(out.text) if address_in(source, p))


@dataclass
class Running:
    """The servers that own the target's listener and what their configurations say."""

    configs: list[ServerConfig]
    unknown: list[str]  # listener pids that are no server this reads
    source: str  # the probe's source address ("" unknown)
    problem: str = ""  # why nothing could be looked at (ss failed, no owner shown)


def owner_fix(ctx: CheckContext) -> str:
    """What would let ss name the port's owner: root in that context (said for its kind), or,
    with root already, the context where the server runs (ss shows every owner to root)."""
    if ctx.server_root:
        return "--server with the context where the server listens (netns:NAME or ssh:[user@]host)"
    return root_fix(ctx.server.spec)


async def running_servers(ctx: CheckContext) -> Running:
    """Read once per run (process.settings quotes it, logs.excerpt reads the logs it names)."""

    async def read() -> Running:
        out, socks = await listeners(ctx.server)
        if not out.ok:
            return Running([], [], "", f"cannot list listeners in {ctx.server.spec}: {out.problem()}")
        port = ctx.target.port
        pids = sorted({p for s in socks if s.port == port for _, p, _ in s.processes})
        if not pids:
            return Running([], [], "", f"no process is shown owning port {port} in {ctx.server.spec}")
        source = await probe_source(ctx)
        await ctx.traffic.unheld()  # it may ask the server itself (redis-cli): not beside step 1
        configs, unknown = await running_configs(ctx.server, pids, port, source, probe_address(ctx))
        return Running(configs, unknown, source)

    return await ctx.once("process.running", read)


@register
class ProcessSettingsCheck(Check[NoParams]):
    id = "process.settings"
    title = "The running server's configuration"
    step = "app-errors"
    Params = NoParams
    reads_server = True
    needs_tools = (Tool("ss", where="server", package="iproute2"),)
    emits = ("proxy.limit_reached", "server.keepalive_short", "server.keepalive_ok", "server.reset_timedout",
             "server.own_timeout", "proxy.reject_rule", "proxy.rules_clear", "proxy.limit_rule",
             "server.protocol_differs", "server.protocol_matches", "server.timeout_applies")
    description = ("Finds the configuration the server that owns the listener really uses (its "
                   "command line, working directory and includes, read in the server context), "
                   "quotes the settings that end connections with file and line (or the "
                   "default), judges its reject and limit rules against the probe's source, "
                   "and compares its keep-alive with the client's idle time.")

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        f = Findings()
        port = ctx.target.port
        run = await running_servers(ctx)
        if run.problem.startswith("cannot list"):
            return CheckResult.skipped(run.problem, "run with ss (iproute2) in the server context")
        if run.problem:
            return CheckResult.skipped(
                f"{run.problem}: no running server's configuration to read (settings of a server "
                "that is not running are no evidence)", owner_fix(ctx))
        configs, unknown, source = run.configs, run.unknown, run.source
        from wizard.diag.process.checks.workers import trees_before

        await trees_before(ctx)  # the workers as they are before the probes (process.workers)
        if unknown:
            f.add(f"no known server configuration for {', '.join(unknown)}", source="/proc/PID/cmdline")
        if not configs:
            return f.result(Status.PASS, "the listener's process is no server whose configuration this reads")
        held = await held_from(ctx, port, source) if any(r.kind == "limit" for c in configs for r in c.rules) else None
        for cfg in configs:
            self._describe(f, cfg, source)
            self._keepalive(ctx, f, cfg)
            self._own_timeouts(ctx, f, cfg)
            self._rules(f, cfg, source)
            self._limits_reached(ctx, f, cfg, source, held)
            self._protocol(ctx, f, cfg, port)
        names = ", ".join(c.component for c in configs)
        warn = {"server.keepalive_short", "proxy.reject_rule", "proxy.limit_rule", "server.own_timeout",
                "server.protocol_differs"}
        status = Status.WARN if any(s.id in warn and s.strength >= 1 for s in f.signals) else Status.PASS
        return f.result(status, f"{names}: {plural(sum(len(c.files) for c in configs), 'configuration file')} read")

    def _describe(self, f: Findings, cfg: ServerConfig, source: str) -> None:
        f.add(f"{cfg.component}: " + ("; ".join(cfg.notes) if cfg.notes else "configuration read"),
              source=", ".join(cfg.files) or f"/proc/{cfg.pid}/cmdline",
              data={"server": cfg.server, "pid": cfg.pid, "files": cfg.files, "logs": cfg.logs,
                    "tls_ports": sorted(set(cfg.tls_ports)), "plain_ports": sorted(set(cfg.plain_ports))})
        if cfg.settings:
            f.add(f"{cfg.component}: {plural(len(cfg.settings), 'setting')} that decide how it ends connections",
                  kind="table", source=", ".join(cfg.files) or f"/proc/{cfg.pid}/cmdline",
                  text="\n".join(s.quote() for s in cfg.settings),
                  data={"columns": ["server", "setting", "value", "seconds", "file", "line", "context", "default"],
                        "rows": [[s.server, s.name, s.value, s.seconds, s.path, s.line, s.context, s.default]
                                 for s in cfg.settings]})
        if cfg.rules:
            f.add(f"{cfg.component}: {plural(len(cfg.rules), 'rule')} rejecting or limiting clients"
                  + (f" (judged for the probe's source {source})" if source else ""), kind="table",
                  source=", ".join(sorted({r.path for r in cfg.rules})),
                  text="\n".join(f"{r.quote()}  -> {_verdict(r)}" for r in cfg.rules),
                  data={"columns": ["kind", "rule", "file", "line", "context", "matches", "why", "limit"],
                        "rows": [[r.kind, r.text, r.path, r.line, r.context, r.matches, r.why, r.limit]
                                 for r in cfg.rules]})
        if cfg.logs:
            f.add(f"{cfg.component} writes its logs to {', '.join(cfg.logs)}", source=", ".join(cfg.files),
                  data={"logs": cfg.logs})

    def _keepalive(self, ctx: CheckContext, f: Findings, cfg: ServerConfig) -> None:
        found = [s for s in cfg.settings if s.name in KEEPALIVE.get(cfg.server, ()) and s.seconds]
        if cfg.server == "apache" and (ka := cfg.get("KeepAlive")) and ka.value.lower() == "off":
            return
        if cfg.server == "gunicorn" and (wc := cfg.get("worker_class")) and wc.value == "sync":
            return  # sync workers close after every response: no idle kept-alive connection
        if not found:
            return
        s = min(found, key=lambda x: x.seconds or 0.0)
        secs = s.seconds or 0.0
        hold = ctx.answers.hold_s
        head = f"{cfg.component}: {s.quote()}"
        if hold > 0:
            if hold >= secs:
                f.signal("server.keepalive_short", f"{head}, shorter than the client's idle time --hold {hold:g}s")
            else:
                f.signal("server.keepalive_ok", f"{head} outlasts --hold {hold:g}s", strength=0.5)
            return
        longer = [f"{name} {v:g}s" for name, v in CLIENT_POOLS.items() if v and v > secs]
        never = [name for name, v in CLIENT_POOLS.items() if v is None]
        f.add(f"client pools that keep idle connections longer than {secs:g}s: "
              + ", ".join(longer + [f"{n} (no idle limit)" for n in never]), data={"client_pools": CLIENT_POOLS})
        f.signal("server.keepalive_short", f"{head}; common client pools keep idle connections longer "
                 f"({', '.join((longer or never)[:2])})", strength=0.5)

    def _own_timeouts(self, ctx: CheckContext, f: Findings, cfg: ServerConfig) -> None:
        resets = cfg.server != "nginx"
        if cfg.server == "nginx":
            rt = cfg.get("reset_timedout_connection")
            resets = bool(rt and rt.value == "on")
            if rt and resets:
                f.signal("server.reset_timedout", f"{cfg.component}: {rt.quote()} (it resets connections "
                         "that time out instead of closing them)")
        if cfg.server == "haproxy":
            nl = cfg.get("option nolinger")
            resets = bool(nl and nl.value == "on")
        timeouts = [s for s in cfg.settings if s.name in OWN_TIMEOUTS.get(cfg.server, ()) and s.seconds]
        if not timeouts:
            return
        s = min(timeouts, key=lambda x: x.seconds or 0.0)
        hold = ctx.answers.hold_s
        what = GIVES_UP.get(cfg.server) or ("it gives up on a client quiet for longer"
                                            + (" and resets" if resets else " and closes"))
        if hold > 0 and hold >= (s.seconds or 0):
            f.signal("server.own_timeout", f"{cfg.component}: {s.quote()}: {what}; the client's idle "
                     f"time --hold {hold:g}s is longer", strength=1.0 if resets else 0.6)
        elif s.seconds and s.seconds <= 30 and not s.default:
            f.signal("server.own_timeout", f"{cfg.component}: {s.quote()}: {what}",
                     strength=0.5 if resets else 0.3)
        self._stalled(ctx, f, cfg, resets)

    def _stalled(self, ctx: CheckContext, f: Findings, cfg: ServerConfig, resets: bool) -> None:
        """The probe's own request is unfinished: the server waits for the rest as long as its
        timeout for that part, then ends the connection (with a reset where it is set to)."""
        payload, _ = payload_for(ctx)
        hold = ctx.answers.hold_s
        quiet = not payload and hold > 0  # connects and sends nothing through the hold
        part = "header" if quiet else stalled_part(payload)
        names = STALLED.get(part, {}).get(cfg.server, ())
        found = [s for s in cfg.settings if s.name in names and s.seconds]
        if not found:
            return
        s = min(found, key=lambda x: x.seconds or 0.0)
        waits = hold if quiet else ctx.answers.timeout_s + hold
        if (s.seconds or 0.0) >= waits:
            return
        what = ("the probe opens a connection and sends nothing for its --hold" if quiet else
                f"the probe's request {part} is unfinished")
        f.signal("server.timeout_applies", f"{cfg.component}: {s.quote()}: {what}, so the server waits "
                 f"{s.seconds:g}s for the request (the probe waits {waits:g}s) "
                 + ("and then resets the connection" if resets else "and then ends it"),
                 strength=1.0 if resets else 0.6)

    def _rules(self, f: Findings, cfg: ServerConfig, source: str) -> None:
        rejects = [r for r in cfg.rules if r.kind == "reject"]
        hit = [r for r in rejects if r.matches is True]
        maybe = [r for r in rejects if r.matches is None]
        for r in hit[:3]:
            f.signal("proxy.reject_rule", f"{cfg.component}: {r.quote()} matches the probe's source "
                     f"{source or '?'} ({r.why})")
        if not hit:
            for r in maybe[:2]:
                f.signal("proxy.reject_rule", f"{cfg.component}: {r.quote()} may reject this client "
                         f"({r.why})", strength=0.2)
        if rejects and not hit and not maybe:
            f.signal("proxy.rules_clear", f"{cfg.component}: none of its {plural(len(rejects), 'reject rule')} "
                     f"matches the probe's source {source}")
        for r in [r for r in cfg.rules if r.kind == "limit"][:3]:
            per_client = r.matches is None and r.server in ("haproxy", "nginx") and "maxconn" not in r.text
            f.signal("proxy.limit_rule", f"{cfg.component}: {r.quote()}: {r.why}"
                     + (f" (limit {r.limit:g})" if r.limit is not None else ""),
                     strength=1.0 if per_client else 0.4)

    def _limits_reached(self, ctx: CheckContext, f: Findings, cfg: ServerConfig, source: str,
                        held: int | None) -> None:
        """A per-client connection cap that the client's open connections already fill: every
        new connection from it is refused by the rule, the first as much as the last. And a
        per-client rate that the wizard's own probes go past: its burst opens --attempts
        connections within about a second, and at least two requests follow within seconds."""
        for r in cfg.rules:
            room = allowance(r) if r.kind == "limit" else None
            if room is None:
                continue
            allowed, what = room
            made = ctx.answers.attempts if what == "connections" else 2
            if made > allowed:
                local = " location " in r.context  # it may not be the probe's location
                f.signal("proxy.limit_reached", f"{cfg.component}: {r.quote()} lets one client make about "
                         f"{allowed:g} {what} in ten seconds; the probes of this run make {made} or more "
                         "within seconds, so it refuses them too", strength=0.4 if local else 1.0)
        for refusal in cfg.refusals[:1]:
            f.signal("proxy.limit_reached", f"{cfg.component}: {refusal}")
        if held is None or not source:
            return
        for r in cfg.rules:
            if r.kind != "limit" or r.limit is None or not _caps_concurrent(r.text):
                continue
            per_client = "maxconn" not in r.text and "max_connections" not in r.text and "maxclients" not in r.text
            if held >= r.limit:
                # a cap in all that the probe's source alone fills is full; where the server
                # refuses beyond it (rather than queueing, as HAProxy's maxconn) that is a refusal
                f.signal("proxy.limit_reached", f"{cfg.component}: {r.quote()} allows {r.limit:g} "
                         + ("per client" if per_client else "in all")
                         + f"; {held} from the probe's source {source} are open now",
                         strength=1.0 if per_client or cfg.server in REFUSES_OVER_CAP else 0.6)

    def _protocol(self, ctx: CheckContext, f: Findings, cfg: ServerConfig, port: int) -> None:
        payload, _ = payload_for(ctx)
        tls_probe = _is_tls(payload) or ctx.target.scheme == "https"
        tls_port = port in cfg.tls_ports
        plain_port = port in cfg.plain_ports
        if not (tls_port or plain_port) or (tls_port and plain_port):
            return
        port_speaks = "TLS" if tls_port else "plain text"
        probe_speaks = "TLS" if tls_probe else "plain text"
        # the client's protocol is known when the target names its scheme or --payload is given;
        # otherwise it is only the wizard's own default probe that differs
        chosen = ctx.target.scheme in ("http", "https") or ctx.answers.payload is not None
        who = "the client" if chosen else "the wizard's default probe (no scheme or --payload given)"
        where = f" ({cfg.listens[port]})" if port in cfg.listens else ""
        if tls_port != tls_probe:
            f.signal("server.protocol_differs", f"{cfg.component}: its configuration serves port {port} "
                     f"with {port_speaks}{where}, and {who} speaks {probe_speaks}", strength=1.0 if chosen else 0.3)
        else:
            f.signal("server.protocol_matches", f"{cfg.component} serves port {port} with {port_speaks}{where}, "
                     f"as {who} speaks", strength=1.0 if chosen else 0.4)


def _verdict(r: Rule) -> str:
    if r.matches is True:
        return "applies to the probe's source"
    if r.matches is False:
        return "does not apply to the probe's source"
    return f"may apply ({r.why})"


__all__ = ["ProcessSettingsCheck", "Setting"]
