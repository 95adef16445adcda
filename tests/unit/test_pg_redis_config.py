"""PostgreSQL and Redis as they really run: postgresql.conf with its includes (read in place,
relative to the including file), its quoting and postgresql.auto.conf, pg_hba.conf's reject
lines judged for the probe's source, max_connections and maxclients as limits quoted with
file and line; a Redis whose process title hides its file found by what the file says of
the running server; PostgreSQL's log lines raising the signals of what they mean."""

from __future__ import annotations

from tests.unit.fakes import FakeHost, make_ctx
from tests.unit.test_server_config import client_at, stat
from wizard.diag.logs.parse.servers import line_signal
from wizard.diag.process.checks.settings import ProcessSettingsCheck
from wizard.diag.process.parse import apps
from wizard.diag.process.parse.settings import ServerConfig
from wizard.engine.contract import NoParams
from wizard.lab.holder import startup_packet
from wizard.lab.realscenarios import _STARTUP
from wizard.model.payload import payload_bytes


def test_postgresql_conf_lines_quoting_and_comments() -> None:
    text = ("# max_connections = 1000\n"
            "Max_Connections=7   # upper case, no spaces\n"
            "log_line_prefix = '%m [%p] # not a comment '\n"
            "application_name 'it''s'\n"
            "listen_addresses = '*'\n"
            "search_path = '\"$user\", public'\n"
            "   \n"
            "include 'conf.d/limits.conf'\n")
    lines = apps.pg_lines(text, "/srv/pg/postgresql.conf")
    got = {name: (value, line) for name, value, _, line in lines}
    assert "max_connections" in got and got["max_connections"] == ("7", 2)
    assert got["log_line_prefix"] == ("%m [%p] # not a comment ", 3)
    assert got["application_name"] == ("it's", 4)
    assert got["search_path"] == ('"$user", public', 6)
    assert got["include"] == ("conf.d/limits.conf", 8)
    assert len(lines) == 6  # the commented max_connections and the blank line are nothing


PG_CMD = b"/usr/lib/postgresql/15/bin/postgres\0-D\0/srv/pg/data\0-c\0config_file=/srv/pg/postgresql.conf\0"
PG_MAIN = """# the cluster's own file
listen_addresses = '*'
max_connections = 100
idle_session_timeout = 0
hba_file = '/srv/pg/pg_hba.conf'
include 'conf.d/limits.conf'
include_if_exists 'not-there.conf'
include_dir 'extra'
"""
PG_HBA = """# TYPE DATABASE USER ADDRESS METHOD
local   all      all                   peer
host    all      all   10.9.0.0/16     reject
host    all      all   0.0.0.0/0       scram-sha-256
"""


def pg_host(held: int = 0) -> FakeHost:
    ss = 'LISTEN 0 244 0.0.0.0:5432 0.0.0.0:* users:(("postgres",pid=900,fd=6))\n'
    conns = "".join(f"0 0 10.0.0.5:5432 10.9.3.3:{41000 + i}\n" for i in range(held))
    files: dict[str, str | bytes] = {
        "/proc/900/stat": stat(900, "postgres", 1), "/proc/900/cmdline": PG_CMD,
        "/srv/pg/postgresql.conf": PG_MAIN,
        # read in place: after max_connections = 100 of the main file, so it decides
        "/srv/pg/conf.d/limits.conf": "max_connections = 4\nsuperuser_reserved_connections = 1\n",
        "/srv/pg/extra/10-timeouts.conf": "idle_session_timeout = '30s'\ntcp_keepalives_idle = 60\n",
        "/srv/pg/extra/20-later.conf": "idle_in_transaction_session_timeout = 5min\n",
        "/srv/pg/data/postgresql.auto.conf": "# ALTER SYSTEM\nidle_session_timeout = '45s'\n",
        "/srv/pg/pg_hba.conf": PG_HBA,
        # the packaged cluster's files: not what this postmaster runs with
        "/etc/postgresql/15/main/postgresql.conf": "max_connections = 999\n",
        "/srv/pg/data/pg_hba.conf": "host all all 0.0.0.0/0 reject\n",
    }
    return FakeHost("local", files=files, commands={
        ("ss",): ss, ("ss", "-Htn", "state"): conns, ("readlink", "--", "/proc/900/cwd"): "/srv/pg/data\n"})


