"""10,000 generated secrets of 16 shapes planted in realistic log lines, pushed through the
log excerpt check and every output (the Markdown report, the JSON, `report`'s output, the
TUI's export): none reaches any of them, and every line without a secret comes out whole."""

from __future__ import annotations

import io
import json
import random
import string
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import make_ctx
from wizard.diag.logs.checks import LogExcerptCheck, LogExcerptParams
from wizard.hosts.local import LocalHost
from wizard.model import Answers
from wizard.model.session import Context, Session, StepResult, ToolInfo
from wizard.model.target import Target
from wizard.report import render_json, render_report

AT = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC)
PLANTED = 10_000
SEED = 20261122
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
PEM_KINDS = ("RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED ", "")


def _r(rnd: random.Random, n: int, chars: str = ALNUM) -> str:
    return "".join(rnd.choice(chars) for _ in range(n))


def _aws_secret(rnd: random.Random) -> str:
    return _r(rnd, 37, B64) + rnd.choice(string.ascii_uppercase) + rnd.choice(string.ascii_lowercase) + rnd.choice(string.digits)


# shape -> (the secret, the text around it that a log would hold)
def _shapes(rnd: random.Random) -> dict[str, tuple[str, str]]:
    jwt = f"eyJ{_r(rnd, 20)}.eyJ{_r(rnd, 30)}.{_r(rnd, 43)}"
    pw = _r(rnd, 14) + rnd.choice("!#%*")
    return {
        "bearer": (tok := _r(rnd, 32), f"Authorization: Bearer {tok}"),
        "jwt": (jwt, f'token validation failed for "{jwt}"'),
        "basic": (b := _r(rnd, 24) + "==", f"Proxy-Authorization: Basic {b}"),
        "url": (pw, f'upstream: "http://app:{pw}@10.0.3.7:8081/api"'),
        "database": (dbpw := _r(rnd, 18), f"db=postgresql://svc:{dbpw}@db.internal:5432/orders"),
        "cookie": (ck := _r(rnd, 32, string.hexdigits.lower()), f"Cookie: theme=dark; sessionid={ck}"),
        "aws_id": (ak := "AKIA" + _r(rnd, 16, string.ascii_uppercase + string.digits), f"aws key {ak} denied"),
        "aws_secret": (sk := _aws_secret(rnd), f"aws_secret_access_key={sk}"),
        "github": (gh := "ghp_" + _r(rnd, 36), f"git clone https://{gh}@github.com/acme/app.git"),
        "slack": (sl := "xoxb-" + _r(rnd, 12, string.digits) + "-" + _r(rnd, 24), f"slack post with {sl} failed"),
        "google": (gk := "AIza" + _r(rnd, 35, ALNUM + "_-"), f"maps?key={gk}&q=x"),
        "stripe": (st := "sk_live_" + _r(rnd, 24), f"charge via {st} aborted"),
        "password": (p2 := _r(rnd, 12), f"login user=ops password={p2}"),
        "api_key": (k2 := _r(rnd, 28), f'{{"api_key": "{k2}", "retry": 3}}'),
        "header": (h2 := _r(rnd, 30), f"X-Api-Key: {h2}"),
    }


def _found(needles: list[str], text: str) -> list[str]:
    """The needles that occur in ``text``: one Hyperscan pass over it for all of them."""
    import hyperscan

    from wizard.diag.logs.io.hsmatch import _hs_literal

    uniq = sorted(set(needles))
    db = hyperscan.Database()
    db.compile(expressions=[_hs_literal(n.encode()) for n in uniq], ids=list(range(len(uniq))),
               elements=len(uniq), flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(uniq))
    hit: set[int] = set()
    db.scan(text.encode(), match_event_handler=lambda i, *_: hit.add(i))
    return [uniq[i] for i in sorted(hit)]


RESET = "recv() failed (104: Connection reset by peer) while reading response header from upstream"


def _pem(rnd: random.Random, kind: str, end_kind: str) -> tuple[list[str], list[str]]:
    body = [_r(rnd, 64, B64) for _ in range(2)] + [_r(rnd, 28, B64) + "=="]
    if kind == "ENCRYPTED ":
        body = ["Proc-Type: 4,ENCRYPTED", f"DEK-Info: AES-128-CBC,{_r(rnd, 32, '0123456789ABCDEF')}", *body]
    return ([f"-----BEGIN {kind}PRIVATE KEY-----", *body, f"-----END {end_kind}PRIVATE KEY-----"],
            [b for b in body if not b.startswith(("Proc-Type", "DEK-Info"))])


