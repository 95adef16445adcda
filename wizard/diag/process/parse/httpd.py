"""Apache httpd's and Caddy's configuration: the values that decide how they end
connections, with their defaults (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from wizard.diag.process.parse.settings import (
    Rule,
    ServerConfig,
    Setting,
    default,
    go_seconds,
    plain_seconds,
)

# Apache 2.4's defaults for what ends connections.
APACHE_DEFAULTS = {"Timeout": "60", "KeepAlive": "On", "KeepAliveTimeout": "5",
                   "MaxKeepAliveRequests": "100",
                   "RequestReadTimeout": "handshake=0 header=20-40,MinRate=500 body=20,MinRate=500",
                   "MaxRequestWorkers": "150 (event/worker: ServerLimit x ThreadsPerChild)",
                   "LimitRequestBody": "1073741824"}
_DURATION = {"Timeout", "KeepAliveTimeout"}


def apache_lines(text: str, path: str) -> list[tuple[str, list[str], str, int]]:
    """(directive, arguments, file, line) of one file, continuation lines joined; section
    tags (``<VirtualHost *:80>``) come as ``<VirtualHost`` with their arguments."""
    out = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line, buf = (buf + line).strip(), ""
        if not line or line.startswith("#"):
            continue
        words = line.rstrip(">").split()
        out.append((words[0], [w.strip('"') for w in words[1:]], path, start))
    return out


def apache_includes(lines: list[tuple[str, list[str], str, int]]) -> list[str]:
    return [args[0] for name, args, _, _ in lines if name.lower() in ("include", "includeoptional") and args]


def apache_settings(lines: list[tuple[str, list[str], str, int]], port: int, config: ServerConfig,
                    access: Callable[[str], bool | None] = lambda _: None) -> None:
    """The server-wide values (the last one wins), virtual hosts' overrides noted with their
    section, ``Listen`` ports, ``Require`` / ``Deny from`` rules, and the log files."""
    section = ""
    found: dict[str, Setting] = {}
    for name, args, path, n in lines:
        if name.startswith("</"):
            section = ""
            continue
        if name.startswith("<"):
            section = f"{name[1:]} {' '.join(args)}".strip()
            continue
        canon = next((k for k in APACHE_DEFAULTS if k.lower() == name.lower()), "")
        value = " ".join(args)
        if canon:
            secs = plain_seconds(args[0]) if canon in _DURATION and args else None
            s = Setting("apache", canon, value, secs, path, n, section)
            if not section or f":{port}" in section or "*" in section.split(":")[0]:
                found[canon] = s
            else:
                config.settings.append(s)
        low = name.lower()
        if low == "listen" and args:
            m = re.search(r"(\d+)$", args[0])
            if m:
                (config.tls_ports if "https" in args[1:] else config.plain_ports).append(int(m.group(1)))
        elif low == "sslengine" and args and args[0].lower() == "on":
            m = re.search(r":(\d+)", section)
            if m:
                config.tls_ports.append(int(m.group(1)))
        elif low in ("errorlog", "customlog", "transferlog") and args and args[0].startswith("/"):
            config.logs.append(args[0])
        elif (low == "require" and args[:2] == ["not", "ip"]) or (low == "deny" and args[:1] == ["from"]):
            nets = args[2:] if low == "require" else args[1:]
            hits = [True if a == "all" else access(a) for a in nets]
            match = True if any(h is True for h in hits) else False if hits and all(h is False for h in hits) else None
            config.rules.append(Rule("apache", "reject", f"{name} {value}", path, n, section, match,
                                     "address list judged against the probe's source"))
    for k, v in APACHE_DEFAULTS.items():
        if k in found:
            config.settings.append(found[k])
        else:
            config.settings.append(default("apache", k, v, plain_seconds(v) if k in _DURATION else None))


# Caddy 2: what its HTTP servers do when no timeout is set.
CADDY_DEFAULTS = {"read_timeout": "none", "read_header_timeout": "none", "write_timeout": "none",
                  "idle_timeout": "5m"}
_CADDYFILE = {"read_body": "read_timeout", "read_header": "read_header_timeout",
              "write": "write_timeout", "idle": "idle_timeout"}


def caddy_settings(text: str, path: str, config: ServerConfig) -> None:
    """Timeouts from a Caddyfile's global ``servers { timeouts { ... } }`` or from Caddy's
    JSON (``apps.http.servers.*``), the ports its sites listen on, and its log files."""
    found: dict[str, Setting] = {}
    if text.lstrip().startswith("{") and _is_json(text):
        data = json.loads(text)
        servers = data.get("apps", {}).get("http", {}).get("servers", {}) if isinstance(data, dict) else {}
        for sname, srv in servers.items() if isinstance(servers, dict) else ():
            for key in CADDY_DEFAULTS:
                if key in srv:
                    raw = srv[key]
                    secs = raw / 1e9 if isinstance(raw, int | float) else go_seconds(str(raw))
                    found[key] = Setting("caddy", key, str(raw), secs, path, _json_line(text, key), f"server {sname}")
            for listen in srv.get("listen", []):
                m = re.search(r":(\d+)$", str(listen))
                if m:
                    config.plain_ports.append(int(m.group(1)))
    else:
        stack: list[str] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if line.endswith("{"):
                stack.append(words[0] if len(words) > 1 or words[0] != "{" else "")
                if len(stack) == 1 and words[0] != "{":
                    _caddy_site(words[:-1], config)
            elif line == "}":
                if stack:
                    stack.pop()
            elif stack[-1:] == ["timeouts"] and words[0] in _CADDYFILE and len(words) > 1:
                key = _CADDYFILE[words[0]]
                found[key] = Setting("caddy", key, words[1], go_seconds(words[1]), path, n, "servers timeouts")
            elif stack[-1:] == ["log"] and words[0] == "output" and len(words) > 2 and words[1] == "file":
                config.logs.append(words[2])
    for key, dflt in CADDY_DEFAULTS.items():
        config.settings.append(found.get(key) or default("caddy", key, dflt, go_seconds(dflt)))


def _caddy_site(addresses: list[str], config: ServerConfig) -> None:
    for word in addresses:
        a = word.rstrip(",")
        m = re.search(r":(\d+)$", a)
        tls = not a.startswith("http://")
        if m:
            (config.tls_ports if tls and not a.startswith(":") else config.plain_ports).append(int(m.group(1)))
        elif a.startswith("http://"):
            config.plain_ports.append(80)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_line(text: str, key: str) -> int:
    i = text.find(f'"{key}"')
    return text.count("\n", 0, i) + 1 if i >= 0 else 0
