"""nginx's configuration as the running nginx reads it, and what it says about resets (pure).

``parse`` turns one file into directives with their file and line and their blocks;
the I/O layer splices each ``include`` with the files it names (``expand``), and
``settings`` reads, for the server blocks that listen on the target's port, the values
that decide how nginx ends connections, each with its default when nothing sets it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wizard.diag.process.parse.settings import Rule, ServerConfig, Setting, default, nginx_seconds


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    path: str
    line: int
    block: tuple[Directive, ...] | None = None  # the children of a block directive

    def text(self) -> str:
        return " ".join((self.name, *self.args)) + (" { ... }" if self.block is not None else ";")


_TOKEN = re.compile(r"""\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([;{}])|([^\s;{}"'#]+)""")


def parse(text: str, path: str) -> list[Directive]:
    """The directives of one file (unbalanced braces end the block at the file's end)."""
    stack: list[list[Directive]] = [[]]
    heads: list[tuple[str, tuple[str, ...], int]] = []
    words: list[str] = []
    start = 0
    line = 1
    pos = 0
    for m in _TOKEN.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        dq, sq, punct, word = m.groups()
        if word is not None or dq is not None or sq is not None:
            if not words:
                start = line
            words.append(word if word is not None else (dq if dq is not None else sq))
        elif punct == ";" and words:
            stack[-1].append(Directive(words[0], tuple(words[1:]), path, start))
            words = []
        elif punct == "{":
            heads.append((words[0] if words else "", tuple(words[1:]), start if words else line))
            stack.append([])
            words = []
        elif punct == "}" and heads:
            name, args, at = heads.pop()
            children = tuple(stack.pop())
            stack[-1].append(Directive(name, args, path, at, children))
            words = []
    while heads:
        name, args, at = heads.pop()
        children = tuple(stack.pop())
        stack[-1].append(Directive(name, args, path, at, children))
    return stack[0]


def includes(directives: list[Directive]) -> Iterator[str]:
    """Every ``include`` pattern, at any depth."""
    for d in directives:
        if d.name == "include" and d.args:
            yield d.args[0]
        if d.block:
            yield from includes(list(d.block))


def expand(directives: list[Directive], files: Callable[[str], list[list[Directive]]],
           depth: int = 0) -> list[Directive]:
    """``directives`` with each ``include`` replaced by the directives of the files it names
    (``files(pattern)`` gives them, already parsed), to a depth of 8."""
    out: list[Directive] = []
    for d in directives:
        if d.name == "include" and d.args and depth < 8:
            for parsed in files(d.args[0]):
                out += expand(parsed, files, depth + 1)
            continue
        if d.block is not None:
            out.append(Directive(d.name, d.args, d.path, d.line, tuple(expand(list(d.block), files, depth))))
        else:
            out.append(d)
    return out


# The directives that decide how nginx ends a connection, with their defaults (nginx 1.22).
DEFAULTS = {
    "keepalive_timeout": "75s", "keepalive_requests": "1000", "reset_timedout_connection": "off",
    "client_header_timeout": "60s", "client_body_timeout": "60s", "send_timeout": "60s",
    "lingering_close": "on", "lingering_time": "30s", "lingering_timeout": "5s",
    "proxy_connect_timeout": "60s", "proxy_read_timeout": "60s", "proxy_send_timeout": "60s",
    "proxy_next_upstream": "error timeout",
}
LIMITS = ("limit_conn", "limit_req")
ACCESS = ("allow", "deny")


@dataclass(frozen=True)
class Listen:
    port: int
    address: str
    ssl: bool
    directive: Directive


def _listen(d: Directive) -> Listen | None:
    if not d.args:
        return None
    spec = d.args[0]
    if spec.startswith("unix:"):
        return None
    m = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:]+))?:?(?P<port>\d+)?", spec)
    if not m:
        return None
    if m.group("port"):
        port, host = int(m.group("port")), m.group("v6") or m.group("host") or "*"
    elif m.group("host") and m.group("host").isdigit():
        port, host = int(m.group("host")), "*"
    else:
        port, host = 80, m.group("v6") or m.group("host") or "*"
    return Listen(port, host, "ssl" in d.args[1:] or "quic" in d.args[1:], d)


def _servers(directives: list[Directive]) -> Iterator[tuple[Directive, Directive]]:
    """(http block, server block) pairs."""
    for d in directives:
        if d.name == "http" and d.block:
            for s in d.block:
                if s.name == "server" and s.block is not None:
                    yield d, s


def _in(block: tuple[Directive, ...] | None, names: tuple[str, ...]) -> list[Directive]:
    return [d for d in block or () if d.name in names]


