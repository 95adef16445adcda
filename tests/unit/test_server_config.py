"""The running server's configuration: which file the process really reads (its command
line, not the package's default), its includes, the settings that end connections with
file:line or their default, the reject and limit rules judged against the probe's source."""

from __future__ import annotations

import json

import pytest

from tests.unit.fakes import FakeHost, make_ctx, output
from wizard.diag.process.checks.settings import ProcessSettingsCheck, allowance, stalled_part
from wizard.diag.process.parse import apps, haproxy, httpd, nginx
from wizard.diag.process.parse.cmdline import identify, launch, split_cmdline
from wizard.diag.process.parse.settings import (
    ServerConfig,
    address_in,
    go_seconds,
    haproxy_seconds,
    nginx_seconds,
    pg_seconds,
)
from wizard.engine.contract import NoParams
from wizard.model import Answers, CheckResult, Signal, Status

NGINX_MAIN = """# the lab's nginx
worker_processes 2;
error_log /srv/app/logs/error.log warn;
events { worker_connections 512; }
http {
    keepalive_timeout 65;
    # keepalive_timeout 600;
    client_header_timeout 10s;
    include conf.d/*.conf;
    limit_conn_zone $binary_remote_addr zone=perip:10m;
    limit_req_zone $binary_remote_addr zone=req:10m rate=5r/s;
    server {
        listen 8080;
        listen [::]:8080;
        server_name app.example;
        access_log /srv/app/logs/access.log;
        keepalive_timeout 3s;
        limit_conn perip 2;
        location /admin {
            allow 10.0.0.0/8;
            deny all;
        }
        location / { proxy_pass http://127.0.0.1:9000; proxy_read_timeout 1m30s; }
    }
    server {
        listen 8443 ssl;
        ssl_certificate /srv/app/cert.pem;
        deny 192.0.2.0/24;
        allow all;
    }
}
"""
NGINX_TUNING = "reset_timedout_connection on;\nclient_body_timeout 5s;\n"


def nginx_files() -> dict[str, str]:
    return {"/srv/app/nginx.conf": NGINX_MAIN, "/srv/app/conf.d/tuning.conf": NGINX_TUNING}


def read_nginx(port: int, source: str = "") -> ServerConfig:
    files = nginx_files()
    top = nginx.parse(files["/srv/app/nginx.conf"], "/srv/app/nginx.conf")
    tree = nginx.expand(top, lambda pat: [nginx.parse(files["/srv/app/conf.d/tuning.conf"],
                                                      "/srv/app/conf.d/tuning.conf")])
    cfg = ServerConfig("nginx", 4121)
    nginx.settings(tree, port, cfg, lambda spec: address_in(source, spec) if source else None)
    return cfg


def test_nginx_server_block_over_http_over_default_with_file_and_line() -> None:
    cfg = read_nginx(8080)
    ka = cfg.get("keepalive_timeout")
    assert (ka.value, ka.seconds, ka.line, ka.context) == ("3s", 3, 17, "server :8080 app.example")
    body = cfg.get("client_body_timeout")  # from the included file, http level
    assert (body.path, body.line, body.seconds) == ("/srv/app/conf.d/tuning.conf", 2, 5)
    assert cfg.get("reset_timedout_connection").value == "on"
    send = cfg.get("send_timeout")
    assert send.default and send.seconds == 60 and "default" in send.quote()
    assert not any(s.value == "600" for s in cfg.settings)  # commented out
    loc = [s for s in cfg.settings if s.name == "proxy_read_timeout" and "location /" in s.context]
    assert loc and loc[0].seconds == 90
    assert set(cfg.logs) == {"/srv/app/logs/error.log", "/srv/app/logs/access.log"}
    assert 8443 in cfg.tls_ports and 8080 in cfg.plain_ports


def test_nginx_access_rules_are_judged_in_order_against_the_source() -> None:
    inside = read_nginx(8080, "10.1.2.3")
    rules = [r for r in inside.rules if "location /admin" in r.context]
    assert [(r.kind, r.matches) for r in rules] == [("allow", True), ("reject", False)]
    outside = read_nginx(8080, "198.51.100.7")
    assert [(r.kind, r.matches) for r in outside.rules if "location /admin" in r.context] == [
        ("allow", False), ("reject", True)]
    limit = next(r for r in outside.rules if r.kind == "limit")
    assert limit.text == "limit_conn perip 2;" and limit.limit == 2 and limit.line == 18
    tls = read_nginx(8443, "192.0.2.9")
    deny = next(r for r in tls.rules if r.kind == "reject")
    assert deny.matches is True and deny.line == 28


