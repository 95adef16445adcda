"""Application servers and data stores: gunicorn, uvicorn, Node.js, Redis and PostgreSQL,
the values that decide how they end connections, with their defaults (pure).

gunicorn's configuration is Python: only plain assignments of literals are read (``ast``),
nothing of it is run. A Node script's timeouts are read from assignments to the server's
``keepAliveTimeout`` / ``headersTimeout`` / ``requestTimeout`` in its source.
"""

from __future__ import annotations

import ast
import re

from wizard.diag.process.parse.settings import (
    Rule,
    ServerConfig,
    Setting,
    address_in,
    default,
    pg_seconds,
    plain_seconds,
)

GUNICORN_DEFAULTS = {"timeout": "30", "graceful_timeout": "30", "keepalive": "2", "workers": "1",
                     "worker_class": "sync", "max_requests": "0", "backlog": "2048",
                     "worker_connections": "1000"}
_GUNICORN_DURATIONS = {"timeout", "graceful_timeout", "keepalive"}


def gunicorn_settings(conf: str, path: str, args: dict[str, str], config: ServerConfig) -> None:
    """Command-line arguments over the config file's assignments over gunicorn's defaults."""
    found: dict[str, Setting] = {}
    for name, (value, line) in python_assignments(conf).items():
        key = name.replace("-", "_")
        if key in GUNICORN_DEFAULTS or key in ("accesslog", "errorlog"):
            found[key] = Setting("gunicorn", key, value, plain_seconds(value) if key in _GUNICORN_DURATIONS else None,
                                 path, line)
    for key, value in args.items():
        if key in GUNICORN_DEFAULTS or key in ("access_logfile", "error_logfile", "log_file"):
            found[key] = Setting("gunicorn", key, value,
                                 plain_seconds(value) if key in _GUNICORN_DURATIONS else None,
                                 "the command line", 0)
    for key, dflt in GUNICORN_DEFAULTS.items():
        config.settings.append(found.get(key) or default(
            "gunicorn", key, dflt, plain_seconds(dflt) if key in _GUNICORN_DURATIONS else None))
    for key in ("accesslog", "errorlog", "access_logfile", "error_logfile", "log_file"):
        s = found.get(key)
        if s and s.value.startswith("/"):
            config.logs.append(s.value)


