"""Real server software in the lab (I/O): Debian's nginx, HAProxy, Apache, Caddy, gunicorn,
uvicorn, Node, Redis and PostgreSQL, each started in the server namespace in the foreground.

Every server gets a configuration the scenario writes into its own lab directory (never the
system's: no file under /etc is read or written, no packaged service is used), keeps its
logs and its pid file there, and is stopped by its PID (the namespace teardown kills what
is left). ``{port}``, ``{dir}`` and ``{upstream}`` in a scenario's configuration are its
port, its lab directory and the port of the lab's own upstream server on 127.0.0.1.

PostgreSQL runs as the ``postgres`` user (``setpriv`` execs it, so the recorded PID is the
postmaster's) with a data directory that ``initdb`` makes in the lab directory, its
``postgresql.conf`` and ``pg_hba.conf`` there (named by ``-c config_file`` and ``hba_file``;
the packaged cluster under /etc/postgresql and /var/lib/postgresql is never touched).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

UPSTREAM_OFFSET = 1000  # the upstream's port is the scenario's port plus this, on 127.0.0.1


@dataclass(frozen=True)
class Software:
    """How one server program is configured and run in the foreground."""

    name: str
    binary: str          # what must be installed (the Debian package in .ci/run provides it)
    package: str
    argv: tuple[str, ...]  # {dir} {port} {conf}
    conf_name: str
    template: str        # the whole configuration; {body} is the scenario's part
    body: str            # the default {body}: a healthy server
    logs: tuple[str, ...]  # log files in {dir}
    extra_files: tuple[tuple[str, str], ...] = ()
    stdout_log: str = ""   # the server logs to stdout: redirected into this file


_NGINX = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
{http}
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    server {{
{body}
    }}
}}
"""
_NGINX_BODY = """\
        listen {port};
        listen [::]:{port};
        location / {{ return 200 "ok\\n"; }}"""

_HAPROXY = """\
global
    log stdout format iso local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
{body}
"""
_HAPROXY_BODY = """\
frontend web
    bind :::{port} v4v6
    http-request return status 200 content-type text/plain string "ok"
"""

_APACHE = """\
ServerRoot {dir}
ServerName lab.test
DefaultRuntimeDir {dir}
PidFile {dir}/apache2.pid
Mutex file:{dir} default
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
User www-data
Group www-data
ErrorLog {dir}/error.log
LogLevel info
LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" timed
CustomLog {dir}/access.log timed
DocumentRoot {dir}/www
Listen {port}
{body}
"""
_APACHE_BODY = "KeepAlive On\nKeepAliveTimeout 5\n"

_CADDY = """\
{{
    admin off
    auto_https off
    storage file_system {dir}/caddy-data
    log {{
        output file {dir}/caddy.log
        level INFO
    }}
{body}
}}
:{port} {{
    respond "ok"
}}
"""
_CADDY_BODY = ""

_WSGI = """\
import time


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path.startswith("/sleep/"):
        time.sleep(float(path.rsplit("/", 1)[1]))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
"""
_ASGI = """\
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope.get("path", "/")
    if path.startswith("/sleep/"):
        await asyncio.sleep(float(path.rsplit("/", 1)[1]))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\\n"})
"""
_NODE = """\
const http = require("http");
const server = http.createServer((req, res) => {{
  res.setHeader("Content-Type", "text/plain");
  res.end("ok\\n");
}});
{body}
server.listen({port}, "::", () => console.log(new Date().toISOString() + " listening on {port}"));
process.on("SIGTERM", () => process.exit(0));
"""
_REDIS = """\
bind * -::*
port {port}
protected-mode no
daemonize no
dir {dir}
logfile {dir}/redis.log
pidfile {dir}/redis.pid
save ""
appendonly no
{body}
"""

# The scenario's part of a PostgreSQL configuration is written to its own file, included by the
# main one (as a conf.d file is); after a "---" line come the scenario's pg_hba.conf lines.
_POSTGRES = """\
# the lab's PostgreSQL: data in {dir}/pgdata, this file named by -c config_file
listen_addresses = '*'
port = {port}
unix_socket_directories = ''    # TCP only: no socket shared between the labs' namespaces
hba_file = '{dir}/pg_hba.conf'
log_line_prefix = '%m [%p] '
log_connections = on
log_disconnections = on
include 'lab.conf'
"""
_PG_HBA = """\
# TYPE  DATABASE  USER  ADDRESS    METHOD
{body}host    all       all   0.0.0.0/0  trust
host    all       all   ::/0       trust
"""