HAPROXY_CFG = """global
    maxconn 4000
    log stdout format raw local0

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option httplog

frontend fe_main
    bind :8080
    bind :8443 ssl crt /srv/lb/site.pem
    acl blocked src 10.9.0.0/16 192.0.2.1
    acl api path_beg /api
    stick-table type ip size 100k expire 30s store conn_cur
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc_conn_cur(0) gt 3 }
    tcp-request connection reject if blocked
    http-request deny deny_status 403 if api !blocked
    timeout http-request 4s
    option nolinger
    default_backend be_app

backend be_app
    server app1 127.0.0.1:9000
"""


def read_haproxy(source: str) -> ServerConfig:
    cfg = ServerConfig("haproxy", 77)
    haproxy.settings(haproxy.parse([("/srv/lb/haproxy.cfg", HAPROXY_CFG)]), 8080, source, cfg)
    return cfg


def test_haproxy_timeouts_inherit_from_defaults_and_fall_back() -> None:
    cfg = read_haproxy("10.9.1.1")
    client = cfg.get("timeout client")
    assert (client.seconds, client.line, client.context) == (30, 8, "defaults")
    req = cfg.get("timeout http-request")
    assert (req.seconds, req.line, req.context) == (4, 22, "frontend fe_main")
    ka = cfg.get("timeout http-keep-alive")  # unset: falls back on http-request
    assert ka.seconds == 4 and "falls back on timeout http-request" in ka.value
    assert cfg.get("timeout tunnel").seconds == 30  # falls back on timeout client
    assert cfg.get("option nolinger").value == "on"
    assert 8443 in cfg.tls_ports and 8080 in cfg.plain_ports


def test_haproxy_acls_are_evaluated_against_the_probe_source() -> None:
    blocked = {r.line: r for r in read_haproxy("10.9.1.1").rules}
    assert blocked[20].matches is True and "10.9.0.0/16" in blocked[20].why
    assert blocked[21].matches is False  # api !blocked: a blocked source is not denied by it
    assert blocked[19].kind == "limit" and blocked[19].limit == 3 and blocked[19].matches is None
    other = {r.line: r for r in read_haproxy("198.51.100.2").rules}
    assert other[20].matches is False and other[21].matches is None  # path_beg: per request
    assert any(r.kind == "limit" and r.limit == 4000 for r in other.values())  # global maxconn
    v6 = {r.line: r for r in read_haproxy("::ffff:10.9.0.5").rules}
    assert v6[20].matches is True


def test_durations_of_each_server() -> None:
    assert haproxy_seconds("5000") == 5 and haproxy_seconds("1m") == 60 and haproxy_seconds("x") is None
    assert nginx_seconds("1m30s") == 90 and nginx_seconds("500ms") == 0.5 and nginx_seconds("75") == 75
    assert go_seconds("1m30s") == 90 and go_seconds("5m") == 300 and go_seconds("5") is None
    assert pg_seconds("5min") == 300 and pg_seconds("250", "ms") == 0.25 and pg_seconds("x") is None


