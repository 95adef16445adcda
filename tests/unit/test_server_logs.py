"""Real servers' log lines: HAProxy's termination states read case-sensitively, the access
and error lines of nginx, Apache, gunicorn, Node, Redis and PostgreSQL, each raising the
signal of what it means; and their timestamp formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.fakes import make_ctx
from wizard.diag.logs.parse.servers import haproxy_termination, line_signal
from wizard.diag.logs.parse.timestamps import TimeContext, detect

HTTPLOG = ('10.0.0.2:41234 [01/Dec/2026:19:00:00.123] fe_main be_app/app1 0/0/1/-1/5002 {status} 0 - - '
           '{state} 1/1/0/0/0 0/0 "GET / HTTP/1.1"')
TCPLOG = "10.0.0.2:41234 [01/Dec/2026:19:00:00.123] fe_tcp be_tcp/<NOSRV> -1/-1/0 0 {state} 1/1/0/0/0 0/0"


@pytest.mark.parametrize(("line", "signal", "words"), [
    (HTTPLOG.format(status=408, state="cR--"), "log.client_timeout", "client-side timeout"),
    (HTTPLOG.format(status=400, state="CR--"), "log.client_abort", "client aborted"),
    (HTTPLOG.format(status=502, state="SH--"), "log.proxy_upstream", "server's headers"),
    (HTTPLOG.format(status=504, state="sH--"), "log.proxy_upstream", "server-side timeout"),
    (HTTPLOG.format(status=403, state="PR--"), "log.proxy_reject", "own rules"),
    (HTTPLOG.format(status=400, state="PR--"), "log.protocol", "own rules"),
    (TCPLOG.format(state="cD"), "log.client_timeout", "data phase"),
    (TCPLOG.format(state="CD"), "log.client_abort", "data phase"),
    (TCPLOG.format(state="PR"), "log.proxy_reject", "waiting for the request"),
    (TCPLOG.format(state="RC"), "log.rate_limit", "resource"),
])
def test_haproxy_termination_states(line: str, signal: str, words: str) -> None:
    term = haproxy_termination(line)
    assert term is not None and term.signal == signal and words in term.meaning
    assert line_signal("haproxy-termination", "proxy_state", line)[0] == signal


def test_a_normal_end_and_other_lines_are_no_termination() -> None:
    assert haproxy_termination(HTTPLOG.format(status=200, state="----")) is None
    assert haproxy_termination(TCPLOG.format(state="--")) is None
    assert haproxy_termination("GET / 200 fine") is None


LINES = {
    "haproxy-termination": TCPLOG.format(state="cD"),
    "http-access-timeout": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 408 0 "-" "curl/7.88"',
    "http-access-client-closed": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 499 0 "-" "-"',
    "nginx-access-444": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 444 0 "-" "-"',
    "http-access-upstream": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 502 157 "-" "-"',
    "nginx-client-timeout": ("2026/12/01 19:00:00 [info] 12#12: *3 client timed out (110: Connection timed out) "
                             "while reading client request headers, client: 10.0.0.2"),
    "nginx-limit": '2026/12/01 19:00:00 [error] 12#12: *9 limiting connections by zone "perip", client: 10.0.0.2',
    "nginx-access-denied": "2026/12/01 19:00:00 [error] 12#12: *1 access forbidden by rule, client: 10.0.0.2",
    "apache-timeout": "[Tue Dec 01 19:00:00.123456 2026] [reqtimeout:info] [pid 9] AH01382: Request header read timeout",
    "apache-max-workers": "[Tue Dec 01 19:00:00 2026] [mpm_event:error] [pid 9] AH00484: server reached MaxRequestWorkers setting",
    "gunicorn-worker-timeout": "[2026-12-01 19:00:00 +0000] [4121] [CRITICAL] WORKER TIMEOUT (pid:4125)",
    "gunicorn-worker-boot": "[2026-12-01 19:00:01 +0000] [4130] [INFO] Booting worker with pid: 4130",
    "node-uncaught": "      throw er; // Unhandled 'error' event",
    "redis-client-limit": "4121:M 01 Dec 2026 19:00:00.123 - Error accepting a client connection: max number of clients reached",
    "postgres-idle-timeout": "2026-12-01 19:00:00.123 UTC [77] FATAL:  terminating connection due to idle-session timeout",
    "postgres-backend-died": ("2026-12-01 19:00:00.123 UTC [22932] LOG:  server process (PID 23166) was terminated "
                              "by signal 9: Killed"),
    "postgres-too-many": "2026-12-01 19:00:00.123 UTC [78] FATAL:  sorry, too many clients already",
    "postgres-hba-reject": '2026-12-01 19:00:00.123 UTC [79] FATAL:  pg_hba.conf rejects connection for host "10.0.0.2"',
    "tls-wrong-version": ("2026/12/01 19:00:00 [info] 12#12: *4 client sent plain HTTP request to HTTPS port "
                          "while reading client request headers"),
}
SIGNALS = {"haproxy-termination": "log.client_timeout", "http-access-timeout": "log.client_timeout",
           "http-access-client-closed": "log.client_abort", "nginx-access-444": "log.proxy_reject",
           "http-access-upstream": "log.proxy_upstream", "nginx-client-timeout": "log.client_timeout",
           "nginx-limit": "log.rate_limit", "nginx-access-denied": "log.proxy_reject",
           "apache-timeout": "log.client_timeout", "apache-max-workers": "log.rate_limit",
           "gunicorn-worker-timeout": "log.worker_killed", "gunicorn-worker-boot": "log.worker_boot",
           "node-uncaught": "log.crash", "redis-client-limit": "log.rate_limit",
           "postgres-idle-timeout": "log.client_timeout", "postgres-backend-died": "log.crash", "postgres-too-many": "log.rate_limit",
           "postgres-hba-reject": "log.proxy_reject", "tls-wrong-version": "log.protocol"}


def test_each_server_line_matches_its_signature_and_raises_its_signal() -> None:
    sigs = {s.id: s for s in make_ctx().checklist.signatures}
    for sid, line in LINES.items():
        matched = [s.id for s in sigs.values() if s.compiled().search(line)]
        assert sid in matched, (sid, matched)
        assert line_signal(sid, sigs[sid].cls, line)[0] == SIGNALS[sid], sid
    normal = '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.88"'
    assert not [s.id for s in sigs.values() if s.compiled().search(normal)]


def test_server_timestamp_formats_are_detected_by_content() -> None:
    ctx = TimeContext(tz=UTC)
    want = datetime(2026, 12, 1, 19, 0, tzinfo=UTC).timestamp()
    for line, name in [(LINES["gunicorn-worker-timeout"], "bracketed-iso"),
                       (LINES["redis-client-limit"], "redis"),
                       ('{"level":"error","ts":' + f"{want:.0f}" + '.5,"msg":"http: TLS handshake error"}', "json-ts"),
                       (LINES["postgres-too-many"], "iso8601"), (TCPLOG.format(state="cD"), "access-log")]:
        fmt = detect([line], ctx)
        assert fmt is not None and fmt.name == name, line
        assert abs(fmt.parse(line, ctx) - want) < 1