def planted(path: Path) -> tuple[list[str], list[str]]:
    """Writes the log; returns the secrets planted and the lines without one."""
    rnd = random.Random(SEED)
    stamp = f"{AT - timedelta(seconds=3):%Y/%m/%d %H:%M:%S}"
    lines: list[str] = []
    secrets: list[str] = []
    clean: list[str] = []
    n = 0
    while len(secrets) < PLANTED:
        n += 1
        if n % 9 == 0:  # a PEM block after a reset line (its context), kinds sometimes differing
            kind = rnd.choice(PEM_KINDS)
            block, body = _pem(rnd, kind, kind if rnd.random() < 0.8 else rnd.choice(PEM_KINDS))
            lines.append(f"{stamp} [error] 7#0: *{n} {RESET}, key dump follows")
            lines += block
            secrets += body
            continue
        if n % 5 == 0:
            line = f"{stamp} [error] 7#0: *{n} {RESET}, client: 10.0.0.{n % 250}, request: \"GET /ok/{n}\""
            lines.append(line)
            clean.append(line)
            continue
        shapes = _shapes(rnd)
        picked = rnd.sample(sorted(shapes), 2)
        text = "; ".join(shapes[p][1] for p in picked)
        lines.append(f"{stamp} [error] 7#0: *{n} {RESET}, {text}")
        secrets += [shapes[p][0] for p in picked]
    path.write_text("\n".join(lines) + "\n")
    return secrets, clean


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], list[str], list[str], str]:
    import asyncio

    tmp = tmp_path_factory.mktemp("secrets")
    log = tmp / "error.log"
    secrets, clean = planted(log)
    ctx = make_ctx(answers=Answers(at=AT, logs=[str(log)], window_s=120), server=LocalHost())
    result = asyncio.run(LogExcerptCheck().run(ctx, LogExcerptParams(context_lines=6, max_matches=10_000)))
    result = result.model_copy(update={"id": "logs.excerpt", "title": "Server log excerpts"})
    quoted = "\n".join(e.text for e in result.evidence)
    session = Session(tool=ToolInfo(version="0.1.0"), started_at=AT, finished_at=AT,
                      target=Target(host="127.0.0.1", port=8081, addresses=["127.0.0.1"]),
                      context=Context(client="local", server="local"),
                      answers=Answers(at=AT, logs=[str(log)]),
                      steps=[StepResult(id="server-logs", checks=[result])])
    saved = tmp / "session.json"
    saved.write_text(session.model_dump_json(by_alias=True))  # as --no-redact saves it
    from wizard.cli.main import main
    from wizard.ui.export import render_markdown, render_session_json

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["report", str(saved)])
    assert code == 0
    return ({"report": render_report(session), "json": render_json(session), "report-command": out.getvalue(),
             "tui-markdown": render_markdown(session), "tui-json": render_session_json(session)},
            secrets, clean, quoted)


def test_the_secrets_really_are_in_the_evidence_before_redaction(outputs) -> None:
    _, secrets, _, quoted = outputs
    assert len(secrets) >= PLANTED
    assert len(_found(secrets, quoted)) == len(secrets)  # the test could fail


@pytest.mark.parametrize("output", ["report", "json", "report-command", "tui-markdown", "tui-json"])
def test_no_planted_secret_reaches_an_output(outputs, output: str) -> None:
    texts, secrets, _, _ = outputs
    text = texts[output]
    if output.endswith("json"):
        text += "\n" + json.dumps(json.loads(text), ensure_ascii=False)  # escapes undone
    leaked = _found(secrets, text)
    assert leaked == [], f"{len(leaked)} of {len(secrets)} leaked into {output}: {leaked[:5]}"


@pytest.mark.parametrize("output", ["report", "report-command", "tui-markdown"])
def test_every_line_without_a_secret_survives(outputs, output: str) -> None:
    texts, _, clean, _ = outputs
    shown = {line.strip() for line in texts[output].splitlines()}
    lost = [line for line in clean if line not in shown and line not in texts[output]]
    assert lost == [], f"{len(lost)} of {len(clean)} lines without a secret were changed: {lost[:3]}"


def test_a_pem_block_pairs_only_within_its_lines_and_its_kind() -> None:
    from wizard.redact import Redactor

    body = ["MIIEowIBAAKCAQEArwlgPRIVATEKEYBODYLINEONExxxxxxxxxxxxxxxxxxxxxx", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789abcdefghij=="]
    other = "2026/11/22 03:48:08 [error] 7#0: *9 recv() failed (104: Connection reset by peer)"
    # kinds differ: the body is still taken, the END line and what follows stay
    text = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *body, "-----END EC PRIVATE KEY-----", other])
    out = Redactor().redact(text)
    assert not any(b in out for b in body) and other in out and "-----END EC PRIVATE KEY-----" in out
    # an excerpt's gap or an unrelated line ends the block: the lines after it are not secret
    lines = [other.replace("*9", f"*{i}") for i in range(50)]
    text = "\n".join(["-----BEGIN PRIVATE KEY-----", body[0], "...", *lines, "-----END PRIVATE KEY-----"])
    out = Redactor().redact(text)
    assert body[0] not in out and all(line in out for line in lines)


@pytest.mark.parametrize("unit", ["a.", "a-", "x", "a=", "Ab1/", "a;b=", "a:", "%2F"])
def test_redaction_grows_linearly_on_adversarial_lines(unit: str) -> None:
    import time

    from wizard.redact import Redactor

    def took(text: str) -> float:
        # CPU time of this process: other processes on a busy machine do not inflate it.
        t = time.process_time()
        Redactor().redact(text)
        return time.process_time() - t

    for prefix in ("recv() failed ", "Cookie: ", "Authorization: Bearer ", "password="):
        small_text, big_text = (prefix + unit * (n // len(unit)) for n in (16 << 10, 256 << 10))
        small = big = float("inf")
        for _ in range(3):  # interleaved, best of three each
            small, big = min(small, took(small_text)), min(big, took(big_text))
        assert big <= 48 * small + 0.1, (prefix, small, big)  # 16x the text; quadratic is 256x
