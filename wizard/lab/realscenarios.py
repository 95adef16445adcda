"""The fault lab's real-server scenarios (pure data): Debian's server software, configured the
way an incident is, in the lab's server namespace (wizard.lab.real starts them).

Each is an incident an on-call engineer meets with that software: a keep-alive race against
the server's own idle timeout, a proxy whose upstream resets, TLS spoken to the wrong port,
and the same servers healthy, which must stay `no-reset-observed`. ``client`` says how the
lab test's real client shows the incident on the wire first: ``curl`` (one request),
``keepalive`` (Python's http.client reusing a connection after ``hold`` seconds idle),
``curl-tls`` (curl speaking TLS to the port), ``redis`` (PING on a held connection) or
``psql`` (PostgreSQL's own client). ``held`` connections are opened and kept by the lab
before anything else (an application's pool that has taken the server's slots).
"""

from __future__ import annotations

from wizard.lab.scenarios import Scenario

_PING = "*1\\r\\n$4\\r\\nPING\\r\\n"
# PostgreSQL's StartupMessage (protocol 3.0, user and database postgres), as --payload text:
# the probe starts a session the way libpq does (wizard.lab.holder.startup_packet builds it).
_STARTUP = "\\x00\\x00\\x00)\\x00\\x03\\x00\\x00user\\x00postgres\\x00database\\x00postgres\\x00\\x00"
_GET = "GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n"

_NGINX_PROXY = """\
        listen {port};
        listen [::]:{port};
        location / {{ proxy_pass http://127.0.0.1:{upstream}; }}"""

_NGINX_TLS = """\
        listen {port} ssl;
        listen [::]:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{ return 200 "ok\\n"; }}"""



def _NGINX_BODY_WITH(directive: str) -> str:
    return ("        listen {port};\n        listen [::]:{port};\n        " + directive +
            "\n        location / {{ return 200 \"ok\\n\"; }}")


_HAPROXY_PROXY = """\
frontend web
    bind :::{port} v4v6
    default_backend app
backend app
    server app1 127.0.0.1:{upstream}
"""


# Where each healthy server's running configuration comes from, as the report says it: the
# file its command line names (or, where there is none, the command line or the server itself).
_SOURCE = {
    "nginx": r"nginx, pid \d+: configuration: \S*/nginx\.conf \(-c on the command line\)",
    "haproxy": r"HAProxy, pid \d+: configuration: \S*/haproxy\.cfg \(-f on the command line\)",
    "apache2": r"Apache httpd, pid \d+: configuration: \S*/apache2\.conf \(-f on the command line\)",
    "caddy": r"Caddy, pid \d+: configuration: \S*/Caddyfile \(--config on the command line\)",
    "gunicorn": r"gunicorn, pid \d+: configuration: .*gunicorn's defaults and its command line",
    "uvicorn": r"uvicorn, pid \d+: configuration: none \(the command line\)",
    "node": r"Node\.js, pid \d+: configuration read",
    "redis": r"Redis, pid \d+: configuration: .*values read from the server itself \(redis-cli CONFIG GET\)",
    "postgres": r"PostgreSQL, pid \d+: configuration: \S*/postgresql\.conf \(config_file on the command line\)",
}


def _healthy(software: str, family: int, port: int, **kw: object) -> Scenario:
    return Scenario(f"real-{software}/healthy", "no-reset-observed",
                    f"{software} as packaged, with a small configuration of its own and nothing wrong: every probe "
                    "is answered, so the honest verdict is that no reset was observed (a real server's "
                    "defaults must not read as a cause).",
                    family=family, port=port, server=None, real=software, evidence=(r"(?i)no reset",),
                    rst=False, quote=_SOURCE[software],
                    **{"payload": _GET, "said": r"^status 200", **kw})  # type: ignore[arg-type]


