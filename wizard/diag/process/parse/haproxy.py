"""HAProxy's configuration as the running HAProxy reads it, and what it says about resets (pure).

Sections (global, defaults, frontend, backend, listen) with their directives and lines;
for the frontends that bind the target's port, the timeouts and options in force (a proxy
takes the values of the last ``defaults`` section above it), ``maxconn``, and the rules
that end connections (``tcp-request`` / ``http-request`` ``reject``, ``deny``,
``silent-drop``, ``tarpit``) with their ACL conditions judged against the probe's source
address where the configuration alone can tell (``src`` networks, ``always_true``), and
the connection limits written as stick-table counters compared with a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wizard.diag.process.parse.settings import (
    Rule,
    ServerConfig,
    Setting,
    address_in,
    default,
    haproxy_seconds,
)

SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
            "userlist", "program", "http-errors", "ring", "cache", "mailers")


@dataclass(frozen=True)
class Line:
    words: tuple[str, ...]
    path: str
    line: int

    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class Section:
    kind: str
    name: str
    path: str
    line: int
    lines: list[Line] = field(default_factory=list)
    defaults: Section | None = None  # the defaults section it inherits from

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}".strip()


def _words(raw: str) -> list[str]:
    out, cur, quote, esc = [], "", "", False
    started = False
    for ch in raw:
        if esc:
            cur, esc = cur + ch, False
        elif ch == "\\":
            esc, started = True, True
        elif quote:
            if ch == quote:
                quote = ""
            else:
                cur += ch
        elif ch in "\"'":
            quote, started = ch, True
        elif ch == "#":
            break
        elif ch.isspace():
            if started:
                out.append(cur)
                cur, started = "", False
        else:
            cur, started = cur + ch, True
    if started:
        out.append(cur)
    return out


def parse(files: list[tuple[str, str]]) -> list[Section]:
    """The sections of the files, in the order HAProxy reads them (``(path, text)`` pairs)."""
    sections: list[Section] = []
    last_defaults: Section | None = None
    named: dict[str, Section] = {}
    for path, text in files:
        current: Section | None = None
        for n, raw in enumerate(text.splitlines(), 1):
            words = _words(raw)
            if not words:
                continue
            if words[0] in SECTIONS:
                name = words[1] if len(words) > 1 and words[1] != "from" else ""
                current = Section(words[0], name, path, n)
                parent = last_defaults
                if "from" in words[1:-1]:
                    parent = named.get(words[words.index("from") + 1], parent)
                if words[0] in ("frontend", "backend", "listen", "defaults"):
                    current.defaults = parent if words[0] != "defaults" or "from" in words else None
                if words[0] == "defaults":
                    last_defaults = current
                    if name:
                        named[name] = current
                sections.append(current)
                continue
            if current is not None:
                current.lines.append(Line(tuple(words), path, n))
    return sections


TIMEOUTS = ("client", "server", "connect", "http-request", "http-keep-alive", "tunnel",
            "client-fin", "server-fin", "queue", "tarpit")
OPTIONS = ("nolinger", "http-server-close", "httpclose", "http-keep-alive", "forceclose",
           "abortonclose", "tcplog", "httplog")
# What HAProxy does when nothing sets a timeout (its documentation): no timeout at all,
# except these, which fall back on another.
FALLBACK = {"http-request": "client", "http-keep-alive": "http-request", "tunnel": "client",
            "client-fin": "client", "server-fin": "server", "tarpit": "connect"}
ACTIONS = ("reject", "deny", "silent-drop", "tarpit", "auth")
_COUNTER = re.compile(r"^(?:sc\d?_|src_|sc\d_)?(conn_cur|conn_rate|conn_cnt|http_req_rate|http_req_cnt|"
                      r"http_err_rate|sess_rate|sess_cnt|gpc\d?|gpc0_rate)(\(.*\))?$|^(fe|be)_(conn|sess_rate|req_rate)$"
                      r"|^(fe|be)_(conn|sess_rate)\(.*\)$")


def _binds(section: Section) -> list[tuple[int, bool, Line]]:
    out = []
    for ln in section.lines:
        if ln.words[0] != "bind" or len(ln.words) < 2:
            continue
        for spec in ln.words[1].split(","):
            m = re.search(r":(\d+)(?:-(\d+))?$", spec)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
                for p in range(lo, min(hi, lo + 1024) + 1):
                    out.append((p, "ssl" in ln.words[2:], ln))
    return out


def _find(section: Section | None, pred) -> Line | None:
    """The last line of ``section`` that ``pred`` accepts, else of its defaults, in turn."""
    seen = 0
    while section is not None and seen < 16:
        hit = [ln for ln in section.lines if pred(ln.words)]
        if hit:
            return hit[-1]
        section, seen = section.defaults, seen + 1
    return None


def _label(section: Section, ln: Line, sections: list[Section]) -> str:
    owner = next((s for s in sections if ln in s.lines), section)
    return owner.label


def settings(sections: list[Section], port: int, source: str, config: ServerConfig) -> None:
    """Fill ``config`` with the timeouts, options, limits and rules of the proxies that bind
    ``port``; ``source`` is the probe's address (``""``: unknown)."""
    proxies = [s for s in sections if s.kind in ("frontend", "listen")]
    for s in proxies:
        for p, ssl, bind in _binds(s):
            (config.tls_ports if ssl else config.plain_ports).append(p)
            config.listens.setdefault(p, f"{bind.path}:{bind.line}: {bind.text()}")
    mine = [s for s in proxies if any(p == port for p, _, _ in _binds(s))]
    if not mine:
        config.notes.append(f"no frontend or listen section of this HAProxy binds port {port}")
        return
    fe = mine[0]
    for t in TIMEOUTS:
        config.settings.append(_timeout(sections, fe, t))
    for opt in OPTIONS:
        ln = _find(fe, lambda w, o=opt: len(w) >= 2 and w[-1] == o and w[-2] == "option")
        if ln is not None:
            on = ln.words[0] != "no"
            config.settings.append(Setting("haproxy", f"option {opt}", "on" if on else "off", None,
                                           ln.path, ln.line, _label(fe, ln, sections)))
        elif opt == "nolinger":
            config.settings.append(default("haproxy", "option nolinger", "off"))
    mc = _find(fe, lambda w: w[0] == "maxconn")
    glob = next((s for s in sections if s.kind == "global"), None)
    gmc = _find(glob, lambda w: w[0] == "maxconn") if glob else None
    for ln, what in ((mc, "the proxy's"), (gmc, "the process's")):
        if ln is not None and len(ln.words) > 1 and ln.words[1].isdigit():
            config.settings.append(Setting("haproxy", "maxconn", ln.words[1], None, ln.path, ln.line,
                                           _label(fe, ln, sections)))
            config.rules.append(Rule("haproxy", "limit", ln.text(), ln.path, ln.line,
                                     _label(fe, ln, sections), None,
                                     f"{what} cap on concurrent connections (more wait or are refused)",
                                     float(ln.words[1])))
    config.rules += rules(fe, source)
    for ln in fe.lines:
        if ln.words[0] == "log" and len(ln.words) > 1 and ln.words[1].startswith("/"):
            config.logs.append(ln.words[1])