def python_assignments(text: str) -> dict[str, tuple[str, int]]:
    """``name = literal`` at the top of a Python file: {name: (value as text, line)}."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    out: dict[str, tuple[str, int]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                continue
            out[node.targets[0].id] = (str(value), node.lineno)
    return out


UVICORN_DEFAULTS = {"timeout_keep_alive": "5", "limit_concurrency": "none", "limit_max_requests": "none",
                    "backlog": "2048", "workers": "1", "timeout_graceful_shutdown": "none"}


def uvicorn_settings(args: dict[str, str], config: ServerConfig) -> None:
    for key, dflt in UVICORN_DEFAULTS.items():
        if key in args:
            config.settings.append(Setting("uvicorn", key, args[key],
                                           plain_seconds(args[key]) if key.startswith("timeout") else None,
                                           "the command line", 0))
        else:
            config.settings.append(default("uvicorn", key, dflt, plain_seconds(dflt)))
    if "log_config" in args:
        config.notes.append(f"logging configured by {args['log_config']}")


def node_defaults(version: str) -> dict[str, tuple[str, float | None]]:
    """http.Server's timeouts by Node's major version (``v18.19.0`` -> 18)."""
    m = re.match(r"v?(\d+)", version or "")
    major = int(m.group(1)) if m else 18
    headers = 60.0 if major >= 18 else 40.0 if major >= 11 else 60.0
    request = 300.0 if major >= 18 else 0.0
    return {"keepAliveTimeout": ("5000 ms", 5.0), "headersTimeout": (f"{headers * 1000:.0f} ms", headers),
            "requestTimeout": (f"{request * 1000:.0f} ms" if request else "0 (none)", request or None)}


_NODE_RX = re.compile(r"\.(keepAliveTimeout|headersTimeout|requestTimeout)\s*=\s*(\d[\d_]*)")


def node_settings(source: str, path: str, version: str, config: ServerConfig) -> None:
    found: dict[str, Setting] = {}
    for n, line in enumerate(source.splitlines(), 1):
        for m in _NODE_RX.finditer(line):
            ms = int(m.group(2).replace("_", ""))
            found[m.group(1)] = Setting("node", m.group(1), f"{ms} ms", ms / 1000, path, n)
    for key, (value, secs) in node_defaults(version).items():
        shown = value + (f" (Node {version})" if version else "")
        config.settings.append(found.get(key) or default("node", key, shown, secs))


REDIS_DEFAULTS = {"timeout": "0", "maxclients": "10000", "tcp-keepalive": "300", "tcp-backlog": "511",
                  "protected-mode": "yes"}


_REDIS_SECONDS = ("timeout", "tcp-keepalive")


def _redis(key: str, value: str, path: str, line: int) -> Setting:
    return Setting("redis", key, value, plain_seconds(value) if key in _REDIS_SECONDS else None, path, line)


def redis_settings(conf: str, path: str, args: dict[str, str], live: dict[str, str], config: ServerConfig) -> None:
    """``live`` (CONFIG GET, the server's own view) over arguments over the file over defaults;
    a value the server reports as written keeps its file and line (the place to change it)."""
    found: dict[str, Setting] = {}
    for n, raw in enumerate(conf.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0].lower() in (*REDIS_DEFAULTS, "logfile", "bind", "port", "include"):
            found[words[0].lower()] = _redis(words[0].lower(), " ".join(words[1:]).strip('"'), path, n)
    for key, value in args.items():
        if key in REDIS_DEFAULTS or key == "logfile":
            found[key] = _redis(key, value, "the command line", 0)
    for key, value in live.items():
        if key not in REDIS_DEFAULTS:
            continue
        written = found.get(key)
        if written and written.value == value:
            # the file's line is what to change; the server confirms it runs with it
            found[key] = Setting("redis", key, value, written.seconds, written.path, written.line, "CONFIG GET agrees")
        else:
            found[key] = _redis(key, value, "CONFIG GET", 0)
    for key, dflt in REDIS_DEFAULTS.items():
        dflt_s = plain_seconds(dflt) if key in _REDIS_SECONDS else None
        config.settings.append(found.get(key) or default("redis", key, dflt, dflt_s))
    if "logfile" in live and "logfile" not in found:
        found["logfile"] = _redis("logfile", live["logfile"], "CONFIG GET", 0)
    if "maxclients" in found and found["maxclients"].value != REDIS_DEFAULTS["maxclients"]:
        s = found["maxclients"]
        config.rules.append(Rule("redis", "limit", f"maxclients {s.value}", s.path, s.line, "", None,
                                 "connections beyond it get -ERR max number of clients reached",
                                 plain_seconds(s.value)))
    log = found.get("logfile")
    if log and log.value.startswith("/"):
        config.logs.append(log.value)


def redis_identity(conf: str) -> dict[str, str]:
    """What a redis.conf says of the server that runs with it: its ``port``, ``pidfile`` and
    ``dir`` (the last of each, as Redis reads them; port 6379 when unset)."""
    out = {"port": "6379"}
    for raw in conf.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0].lower() in ("port", "pidfile", "dir"):
            out[words[0].lower()] = words[1].strip('"')
    return out


def redis_runs_with(conf: str, port: int, cwd: str, pid_in_pidfile: str, pid: int) -> str:
    """Why a redis.conf is the one the server on ``port`` runs with ("" when it is not shown
    to be): its port is the listener's and its pidfile holds the server's pid, or its
    ``dir`` is the server's working directory (Redis changes into it)."""
    ident = redis_identity(conf)
    if ident["port"] != str(port):
        return ""
    if pid_in_pidfile.strip() == str(pid):
        return f"its port {port} and its pidfile {ident.get('pidfile')} (pid {pid})"
    if ident.get("dir", "").startswith("/") and ident["dir"].rstrip("/") == cwd.rstrip("/"):
        return f"its port {port} and its dir {ident['dir']} (the server's working directory)"
    return ""


PG_DEFAULTS = {"idle_session_timeout": ("0", "ms"), "idle_in_transaction_session_timeout": ("0", "ms"),
               "statement_timeout": ("0", "ms"), "authentication_timeout": ("1min", "s"),
               "tcp_keepalives_idle": ("0", "s"), "tcp_keepalives_interval": ("0", "s"),
               "tcp_keepalives_count": ("0", ""), "tcp_user_timeout": ("0", "ms"),
               "max_connections": ("100", ""), "superuser_reserved_connections": ("3", ""),
               "port": ("5432", ""), "log_directory": ("log", ""), "logging_collector": ("off", ""),
               "log_disconnections": ("off", ""), "hba_file": ("", ""), "ssl": ("off", "")}


def pg_lines(text: str, path: str) -> list[tuple[str, str, str, int]]:
    """(name, value, file, line) of a postgresql.conf: ``name = value`` or ``name value``."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*([A-Za-z_][\w.]*)\s*(?:=\s*|\s+)('(?:[^']|'')*'|[^#\s]+)", raw)
        if m:
            value = m.group(2)
            if value.startswith("'"):
                value = value[1:-1].replace("''", "'")
            out.append((m.group(1).lower(), value, path, n))
    return out


def pg_settings(lines: list[tuple[str, str, str, int]], live: dict[str, str], args: dict[str, str],
                config: ServerConfig) -> None:
    found: dict[str, Setting] = {}
    for name, value, path, n in lines:
        if name in PG_DEFAULTS:
            found[name] = _pg(name, value, path, n)
    for name, value in args.items():
        if name in PG_DEFAULTS:
            found[name] = _pg(name, value, "the command line", 0)
    for name, value in live.items():
        if name in PG_DEFAULTS:
            found[name] = _pg(name, value, "SHOW", 0)
    for name, (dflt, unit) in PG_DEFAULTS.items():
        if name == "hba_file" and name not in found:
            continue
        config.settings.append(found.get(name) or default("postgresql", name, dflt,
                                                          pg_seconds(dflt, unit) if unit else None))
    mc = found.get("max_connections") or default("postgresql", "max_connections", PG_DEFAULTS["max_connections"][0])
    reserved = found.get("superuser_reserved_connections")
    config.rules.append(Rule(
        "postgresql", "limit", f"max_connections = {mc.value}", mc.path or "PostgreSQL's default (not set)",
        mc.line, "", None, "sessions beyond it are refused with FATAL: sorry, too many clients already"
        + (f" (the last {reserved.value} only for superusers)" if reserved and reserved.value != "0" else ""),
        plain_seconds(mc.value)))


def _pg(name: str, value: str, path: str, n: int) -> Setting:
    unit = PG_DEFAULTS[name][1]
    return Setting("postgresql", name, value, pg_seconds(value, unit) if unit else None, path, n)


def pg_hba_rules(text: str, path: str, source: str) -> list[Rule]:
    """``host ... reject`` lines of pg_hba.conf, judged against the probe's source; only the
    first line matching the source and any database/user decides, as PostgreSQL reads it."""
    out: list[Rule] = []
    decided = False
    for n, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) < 4 or not words[0].startswith("host"):
            continue
        addr, rest = words[3], words[4:]
        if "/" not in addr and rest and re.fullmatch(r"[\d.]+", rest[0]):  # address mask form
            addr, rest = f"{addr}/{rest[0]}", rest[1:]
        method = rest[0] if rest else ""
        if addr == "all":
            hit: bool | None = True
        elif addr in ("samehost", "samenet") or addr.startswith(".") or "/" not in addr:
            hit = None  # by the server's own addresses, or a host name
        else:
            hit = address_in(source, addr) if source else None
        if hit and words[0] in ("hostssl", "hostgssenc"):
            hit = None  # only for encrypted sessions: it depends on the client's sslmode
        if method == "reject":
            m = hit if not decided else False
            out.append(Rule("postgresql", "reject", " ".join(words), path, n, "pg_hba.conf", m,
                            "the first pg_hba.conf line for the probe's source rejects" if m else
                            "an earlier line decides for the probe's source" if decided else
                            "its address does not hold the probe's source" if m is False else
                            "depends on the database, the user or names"))
        if hit is True and words[1] == "all" and words[2] == "all":
            decided = True
    return out