def _keepalive(software: str, directive: str, conf: str, family: int, port: int, hold: float = 3.0,
               **kw: object) -> Scenario:
    return Scenario(f"real-{software}/keepalive-race", "keepalive-race",
                    f"{software} closes idle keep-alive connections after 1 s (`{directive}`); "
                    f"a client that keeps its pooled connection {hold:g} s and then reuses it writes into a "
                    "connection the server has closed: the server's kernel answers with a reset.",
                    family=family, port=port, server=None, real=software, conf=conf, hold=hold,
                    client="keepalive", payload=_GET, said=r"RemoteDisconnected|ConnectionResetError|BrokenPipe",
                    evidence=(r"(?i)idle|hold",), **kw)  # type: ignore[arg-type]


_BLOCKED = "10.213.10.0/24 fd13:10::/64"  # the client namespace's networks: a blocklisted client

_HAPROXY_REJECT = """\
frontend web
    bind :::{port} v4v6
    acl blocked src """ + _BLOCKED + """
    tcp-request connection reject if blocked
    http-request return status 200 content-type text/plain string "ok"
"""
_HAPROXY_RATE = """\
frontend web
    bind :::{port} v4v6
    stick-table type ipv6 size 1k expire 30s store conn_rate(10s)
    tcp-request connection track-sc0 src
    tcp-request connection reject if {{ sc0_conn_rate gt 3 }}
    http-request return status 200 content-type text/plain string "ok"
"""
_HAPROXY_IDLE = """\
frontend web
    bind :::{port} v4v6
    timeout client 1s
    option nolinger
    http-request return status 200 content-type text/plain string "ok"
"""
_NGINX_DENY = """\
        listen {port};
        listen [::]:{port};
        reset_timedout_connection on;
        error_page 403 = @drop;
        location @drop {{ return 444; }}
        root {dir}/www;
        location / {{
            deny 10.213.10.0/24;
            deny fd13:10::/64;
            allow all;
        }}"""
_NGINX_LIMIT_REQ = """\
    limit_req_zone $binary_remote_addr zone=perclient:1m rate=1r/m;
---
        listen {port};
        listen [::]:{port};
        reset_timedout_connection on;
        limit_req zone=perclient;
        limit_req_status 444;
        root {dir}/www;"""
_NGINX_HEADER_TIMEOUT = """\
        listen {port};
        listen [::]:{port};
        client_header_timeout 1s;
        reset_timedout_connection on;
        location / {{ return 200 "ok\\n"; }}"""
_CADDY_IDLE = """\
    servers {{
        timeouts {{
            idle 1s
        }}
    }}"""
_PARTIAL = "GET / HTTP/1.1\\r\\nHost: lab\\r\\n"