def _locations(block: tuple[Directive, ...] | None) -> Iterator[Directive]:
    for d in block or ():
        if d.name in ("location", "if", "limit_except") and d.block is not None:
            yield d
            yield from _locations(d.block)


def _setting(name: str, d: Directive, context: str) -> Setting:
    value = " ".join(d.args)
    secs = nginx_seconds(d.args[0]) if d.args and name.endswith(("timeout", "_time")) else None
    return Setting("nginx", name, value, secs, d.path, d.line, context)


def settings(directives: list[Directive], port: int, config: ServerConfig,
             access: Callable[[str], bool | None] = lambda _: None) -> None:
    """Fill ``config`` with the values the server blocks listening on ``port`` use (server
    level over http level over nginx's default), their limits and access rules; ``access``
    tells whether an allow/deny address applies to the probe's source (None: unknown)."""
    pairs = list(_servers(directives))
    for _, s in pairs:
        for d in _in(s.block, ("listen",)):
            lst = _listen(d)
            if lst:
                (config.tls_ports if lst.ssl else config.plain_ports).append(lst.port)
                config.listens.setdefault(lst.port, f"{d.path}:{d.line}: {d.text()}")
    mine = [(h, s) for h, s in pairs
            if any((lst := _listen(d)) and lst.port == port for d in _in(s.block, ("listen",)))]
    if not mine:
        config.notes.append(f"no server block of this nginx listens on port {port}")
        return
    http, server = mine[0]
    names = " ".join(next((d.args for d in _in(server.block, ("server_name",))), ()))
    ctx = f"server :{port}" + (f" {names}" if names else "")
    for name, dflt in DEFAULTS.items():
        found = _in(server.block, (name,))
        where = ctx
        if not found:
            found, where = _in(http.block, (name,)), "http"
        if found:
            config.settings.append(_setting(name, found[-1], where))
        else:
            config.settings.append(default("nginx", name, dflt, nginx_seconds(dflt.split()[0])))
    for loc in _locations(server.block):
        for d in _in(loc.block, tuple(DEFAULTS)):
            config.settings.append(_setting(d.name, d, f"{ctx} location {' '.join(loc.args)}"))
    for scope, block in (("http", http.block), (ctx, server.block)):
        for d in _in(block, LIMITS):
            config.rules.append(Rule("nginx", "limit", d.text(), d.path, d.line, scope, None,
                                     "applies to every client of the zone", _zone_limit(directives, d)))
        config.rules += _access_list(_in(block, ACCESS), scope, access)
    for loc in _locations(server.block):
        scope = f"{ctx} location {' '.join(loc.args)}"
        config.rules += _access_list(_in(loc.block, ACCESS), scope, access)
        for d in _in(loc.block, LIMITS):
            config.rules.append(Rule("nginx", "limit", d.text(), d.path, d.line, scope, None,
                                     "for requests to this location", _zone_limit(directives, d)))
    for d in _in(http.block, ("access_log", "error_log")) + _in(server.block, ("access_log", "error_log")) + [
            d for d in directives if d.name == "error_log"]:
        if d.args and d.args[0].startswith("/") and d.args[0] not in config.logs:
            config.logs.append(d.args[0])


def _access_list(rules: list[Directive], scope: str, access: Callable[[str], bool | None]) -> list[Rule]:
    """allow/deny in their order: the first that matches the source decides, later ones do
    not apply to it."""
    out: list[Rule] = []
    decided = False
    for d in rules:
        what = d.args[0] if d.args else ""
        matches = True if what == "all" else access(what)
        why = ("'all' matches every client" if what == "all" else
               "the probe's source is in it" if matches else
               "the probe's source is not in it" if matches is False else "cannot be judged here")
        if decided:
            matches, why = False, "an earlier allow/deny already decided for the probe's source"
        decided = decided or matches is True
        kind = "reject" if d.name == "deny" else "allow"
        out.append(Rule("nginx", kind, d.text(), d.path, d.line, scope, matches, why))
    return out


def _zone_limit(directives: list[Directive], d: Directive) -> float | None:
    """The number a limit_conn sets (connections) or its zone's rate (requests per second)."""
    if d.name == "limit_conn" and len(d.args) >= 2 and d.args[1].isdigit():
        return float(d.args[1])
    if d.name == "limit_req":
        zone = next((a.split("=", 1)[1] for a in d.args if a.startswith("zone=")), "")
        for http in directives:
            for z in _in(http.block, ("limit_req_zone",)) if http.name == "http" else ():
                if any(a == f"zone={zone}" or a.startswith(f"zone={zone}:") for a in z.args):
                    rate = next((a[5:] for a in z.args if a.startswith("rate=")), "")
                    m = re.fullmatch(r"(\d+)r/([sm])", rate)
                    if m:
                        return int(m.group(1)) / (60 if m.group(2) == "m" else 1)
    return None