def test_command_lines_name_the_configuration_really_used() -> None:
    argv = split_cmdline(b"nginx: master process /usr/sbin/nginx -c /srv/app/nginx.conf -g daemon off;")
    assert identify("nginx", argv) == "nginx"
    assert launch("nginx", argv, "/").config == ("/srv/app/nginx.conf",)
    assert launch("nginx", split_cmdline(b"/usr/sbin/nginx\0-g\0daemon off;\0"), "/").config == (
        "/etc/nginx/nginx.conf",)
    hp = split_cmdline(b"/usr/sbin/haproxy\0-W\0-f\0lb.cfg\0-f\0/srv/lb/conf.d\0")
    assert identify("haproxy", hp) == "haproxy"
    assert launch("haproxy", hp, "/srv/lb").config == ("/srv/lb/lb.cfg", "/srv/lb/conf.d")
    gu = split_cmdline(b"/usr/bin/python3\0/usr/bin/gunicorn\0-c\0conf.py\0--timeout\0" b"5\0-w\0" b"2\0app:app\0")
    assert identify("gunicorn", gu) == "gunicorn"
    g = launch("gunicorn", gu, "/srv/py")
    assert g.config == ("/srv/py/conf.py",) and g.args["timeout"] == "5" and g.args["workers"] == "2"
    # --keep-alive sets gunicorn's `keepalive`: read as that setting, not left at its default
    ka = launch("gunicorn", split_cmdline(b"gunicorn\0--keep-alive\0" b"1\0app:app\0"), "/srv/py")
    assert ka.args["keepalive"] == "1" and "keep_alive" not in ka.args
    uv = split_cmdline(b"/usr/bin/python3\0-m\0uvicorn\0app:app\0--timeout-keep-alive\0" b"2\0")
    assert identify("python3", uv) == "uvicorn" and launch("uvicorn", uv, "/").args["timeout_keep_alive"] == "2"
    pg = split_cmdline(b"/usr/lib/postgresql/15/bin/postgres\0-D\0/srv/pg/data\0-c\0config_file=/srv/pg/pg.conf\0")
    p = launch("postgresql", pg, "/")
    assert p.config == ("/srv/pg/pg.conf",) and p.args["data_directory"] == "/srv/pg/data"
    rd = split_cmdline(b"redis-server 127.0.0.1:6379")  # Redis's own title: no file in it
    assert identify("redis-server", rd) == "redis" and launch("redis", rd, "/").config == ()
    assert launch("redis", split_cmdline(b"redis-server\0/srv/r/redis.conf\0"), "/").config == ("/srv/r/redis.conf",)
    assert identify("python3", split_cmdline(b"python3\0-m\0http.server\0")) == ""
    ap = split_cmdline(b"/usr/sbin/apache2\0-d\0/srv/web\0-f\0httpd.conf\0-DFOREGROUND\0")
    assert launch("apache", ap, "/").config == ("/srv/web/httpd.conf",)
    assert launch("caddy", split_cmdline(b"caddy\0run\0--config\0/srv/c/Caddyfile\0"), "/").config == (
        "/srv/c/Caddyfile",)


def test_apache_caddy_and_app_servers_read_their_values_and_defaults() -> None:
    conf = ("Timeout 20\nKeepAlive On\nKeepAliveTimeout 2\nListen 8080\nListen 8443 https\n"
            "ErrorLog /srv/web/error.log\n<VirtualHost *:8080>\n  KeepAliveTimeout 1\n"
            "  <Location /x>\n    Require not ip 10.0.0.0/8\n  </Location>\n</VirtualHost>\n")
    cfg = ServerConfig("apache", 1)
    httpd.apache_settings(httpd.apache_lines(conf, "/srv/web/httpd.conf"), 8080, cfg,
                          lambda spec: address_in("10.1.1.1", spec))
    assert cfg.get("Timeout").seconds == 20 and cfg.get("RequestReadTimeout").default
    assert [s.seconds for s in cfg.settings if s.name == "KeepAliveTimeout"] == [1]  # the vhost's
    assert 8443 in cfg.tls_ports and cfg.logs == ["/srv/web/error.log"]
    assert cfg.rules[0].matches is True and cfg.rules[0].line == 10
    caddy = ServerConfig("caddy", 2)
    httpd.caddy_settings("{\n  servers {\n    timeouts {\n      idle 2s\n    }\n  }\n}\n:8080 {\n  respond ok\n}\n",
                         "/srv/c/Caddyfile", caddy)
    assert caddy.get("idle_timeout").seconds == 2 and caddy.get("idle_timeout").line == 4
    assert caddy.get("read_timeout").default and 8080 in caddy.plain_ports
    cj = ServerConfig("caddy", 3)
    httpd.caddy_settings(json.dumps({"apps": {"http": {"servers": {"s": {"listen": [":8080"],
                                                                          "idle_timeout": 3000000000}}}}}),
                         "/srv/c/caddy.json", cj)
    assert cj.get("idle_timeout").seconds == 3
    gu = ServerConfig("gunicorn", 4)
    apps.gunicorn_settings("import os\ntimeout = 7\nworkers = os.cpu_count()\nkeepalive = 1\n", "/srv/py/conf.py",
                           {"timeout": "3"}, gu)
    assert gu.get("timeout").value == "3" and gu.get("timeout").path == "the command line"
    assert gu.get("keepalive").line == 4 and gu.get("workers").default  # a call is not a literal
    node = ServerConfig("node", 5)
    apps.node_settings("const s = http.createServer(h);\ns.keepAliveTimeout = 1_000;\n", "/srv/n/s.js", "v18.19.0", node)
    assert node.get("keepAliveTimeout").seconds == 1 and node.get("headersTimeout").seconds == 60
    assert node.get("requestTimeout").seconds == 300 and apps.node_defaults("v16.0.0")["requestTimeout"][1] is None


