"""Redaction of secrets (and optionally addresses and host names): a pure pass with a consistent mapping.

The same secret always becomes the same placeholder (``«secret-1»``), so a reader can still
see that two log lines carry the same token. Placeholders use guillemets, which no secret
pattern below accepts inside a value, and every rule leaves a value alone that is already a
placeholder: redacting twice changes nothing.

Over-redaction is preferred to a leak: an unquoted header value runs to the end of the line
or the next quote, a PEM block without its END line is redacted up to the last line that
looks like key material. A PEM block never reaches across a line that is not key material.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import Any

from wizard.model import CheckResult, Session, is_ip
from wizard.model.observed import ResetEvent

PLACEHOLDER = re.compile(r"«(?:secret|ipv4|ipv6|host)-\d+»")
_ONLY_PLACEHOLDERS = re.compile(r"^(?:\s*«(?:secret|ipv4|ipv6|host)-\d+»)+\s*$")

# Key names that make the value beside them a secret: the key is one of these, or ends in
# one after a separator (db_password, X-Auth-Token, aws_secret_access_key).
_SECRET_NAMES = (
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "api_key", "apikey",
    "access_key", "secret_key", "access_token", "refresh_token", "id_token", "client_secret",
    "private_key", "session", "sessionid", "session_id", "auth", "credentials", "signature",
)
_NAME_ALT = "|".join(re.escape(n).replace("_", "[_-]?") for n in sorted(_SECRET_NAMES, key=len, reverse=True))
_KEY = rf"(?:[A-Za-z0-9]+[_.-])*(?:{_NAME_ALT})"

# key=value, key: value, "key": "value", 'key' => 'value', ?key=value&...
_KEY_VALUE = re.compile(
    rf"""(?<![A-Za-z0-9_.-])(?P<q1>["']?)(?P<key>{_KEY})(?P=q1)
        (?P<sep>\s*(?:=>|:=|[:=])\s*)
        (?:(?P<q2>["'])(?P<qval>(?:\\.|(?!(?P=q2)).)*)(?P=q2)
          |(?P<val>[^\s&,;"'<>(){{}}\[\]]+))""",
    re.I | re.X)

_AUTH_HEADER = re.compile(
    r"""(?P<name>\b(?:Proxy-)?Authorization)(?P<q>["']?)(?P<sep>\s*[:=]\s*)(?P<q2>["']?)
        (?:(?P<scheme>[A-Za-z][A-Za-z0-9_.-]*)[ \t]+(?=\S))?
        (?P<cred>[^\r\n"']+)""",
    re.I | re.X)

_COOKIE_HEADER = re.compile(r"(?P<name>\b(?:Set-)?Cookie)(?P<sep>[\"']?\s*:\s*[\"']?)(?P<value>[^\r\n\"']+)", re.I)
# The lookbehinds keep these linear on hostile text: a name is tried only where its run of
# characters begins (a start inside the run would find the same value).
_COOKIE_PAIR = re.compile(r"(?<![^=;\s])(?P<name>[^=;\s]+)=(?P<value>[^;]*)")
_COOKIE_ATTRS = {"path", "domain", "expires", "max-age", "samesite", "secure", "httponly",
                 "priority", "partitioned", "version", "comment"}

# Header names such as X-Api-Key, X-Auth-Token, X-Amz-Security-Token: a value to the end of line.
_CRED_HEADER = re.compile(
    r"""(?P<name>(?<![A-Za-z0-9_-])(?!(?:Proxy-)?Authorization\b)[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*
          -(?:Api-?Key|Key|Token|Secret|Signature|Auth|Session|Password|Credentials?))
        (?P<sep>[ \t]*:[ \t]*)(?P<value>[^\s"'][^\r\n"']*)""",
    re.I | re.X)

_URL_PASSWORD = re.compile(r"(?P<pre>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'<>]*:)(?P<pw>[^\s@/\"'<>]+)(?=@)")

_PEM_BEGIN = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]*?)PRIVATE KEY-----")
# A body line: base64, or one of the headers of an encrypted key (not any "word: text" line,
# which is what most log lines look like).
_PEM_BODY_LINE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$|^(?:Proc-Type|DEK-Info): .*$", re.I)
_PEM_SHORT = 20  # a shorter base64 line without padding counts only right before the END line

_TOKENS = re.compile(
    r"""(?<![A-Za-z0-9])(?:
        (?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}
      | gh[pousr]_[A-Za-z0-9]{30,}
      | github_pat_[A-Za-z0-9_]{22,}
      | xox[abprs]-[A-Za-z0-9-]{10,}
      | [sr]k_live_[A-Za-z0-9]{16,}
      | AIza[0-9A-Za-z_-]{35}
      | eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*
    )(?![A-Za-z0-9_-])""",
    re.X)

# An AWS secret access key has no prefix: 40 base64 characters with upper, lower and digits
# (a git SHA is lower-case hex, so it does not qualify).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])"
                         r"(?=[A-Za-z0-9/+]*[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![0-9A-Za-z:])")


def _is_placeholder(value: str) -> bool:
    return bool(_ONLY_PLACEHOLDERS.match(value))


class Redactor:
    """Replaces secrets (and, if asked, addresses and the given host names) with placeholders.

    One Redactor is used for a whole session so that its mapping is consistent.
    """

    def __init__(self, *, addresses: bool = False, hostnames: Iterable[str] = ()) -> None:
        self.addresses = addresses
        self.mapping: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        names = sorted({h.strip().rstrip(".") for h in hostnames if h and h.strip()}, key=len, reverse=True)
        names = [n for n in names if not is_ip(n)]
        self._hosts = re.compile(
            r"(?<![A-Za-z0-9_.-])(?:" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z0-9_-]|\.[A-Za-z0-9])",
            re.I) if names else None

    def placeholder(self, kind: str, value: str) -> str:
        if _is_placeholder(value):
            return value
        key = (kind, value.lower() if kind in ("host", "ipv6") else value)
        found = self.mapping.get(key)
        if found is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            found = self.mapping[key] = f"«{kind}-{self._counts[kind]}»"
        return found

    def secret(self, value: str) -> str:
        return self.placeholder("secret", value)

    # -- the passes -------------------------------------------------------------------

    def redact(self, text: str) -> str:
        if not text:
            return text
        text = self._pem(text)
        text = _URL_PASSWORD.sub(lambda m: m["pre"] + self._value(m["pw"]), text)
        text = _AUTH_HEADER.sub(self._auth, text)
        text = _COOKIE_HEADER.sub(self._cookie, text)
        text = _CRED_HEADER.sub(lambda m: m["name"] + m["sep"] + self._value(m["value"]), text)
        text = _KEY_VALUE.sub(self._key_value, text)
        text = _TOKENS.sub(lambda m: self.secret(m.group(0)), text)
        text = _AWS_SECRET.sub(lambda m: self.secret(m.group(0)), text)
        if self.addresses:
            text = _IPV4.sub(lambda m: self.placeholder("ipv4", m.group(0)) if is_ip(m.group(0)) else m.group(0), text)
            text = _IPV6.sub(self._ipv6, text)
        if self._hosts is not None:
            text = self._hosts.sub(lambda m: self.placeholder("host", m.group(0).rstrip(".")), text)
        return text

    def _value(self, value: str) -> str:
        stripped = value.rstrip()
        if not stripped or _is_placeholder(stripped) or set(stripped) <= {"*"}:
            return value
        return self.secret(stripped) + value[len(stripped):]

    def _auth(self, m: re.Match[str]) -> str:
        scheme = m["scheme"]
        cred = m["cred"]
        if scheme and _is_placeholder(scheme):
            # "Authorization: «secret-1» rest" cannot come from this pass; keep it whole.
            return m.group(0)
        before_cred = m.group(0)[m.start("scheme") - m.start():m.start("cred") - m.start()] if scheme else ""
        head = m["name"] + m["q"] + m["sep"] + m["q2"] + before_cred
        return head + self._value(cred)

    def _cookie(self, m: re.Match[str]) -> str:
        def pair(p: re.Match[str]) -> str:
            if p["name"].lower() in _COOKIE_ATTRS:
                return p.group(0)
            return p["name"] + "=" + self._value(p["value"])
        return m["name"] + m["sep"] + _COOKIE_PAIR.sub(pair, m["value"])

    def _key_value(self, m: re.Match[str]) -> str:
        if m["q2"] is not None:
            start, end = m.start("qval") - m.start(), m.end("qval") - m.start()
            whole = m.group(0)
            return whole[:start] + self._value(m["qval"]) + whole[end:]
        start = m.start("val") - m.start()
        return m.group(0)[:start] + self._value(m["val"])

    def _ipv6(self, m: re.Match[str]) -> str:
        value = m.group(0)
        if value.count(":") < 2 or value == "::" or not is_ip(value):
            return value
        return self.placeholder("ipv6", str(ipaddress.ip_address(value)))

    def _pem(self, text: str) -> str:
        """Key material after each BEGIN ... PRIVATE KEY line: the contiguous lines that look
        like it, up to the END line of the same kind; a line that is not key material (an
        excerpt's gap, an END of another kind, any log line) ends the block there, so a
        BEGIN never reaches across unrelated text and an unpaired one still takes the
        base64 lines that follow it."""
        out: list[str] = []
        pos = 0
        while True:
            m = _PEM_BEGIN.search(text, pos)
            if m is None:
                out.append(text[pos:])
                return "".join(out)
            out.append(text[pos:m.end()])
            body_end = m.end() + _pem_body(text[m.end():], f"-----END {m['kind']}PRIVATE KEY-----")
            body = text[m.end():body_end]
            core = body.strip()
            if core and not _is_placeholder(core):
                lead = body[:len(body) - len(body.lstrip())]
                trail = body[len(body.rstrip()):]
                body = lead + self.secret(core) + trail
            out.append(body)
            pos = body_end

    # -- structures -------------------------------------------------------------------

    def redact_data(self, value: Any, key: str | None = None) -> Any:
        """Redact every string in a JSON-like value; a value under a secret-named key goes whole."""
        if isinstance(value, str):
            if key is not None and _names_secret(key):
                return self._value(value)
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_data(v, k if isinstance(k, str) else None) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact_data(v) for v in value)
        if key is not None and _names_secret(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return self.secret(str(value))
        return value


def _pem_body(rest: str, end_marker: str) -> int:
    """The length of the key material that follows a BEGIN line (``rest`` starts right
    after it): inline material (a JSON string with \\n escapes) up to the next space or
    quote; else the following lines while they look like key material, stopping before
    the END line of the same kind or the first line that is neither."""
    if rest[:1] not in ("\n", "\r"):
        inline = re.match(r"[^\s\"']*", rest)
        return inline.end() if inline else 0
    length = 0
    lines = _lines_of(rest)  # lazily: a BEGIN near the start of a long text reads a few lines
    line = next(lines, "")
    index = 0
    while line:
        after = next(lines, "")
        core = line.strip()
        if index > 0:
            if core == end_marker or not core or not _PEM_BODY_LINE.match(core):
                break
            short = len(core) < _PEM_SHORT and not core.endswith("=") and ":" not in core
            if short and after.strip() != end_marker:
                break  # a short word on its own line is not key material
        length += len(line)
        line, index = after, index + 1
    return length


def _lines_of(text: str) -> Iterator[str]:
    """``text.splitlines(keepends=True)`` one line at a time ("\\n" and "\\r\\n" ends)."""
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl + 1
        yield text[pos:end]
        pos = end


def _names_secret(key: str) -> bool:
    return bool(re.fullmatch(_KEY, key, re.I))


def redact_text(text: str, redactor: Redactor | None = None) -> str:
    return (redactor or Redactor()).redact(text)


def redact_result(result: CheckResult, redactor: Redactor | None = None) -> CheckResult:
    """A redacted deep copy of one check's result (what a screen shows of it)."""
    out = result.model_copy(deep=True)
    _redact_check(out, redactor or Redactor())
    return out


def _redact_check(check: CheckResult, r: Redactor) -> None:
    check.summary = r.redact(check.summary)
    if check.reason:
        check.reason = r.redact(check.reason)
    if check.fix:
        check.fix = r.redact(check.fix)
    for signal in check.signals:
        signal.fact = r.redact(signal.fact)
    for ev in check.evidence:
        ev.title = r.redact(ev.title)
        ev.text = r.redact(ev.text)
        ev.source = r.redact(ev.source)
        ev.data = r.redact_data(ev.data)


def _redact_event(ev: ResetEvent, r: Redactor) -> ResetEvent:
    """A reset's log lines' secrets; with addresses, its flow's too."""
    ev.logs = [r.redact(line) for line in ev.logs]
    ev.reasons = [r.redact(line) for line in ev.reasons]
    ev.kernel_reason = r.redact(ev.kernel_reason) if ev.kernel_reason else ev.kernel_reason
    ev.states = [r.redact(line) for line in ev.states]
    ev.flow, ev.client, ev.server = r.redact(ev.flow), r.redact(ev.client), r.redact(ev.server)
    return ev


def redact_session(session: Session, redactor: Redactor | None = None) -> Session:
    """A redacted deep copy of the session; the original is not touched."""
    r = redactor or Redactor()
    out = session.model_copy(deep=True)
    for step in out.steps:
        step.notes = r.redact(step.notes)
        for check in step.checks:
            _redact_check(check, r)
    for finding in out.diagnosis:
        finding.summary = r.redact(finding.summary)
        finding.remedy = r.redact(finding.remedy)
        finding.evidence = [r.redact(line) for line in finding.evidence]
        finding.against = [r.redact(line) for line in finding.against]
    out.notes = r.redact(out.notes)
    if out.answers.error:
        out.answers.error = r.redact(out.answers.error)
    if out.answers.payload:
        out.answers.payload = r.redact(out.answers.payload)
    out.answers.logs = [r.redact(p) for p in out.answers.logs]
    if out.observation is not None:
        events = out.observation.events
        if isinstance(events, list):
            for ev in events:
                _redact_event(ev, r)
        else:  # a watch's EventLog: each event redacted as it is read (the export reads them one at a time)
            out.observation.events = events.mapped(lambda ev: _redact_event(ev, r))  # type: ignore[attr-defined]
    if r.addresses or r._hosts is not None:
        out.target.host = r.redact(out.target.host)
        out.target.addresses = [r.redact(a) for a in out.target.addresses]
        out.context.client = r.redact(out.context.client)
        out.context.server = r.redact(out.context.server)
    return out