def postgres_bin(program: str = "postgres") -> str:
    """The newest installed PostgreSQL's ``program`` (/usr/lib/postgresql/N/bin), or 15's path."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else f"/usr/lib/postgresql/15/bin/{program}"


_AS_POSTGRES = ("setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups")

SOFTWARE: dict[str, Software] = {s.name: s for s in (
    Software("nginx", "nginx", "nginx", ("nginx", "-c", "{conf}", "-p", "{dir}/", "-g", "daemon off;"),
             "nginx.conf", _NGINX, _NGINX_BODY, ("error.log", "access.log")),
    Software("haproxy", "haproxy", "haproxy", ("haproxy", "-db", "-f", "{conf}"), "haproxy.cfg", _HAPROXY,
             _HAPROXY_BODY, ("haproxy.log",), stdout_log="haproxy.log"),
    Software("apache2", "apache2", "apache2", ("apache2", "-f", "{conf}", "-DFOREGROUND"), "apache2.conf",
             _APACHE, _APACHE_BODY, ("error.log", "access.log")),
    Software("caddy", "caddy", "caddy", ("caddy", "run", "--config", "{conf}", "--adapter", "caddyfile"),
             "Caddyfile", _CADDY, _CADDY_BODY, ("caddy.log",), stdout_log="caddy.out"),
    Software("gunicorn", "gunicorn", "gunicorn",
             ("gunicorn", "--chdir", "{dir}", "--bind", "[::]:{port}", "--pid", "{dir}/gunicorn.pid",
              "--error-logfile", "{dir}/gunicorn.log", "--access-logfile", "{dir}/access.log", "{conf}"),
             "gunicorn.args", "", "--workers 1", ("gunicorn.log", "access.log"),
             extra_files=(("app.py", _WSGI),)),
    Software("uvicorn", "/usr/lib/python3/dist-packages/uvicorn", "python3-uvicorn",
             ("/usr/bin/python3", "-m", "uvicorn", "--app-dir", "{dir}", "--host", "::", "--port", "{port}", "{conf}"),
             "uvicorn.args", "", "", ("uvicorn.log",), extra_files=(("asgi.py", _ASGI),),
             stdout_log="uvicorn.log"),
    Software("node", "node", "nodejs", ("node", "{conf}"), "server.js", _NODE, "", ("node.log",),
             stdout_log="node.log"),
    Software("redis", "redis-server", "redis-server", ("redis-server", "{conf}"), "redis.conf", _REDIS, "",
             ("redis.log",)),
    Software("postgres", postgres_bin(), "postgresql",
             (*_AS_POSTGRES, postgres_bin(), "-D", "{dir}/pgdata", "-c", "config_file={conf}"),
             "postgresql.conf", _POSTGRES, "", ("postgresql.log",), stdout_log="postgresql.log"),
)}


def missing(name: str) -> str:
    """Why ``name`` cannot run here ("" when it can): its program is not installed."""
    sw = SOFTWARE[name]
    found = Path(sw.binary).exists() if sw.binary.startswith("/") else \
        shutil.which(sw.binary, path="/usr/sbin:/usr/bin:/sbin:/bin") is not None
    if not found:
        return f"{sw.binary} is not installed (apt install {sw.package})"
    return ""


def prepare(name: str, body: str | None, directory: Path, port: int) -> tuple[list[str], Path | None]:
    """Write the configuration (and the app) into ``directory``; return the argv that runs the
    server in the foreground and the file its stdout goes to (None: its own log files)."""
    sw = SOFTWARE[name]
    fill = {"dir": str(directory), "port": str(port), "upstream": str(port + UPSTREAM_OFFSET)}
    part = (sw.body if body is None else body).format(**fill)
    if name == "postgres":
        _postgres_files(directory, part)  # its own files: settings, pg_hba.conf, a data directory
        part = ""
    # A body may begin with lines for the http context (nginx's limit zones), then "---".
    http, _, rest = part.rpartition("---\n") if "---\n" in part else ("", "", part)
    part = rest
    for fname, text in sw.extra_files:
        (directory / fname).write_text(text)
    if name in ("gunicorn", "uvicorn"):
        # Their configuration is the command line: the scenario's flags, then the app.
        flags = part.split()
        app = "app:app" if name == "gunicorn" else "asgi:app"
        (directory / sw.conf_name).write_text(" ".join(flags) + "\n")
        argv = [a.format(**fill, conf=app) for a in sw.argv]
        argv = argv[:-1] + flags + argv[-1:]
    else:
        conf = directory / sw.conf_name
        conf.write_text(sw.template.format(**fill, body=part, http=http.rstrip("\n")) if sw.template else part)
        argv = [a.format(**fill, conf=str(conf)) for a in sw.argv]
    if name in ("apache2", "nginx"):
        (directory / "www").mkdir(exist_ok=True)
        (directory / "www" / "index.html").write_text("ok\n")
    if name == "nginx":
        # nginx's workers run as www-data and log through the master's descriptors.
        for sub in ("tmp-body", "tmp-proxy", "tmp-fastcgi", "tmp-uwsgi", "tmp-scgi"):
            (directory / sub).mkdir(exist_ok=True)
    for log in sw.logs:
        (directory / log).touch()
    return argv, (directory / sw.stdout_log) if sw.stdout_log else None


def _postgres_files(directory: Path, part: str) -> None:
    """The scenario's settings (lab.conf) and pg_hba.conf lines, and a data directory that
    initdb makes as the postgres user (the directory must be the user's, mode 0700)."""
    settings, _, hba = part.partition("---\n")
    (directory / "lab.conf").write_text(settings)
    (directory / "pg_hba.conf").write_text(_PG_HBA.format(body=hba))
    data = directory / "pgdata"
    data.mkdir(mode=0o700)
    user = pwd.getpwnam("postgres")
    os.chown(data, user.pw_uid, user.pw_gid)
    done = subprocess.run([*_AS_POSTGRES, postgres_bin("initdb"), "-D", str(data), "-U", "postgres",
                           "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    if done.returncode:
        raise RuntimeError(f"initdb failed: {(done.stdout + done.stderr)[-800:]}")


def log_paths(name: str, directory: Path) -> list[Path]:
    return [directory / log for log in SOFTWARE[name].logs]