REAL_SCENARIOS: tuple[Scenario, ...] = (
    _healthy("nginx", 4, 8080),
    _healthy("haproxy", 6, 8081),
    _healthy("apache2", 4, 8082),
    _healthy("caddy", 6, 8083),
    _healthy("gunicorn", 4, 8084),
    _healthy("uvicorn", 6, 8085),
    _healthy("node", 4, 8086),
    _healthy("redis", 6, 6379, payload=_PING, client="redis", said=r"^reply \+PONG"),
    _healthy("postgres", 4, 5432, payload=_STARTUP, client="psql", said=r"^ok$"),

    _keepalive("nginx", "keepalive_timeout 1s", _NGINX_BODY_WITH("keepalive_timeout 1s;"), 4, 8080,
               quote=r"nginx\.conf:\d+: keepalive_timeout 1s"),
    _keepalive("haproxy", "timeout http-keep-alive 1s", _HAPROXY_PROXY.replace("    default_backend app\n",
                                                 "    timeout http-keep-alive 1s\n    default_backend app\n"),
               6, 8081, upstream=("http",), quote=r"haproxy\.cfg:\d+: timeout http-keep-alive 1s"),
    # Apache drains a closing connection for up to 2 s (lingering close) before the socket is
    # gone: a request in that time is read and dropped with a FIN, not reset. Held past it.
    _keepalive("apache2", "KeepAliveTimeout 1", "KeepAlive On\nKeepAliveTimeout 1\n", 4, 8082, hold=5.0,
               quote=r"apache2\.conf:\d+: KeepAliveTimeout 1\b"),
    _keepalive("gunicorn", "--keep-alive 1", "--workers 1 --worker-class gthread --threads 4 --keep-alive 1", 6, 8084,
               quote=r"the command line: keepalive 1\b"),
    _keepalive("uvicorn", "--timeout-keep-alive 1", "--timeout-keep-alive 1", 6, 8085,
               quote=r"the command line: timeout_keep_alive 1\b"),
    _keepalive("node", "server.keepAliveTimeout = 1000", "server.keepAliveTimeout = 1000;", 4, 8086,
               quote=r"server\.js:\d+: keepAliveTimeout 1000 ms"),
    Scenario("real-redis/idle-timeout-close", "keepalive-race",
             "Redis closes client connections idle longer than its `timeout 1`; a pooled client that "
             "sends PING on a connection held 3 s writes into a closed connection and is reset.",
             family=4, port=6379, server=None, real="redis", conf="timeout 1", hold=3, payload=_PING,
             client="redis", said=r"ConnectionResetError|closed by server", evidence=(r"(?i)idle|hold",),
             quote=r"Redis, pid \d+: \S*redis\.conf:\d+: timeout 1\b"),

    Scenario("real-nginx/upstream-reset", "proxy-upstream-reset",
             "nginx proxies to an application that reads each request and aborts the connection "
             "(SO_LINGER 0): nginx logs `recv() failed (104: Connection reset by peer) while reading "
             "response header from upstream` and answers 502. The client gets no reset: the reset is "
             "one hop further, between nginx and its upstream.",
             family=4, port=8090, server=None, real="nginx", conf=_NGINX_PROXY, upstream=("linger0",),
             rst=False, said=r"^status 502",
             evidence=(r"104: Connection reset by peer\) while reading response header from upstream",),
             quote=r"error\.log:\d+: .*104: Connection reset by peer\) while reading response header from upstream"),
    Scenario("real-haproxy/upstream-reset", "proxy-upstream-reset",
             "HAProxy in front of an application that aborts every connection after reading the request: "
             "HAProxy answers 502 and logs the session with termination state SH (the server side "
             "aborted while HAProxy waited for the response headers).",
             family=6, port=8091, server=None, real="haproxy", conf=_HAPROXY_PROXY, upstream=("linger0",),
             rst=False, said=r"^status 502", evidence=(r"\sSH--\s",), quote=r"haproxy\.log:\d+: .* SH-- "),

    Scenario("real-nginx/http-to-tls-port", "protocol-mismatch",
             "nginx listens with TLS (`listen ... ssl`) and the client speaks plain HTTP to it: nginx "
             "answers 400 \"The plain HTTP request was sent to HTTPS port\" and closes (FIN). Nothing "
             "is reset, but the connection is useless: an in-band protocol error.",
             family=4, port=8443, server=None, real="nginx", conf=_NGINX_TLS, tls=True, payload=_GET,
             client="curl", rst=False, said=r"^status 400", evidence=(r"(?i)TLS",),
             quote=r"serves port 8443 with TLS \(\S*nginx\.conf:\d+: listen 8443 ssl;\)"),
    Scenario("real-nginx/tls-to-plain-port", "protocol-mismatch",
             "The other way round: a TLS client (curl https://) to nginx's plain HTTP port. nginx reads "
             "the ClientHello as a malformed request, answers 400 and closes; curl reports "
             "\"wrong version number\".",
             family=6, port=8444, server=None, real="nginx", tls_payload=True, client="curl-tls", scheme="https",
             rst=False, said=r"wrong version number", evidence=(r"(?i)TLS|HTTP",),
             quote=r"serves port 8444 with plain text \(\S*nginx\.conf:\d+: listen 8444;\)"),

    Scenario("real-haproxy/src-reject", "proxy-reject",
             "HAProxy refuses a blocklisted client network with `tcp-request connection reject if "
             "blocked` (`acl blocked src ...`): the connection is accepted and closed at once with a "
             "reset, before anything is read. Clients outside the ACL are served.",
             family=4, port=8092, server=None, real="haproxy", conf=_HAPROXY_REJECT, payload=_GET,
             client="curl", said=r"(?i)reset|\((7|52|56)\)",
             evidence=(r"tcp-request connection reject if blocked",),
             quote=r"haproxy\.cfg:\d+: tcp-request connection reject if blocked"),
    Scenario("real-nginx/deny-drop", "proxy-reject",
             "nginx denies a client network (`deny 10.213.10.0/24;`) and, instead of the 403, drops "
             "denied clients with `error_page 403 = @drop` and `return 444` under "
             "`reset_timedout_connection on`: the request is answered with a reset.",
             family=6, port=8093, server=None, real="nginx", conf=_NGINX_DENY, payload=_GET,
             client="curl", said=r"(?i)reset|\((52|56)\)",
             evidence=(r"deny fd13:10::/64",), quote=r"nginx\.conf:\d+: deny fd13:10::/64"),
    Scenario("real-haproxy/conn-rate-limit", "rate-limit",
             "HAProxy tracks each source in a stick table and rejects its connections beyond 3 in 10 s "
             "(`tcp-request connection reject if { sc0_conn_rate gt 3 }`): a client that opens fresh "
             "connections in a burst has the first served and the later ones reset.",
             family=6, port=8094, server=None, real="haproxy", conf=_HAPROXY_RATE, payload=_GET,
             client="burst", said=r"^burst 200 (?:200 )*(?:\w+ )*(ConnectionResetError|RemoteDisconnected)$",
             evidence=(r"sc0_conn_rate gt 3",), quote=r"haproxy\.cfg:\d+: tcp-request connection reject if "),
    Scenario("real-nginx/limit-req-drop", "rate-limit",
             "nginx limits each client to one request a minute (`limit_req_zone ... rate=1r/m`, "
             "`limit_req zone=perclient`) and drops what exceeds it with `limit_req_status 444` under "
             "`reset_timedout_connection on`: the lab's first request is served, every further one "
             "within the minute is reset.",
             family=4, port=8095, server=None, real="nginx", conf=_NGINX_LIMIT_REQ, payload=_GET,
             client="burst", said=r"^burst (?:200 )?(?:(?:ConnectionResetError|RemoteDisconnected) ?)+$",
             evidence=(r"limit_req zone=perclient",), quote=r"nginx\.conf:\d+: limit_req zone=perclient"),
    Scenario("real-haproxy/client-timeout-nolinger", "idle-timeout",
             "HAProxy gives up on a client quiet for 1 s (`timeout client 1s`) and, with `option "
             "nolinger`, ends the connection with a reset instead of a FIN: a client that connects and "
             "waits before it sends meets the reset.",
             family=6, port=8096, server=None, real="haproxy", conf=_HAPROXY_IDLE, hold=3,
             client="idle", said=r"ConnectionResetError|BrokenPipe",
             evidence=(r"timeout client 1s",), quote=r"haproxy\.cfg:\d+: timeout client 1s"),
    Scenario("real-nginx/header-timeout", "idle-timeout",
             "nginx waits 1 s for a request's header (`client_header_timeout 1s`) and, with "
             "`reset_timedout_connection on`, resets a client that sent part of it and stalled.",
             family=4, port=8097, server=None, real="nginx", conf=_NGINX_HEADER_TIMEOUT, hold=3, payload=_PARTIAL,
             client="stall", said=r"ConnectionResetError|BrokenPipe",
             evidence=(r"client_header_timeout 1s",), quote=r"nginx\.conf:\d+: client_header_timeout 1s"),
    Scenario("real-gunicorn/worker-timeout", "server-crash",
             "gunicorn's master kills a sync worker that has not checked in for 1 s (`--timeout 1`); a "
             "request that takes 4 s dies with its worker: the client's connection is closed without an "
             "answer and gunicorn logs `WORKER TIMEOUT` and a new worker's boot.",
             family=4, port=8098, server=None, real="gunicorn", conf="--workers 1 --timeout 1",
             payload="GET /sleep/4 HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n", path="/sleep/4", client="curl",
             rst=False, said=r"\(52\)|Empty reply|reset",
             evidence=(r"WORKER TIMEOUT",), quote=r"gunicorn\.log:\d+.*WORKER TIMEOUT"),
    _keepalive("caddy", "timeouts idle 1s", _CADDY_IDLE, 6, 8099, quote=r"Caddyfile:\d+: idle_timeout 1s"),

    Scenario("real-redis/maxclients", "rate-limit",
             "Redis serves at most 3 clients (`maxclients 3`) and an application's pool holds all three: "
             "Redis accepts each further connection, answers `-ERR max number of clients reached` and "
             "closes it at once, so the client's command that follows is met by a reset.",
             family=4, port=6380, server=None, real="redis", conf="maxclients 3", held=3, payload=_PING,
             client="redis", said=r"^(reply -ERR max number of clients reached|ConnectionResetError)",
             evidence=(r"maxclients 3",), quote=r"redis\.conf:\d+: maxclients 3\b"),
    Scenario("real-postgres/too-many-clients", "rate-limit",
             "PostgreSQL admits 3 sessions (`max_connections = 3`, none reserved for superusers) and an "
             "application's pool holds all three: every further client is accepted, sent `FATAL:  sorry, "
             "too many clients already` and closed (FIN): a refusal by the server's connection limit.",
             family=6, port=5432, server=None, real="postgres",
             conf="max_connections = 3\nsuperuser_reserved_connections = 0\n", held=3, payload=_STARTUP,
             client="psql", rst=False, closed=True, said=r"FATAL:  sorry, too many clients already",
             evidence=(r"too many clients already",), quote=r"lab\.conf:\d+: max_connections = 3\b"),
    Scenario("real-postgres/backend-killed", "server-crash",
             "A pooled connection's backend is killed by signal 9 (what the OOM killer sends) while it "
             "idles: the postmaster logs the death, ends every other session and reinitialises; the pool's "
             "next query meets a closed connection and then a reset. The server is healthy again by the "
             "time anyone diagnoses it: the crash is in its log, not on the wire of the wizard's probes.",
             family=4, port=5434, server=None, real="postgres", conf=None, payload=_STARTUP,
             client="pg-killed", closed=True,
             said=r"^(server closed the connection unexpectedly|BrokenPipeError|ConnectionResetError)",
             evidence=(r"terminated by signal 9", r"No reset was observed during this run"),
             quote=r"postgresql\.log:\d+.*server process \(PID \d+\) was terminated by signal 9"),
    Scenario("real-postgres/idle-session-timeout", "keepalive-race",
             "PostgreSQL ends a session idle for 1 s (`idle_session_timeout = 1s`): it sends `FATAL:  "
             "terminating connection due to idle-session timeout` and closes (FIN). A pool that keeps its "
             "connection 3 s and then queries on it writes into a closed connection: the server's kernel "
             "answers with a reset.",
             family=6, port=5435, server=None, real="postgres", conf="idle_session_timeout = 1s\n", hold=3,
             payload=_STARTUP, client="pg-idle", closed=True,
             said=r"^(FATAL:  terminating connection due to idle-session timeout|server closed the connection "
                  r"unexpectedly|BrokenPipeError|ConnectionResetError)",
             evidence=(r"idle_session_timeout",), quote=r"lab\.conf:\d+: idle_session_timeout 1s\b"),
    Scenario("real-postgres/hba-reject", "proxy-reject",
             "pg_hba.conf refuses the client's network with `reject` lines before the ones that let "
             "everyone else in: PostgreSQL reads the client's startup packet, answers `FATAL:  pg_hba.conf "
             "rejects connection for host ...` and closes (FIN), whatever the user or password.",
             family=4, port=5433, server=None, real="postgres",
             conf="---\nhost  all  all  10.213.10.0/24  reject\nhost  all  all  fd13:10::/64  reject\n",
             payload=_STARTUP, client="psql", rst=False, closed=True, said=r"pg_hba\.conf rejects connection for host",
             evidence=(r"pg_hba\.conf rejects connection",),
             quote=r"pg_hba\.conf:\d+: host all all 10\.213\.10\.0/24 reject"),
)