async def test_postgres_reads_its_includes_in_place_and_auto_conf_last() -> None:
    result = await ProcessSettingsCheck().run(make_ctx("10.0.0.5:5432", server=pg_host(), client=client_at("10.9.3.3")),
                                              NoParams())
    text = "\n".join(e.text for e in result.evidence)
    titles = "\n".join(e.title for e in result.evidence)
    assert "PostgreSQL, pid 900: configuration: /srv/pg/postgresql.conf (config_file on the command line)" in titles
    assert "/srv/pg/conf.d/limits.conf:1: max_connections 4" in text
    assert "/srv/pg/data/postgresql.auto.conf:2: idle_session_timeout 45s" in text  # ALTER SYSTEM wins
    assert "/srv/pg/extra/10-timeouts.conf:2: tcp_keepalives_idle 60" in text
    assert "/srv/pg/extra/20-later.conf:1: idle_in_transaction_session_timeout 5min" in text
    assert "tcp_keepalives_interval 0 (postgresql default, not set in the configuration)" in text
    assert "999" not in text and "/etc/postgresql" not in text + titles
    # pg_hba.conf from hba_file (not the data directory's), its reject line for the source
    reject = next(s for s in result.signals if s.id == "proxy.reject_rule")
    assert "/srv/pg/pg_hba.conf:3: host all all 10.9.0.0/16 reject" in reject.fact and reject.strength == 1
    limit = next(s for s in result.signals if s.id == "proxy.limit_rule")
    assert "/srv/pg/conf.d/limits.conf:1: max_connections = 4" in limit.fact and "superusers" in limit.fact
    assert "proxy.limit_reached" not in {s.id for s in result.signals}


async def test_postgres_sessions_held_up_to_max_connections_reach_the_limit() -> None:
    ctx = make_ctx("10.0.0.5:5432", server=pg_host(held=4), client=client_at("10.9.3.3"))
    result = await ProcessSettingsCheck().run(ctx, NoParams())
    reached = next(s for s in result.signals if s.id == "proxy.limit_reached")
    assert "limits.conf:1: max_connections = 4 allows 4 in all; 4 from the probe's source 10.9.3.3" in reached.fact
    ctx = make_ctx("10.0.0.5:5432", server=pg_host(held=3), client=client_at("10.9.3.3"))
    assert "proxy.limit_reached" not in {s.id for s in (await ProcessSettingsCheck().run(ctx, NoParams())).signals}


def test_max_connections_unset_is_the_default_limit() -> None:
    pg = ServerConfig("postgresql", 1)
    apps.pg_settings(apps.pg_lines("port = 5433\n", "/x/postgresql.conf"), {}, {}, pg)
    rule = next(r for r in pg.rules if r.kind == "limit")
    assert rule.text == "max_connections = 100" and rule.limit == 100 and "default" in rule.quote()


def test_pg_hba_reject_lines_are_judged_as_postgresql_reads_them() -> None:
    hba = ("host all all 10.1.0.0 255.255.0.0 reject\n"   # the address-and-mask form
           "hostssl all all 10.2.0.0/16 reject\n"         # only for SSL sessions
           "host all all 0.0.0.0/0 reject\n"              # no IPv6 client is in it
           "host all all samenet reject\n"
           "host all all db-clients.example reject\n")
    v4 = {r.line: r.matches for r in apps.pg_hba_rules(hba, "/h", "10.1.2.3")}
    assert v4 == {1: True, 2: False, 3: False, 4: False, 5: False}  # line 1 decides for it
    assert {r.line: r.matches for r in apps.pg_hba_rules(hba, "/h", "10.2.0.9")} == {
        1: False, 2: None, 3: True, 4: False, 5: False}
    v6 = {r.line: r.matches for r in apps.pg_hba_rules(hba, "/h", "fd00::5")}
    assert v6 == {1: False, 2: False, 3: False, 4: None, 5: None}
    # an earlier line for everyone decides: a later reject never applies
    ok = apps.pg_hba_rules("host all all all trust\nhost all all 10.0.0.0/8 reject\n", "/h", "10.0.0.1")
    assert [r.matches for r in ok] == [False] and "earlier line" in ok[0].why
    # a reject for one database leaves the decision to the lines after it
    db = apps.pg_hba_rules("host app all 10.0.0.0/8 reject\nhost all all 10.0.0.0/8 reject\n", "/h", "10.0.0.1")
    assert [r.matches for r in db] == [True, True]