def test_redis_and_postgres_values_rules_and_hba() -> None:
    r = ServerConfig("redis", 6)
    apps.redis_settings("timeout 2\n# maxclients 5\nlogfile /srv/r/redis.log\n", "/srv/r/redis.conf",
                        {}, {"maxclients": "3"}, r)
    assert r.get("timeout").seconds == 2 and r.get("timeout").line == 1
    assert r.get("maxclients").path == "CONFIG GET" and r.rules[0].limit == 3 and r.logs == ["/srv/r/redis.log"]
    pg = ServerConfig("postgresql", 7)
    apps.pg_settings(apps.pg_lines("max_connections = 5  # small\nidle_session_timeout = '2s'\n", "/srv/pg/pg.conf"),
                     {}, {}, pg)
    assert pg.get("idle_session_timeout").seconds == 2 and pg.get("max_connections").value == "5"
    assert pg.get("tcp_keepalives_idle").default
    hba = "local all all peer\nhost all all 10.9.0.0/16 reject\nhost all all 0.0.0.0/0 md5\n"
    assert apps.pg_hba_rules(hba, "/srv/pg/pg_hba.conf", "10.9.3.3")[0].matches is True
    assert apps.pg_hba_rules(hba, "/srv/pg/pg_hba.conf", "10.8.3.3")[0].matches is False


# --- the check, reading /proc and the files in the server context ---------------------------

def stat(pid: int, comm: str, ppid: int) -> str:
    return f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560" + " 0" * 40 + "\n"


def nginx_host(cmd: bytes = b"nginx: master process /usr/sbin/nginx -c /srv/app/nginx.conf -g daemon off;",
               port: int = 8080, extra: dict[str, str] | None = None) -> FakeHost:
    ss = (f'LISTEN 0 511 0.0.0.0:{port} 0.0.0.0:* users:(("nginx",pid=4122,fd=6),'
          f'("nginx",pid=4121,fd=6))\n')
    files: dict[str, str | bytes] = {
        "/proc/4121/stat": stat(4121, "nginx", 1), "/proc/4121/cmdline": cmd,
        "/proc/4122/stat": stat(4122, "nginx", 4121), "/proc/4122/cmdline": b"nginx: worker process",
        "/proc/4121/fd/0": "", "/proc/4121/fd/3": "",
        # the package's default, which this nginx does not read
        "/etc/nginx/nginx.conf": "http { keepalive_timeout 1s; }\n",
        **nginx_files(), **(extra or {})}
    return FakeHost("local", files=files, commands={
        ("ss",): ss,
        ("readlink", "--", "/proc/4121/cwd"): "/\n",
        ("readlink", "--", "/proc/4121/fd/0", "/proc/4121/fd/3"): "/dev/null\n/srv/app/logs/error.log\n"})


def client_at(src: str) -> FakeHost:
    return FakeHost("local", commands={("ip", "-j", "route", "get"): output(
        ["ip"], json.dumps([{"dst": "127.0.0.1", "prefsrc": src}]))})


async def test_the_check_reads_the_file_the_master_was_started_with() -> None:
    ctx = make_ctx(answers=Answers(hold_s=10), server=nginx_host(), client=client_at("127.0.0.1"))
    result = await ProcessSettingsCheck().run(ctx, NoParams())
    text = "\n".join(e.text for e in result.evidence)
    assert "/srv/app/nginx.conf:17: keepalive_timeout 3s" in text
    assert "keepalive_timeout 1s" not in text  # /etc/nginx/nginx.conf is not what runs
    short = next(s for s in result.signals if s.id == "server.keepalive_short")
    assert short.fact.startswith("nginx, pid 4121: /srv/app/nginx.conf:17") and short.strength == 1
    own = next(s for s in result.signals if s.id == "server.own_timeout")
    assert "client_body_timeout 5s" in own.fact and own.strength == 1  # reset_timedout_connection on
    assert any(s.id == "proxy.limit_rule" and "limit_conn perip 2" in s.fact for s in result.signals)
    logs = next(e for e in result.evidence if "writes its logs" in e.title)
    assert set(logs.data["logs"]) == {"/srv/app/logs/error.log", "/srv/app/logs/access.log"}
    assert result.status == Status.WARN


