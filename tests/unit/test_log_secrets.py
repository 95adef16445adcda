"""Real log excerpts with planted secrets, escapes, fences and binary bytes pushed through
logs.excerpt and then render_report / render_json: nothing secret or raw reaches a report."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import make_ctx
from wizard.diag.logs.checks import LogExcerptCheck, LogExcerptParams
from wizard.hosts.local import LocalHost
from wizard.model import Answers, Status
from wizard.model.session import Context, Session, StepResult, ToolInfo
from wizard.model.target import Target
from wizard.report import render_json, render_report

AT = datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC)

SECRETS = {
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyd2xnIn0.c2VjcmV0LXNpZ25hdHVyZQ",
    "url_password": "hunter2-rwlg-Pw",
    "api_key": "sk_live_51RwlgAbCdEfGhIjKlMnOpQr",
    "cookie": "sessid=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "kv_password": "S3cr3t!rwlg",
    "aws": "AKIAIOSFODNN7RWLGXYZ",
}


def planted_log(path: Path) -> None:
    t = AT - timedelta(seconds=5)
    s = SECRETS
    lines = [
        f"{t:%Y/%m/%d %H:%M:%S} [info] 12#0: *1 GET /x HTTP/1.1 Authorization: Bearer {s['bearer']}",
        f"{t:%Y/%m/%d %H:%M:%S} [error] 12#0: *2 recv() failed (104: Connection reset by peer) while "
        f"reading response header from upstream, upstream: \"http://app:{s['url_password']}@127.0.0.1:8081/\"",
        f"{t:%Y/%m/%d %H:%M:%S} [info] 12#0: *3 Cookie: {s['cookie']}; api_key={s['api_key']}",
        f"{t:%Y/%m/%d %H:%M:%S} [error] 12#0: *4 connect() failed (104: Connection reset by peer) "
        f"password={s['kv_password']} aws_access_key_id={s['aws']}",
        f"{t:%Y/%m/%d %H:%M:%S} [error] 12#0: *5 \x1b]0;pwned\x07\x1b[31mred\x1b[0m recv() failed "
        "(104: Connection reset by peer)",
        "```",
        "~~~~",
        f"{t:%Y/%m/%d %H:%M:%S} [error] 12#0: *6 recv() failed (104: Connection reset by peer) ````",
    ]
    data = "\n".join(lines).encode() + b"\n"
    data += f"{t:%Y/%m/%d %H:%M:%S} [error] 12#0: *7 recv() failed (104: Connection reset by peer) ".encode()
    data += b"\xff\xfe\x00\x01binary\x80\n"
    data += b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEArwlgPRIVATEKEYBODY\n-----END RSA PRIVATE KEY-----\n"
    path.write_bytes(data)


@pytest.fixture()
async def session(tmp_path: Path) -> Session:
    log = tmp_path / "error.log"
    planted_log(log)
    ctx = make_ctx(answers=Answers(at=AT, logs=[str(log)], window_s=120), server=LocalHost())
    result = await LogExcerptCheck().run(ctx, LogExcerptParams(context_lines=5))
    result = result.model_copy(update={"id": "logs.excerpt", "title": "Server log excerpts"})
    assert result.status == Status.WARN  # the excerpt really holds the lines with the secrets
    quoted = "\n".join(e.text for e in result.evidence)
    assert SECRETS["url_password"] in quoted and SECRETS["bearer"] in quoted
    return Session(tool=ToolInfo(version="0.1.0"), started_at=AT, finished_at=AT,
                   target=Target(host="127.0.0.1", port=8081, addresses=["127.0.0.1"]),
                   context=Context(client="local", server="local"),
                   answers=Answers(at=AT, logs=[str(log)],
                                   error=f"curl: (56) Recv failure: Connection reset by peer "
                                         f"Authorization: Bearer {SECRETS['bearer']}"),
                   steps=[StepResult(id="server-logs", checks=[result])])


@pytest.mark.parametrize("name", sorted(SECRETS))
async def test_planted_secret_never_reaches_the_markdown_report(session: Session, name: str) -> None:
    assert SECRETS[name] not in render_report(session)


@pytest.mark.parametrize("name", sorted(SECRETS))
async def test_planted_secret_never_reaches_the_json_export(session: Session, name: str) -> None:
    assert SECRETS[name] not in render_json(session)


async def test_private_key_body_never_reaches_a_report(session: Session) -> None:
    assert "PRIVATEKEYBODY" not in render_report(session)
    assert "PRIVATEKEYBODY" not in render_json(session)


async def test_terminal_escapes_are_stripped_from_the_report(session: Session) -> None:
    md = render_report(session)
    assert "\x1b" not in md and "\x07" not in md
    assert "pwned" not in md or "]0;pwned" not in md


async def test_no_log_line_can_close_the_fence_around_it(session: Session) -> None:
    md = render_report(session)
    lines = md.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(`{3,}|~{3,})\S*$", line)
        if not m or "12#0: *1 GET" not in "\n".join(lines[i + 1:i + 10]):
            continue
        fence = m.group(1)
        closing = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        body = []
        for later in lines[i + 1:]:
            if closing.match(later):  # CommonMark's rule for what closes this fence
                break
            body.append(later)
        # every planted fence-like line is inside this block, not after its end
        assert any(b.strip() == "```" for b in body) and any(b.strip() == "~~~~" for b in body)
        break
    else:
        pytest.fail("no fenced block with the log excerpt in the report")


async def test_binary_bytes_are_shown_safely(session: Session) -> None:
    md = render_report(session)
    assert "\x00" not in md and "\x01" not in md
    assert "binary" in md  # the line is still shown