POSTGRES_LOG = [
    ('2026-12-02 14:33:29.451 GMT [28880] FATAL:  sorry, too many clients already', "postgres-too-many",
     "log.rate_limit"),
    ('2026-12-02 14:33:29.451 GMT [28881] FATAL:  remaining connection slots are reserved for non-replication '
     'superuser connections', "postgres-too-many", "log.rate_limit"),
    ('2026-12-02 14:33:51.708 GMT [29904] FATAL:  pg_hba.conf rejects connection for host "10.213.10.2", user '
     '"postgres", database "postgres", no encryption', "postgres-hba-reject", "log.proxy_reject"),
    ('2026-12-02 14:33:51.708 GMT [29905] FATAL:  no pg_hba.conf entry for host "10.1.1.1", user "app", '
     'database "app", SSL off', "postgres-hba-reject", "log.proxy_reject"),
    ('2026-12-02 14:40:00.001 UTC [31000] FATAL:  terminating connection due to idle-session timeout',
     "postgres-idle-timeout", "log.client_timeout"),
    ('2026-12-02 14:40:00.001 UTC [31001] FATAL:  terminating connection due to idle-in-transaction timeout',
     "postgres-idle-timeout", "log.client_timeout"),
    ('2026-12-02 14:41:00.001 UTC [31002] LOG:  could not receive data from client: Connection reset by peer',
     "libpq-reset", "log.reset"),
    # a backend killed by the OOM killer, and what the postmaster does next (PostgreSQL 15's own words)
    ('2026-12-02 19:59:16.015 UTC [22932] LOG:  server process (PID 23166) was terminated by signal 9: Killed',
     "postgres-backend-died", "log.crash"),
    ('2026-12-02 19:59:16.015 UTC [22932] LOG:  server process (PID 23170) exited with exit code 2',
     "postgres-backend-died", "log.crash"),
    ('2026-12-02 19:59:16.015 UTC [22932] LOG:  terminating any other active server processes',
     "postgres-backend-died", "log.crash"),
    ('2026-12-02 19:59:16.020 UTC [22932] LOG:  all server processes terminated; reinitializing',
     "postgres-backend-died", "log.crash"),
]


def test_postgresql_log_lines_raise_the_signal_of_what_they_mean() -> None:
    sigs = {s.id: s for s in make_ctx().checklist.signatures}
    for line, sid, signal in POSTGRES_LOG:
        matched = [s.id for s in sigs.values() if s.compiled().search(line)]
        assert sid in matched, (line, matched)
        assert line_signal(sid, sigs[sid].cls, line)[0] == signal, line
    calm = "2026-12-02 14:33:22.448 GMT [28071] LOG:  database system is ready to accept connections"
    assert not [s.id for s in sigs.values() if s.compiled().search(calm)]


def test_the_lab_probe_payload_is_postgresql_startup_message() -> None:
    assert payload_bytes(_STARTUP) == startup_packet()
    assert startup_packet()[:8] == b"\x00\x00\x00\x29\x00\x03\x00\x00"


# --- Redis: a title that hides the file; maxclients ------------------------------------------

REDIS_CONF = "port 6380\nbind * -::*\ndir /srv/redis\npidfile /srv/redis/redis.pid\nmaxclients 3\ntimeout 0\n"


