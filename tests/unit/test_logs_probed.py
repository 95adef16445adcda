"""logs.probed: the server's logs read again after the probes, from where step 3's window
ended (or the run's start) to now; quoted for the reader, without weighing in the ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.fakes import FakeHost, make_ctx
from wizard.diag.logs.checks import (
    LogExcerptCheck,
    LogExcerptParams,
    LogsDuringProbesCheck,
)
from wizard.model import Answers, Status

T0 = datetime(2026, 11, 22, 3, 40, tzinfo=UTC)
LOG = "/var/log/app.log"


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def log_text(lines: list[tuple[float, str]]) -> str:
    return "".join(f"{stamp(T0 + timedelta(seconds=s))} {text}\n" for s, text in lines)


LINES = [
    (0, "app[7] ERROR recv() failed (104: Connection reset by peer) (the incident, before the run)"),
    (100, "app[7] INFO GET /healthz 200"),
    (130, "app[7] ERROR ConnectionResetError: [Errno 104] Connection reset by peer (during step 3)"),
    (200, "app[7] ERROR aborted connection (SO_LINGER 0): Connection reset by peer (a probe)"),
    (201, "app[7] ERROR unhandled exception\nTraceback (most recent call last):\n  File \"a.py\", line 1"),
]


def evidence_text(result) -> str:  # type: ignore[no-untyped-def]
    """The matched lines of the log evidence (context lines around them left out)."""
    return "\n".join(e.text.splitlines()[i] for e in result.evidence if e.kind == "log" for i in e.highlight)


async def test_the_second_read_starts_where_step_3_stopped_and_quotes_the_probes_lines() -> None:
    clock = [T0 + timedelta(seconds=140)]
    ctx = make_ctx(answers=Answers(window_s=600, logs=[LOG]),
                   server=FakeHost("local", files={LOG: log_text(LINES)}))
    ctx.now = lambda: clock[0]
    ctx.started = T0 + timedelta(seconds=90)
    step3 = await LogExcerptCheck().run(ctx, LogExcerptParams())
    # Steps 2-5 overlap, so step 3's window ends where the run began: what the server wrote
    # once the run was under way (while step 3 read, or later) is the second read's.
    assert "(the incident" in evidence_text(step3)
    assert "(during step 3)" not in evidence_text(step3) and "(a probe)" not in evidence_text(step3)
    clock[0] = T0 + timedelta(seconds=260)  # the probes ran meanwhile
    result = await LogsDuringProbesCheck().run(ctx, LogExcerptParams())
    text = evidence_text(result)
    assert "(a probe)" in text and "Traceback (most recent call last):" in text  # matched lines
    assert "(during step 3)" in text and "(the incident" not in text
    assert result.status == Status.WARN and result.signals == []  # evidence, not weight
    assert result.summary.startswith("3 matching lines while the wizard probed")
    ev = next(e for e in result.evidence if e.kind == "log")
    assert ev.data["window"] == [(T0 + timedelta(seconds=90)).isoformat(), clock[0].isoformat()]


async def test_after_a_past_incident_the_second_read_starts_at_the_run() -> None:
    at = T0 + timedelta(seconds=1)  # --at: the incident, long before the run's probes
    clock = [T0 + timedelta(seconds=260)]
    ctx = make_ctx(answers=Answers(at=at, window_s=30, logs=[LOG]),
                   server=FakeHost("local", files={LOG: log_text(LINES)}))
    ctx.now = lambda: clock[0]
    ctx.started = T0 + timedelta(seconds=150)
    step3 = await LogExcerptCheck().run(ctx, LogExcerptParams())
    assert "(the incident" in evidence_text(step3) and {s.id for s in step3.signals} == {"log.reset"}
    result = await LogsDuringProbesCheck().run(ctx, LogExcerptParams())
    text = evidence_text(result)
    assert "(a probe)" in text and "(during step 3)" not in text and "(the incident" not in text


async def test_nothing_written_during_the_probes_is_a_pass() -> None:
    clock = [T0 + timedelta(seconds=190)]
    ctx = make_ctx(answers=Answers(window_s=600, logs=[LOG]),
                   server=FakeHost("local", files={LOG: log_text(LINES[:3])}))
    ctx.now = lambda: clock[0]
    ctx.started = T0 + timedelta(seconds=150)
    result = await LogsDuringProbesCheck().run(ctx, LogExcerptParams())
    assert result.status == Status.PASS and result.summary.startswith("0 matching lines while the wizard probed")


async def test_a_window_around_a_recent_incident_reaching_past_now_still_leaves_the_probes_lines() -> None:
    """--at a minute ago with a 10-minute window: step 3's window ends in the future, but it
    read only what was written by then; the probes' lines come after."""
    clock = [T0 + timedelta(seconds=150)]
    ctx = make_ctx(answers=Answers(at=T0 + timedelta(seconds=120), window_s=600, logs=[LOG]),
                   server=FakeHost("local", files={LOG: log_text(LINES[:3])}))
    ctx.now = lambda: clock[0]
    ctx.started = T0 + timedelta(seconds=140)
    await LogExcerptCheck().run(ctx, LogExcerptParams())
    ctx.server.files[LOG] = log_text(LINES).encode()  # the probes ran, the server wrote
    clock[0] = T0 + timedelta(seconds=260)
    result = await LogsDuringProbesCheck().run(ctx, LogExcerptParams())
    assert "(a probe)" in evidence_text(result) and "(during step 3)" not in evidence_text(result)


def test_a_short_window_histogram_reads_in_milliseconds_and_rounded_buckets() -> None:
    from wizard.diag.logs.checks import histogram

    t0 = T0.timestamp()
    data, text = histogram([(t0 + 0.5, {"rst_certain"}), (t0 + 3.1, {"crash"})], t0, t0 + 4.0)
    assert "max 1 per 0.33 s" in text
    assert data["rows"][1][0] == (T0 + timedelta(seconds=1 / 3)).isoformat(timespec="milliseconds")
    _, long_text = histogram([(t0 + 30, {"rst_certain"})], t0, t0 + 600)
    assert "max 1 per 50 s" in long_text
