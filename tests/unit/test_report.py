"""The Markdown report and the JSON export: goldens for three sessions, plus the properties that matter.

Regenerate the goldens with ``UPDATE_GOLDEN=1 pytest tests/unit/test_report.py`` and read the diff.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from wizard.analysis import decide, rank
from wizard.engine.discovery import load
from wizard.model import (
    Answers,
    CheckResult,
    CloseCall,
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
from wizard.report import redacted, render_json, render_markdown, render_report
from wizard.report.sanitize import clean, code, fenced, inline
from wizard.report.text import LINE_HEAD, LONG_LINE, sha256

GOLDEN = Path(__file__).parent / "golden"
CHECKLIST = load()
T0 = datetime(2026, 11, 22, 3, 48, 30, tzinfo=UTC)
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNlY3JldA"
DESCRIBE = {
    "icmp.ping": "whether the host answers ICMP echo at all",
    "fw.ruleset": "which firewall rules match the port, with their verdict",
    "packets.capture": "which side sent the RST and with which TTL",
}


def _at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def _check(cid: str, title: str, status: Status, summary: str, ms: int, dur: int, **kw) -> CheckResult:
    return CheckResult(id=cid, title=title, status=status, summary=summary, started_at=_at(ms), duration_ms=dur, **kw)


def _step(sid: str, title: str, *checks: CheckResult, notes: str = "") -> StepResult:
    step = StepResult(id=sid, title=title, checks=list(checks), notes=notes)
    step.refresh_status()
    return step


def analysed(session: Session) -> Session:
    """``session`` as the analysis leaves it: its findings marked and ordered, its verdict decided."""
    session.diagnosis = rank(session.diagnosis, CHECKLIST.threshold)
    session.verdict = decide(CHECKLIST, session)
    return session


def port_closed() -> Session:
    connect = _check(
        "tcp.connect", "TCP connect to every address", Status.FAIL, "every address refused the connection", 120, 3,
        evidence=[Evidence(kind="table", title="connect outcomes", source="connect() to 127.0.0.1, ::1 port 9",
                           data={"rows": [{"address": "127.0.0.1", "outcome": "refused", "ms": 0.1},
                                          {"address": "::1", "outcome": "refused", "ms": 0.1}]})],
        signals=[Signal(id="connect.refused", fact="127.0.0.1 refused the handshake (RST to SYN)")])
    listen = _check(
        "listen.sockets", "Listeners on the port", Status.FAIL, "nothing listens on port 9", 400, 12,
        evidence=[Evidence(kind="command", title="no listening socket on port 9", source="ss -ltnpH sport = :9",
                           text="")],
        signals=[Signal(id="listener.absent", fact="no socket listens on port 9")])
    return analysed(Session(
        tool=ToolInfo(version="0.1.0"), started_at=T0, finished_at=_at(900),
        target=Target(host="localhost", port=9, addresses=["127.0.0.1", "::1"]),
        context=Context(client="lab-client", server="local"),
        answers=Answers(error="curl: (7) Failed to connect to localhost port 9: Connection refused", side="client"),
        steps=[_step("identify", "Identify the affected application",
                     _check("error.classify", "Classify the error text", Status.WARN,
                            "curl 7: connection refused, not a reset of an open connection", 0, 1)),
               _step("connectivity", "Examine network connectivity", connect),
               _step("app-errors", "Investigate application-level errors", listen)],
        diagnosis=[Finding(cause="port-closed", title="Nothing listens on the port", confidence=0.971,
                           summary="Connections to localhost:9 are refused: no process listens on the port.",
                           evidence=["listen.sockets: no socket listens on port 9",
                                     "tcp.connect: 127.0.0.1 refused the handshake (RST to SYN)"],
                           remedy="Start the service, or point the client at the right port.")]))


def abortive_close() -> Session:
    log = ("2026-11-22T03:48:07Z app[311]: GET /upload Authorization: Bearer " + BEARER + "\n"
           "2026-11-22T03:48:08Z app[311]: \x1b[31mERROR\x1b[0m closing socket with SO_LINGER 0\n"
           "```\n"
           "2026-11-22T03:48:08Z nginx: recv() failed (104: Connection reset by peer) | upstream")
    logs = _check(
        "logs.excerpt", "Server log excerpt", Status.FAIL, "2 reset lines around 03:48:08", 0, 40,
        evidence=[Evidence(kind="log", title="/var/log/app.log: 1 reset line, 1 abort line", source="/var/log/app.log",
                           text=log, highlight=[1, 3], data={"first_line": 1204, "left_out": 0})],
        signals=[Signal(id="log.abort_line", fact="app logged SO_LINGER 0 close at 03:48:08")])
    counters = _check(
        "kernel.counters", "Kernel TCP counters", Status.FAIL, "TCPAbortOnClose moved by 1 during the probe", 60, 210,
        evidence=[Evidence(kind="counters", title="counters moved: TCPAbortOnClose +1", source="/proc/net/snmp, /proc/net/netstat",
                           data={"TcpExt.TCPAbortOnClose": {"before": 4, "after": 5, "delta": 1},
                                 "Tcp.OutRsts": {"before": 17, "after": 18, "delta": 1},
                                 "TcpExt.ListenOverflows": {"before": 0, "after": 0, "delta": 0},
                                 "probe": {"kind": "reset", "stage": "after-send", "ms": 1.2}})],
        signals=[Signal(id="server.abort_on_close", fact="TCPAbortOnClose +1 during the probe")])
    ladder = _check(
        "tcp.exchange", "Payload probe", Status.FAIL, "the server reset the connection 1.2 ms after the request", 300, 5,
        evidence=[Evidence(kind="ladder", title="the probe connection", source="connect() + send to [::1]:8080",
                           data={"lanes": ["client", "server"], "events": [
                               {"ms": 0.0, "src": "client", "dst": "server", "label": "SYN"},
                               {"ms": 0.1, "src": "server", "dst": "client", "label": "SYN-ACK"},
                               {"ms": 0.1, "src": "client", "dst": "server", "label": "ACK"},
                               {"ms": 0.3, "src": "client", "dst": "server", "label": "GET / HTTP/1.1; 78 bytes"},
                               {"ms": 1.2, "src": "server", "dst": "client", "label": "RST, ACK",
                                "note": "no FIN first: an abortive close"}]})],
        signals=[Signal(id="probe.reset_after_data", fact="the server reset the connection 1.2 ms after the request")])
    return analysed(Session(
        tool=ToolInfo(version="0.1.0"), started_at=T0, finished_at=_at(1200),
        target=Target(host="::1", port=8080, addresses=["::1"]),
        context=Context(client="lab-client", server="netns:rwrp-srv"),
        answers=Answers(error="requests.exceptions.ConnectionError: ('Connection aborted.', "
                              "ConnectionResetError(104, 'Connection reset by peer'))",
                        at=datetime(2026, 11, 22, 3, 48, 8, tzinfo=UTC), window_s=600,
                        logs=["/var/log/app.log"], side="client"),
        steps=[_step("server-logs", "Check server logs", logs,
                     notes="Ops: the upload handler was deployed at 03:40.\nToken in the ticket was token=abc123def456"),
               _step("app-errors", "Investigate application-level errors", counters),
               _step("handshake", "Analyze the TCP handshake", ladder)],
        diagnosis=[Finding(cause="abortive-close", title="The server application aborts connections", confidence=0.93,
                           summary="The server application closed with SO_LINGER 0 (an abortive close).",
                           evidence=["kernel.counters: TCPAbortOnClose +1 during the probe",
                                     "logs.excerpt: app logged SO_LINGER 0 close at 03:48:08"],
                           remedy="Find the code path that sets SO_LINGER 0; close gracefully instead."),
                   Finding(cause="unread-data-close", title="The server closes with unread data", confidence=0.41,
                           summary="The server closed with unread data.", evidence=["kernel.counters: TCPAbortOnClose +1 during the probe"],
                           against=["logs.excerpt: app logged SO_LINGER 0 close at 03:48:08"],
                           remedy="Drain the request before closing.")]))


def skipped_close_call() -> Session:
    ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n" \
              "\t\ttcp dport 443 limit rate over 2/second reject with tcp reset\n\t\ttcp dport 443 reject with tcp reset\n\t}\n}"
    fw = _check("fw.ruleset", "Firewall rules for the port", Status.SKIP, "skipped: needs root in the server context", 10, 0,
                reason="needs root in the server context ssh:admin@web1.example.net", fix="sudo reset-wizard diagnose ...")
    fw_rules = _check(
        "fw.match", "Rules matching the port", Status.FAIL, "2 rules reject tcp/443", 12, 30,
        evidence=[Evidence(kind="rules", title="matching rules", source="nft -j list ruleset",
                           text="tcp dport 443 limit rate over 2/second reject with tcp reset\ntcp dport 443 reject with tcp reset"),
                  Evidence(kind="rules", title="the whole ruleset", source="nft list ruleset", text=ruleset,
                           data={"whole": True})])
    ping = _check("icmp.ping", "ICMP echo", Status.SKIP, "skipped: ping is not installed", 20, 0,
                  reason="ping is not installed in local", fix="apt install iputils-ping")
    broken = _check("packets.capture", "Packet capture", Status.ERROR, "failed unexpectedly: KeyError: 'ttl'", 25, 3,
                    reason="'ttl'", evidence=[Evidence(kind="traceback", title="traceback",
                                                       text="Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'ttl'")])
    return analysed(Session(
        tool=ToolInfo(version="0.1.0"), started_at=T0, finished_at=_at(2000), interrupted=True,
        target=Target(host="web1.example.net", port=443, addresses=["192.0.2.10", "2001:db8::10"], scheme="https", path="/api"),
        context=Context(client="laptop", server="ssh:admin@web1.example.net"),
        answers=Answers(error="curl: (56) Recv failure: Connection reset by peer", attempts=20,
                        payload="GET /api?api_key=AIzaSyDd8f7A-0_abcdefghijklmnopqrstuvw HTTP/1.1\r\nHost: web1\r\n\r\n"),
        steps=[_step("connectivity", "Examine network connectivity", ping),
               _step("firewall", "Review firewall and security settings", fw, fw_rules),
               _step("handshake", "Analyze the TCP handshake", broken)],
        diagnosis=[Finding(cause="firewall-reject", title="A firewall rule on the server rejects the connection", confidence=0.74,
                           summary="A rule rejects tcp/443 with a reset.", evidence=["fw.match: tcp dport 443 reject with tcp reset"],
                           remedy="Quote the rule below to whoever owns the firewall."),
                   Finding(cause="rate-limit", title="Connection-rate limiting", confidence=0.7,
                           summary="A rate limit rejects bursts.", evidence=["fw.match: limit rate over 2/second"],
                           remedy="Raise the limit or back off.")],
        close_call=CloseCall(causes=("firewall-reject", "rate-limit"),
                             separate_with="tcp.burst: slow attempts pass under a rate limit, never under a plain reject"),
        notes="Escalated to netops | see INC-4411"))


SESSIONS = {"port-closed": port_closed, "abortive-close": abortive_close, "skipped-close-call": skipped_close_call}


def _render(session: Session) -> str:
    return render_markdown(redacted(session), describe=DESCRIBE.get)


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_report_matches_golden(name: str) -> None:
    text = _render(SESSIONS[name]())
    path = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden {path}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_rendering_is_deterministic_and_pure() -> None:
    session = abortive_close()
    before = session.to_json()
    assert _render(session) == _render(session)
    assert session.to_json() == before


FIRST_SCREEN = ("## Summary", "## Impact and detection", "## Timeline", "## Root cause", "## Action items",
                "## Not checked")


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_the_postmortem_sections_come_in_order_and_the_evidence_after_them(name: str) -> None:
    text = _render(SESSIONS[name]())
    order = [text.index(h) for h in (*FIRST_SCREEN, "## Evidence by step", "## Ranked causes", "## Appendix")]
    assert order == sorted(order)
    assert "**Verdict:" in text[text.index("## Root cause"):text.index("## Action items")]
    assert "<details>" not in text[:text.index("## Evidence by step")]


def test_verdict_names_top_cause_with_confidence_and_decisive_evidence() -> None:
    first = _render(port_closed()).split("<details>")[0]
    assert "**Verdict: `port-closed` — Nothing listens on the port** (confidence 97 %)" in first
    assert "listen.sockets: no socket listens on port 9 (from `ss -ltnpH sport = :9`)" in first


def test_close_call_and_interruption_are_said_plainly() -> None:
    summary = _render(skipped_close_call()).split("<details>")[0]
    assert "The run was interrupted" in summary
    assert "**Close call:** `firewall-reject` (74 %) and `rate-limit` (70 %)" in summary
    assert "tcp.burst: slow attempts pass" in summary


def test_no_cause_found_is_the_verdict_when_nothing_reaches_the_threshold() -> None:
    session = port_closed()
    session.diagnosis = [Finding(cause="no-reset-observed", title="No reset observed", confidence=0.8,
                                 summary="Every probe completed.", remedy="Run again when it happens."),
                         Finding(cause="port-closed", title="Nothing listens", confidence=0.2, summary="s")]
    summary = _render(analysed(session)).split("<details>")[0]
    assert summary.startswith("# Connection reset on `localhost:9`: no reset seen, no cause found\n")
    assert "| **How sure** | no cause confirmed: every probe behaved, no reset was seen" in summary
    assert "| **What to do** | Run again when it happens. |" in summary
    assert "**Verdict: no cause of the resets was found.**" in summary
    assert "`port-closed` (Nothing listens), reached only 20 %" in summary


def test_what_was_not_checked_is_grouped_by_reason_with_its_fix() -> None:
    text = _render(skipped_close_call())
    section = text[text.index("## Not checked"):text.index("## Notes")]
    assert ("- **ping is not installed in local**; fix: `apt install iputils-ping`\n"
            "  - `icmp.ping` ICMP echo (connectivity); would have told: whether the host answers ICMP echo at all\n"
            ) in section
    assert "- **errored (a fault of the wizard; its traceback is under Evidence)**\n  - `packets.capture`" in section
    assert "did not run (the run was interrupted)**: `identify`, `server-logs`, `app-errors`" in section
    # Two checks skipped for one reason are one group, each named under it.
    session = skipped_close_call()
    again = session.steps[0].checks[0].model_copy(update={"id": "icmp.other", "title": "Another"})
    session.steps[0].checks.append(again)
    grouped = _render(session)
    assert grouped.count("- **ping is not installed in local**") == 1
    assert "  - `icmp.other` Another (connectivity)" in grouped


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_planted_secrets_never_reach_report_or_json(name: str) -> None:
    session = SESSIONS[name]()
    for text in (render_report(session), render_json(session)):
        for secret in (BEARER, "abc123def456", "AIzaSyDd8f7A-0_abcdefghijklmnopqrstuvw"):
            assert secret not in text
    assert BEARER in render_report(abortive_close(), redact=False)


def test_redact_addresses_hides_addresses_and_names_in_report_and_json() -> None:
    session = skipped_close_call()
    for text in (render_report(session, redact_addresses=True), render_json(session, redact_addresses=True)):
        for value in ("192.0.2.10", "2001:db8::10", "web1.example.net", "laptop"):
            assert value not in text
    assert "192.0.2.10" in render_report(session)


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_json_round_trips_through_session_from_json(name: str) -> None:
    session = SESSIONS[name]()
    assert Session.from_json(render_json(session, redact=False)) == session
    again = Session.from_json(render_json(session))
    assert again.to_json() == render_json(session)


def test_terminal_escapes_are_stripped_and_the_backtick_line_stays_inside_the_fence() -> None:
    text = _render(abortive_close())
    assert "\x1b" not in text and "[31m" not in text
    tokens = MarkdownIt("commonmark").parse(text)
    logs = [t for t in tokens if t.type == "fence" and "SO_LINGER 0" in t.content]
    assert len(logs) == 1
    content = logs[0].content
    assert "  ```\n" in content and "(104: Connection reset by peer) | upstream" in content
    assert "> 2026-11-22T03:48:08Z app[311]: ERROR closing socket" in content


def test_counters_render_as_a_table_with_before_after_delta() -> None:
    text = _render(abortive_close())
    assert "| counter | before | after | delta |" in text
    assert "| `TcpExt.TCPAbortOnClose` | 4 | 5 | **+1** |" in text
    assert "| `TcpExt.ListenOverflows` | 0 | 0 | 0 |" in text


def test_ladder_renders_a_well_formed_mermaid_sequence_diagram() -> None:
    tokens = MarkdownIt("commonmark").parse(_render(abortive_close()))
    diagrams = [t for t in tokens if t.type == "fence" and t.info == "mermaid"]
    assert len(diagrams) == 1
    lines = diagrams[0].content.rstrip("\n").split("\n")
    assert lines[0] == "sequenceDiagram"
    participants = {m.group(1) for line in lines if (m := re.match(r"    participant (\w+) as \w+$", line))}
    assert participants == {"P_client", "P_server"}
    arrows = [line for line in lines[1:] if "participant" not in line and "Note over" not in line]
    assert len(arrows) == 5
    for line in arrows:
        m = re.match(r"    (\w+)(->>|-x)(\w+): (?:[^;#\n]|#\d+;)+ \(\d+\.\d{1,2} ms\)$", line)
        assert m and {m.group(1), m.group(3)} <= participants, line
    assert arrows[-1].startswith("    P_server-xP_client: RST, ACK (1.20 ms)")
    # The ';' in a label would end the Mermaid statement: it is written as an entity.
    assert "GET / HTTP/1.1#59; 78 bytes (0.30 ms)" in arrows[3]


def test_path_device_gets_its_own_participant_between_client_and_server() -> None:
    session = abortive_close()
    ev = session.steps[2].checks[0].evidence[0]
    ev.data["events"].append({"ms": 2.0, "src": "path", "dst": "client", "label": "RST"})
    diagram = next(t for t in MarkdownIt("commonmark").parse(_render(session)) if t.info == "mermaid").content
    assert re.findall(r"participant (\w+)", diagram) == ["P_client", "P_path", "P_server"]


def test_whole_ruleset_is_collapsed_and_traceback_too() -> None:
    text = _render(skipped_close_call())
    assert "<details><summary>the whole ruleset (7 lines)</summary>" in text
    assert "<details><summary>traceback</summary>" in text


def test_table_cells_escape_pipes_so_rows_keep_their_columns() -> None:
    session = port_closed()
    session.steps[1].checks[0].evidence[0].data["rows"][0]["outcome"] = "refused | weird"
    tokens = MarkdownIt("commonmark").enable("table").parse(_render(session))
    # Find the connect-outcomes table: every row has exactly the 3 columns of its header.
    tables, current, cells = [], [], 0
    for t in tokens:
        if t.type == "table_open":
            current = []
        elif t.type == "tr_open":
            cells = 0
        elif t.type in ("td_open", "th_open"):
            cells += 1
        elif t.type == "tr_close":
            current.append(cells)
        elif t.type == "table_close":
            tables.append(current)
    texts = [t.content for t in tokens if t.type == "inline"]
    assert "refused | weird" in texts
    assert [3, 3, 3] in tables


# -- properties of the sanitiser -------------------------------------------------------

LOG_TEXT = st.lists(st.text(max_size=20) | st.sampled_from(["`", "```", "````", "\n", "\n```\n", "~~~", "\x1b[2J",
                                                           "\x1b]0;title\x07", "\r\n", "    ", "<details>", "</details>"]),
                    max_size=30).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(LOG_TEXT, st.lists(st.integers(0, 10), max_size=3))
def test_any_log_text_renders_inside_exactly_one_fenced_block(text: str, highlight: list[int]) -> None:
    session = port_closed()
    session.steps = [_step("server-logs", "Check server logs", _check(
        "logs.excerpt", "Log", Status.WARN, "excerpt", 0, 1,
        evidence=[Evidence(kind="log", title="the excerpt", source="/var/log/x.log", text="BEGIN-MARK\n" + text + "\nEND-MARK",
                           highlight=highlight)]))]
    tokens = MarkdownIt("commonmark").parse(render_markdown(session))
    holding = [t for t in tokens if "BEGIN-MARK" in t.content or "END-MARK" in t.content
               or any("MARK" in (c.content or "") for c in (t.children or []))]
    assert len(holding) == 1 and holding[0].type == "fence"
    lines = holding[0].content.rstrip("\n").split("\n")
    if highlight:
        lines = [line[2:] for line in lines]
    # Every line verbatim, but a long one, which is its head, its length and its hash.
    expected = clean("BEGIN-MARK\n" + text + "\nEND-MARK").rstrip("\n").split("\n")
    assert len(lines) == len(expected)
    for shown, line in zip(lines, expected, strict=True):
        if len(line) <= LONG_LINE:
            assert shown == line
        else:
            assert shown.startswith(line[:LINE_HEAD]) and shown.endswith(f"[{len(line)} chars, sha256 {sha256(line)}]")


@given(st.text(max_size=200))
def test_cleaned_text_has_no_escape_or_control_characters(text: str) -> None:
    out = clean(text)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out)


@given(st.text(max_size=100))
def test_code_span_holds_its_text_verbatim(text: str) -> None:
    span = code(text)
    expected = " ".join(clean(text).split("\n")).strip()
    if not expected:
        return
    tokens = MarkdownIt("commonmark").parse("x " + span)
    inline_tok = tokens[1].children
    codes = [c for c in inline_tok if c.type == "code_inline"]
    assert len(codes) == 1
    # CommonMark turns line endings inside code spans to spaces and strips one padding space.
    assert codes[0].content == expected or codes[0].content == expected.strip()


def test_fence_is_longer_than_any_backtick_run() -> None:
    block = fenced("a ```` b\n`````")
    assert block.startswith("``````\n") and block.endswith("\n``````")


def test_inline_text_cannot_start_a_heading_or_a_link() -> None:
    assert inline("# not a heading [x](http://e) *y* a_b _c_") == "\\# not a heading \\[x\\](http://e) \\*y\\* a_b \\_c\\_"


def test_the_kernels_reason_sits_beside_the_servers_rst_in_the_ladder() -> None:
    from datetime import datetime

    from wizard.model import (
        CheckResult,
        Context,
        Evidence,
        Session,
        Status,
        ToolInfo,
        parse_target,
    )
    from wizard.report.markdown import render_markdown

    target = parse_target("10.9.0.2:8080")
    target.addresses = ["10.9.0.2"]
    session = Session(tool=ToolInfo(version="t"), started_at=datetime(2026, 1, 1, tzinfo=UTC),
                      target=target, context=Context(client="c", server="netns:srv"))
    ladder = Evidence(kind="ladder", title="handshake", data={"lanes": ["client", "server"], "events": [
        {"ms": 0.0, "src": "client", "dst": "server", "label": "SYN"},
        {"ms": 1.0, "src": "server", "dst": "client", "label": "RST"}]})
    traced = Evidence(kind="fact", title="kernel sent RST", data={"rst_reasons": [
        {"flow": "10.9.0.2:8080->10.9.0.1:40000", "reason": "TCP_ABORT_ON_CLOSE", "comm": "python", "pid": 42},
        {"flow": "10.9.0.5:22->10.9.0.1:40001", "reason": "NO_SOCKET", "comm": "", "pid": 0}]})
    session.step("handshake").checks.append(CheckResult(id="tcp.exchange", status=Status.FAIL, summary="reset",
                                                        evidence=[ladder]))
    session.step("app-errors").checks.append(CheckResult(id="kernel.resets", status=Status.WARN, summary="x",
                                                         evidence=[traced]))
    text = render_markdown(session)
    mermaid = text.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "TCP_ABORT_ON_CLOSE (python[42])" in mermaid
    assert "NO_SOCKET" not in mermaid  # another flow, another port