def redis_host(pidfile: str = "700\n", dir_line: str = "dir /srv/redis", config_get: str = "") -> FakeHost:
    ss = 'LISTEN 0 511 0.0.0.0:6380 0.0.0.0:* users:(("redis-server",pid=700,fd=6))\n'
    files: dict[str, str | bytes] = {
        "/proc/700/stat": stat(700, "redis-server", 1), "/proc/700/cmdline": b"redis-server *:6380\0\0\0",
        "/srv/redis/redis.conf": REDIS_CONF.replace("dir /srv/redis", dir_line),
        # the package's file: another port, another pidfile, another dir
        "/etc/redis/redis.conf": "port 6379\ndir /var/lib/redis\npidfile /run/redis/redis-server.pid\n"
                                 "maxclients 10000\n",
    }
    if pidfile:
        files["/srv/redis/redis.pid"] = pidfile
    held = "".join(f"0 0 10.0.0.5:6380 10.9.3.3:{42000 + i}\n" for i in range(3))
    return FakeHost("local", files=files, commands={
        ("ss",): ss, ("ss", "-Htn", "state"): held, ("readlink", "--", "/proc/700/cwd"): "/srv/redis\n",
        ("redis-cli",): config_get or "ERR max number of clients reached\n\n"})


async def _redis_result(host: FakeHost):
    return await ProcessSettingsCheck().run(make_ctx("10.0.0.5:6380", server=host, client=client_at("10.9.3.3")),
                                            NoParams())


async def test_redis_file_behind_its_title_is_found_by_port_and_pidfile_and_maxclients_is_reached() -> None:
    result = await _redis_result(redis_host())
    titles = "\n".join(e.title for e in result.evidence)
    assert "its file is /srv/redis/redis.conf, shown by its port 6380 and its pidfile /srv/redis/redis.pid" in titles
    assert "CONFIG GET was refused: ERR max number of clients reached" in titles
    reached = [s for s in result.signals if s.id == "proxy.limit_reached"]
    assert any("/srv/redis/redis.conf:5: maxclients 3 allows 3 in all; 3 from the probe's source" in s.fact
               and s.strength == 1 for s in reached)  # a cap Redis refuses beyond, and it is full
    assert any("refused redis-cli CONFIG GET" in s.fact and s.strength == 1 for s in reached)
    assert "/etc/redis" not in titles + "\n".join(e.text for e in result.evidence)
    # the server's own refusal is evidence even when the probe's source holds none of the slots
    host = redis_host()
    host.commands[("ss", "-Htn", "state")] = ""
    alone = [s.fact for s in (await _redis_result(host)).signals if s.id == "proxy.limit_reached"]
    assert len(alone) == 1 and "refused redis-cli CONFIG GET" in alone[0]


async def test_redis_file_is_the_servers_only_when_it_says_so() -> None:
    # no pidfile with its pid, but its dir is the server's working directory
    by_dir = await _redis_result(redis_host(pidfile="", dir_line="dir /srv/redis"))
    assert "shown by its port 6380 and its dir /srv/redis" in "\n".join(e.title for e in by_dir.evidence)
    # neither: no file is taken for the server's, nothing of maxclients 3 is quoted
    neither = await _redis_result(redis_host(pidfile="12\n", dir_line="dir ./"))
    text = "\n".join(e.title + "\n" + e.text for e in neither.evidence)
    assert "maxclients 3" not in text and "its file is" not in text
    assert "maxclients 10000 (redis default" in text


def test_redis_config_get_that_agrees_keeps_the_file_and_line() -> None:
    r = ServerConfig("redis", 6)
    apps.redis_settings("timeout 1\nmaxclients 3\n", "/srv/r/redis.conf", {}, {"timeout": "1", "maxclients": "5"}, r)
    assert r.get("timeout").quote() == "/srv/r/redis.conf:1: timeout 1 [CONFIG GET agrees]"
    assert r.get("maxclients").where == "CONFIG GET" and r.rules[0].limit == 5  # changed at run time