def _timeout(sections: list[Section], fe: Section, name: str) -> Setting:
    chain, seen = name, set()
    while chain not in seen:
        seen.add(chain)
        ln = _find(fe, lambda w, c=chain: len(w) >= 3 and w[0] == "timeout" and w[1] == c)
        if ln is not None:
            label = _label(fe, ln, sections)
            note = f" (timeout {name} unset: falls back on timeout {chain})" if chain != name else ""
            return Setting("haproxy", f"timeout {name}", ln.words[2] + note, haproxy_seconds(ln.words[2]),
                           ln.path, ln.line, label)
        if chain not in FALLBACK:
            break
        chain = FALLBACK[chain]
    return default("haproxy", f"timeout {name}", "none (no timeout)")


def _acls(section: Section) -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {}
    s: Section | None = section
    while s is not None:
        for ln in s.lines:
            if ln.words[0] == "acl" and len(ln.words) >= 3:
                out.setdefault(ln.words[1], []).append(ln)
        s = s.defaults
    return out


def rules(fe: Section, source: str) -> list[Rule]:
    """The rules of ``fe`` that end connections, each judged against ``source``."""
    acls = _acls(fe)
    out: list[Rule] = []
    for ln in fe.lines:
        w = ln.words
        if w[0] not in ("tcp-request", "http-request") or len(w) < 2:
            continue
        at = 2 if w[0] == "tcp-request" and w[1] in ("connection", "content", "session") else 1
        if len(w) <= at or w[at] not in ACTIONS:
            continue
        cond = list(w[at + 1:])
        while cond and cond[0] not in ("if", "unless"):
            cond.pop(0)  # deny_status 403 and the like
        verdict, why, limit = evaluate(cond, acls, source)
        kind = "limit" if limit is not None else "reject"
        out.append(Rule("haproxy", kind, ln.text(), ln.path, ln.line, fe.label, verdict, why, limit))
    return out


