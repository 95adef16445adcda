"""The report's postmortem shape, on the session of a real `reset-wizard demo --headless --json`
run (tests/unit/data/demo-session.json): title, summary, checklist, folding, long text by
head, length and hash, and one screen before the first <details>.

Regenerate the demo's golden with ``UPDATE_GOLDEN=1 pytest tests/unit/test_postmortem.py``
and read it as a user would.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from wizard.analysis import conclude
from wizard.cli.diagnose import exit_status
from wizard.cli.status import ExitStatus
from wizard.engine.discovery import load
from wizard.model import Session, Status
from wizard.report import render_json, render_report
from wizard.report.text import fix_markdown, sha256

DATA = Path(__file__).parent / "data" / "demo-session.json"
GOLDEN = Path(__file__).parent / "golden" / "demo.md"
ONE_SCREEN = 50


def demo() -> Session:
    return Session.from_json(DATA.read_text(encoding="utf-8"), str(DATA))


def check(session: Session, check_id: str):
    return next(c for s in session.steps for c in s.checks if c.id == check_id)


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def first_screen(text: str) -> str:
    return text[:text.index("<details>")]


def test_the_demo_report_matches_its_golden() -> None:
    text = render_report(demo())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_the_demo_reads_in_one_screen_before_the_first_details() -> None:
    text = render_report(demo())
    assert len(first_screen(text).splitlines()) <= ONE_SCREEN
    # Everything else is folded: every check's evidence comes after the first <details>.
    assert "#### `" not in first_screen(text)
    assert text.count("<details>") == text.count("</details>")


def test_the_title_names_the_target_and_the_one_verdict_the_json_and_exit_status_carry() -> None:
    session = demo()
    text = render_report(session)
    title = text.splitlines()[0]
    verdict = session.verdict
    assert verdict is not None and verdict.kind == "cause"
    assert title.startswith(f"# Connection reset on `{session.target.display()}`: ")
    assert title.endswith(f"(`{verdict.cause}`)")
    assert f'"cause": "{verdict.cause}"' in render_json(session)
    assert exit_status(session) == ExitStatus.DIAGNOSED
    assert f"**Verdict: `{verdict.cause}` — " in section(text, "Root cause")


def test_with_no_cause_the_title_summary_and_exit_status_all_say_so() -> None:
    session = demo()
    for step in session.steps:
        for c in step.checks:
            c.signals = []
    conclude(load(), session)
    assert session.verdict is not None and not session.verdict.diagnosed
    text = render_report(session)
    assert text.splitlines()[0] == f"# Connection reset on `{session.target.display()}`: no cause confirmed"
    assert "| **How sure** | no cause confirmed" in text
    assert "**Verdict: no cause of the resets was found.**" in text
    assert exit_status(session) == ExitStatus.OK


def test_the_summary_has_four_rows_a_manager_reads() -> None:
    session = demo()
    rows = [line for line in section(render_report(session), "Summary").splitlines() if line.startswith("| **")]
    assert [re.match(r"\| \*\*([^*]+)\*\*", r).group(1) for r in rows] == [
        "What failed", "Since when", "How sure", "What to do"]
    failed, since, sure, todo = rows
    assert session.answers.error and f"`{session.answers.error}`" in failed
    # Since when: the first matching log line before the run, by its own time.
    excerpt = check(session, "logs.excerpt").evidence[1]
    first = excerpt.text.split("\n")[excerpt.highlight[0]]
    day, clock = first[:10], first[11:23]  # 2026-12-03T06:01:01.290+00:00 (the demo logs in UTC)
    assert first[23:29] == "+00:00" and f"{day} {clock}Z" in since
    top = session.diagnosis[0]
    assert f"{top.confidence * 100:.0f} %" in sure and f"`{top.cause}`" in sure
    assert top.remedy in todo


def test_impact_counts_the_log_lines_and_the_probes_resets() -> None:
    session = demo()
    impact = section(render_report(session), "Impact and detection")
    assert "- Reported: `curl: (56) Recv failure: Connection reset by peer`." in impact
    probed = check(session, "logs.probed").evidence[1]
    assert f"{len(probed.highlight)} matching lines while the wizard probed" in impact
    burst = check(session, "tcp.burst").evidence[1].data["rows"]
    assert len(burst) == 5
    assert "6 of 6 probe connections reset (`tcp.burst` 5 of 5, `tcp.exchange` 1 of 1)" in impact


def test_the_timeline_is_wall_clock_from_logs_and_probes_and_the_run_is_in_the_appendix() -> None:
    session = demo()
    text = render_report(session)
    timeline = section(text, "Timeline")
    times = re.findall(r"^\| ≈?(\d\d:\d\d:\d\d\.\d{3}) \|", timeline, re.M)
    excerpt = check(session, "logs.excerpt").evidence[1]
    first = excerpt.text.split("\n")[excerpt.highlight[0]]
    assert times == sorted(times) and times[0] == first[11:23]  # the first log line's own time
    assert "probe `tcp.burst`" in timeline and "probe `packets.capture`" in timeline
    # No check completion in it: those are the appendix's, folded.
    assert " ms |" not in timeline and "`kernel.counters`" not in timeline
    appendix = section(text, "Appendix")
    checks = sum(len(s.checks) for s in session.steps)
    assert f"<details><summary>The wizard's run: when each check ran ({checks} checks)</summary>" in appendix
    burst = check(session, "tcp.burst")
    assert f"| `tcp.burst` Burst of connections (handshake) | FAIL in {burst.duration_ms} ms |" in appendix


def test_action_items_are_a_checklist_with_pasteable_commands() -> None:
    session = demo()
    text = render_report(session)
    items = [line for line in section(text, "Action items").splitlines() if line.startswith("- ")]
    assert items and all(line.startswith("- [ ] ") for line in items)
    spans = re.findall(r"`([^`]+)`", items[-1])
    argv = shlex.split(spans[0])
    assert argv[:3] == ["reset-wizard", "diagnose", session.target.display()]
    assert argv[3:] == ["--log", session.answers.logs[0]]
    skipped = section(text, "Not checked")
    assert ("- **tracefs is not mounted in the server context**; fix: `mount -t tracefs nodev "
            "/sys/kernel/tracing`; or let the wizard mount it: `reset-wizard diagnose ") in skipped
    assert "--allow-tracefs-mount`" in skipped
    # Each way its own span, and each span a command that pastes: no prose inside one.
    spans = re.findall(r"`([^`]+)`", skipped)
    assert spans and not any(" (or " in s or s.startswith("or ") or "let the wizard" in s for s in spans), spans
    for span in re.findall(r"`([^`]+)`", items[-1] + skipped):
        assert "(or" not in span and "let the wizard" not in span


@pytest.mark.parametrize("fix, markdown", [
    ("apt install iputils-ping", "`apt install iputils-ping`"),
    ("run as root: sudo reset-wizard ... (or grant cap_net_raw,cap_net_admin)",
     "run as root: `sudo reset-wizard ...` (or grant cap_net_raw,cap_net_admin)"),
    ("--log PATH (or --journal UNIT)", "`--log PATH` (or `--journal UNIT`)"),
    ("--server ssh:HOST or --server netns:NAME", "`--server ssh:HOST` or `--server netns:NAME`"),
    ("fix the access named above (try ssh -v), then rerun", "fix the access named above (try `ssh -v`), then rerun"),
    ("allow passwordless sudo (sudo -n) for the ssh user on that host, or connect as root",
     "allow passwordless sudo (`sudo -n`) for the ssh user on that host, or connect as root"),
    ("check the name (dns.resolve) or give an address", "check the name (dns.resolve) or give an address"),
])
def test_a_fix_is_commands_in_their_own_spans_and_prose_outside(fix: str, markdown: str) -> None:
    assert fix_markdown(fix) == markdown


def test_a_long_payload_is_shown_by_its_head_length_and_hash() -> None:
    session = demo()
    body = "POST /api/orders HTTP/1.1\r\nHost: demo.local\r\n\r\n" + "x" * 850
    sent = check(session, "tcp.exchange").evidence[0]
    assert "payload" in sent.data
    sent.text = body
    session.answers.payload = body
    text = render_report(session)
    assert "x" * 850 not in text and "POST /api/orders HTTP/1.1" in text
    # The length and the hash are the payload's as sent (CRLF and all), not its display's.
    assert f"{len(body)} bytes, 4 lines, sha256 `{sha256(body)}`" in text


def test_a_long_log_line_is_shown_by_its_head_length_and_hash() -> None:
    session = demo()
    excerpt = check(session, "logs.excerpt").evidence[1]
    lines = excerpt.text.split("\n")
    long = lines[excerpt.highlight[0]] + " body=" + "y" * 5000
    lines[excerpt.highlight[0]] = long
    excerpt.text = "\n".join(lines)
    text = render_report(session)
    assert "y" * 400 not in text
    assert f"[{len(long)} chars, sha256 {sha256(long)}]" in text


def test_a_secret_in_the_payload_is_redacted_before_it_is_hashed() -> None:
    session = demo()
    secret = "token=s3cr3tvalue0123456789abcdef"
    sent = check(session, "tcp.exchange").evidence[0]
    sent.text = f"GET /?{secret} HTTP/1.1\r\n\r\n"
    session.answers.payload = sent.text
    text = render_report(session)
    assert "s3cr3tvalue0123456789abcdef" not in text
    assert sha256(sent.text) not in text
    assert "«secret-1»" in text


def test_every_check_of_the_demo_is_in_the_folded_evidence() -> None:
    session = demo()
    text = render_report(session)
    folded = text[text.index("## Evidence by step"):text.index("## Ranked causes")]
    for step in session.steps:
        for c in step.checks:
            assert f"#### `{c.id}` " in folded
    assert all(c.status != Status.ERROR for s in session.steps for c in s.checks)


def test_a_busy_watchs_thousands_of_resets_are_counted_not_listed_row_by_row() -> None:
    from datetime import UTC, datetime, timedelta

    from wizard.engine.observe import observed_result
    from wizard.model import Context, ToolInfo, parse_target
    from wizard.model.observed import Observation, ResetEvent

    t0 = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
    n = 3000
    obs = Observation(events=[
        ResetEvent(n=i + 1, at=t0 + timedelta(milliseconds=3 * i), source="live",
                   flow=f"10.0.0.1:{20000 + i} -> 10.0.0.2:443", client="10.0.0.1", server="10.0.0.2",
                   toward="client", flags="R", sender="server-app",
                   sender_words="sent by the server's application", reasons=["SO_LINGER 0"], ttl=64,
                   hop_distance=0) for i in range(n)])
    obs.count()
    session = Session(tool=ToolInfo(version="t"), started_at=t0 - timedelta(seconds=1), mode="watch",
                      target=parse_target("10.0.0.2:443"), context=Context(client="c", server="local"),
                      observation=obs)
    session.step("handshake").checks.append(observed_result(obs, "live capture"))
    conclude(load(), session)
    session.finished_at = t0 + timedelta(seconds=10)
    text = render_report(session)
    timeline = section(text, "Timeline")
    rows = [line for line in timeline.splitlines() if "RST toward the client" in line]
    assert len(rows) == 4  # the first two and the last two
    assert f"… {n - 4} more resets until 22:00:08.991" in timeline
    appendix = section(text, "Appendix")
    kept = [line for line in appendix.splitlines() if "RST toward the client" in line]
    assert len(kept) == 100 and ":20000 " in kept[0] and f":{20000 + n - 1} " in kept[-1]
    assert "more resets until" in appendix and "session's JSON" in appendix
    assert len(text) < 120_000, len(text)  # one row per reset would be about 1 MB