async def test_plain_text_to_the_tls_port_of_the_running_config_differs() -> None:
    ctx = make_ctx("http://127.0.0.1:8443/", server=nginx_host(port=8443), client=client_at("192.0.2.9"))
    result = await ProcessSettingsCheck().run(ctx, NoParams())
    ids = {s.id: s for s in result.signals}
    assert "serves port 8443 with TLS" in ids["server.protocol_differs"].fact
    assert "/srv/app/nginx.conf:28: deny 192.0.2.0/24;" in ids["proxy.reject_rule"].fact
    ok = make_ctx("https://127.0.0.1:8443/", server=nginx_host(port=8443), client=client_at("198.51.100.1"))
    result = await ProcessSettingsCheck().run(ok, NoParams())
    ids = {s.id for s in result.signals}
    assert "server.protocol_matches" in ids and "server.protocol_differs" not in ids
    assert next(s for s in result.signals if s.id == "server.protocol_matches").strength == 1
    assert "proxy.rules_clear" in ids and "proxy.reject_rule" not in ids


async def test_no_listener_owner_means_no_settings_at_all() -> None:
    host = FakeHost("local", files={"/etc/nginx/nginx.conf": "http { keepalive_timeout 1s; }\n",
                                    "/etc/haproxy/haproxy.cfg": HAPROXY_CFG},
                    commands={("ss",): "LISTEN 0 5 0.0.0.0:8080 0.0.0.0:*\n"})
    result = await ProcessSettingsCheck().run(make_ctx(server=host), NoParams())
    assert result.status == Status.SKIP and not result.signals
    assert "not running are no evidence" in result.summary


async def test_a_listener_that_is_no_known_server_reads_nothing() -> None:
    host = FakeHost("local", files={"/proc/9/stat": stat(9, "python3", 1),
                                    "/proc/9/cmdline": b"python3\0-m\0http.server\0",
                                    "/etc/nginx/nginx.conf": "http { keepalive_timeout 1s; }\n"},
                    commands={("ss",): 'LISTEN 0 5 0.0.0.0:8080 0.0.0.0:* users:(("python3",pid=9,fd=3))\n'})
    result = await ProcessSettingsCheck().run(make_ctx(server=host), NoParams())
    assert result.status == Status.PASS and not result.signals
    assert "pid 9 (python3)" in result.evidence[0].title


async def test_a_worker_replaced_during_the_probes_is_crash_evidence_with_a_stable_master() -> None:
    from wizard.diag.process.checks.workers import ProcessWorkersCheck

    host = nginx_host(extra={"/proc/4121/task/4121/children": "4122 4123 "})
    ctx = make_ctx(server=host, client=client_at("127.0.0.1"))
    await ProcessSettingsCheck().run(ctx, NoParams())  # before the probes
    host.files["/proc/4121/task/4121/children"] = b"4122 4190 "  # 4123 died, 4190 replaced it
    result = await ProcessWorkersCheck().run(ctx, NoParams())
    sig = next(s for s in result.signals if s.id == "process.worker_replaced")
    assert sig.fact.startswith("nginx, pid 4121: worker pid 4123 ended") and "4190" in sig.fact
    assert result.status == Status.WARN

    calm = nginx_host(extra={"/proc/4121/task/4121/children": "4122 4123 "})
    ctx = make_ctx(server=calm, client=client_at("127.0.0.1"))
    await ProcessSettingsCheck().run(ctx, NoParams())
    result = await ProcessWorkersCheck().run(ctx, NoParams())
    assert {s.id for s in result.signals} == {"process.workers_stable"} and result.status == Status.PASS