def evaluate(cond: list[str], acls: dict[str, list[Line]], source: str) -> tuple[bool | None, str, float | None]:
    """``if|unless`` ACL terms against the source: (matches, why, the limit it compares)."""
    if not cond:
        return True, "unconditional", None
    negate = cond[0] == "unless"
    terms = cond[1:]
    groups: list[list[str]] = [[]]
    i = 0
    while i < len(terms):
        t = terms[i]
        if t in ("||", "or"):
            groups.append([])
        elif t == "{" or t == "!{":
            j = terms.index("}", i) if "}" in terms[i:] else len(terms)
            groups[-1].append(("!" if t == "!{" else "") + "{" + " ".join(terms[i + 1:j]))
            i = j
        else:
            groups[-1].append(t)
        i += 1
    limits: list[float] = []
    whys: list[str] = []
    result: bool | None = False
    for group in groups:
        value: bool | None = True
        for term in group:
            v, why, lim = _term(term, acls, source)
            whys.append(why)
            if lim is not None:
                limits.append(lim)
            value = _and(value, v)
        result = _or(result, value)
    if negate:
        result = None if result is None else not result
    return result, "; ".join(dict.fromkeys(w for w in whys if w)), min(limits) if limits else None


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _term(term: str, acls: dict[str, list[Line]], source: str) -> tuple[bool | None, str, float | None]:
    neg = term.startswith("!")
    term = term.lstrip("!")
    if term.startswith("{"):
        words = term[1:].split()
        v, why, lim = _criterion(words, source)
    elif term in ("TRUE", "always_true"):
        v, why, lim = True, "always true", None
    elif term in ("FALSE", "always_false"):
        v, why, lim = False, "always false", None
    elif term in acls:
        v, why, lim = False, "", None
        parts = [_criterion(list(ln.words[2:]), source) for ln in acls[term]]  # lines of one ACL OR
        for pv, pwhy, plim in parts:
            v = _or(v, pv)
            why = why or f"acl {term}: {pwhy}"
            lim = plim if plim is not None else lim
    else:
        v, why, lim = None, f"{term}: not defined or predefined", None
    if neg and v is not None:
        v = not v
    return v, why, lim


def _criterion(words: list[str], source: str) -> tuple[bool | None, str, float | None]:
    if not words:
        return None, "", None
    fetch, rest = words[0], [w for w in words[1:] if not w.startswith("-")]
    flags = [w for w in words[1:] if w.startswith("-")]
    if fetch == "src" and "-f" not in flags and "-M" not in flags:
        if not source:
            return None, "src: the probe's source address is not known", None
        hits = [address_in(source, v) for v in rest]
        if any(h is True for h in hits):
            return True, f"src {' '.join(rest)} holds the probe's source {source}", None
        if hits and all(h is False for h in hits):
            return False, f"src {' '.join(rest)} does not hold the probe's source {source}", None
        return None, "src: values that are not addresses", None
    if _COUNTER.match(fetch):
        lim = _threshold(rest)
        return None, f"{fetch} {' '.join(rest)}: a per-client counter", lim
    return None, f"{fetch}: decided per request", None


def _threshold(rest: list[str]) -> float | None:
    """How many the comparison lets through: ``gt 10`` allows 10, ``ge 10`` allows 9."""
    if len(rest) >= 2 and rest[0] in ("gt", "ge"):
        try:
            return float(rest[1]) - (1 if rest[0] == "ge" else 0)
        except ValueError:
            return None
    if rest and re.fullmatch(r"\d+:", rest[0]):
        return float(rest[0][:-1]) - 1
    return None
