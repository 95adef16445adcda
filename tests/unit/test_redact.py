"""Redaction: planted secrets of every kind never survive; redacting twice changes nothing."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wizard.model import (
    Answers,
    CheckResult,
    Context,
    Evidence,
    Finding,
    Session,
    Signal,
    Status,
    StepResult,
    Target,
    ToolInfo,
)
from wizard.redact import Redactor, redact_session

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def _s(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size)


def _between(alphabet: str, lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=lo, max_size=hi)


# A secret value with enough entropy that it cannot occur by chance in the filler text.
# (A letter and a digit, so that it cannot coincide with a filler word or a user name.)
VALUE = _between(ALNUM + "!#$%*+-./_~", 8, 30).filter(
    lambda v: any(c.isalpha() for c in v) and any(c.isdigit() for c in v))

# Each strategy yields (text containing the secret, the secret itself).
SECRETS: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    "bearer": VALUE.map(lambda v: (f"Authorization: Bearer {v}", v)),
    "basic": _between(ALNUM + "+/", 8, 40).map(lambda v: (f"authorization: Basic {v}==", v + "==")),
    "any-scheme": st.tuples(st.sampled_from(["Token", "Digest", "AWS4-HMAC-SHA256", "Negotiate"]), VALUE)
        .map(lambda p: (f"Authorization: {p[0]} {p[1]}", p[1])),
    "bare-auth": VALUE.map(lambda v: (f'curl -H "Authorization: {v}" http://x', v)),
    "proxy-auth": VALUE.map(lambda v: (f"Proxy-Authorization: Basic {v}", v)),
    "cookie": VALUE.map(lambda v: (f"Cookie: theme=dark; sid={v}", v)),
    "set-cookie": VALUE.map(lambda v: (f"Set-Cookie: session_id={v}; Path=/; HttpOnly", v)),
    "api-key-header": st.tuples(st.sampled_from(["X-Api-Key", "X-Auth-Token", "X-Amz-Security-Token", "Api-Key"]), VALUE)
        .map(lambda p: (f"{p[0]}: {p[1]}", p[1])),
    "url-password": st.tuples(st.sampled_from(["", "app", "admin"]), _between(ALNUM + "!$%*+-._~", 6, 20))
        .filter(lambda p: any(c.isdigit() for c in p[1]) and any(c.isalpha() for c in p[1]))
        .map(lambda p: (f"postgres://{p[0]}:{p[1]}@db.internal:5432/app", p[1])),
    "key-value": st.tuples(st.sampled_from(["password", "passwd", "pwd", "secret", "token", "api_key", "apikey",
                                            "access_token", "refresh_token", "client_secret", "private_key",
                                            "session", "sessionid", "auth", "DB_PASSWORD", "x-auth-token"]),
                           st.sampled_from(["=", ": ", " = ", ":"]), VALUE)
        .map(lambda p: (f"{p[0]}{p[1]}{p[2]}", p[2])),
    "json": st.tuples(st.sampled_from(["password", "token", "client_secret", "apiKey", "sessionId"]), VALUE)
        .map(lambda p: (f'{{"{p[0]}": "{p[1]}", "n": 1}}', p[1])),
    "quoted-spaces": VALUE.map(lambda v: (f"password='{v} {v[::-1]}'", f"{v} {v[::-1]}")),
    "query": st.tuples(st.sampled_from(["access_token", "token", "api_key", "sessionid"]), _between(ALNUM + "-._~", 8, 30))
        .map(lambda p: (f"GET /v1/items?page=2&{p[0]}={p[1]}&sort=asc HTTP/1.1", p[1])),
    "aws-access": _s(string.ascii_uppercase + string.digits, 16).map(lambda v: ("key AKIA" + v + " used", "AKIA" + v)),
    "aws-sts": _s(string.ascii_uppercase + string.digits, 16).map(lambda v: ("ASIA" + v, "ASIA" + v)),
    "aws-secret": _s(ALNUM + "/+", 37).map(lambda v: ("aws: wJ7" + v, "wJ7" + v)),
    "github": st.tuples(st.sampled_from(["ghp_", "gho_"]), _s(ALNUM, 36)).map(lambda p: ("pushed with " + "".join(p), "".join(p))),
    "github-pat": _s(ALNUM + "_", 60).map(lambda v: ("github_pat_" + v, "github_pat_" + v)),
    "slack": st.tuples(st.sampled_from("abpr"), _between(ALNUM + "-", 10, 40))
        .map(lambda p: (f"hook xox{p[0]}-{p[1]} ok", f"xox{p[0]}-{p[1]}")),
    "stripe": _between(ALNUM, 16, 40).map(lambda v: (f"charge with sk_live_{v}", "sk_live_" + v)),
    "google": _s(ALNUM + "_-", 35).map(lambda v: (f"key=AIza{v}", "AIza" + v)),
    "jwt": st.tuples(_between(B64URL, 8, 40), _between(B64URL, 8, 80), _between(B64URL, 0, 43))
        .map(lambda p: (f"jwt eyJ{p[0]}.eyJ{p[1]}.{p[2]} end", f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}")),
    "pem": st.lists(_s(ALNUM + "+/", 64), min_size=1, max_size=4).map(
        lambda lines: ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----",
                       "\n".join(lines))),
    "pem-cut": st.lists(_s(ALNUM + "+/", 64), min_size=1, max_size=4).map(
        lambda lines: ("-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines), "\n".join(lines))),
}

# Log-ish filler with no secret-shaped words: timestamps, levels, paths, counters.
WORDS = ["GET", "POST", "/health", "200", "503", "upstream", "closed", "connection", "reset", "by", "peer",
         "2026-11-22T03:48:08Z", "Nov", "22", "03:48:08", "nginx[123]:", "worker", "accept4()", "failed",
         "(104:", "Connection", "reset)", "client:", "request:", "HTTP/1.1", "pid=4312", "fd=12", "ms",
         "level=info", "msg=done", "user=bob", "bytes=512", "Recv-Q", "-", "|", "```", "#", "*",
         "ERROR", "WARN", "\t", "ECONNRESET", "read", "tcp", "->"]
FILLER = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)
KIND = st.sampled_from(sorted(SECRETS))


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, list[str]]:
    lines, secrets = [], []
    for _ in range(draw(st.integers(1, 4))):
        text, secret = draw(SECRETS[draw(KIND)])
        lines.append(f"{draw(FILLER)} {text}\n{draw(FILLER)}")
        secrets.append(secret)
    return "\n".join(lines), secrets


def _pieces(secret: str) -> list[str]:
    # A PEM body is checked line by line: no line of key material may survive.
    return [p for p in secret.split("\n") if p] if "\n" in secret else [secret]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(planted())
def test_no_planted_secret_of_any_kind_survives_in_log_text(case: tuple[str, list[str]]) -> None:
    text, secrets = case
    out = Redactor().redact(text)
    for secret in secrets:
        for piece in _pieces(secret):
            assert piece not in out, (piece, out)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(planted(), st.booleans())
def test_redacting_twice_changes_nothing(case: tuple[str, list[str]], addresses: bool) -> None:
    r = Redactor(addresses=addresses, hostnames=["db.internal"])
    once = r.redact(case[0])
    assert r.redact(once) == once
    assert Redactor(addresses=addresses, hostnames=["db.internal"]).redact(once) == once


@settings(max_examples=300)
@given(st.lists(FILLER, min_size=1, max_size=5).map("\n".join))
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert Redactor().redact(text) == text


@given(st.text(max_size=200))
def test_arbitrary_text_is_idempotent_and_never_raises(text: str) -> None:
    r = Redactor(addresses=True)
    once = r.redact(text)
    assert r.redact(once) == once


def test_same_secret_gets_same_placeholder_and_different_secrets_differ() -> None:
    r = Redactor()
    a = r.redact("Authorization: Bearer tok-AAAA1111")
    b = r.redact("retry with token=tok-AAAA1111")
    c = r.redact("token=tok-BBBB2222")
    assert a == "Authorization: Bearer «secret-1»"
    assert b == "retry with token=«secret-1»"
    assert c == "token=«secret-2»"


def test_header_scheme_cookie_names_and_attributes_stay_readable() -> None:
    r = Redactor()
    assert r.redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic «secret-1»"
    assert r.redact("Set-Cookie: sid=abc123xyz; Path=/; HttpOnly") == "Set-Cookie: sid=«secret-2»; Path=/; HttpOnly"
    assert r.redact("redis://:s3cr3t@cache:6379/0") == "redis://:«secret-3»@cache:6379/0"


def test_words_that_only_look_like_secret_keys_are_left_alone() -> None:
    text = "Failed password for root from port 22; token_count=5 author=bob keepalive_timeout 65s"
    assert Redactor().redact(text) == text


def test_a_git_sha_is_not_taken_for_an_aws_secret() -> None:
    text = "commit 3e83d2c42c4c955d98b8f40c2f2cc6937dc1933b"
    assert Redactor().redact(text) == text


def test_addresses_are_mapped_only_when_asked_ipv4_and_ipv6_alike() -> None:
    text = "connect 192.0.2.7:443 and [2001:db8::1]:443 and 2001:DB8:0::1 at 03:48:08 mac aa:bb:cc:dd:ee:ff v1.2.3"
    assert Redactor().redact(text) == text
    out = Redactor(addresses=True).redact(text)
    assert out == "connect «ipv4-1»:443 and [«ipv6-1»]:443 and «ipv6-1» at 03:48:08 mac aa:bb:cc:dd:ee:ff v1.2.3"


def test_given_hostnames_are_replaced_as_whole_names_only() -> None:
    r = Redactor(hostnames=["api.example.com"])
    out = r.redact("GET https://api.example.com/x from API.example.com. not sub.api.example.com.evil or api.example.community")
    assert out == "GET https://«host-1»/x from «host-1». not sub.api.example.com.evil or api.example.community"


def _session() -> Session:
    t0 = datetime(2026, 11, 22, 3, 48, 0, tzinfo=UTC)
    log = "03:48:07 upstream sent Authorization: Bearer tok-SECRET-1\n03:48:08 password=hunter2hunter2"
    check = CheckResult(
        id="logs.excerpt", title="Log excerpt", status=Status.FAIL, summary="saw token=tok-SECRET-1 in a line",
        evidence=[Evidence(kind="log", title="api_key=AKIAABCDEFGHIJKLMNOP", source="/var/log/app.log", text=log,
                           data={"matches": [{"line": "password=hunter2hunter2"}], "password": "hunter2hunter2",
                                 "count": 2, "peer": "192.0.2.7"})],
        signals=[Signal(id="log.reset_line", fact="token=tok-SECRET-1 seen")], started_at=t0)
    return Session(
        tool=ToolInfo(version="0.1.0"), started_at=t0, target=Target(host="api.example.com", port=443, addresses=["192.0.2.7"]),
        context=Context(client="laptop", server="ssh:admin@api.example.com"),
        answers=Answers(error="curl: (56) ... Authorization: Bearer tok-SECRET-1", payload="GET /?token=tok-SECRET-1"),
        steps=[StepResult(id="server-logs", checks=[check], notes="db password: hunter2hunter2 ok")],
        diagnosis=[Finding(cause="abortive-close", confidence=0.8, summary="s", evidence=["logs.excerpt: token=tok-SECRET-1"],
                           against=["x: secret=hunter2hunter2"])],
        notes="client_secret: shh-its-secret")


def test_redact_session_reaches_every_string_and_keeps_one_mapping() -> None:
    session = _session()
    out = redact_session(session, Redactor())
    dumped = out.to_json()
    for secret in ("tok-SECRET-1", "hunter2hunter2", "AKIAABCDEFGHIJKLMNOP", "shh-its-secret"):
        assert secret not in dumped
    # One mapping for the whole session: the token has one placeholder everywhere.
    token_ph = out.answers.payload.split("token=")[1]
    assert out.steps[0].checks[0].summary == f"saw token={token_ph} in a line"
    assert token_ph in out.diagnosis[0].evidence[0]
    assert token_ph in out.steps[0].checks[0].evidence[0].text
    assert out.steps[0].checks[0].evidence[0].data["count"] == 2
    # The original is untouched, and addresses stay unless asked.
    assert "tok-SECRET-1" in session.to_json()
    assert "192.0.2.7" in dumped
    assert Session.from_json(dumped) == out


def test_redact_session_with_addresses_maps_target_and_evidence_consistently() -> None:
    out = redact_session(_session(), Redactor(addresses=True, hostnames=["api.example.com", "laptop"]))
    dumped = out.to_json()
    assert "192.0.2.7" not in dumped and "api.example.com" not in dumped and "laptop" not in dumped
    assert out.target.addresses == ["«ipv4-1»"]
    assert out.steps[0].checks[0].evidence[0].data["peer"] == "«ipv4-1»"
    assert out.target.host == "«host-1»" and out.context.server == "ssh:admin@«host-1»"