async def test_a_child_of_its_own_kind_that_ends_is_no_crash_but_a_worker_like_the_others_is() -> None:
    # nginx's cache loader runs once and exits; PostgreSQL's backend of one connection and its
    # autovacuum worker end on their own too: one of a kind, neither the master's command line
    # nor another child's, nor that of a child started since.
    from wizard.diag.process.checks.workers import ProcessWorkersCheck

    async def across(before: str, after: str, roles: dict[str, bytes]) -> CheckResult:
        host = nginx_host(extra={"/proc/4121/task/4121/children": before,
                                 **{f"/proc/{pid}/cmdline": cmd for pid, cmd in roles.items()}})
        ctx = make_ctx(server=host, client=client_at("127.0.0.1"))
        await ProcessSettingsCheck().run(ctx, NoParams())  # before the probes
        host.files["/proc/4121/task/4121/children"] = after.encode()
        return await ProcessWorkersCheck().run(ctx, NoParams())

    loader = await across("4122 4123 ", "4122 4190 ", {"4123": b"nginx: cache loader process",
                                                      "4190": b"postgres: app app 10.0.0.7(41234) idle"})
    assert not any(s.id == "process.worker_replaced" for s in loader.signals) and loader.status == Status.PASS
    assert "worker pid 4123 ended, each one of a kind" in loader.evidence[-1].title
    assert loader.evidence[-1].data["not_counted"] == [4123]
    # a worker like the other: it ended and none took its place yet
    worker = await across("4122 4123 ", "4122 ", {"4123": b"nginx: worker process"})
    [sig] = [s for s in worker.signals if s.id == "process.worker_replaced"]
    assert sig.strength == 0.6 and "worker pid 4123 ended during the probes" in sig.fact
    # one of a kind, and a child with its command line started since: replaced
    single = await across("4122 4123 ", "4122 4190 ", {"4123": b"nginx: cache manager process",
                                                      "4190": b"nginx: cache manager process"})
    [sig] = [s for s in single.signals if s.id == "process.worker_replaced"]
    assert "4190 in their place" in sig.fact and single.status == Status.WARN


async def test_a_per_client_cap_that_the_clients_open_connections_fill_is_reached() -> None:
    cfg_text = HAPROXY_CFG.replace("bind :8080", "bind :8080\n    bind :9090")
    ss_listen = 'LISTEN 0 100 0.0.0.0:8080 0.0.0.0:* users:(("haproxy",pid=77,fd=4))\n'
    held = "".join(f"0 0 10.0.0.1:8080 [::ffff:198.51.100.2]:{40000 + i}\n" for i in range(3))
    host = FakeHost("local", files={"/proc/77/stat": stat(77, "haproxy", 1),
                                    "/proc/77/cmdline": b"haproxy\0-db\0-f\0/srv/lb/haproxy.cfg\0",
                                    "/srv/lb/haproxy.cfg": cfg_text},
                    commands={("ss",): ss_listen, ("ss", "-Htn", "state"): held + "0 0 10.0.0.1:8080 10.7.7.7:5000\n",
                              ("readlink", "--", "/proc/77/cwd"): "/\n"})
    result = await ProcessSettingsCheck().run(make_ctx("10.0.0.1:8080", server=host, client=client_at("198.51.100.2")),
                                              NoParams())
    sig = next(s for s in result.signals if s.id == "proxy.limit_reached")
    assert "sc_conn_cur(0) gt 3" in sig.fact and "allows 3 per client; 3 from" in sig.fact and sig.strength == 1
    host.commands[("ss", "-Htn", "state")] = held[: held.index("\n") + 1]  # one open: room left
    ctx = make_ctx("10.0.0.1:8080", server=host, client=client_at("198.51.100.2"))
    result = await ProcessSettingsCheck().run(ctx, NoParams())
    assert "proxy.limit_reached" not in {s.id for s in result.signals}


def test_which_part_of_an_http_request_a_payload_leaves_unfinished() -> None:
    assert stalled_part(b"GET / HTTP/1.1\r\nHost: a\r\n") == "header"
    assert stalled_part(b"POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") == "body"
    assert stalled_part(b"POST /up HTTP/1.1\r\ncontent-length:3\r\n\r\nabc") == ""
    assert stalled_part(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == ""
    assert stalled_part(b"*1\r\n$4\r\nPING\r\n") == "" and stalled_part(b"") == ""


async def test_a_probe_request_that_stalls_past_the_servers_own_timeout_is_that_timeout() -> None:
    # nginx: client_header_timeout 10s [http], reset_timedout_connection on (conf.d/tuning.conf)
    async def run(payload: str, hold: float) -> list[Signal]:
        ctx = make_ctx(answers=Answers(payload=payload, hold_s=hold), server=nginx_host(),
                       client=client_at("127.0.0.1"))
        return [s for s in (await ProcessSettingsCheck().run(ctx, NoParams())).signals
                if s.id == "server.timeout_applies"]

    header = await run("GET / HTTP/1.1\\r\\nHost: app\\r\\n", 10)
    assert len(header) == 1 and header[0].strength == 1
    assert "/srv/app/nginx.conf:8: client_header_timeout 10s" in header[0].fact and "resets" in header[0].fact
    body = await run("POST / HTTP/1.1\\r\\nHost: app\\r\\nContent-Length: 100\\r\\n\\r\\nab", 10)
    assert len(body) == 1 and "/srv/app/conf.d/tuning.conf:2: client_body_timeout 5s" in body[0].fact
    assert await run("GET / HTTP/1.1\\r\\nHost: app\\r\\n\\r\\n", 10) == []  # a complete request: nothing stalls
    assert await run("GET / HTTP/1.1\\r\\nHost: app\\r\\n", 1) == []  # the probe gives up first (3 s + 1 s < 10 s)


async def test_a_per_client_rate_the_probes_themselves_exceed_is_reached() -> None:
    slow = NGINX_MAIN.replace("rate=5r/s", "rate=1r/m").replace("limit_conn perip 2;", "limit_req zone=req;")
    host = nginx_host(extra={"/srv/app/nginx.conf": slow})
    sig = [s for s in (await ProcessSettingsCheck().run(make_ctx(server=host, client=client_at("127.0.0.1")),
                                                        NoParams())).signals if s.id == "proxy.limit_reached"]
    assert len(sig) == 1 and sig[0].strength == 1 and "limit_req zone=req;" in sig[0].fact
    assert "about 1 requests in ten seconds" in sig[0].fact
    # 5 requests a second (the same rule at its original rate): the probes stay within it
    fast = NGINX_MAIN.replace("limit_conn perip 2;", "limit_req zone=req;")
    host = nginx_host(extra={"/srv/app/nginx.conf": fast})
    result = await ProcessSettingsCheck().run(make_ctx(server=host, client=client_at("127.0.0.1")), NoParams())
    assert "proxy.limit_reached" not in {s.id for s in result.signals}


def test_a_connection_rate_per_source_below_the_burst_is_reached_only_by_a_bigger_burst() -> None:
    rule = haproxy.rules(haproxy.parse([("/lb.cfg", "frontend fe\n    bind :80\n"
                                         "    tcp-request connection reject if { sc0_conn_rate gt 3 }\n")])[0], "")[0]
    assert allowance(rule) == (3, "connections")
    assert allowance(haproxy.rules(haproxy.parse([("/lb.cfg", "frontend fe\n    bind :80\n"
                                                   "    tcp-request connection reject if { sc0_conn_cur gt 3 }\n")])[0],
                                   "")[0]) is None  # concurrent connections, not a rate


@pytest.mark.parametrize("spec, root, fix", [
    ("local", False, "run as root: sudo reset-wizard ..."),
    ("netns:web", False, "run as root: sudo reset-wizard ..."),
    ("ssh:ops@web1", False, "allow passwordless sudo (sudo -n) for the ssh user on that host, or connect as root"),
    # root sees every owner: a port with none is served from another context
    ("local", True, "--server with the context where the server listens (netns:NAME or ssh:[user@]host)"),
])
async def test_an_unnamed_listener_owner_is_fixed_the_way_of_the_context_the_run_read(
        spec: str, root: bool, fix: str) -> None:
    from wizard.diag.process.checks.workers import ProcessWorkersCheck

    host = FakeHost(spec, commands={("ss",): "LISTEN 0 5 0.0.0.0:8080 0.0.0.0:*\n"})
    for check in (ProcessSettingsCheck(), ProcessWorkersCheck()):
        result = await check.run(make_ctx(server=host, root=root), NoParams())
        assert result.status == Status.SKIP and result.fix == fix, check.id
