"""Step 6 checks through scripted probe outcomes: the burst's sequence and the exchange's timing."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from tests.unit.fakes import FakeProbes, FakeTcp, make_ctx
from wizard.diag.net.checks.handshake import (
    TcpBurstCheck,
    TcpBurstParams,
    TcpExchangeCheck,
    TcpExchangeParams,
    classify_burst,
)
from wizard.engine import discovery as registry
from wizard.engine.probes import ExchangeOutcome, ProbeEvent
from wizard.model import Answers, CheckResult, Status


async def burst(script: list, attempts: int | None = None, **answers) -> CheckResult:
    n = attempts or len(script)
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(attempts=n, **answers),
                   probes=FakeProbes(tcp=FakeTcp(exchanges={"*": list(script)})))
    return await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=0))


async def exchange(answer, target: str = "127.0.0.1:8080", **answers) -> tuple[CheckResult, FakeTcp]:
    tcp = FakeTcp(exchanges={"*": answer})
    ctx = make_ctx(target, answers=Answers(**answers), probes=FakeProbes(tcp=tcp))
    return await TcpExchangeCheck().run(ctx, TcpExchangeParams()), tcp


def signal_ids(result: CheckResult) -> list[str]:
    return [s.id for s in result.signals]


def outcome(kind: str, stage: str, events: list[tuple[float, str, str, int]], *, sent: int = 78,
            received: int = 0, message: str = "") -> ExchangeOutcome:
    return ExchangeOutcome("127.0.0.1", 8080, kind, stage,  # type: ignore[arg-type]
                           [ProbeEvent(ms, what, detail, size) for ms, what, detail, size in events],  # type: ignore[arg-type]
                           sent, received, b"HTTP/1.1 200 OK\r\n" if received else b"",
                           "127.0.0.1:40123", 0, message)


OK, REFUSED, RESET, TIMEOUT = ("ok", "first-data"), ("refused", "connect"), ("reset", "first-data"), ("timeout", "connect")


# --- the burst -----------------------------------------------------------------------------

async def test_every_attempt_answered_is_all_ok_and_passes() -> None:
    result = await burst([OK] * 10)
    assert signal_ids(result) == ["burst.all_ok"]
    assert result.status == Status.PASS
    table = next(e for e in result.evidence if e.kind == "table")
    assert table.data["columns"] == ["attempt", "outcome", "stage", "ms", "local port"]
    assert [r[0] for r in table.data["rows"]] == list(range(1, 11))
    assert table.data["rows"][0][1:] == ["ok", "first-data", 3.0, 40000]


@pytest.mark.parametrize(("script", "signal"), [
    ([REFUSED] * 6, "burst.all_refused"),
    ([RESET] * 6, "burst.all_reset"),
    ([TIMEOUT] * 6, "burst.all_timeout"),
])
async def test_uniform_failures_are_named_by_their_kind(script: list, signal: str) -> None:
    result = await burst(script)
    assert signal_ids(result) == [signal]
    assert result.status == Status.FAIL


async def test_rate_limit_first_three_pass_then_refused_is_later_failed() -> None:
    result = await burst([OK] * 3 + [REFUSED] * 7)
    assert signal_ids(result) == ["burst.later_failed"]
    assert "attempts 1-3 passed, 4-10 were refused" in result.signals[0].fact
    assert result.status == Status.FAIL
    rows = next(e for e in result.evidence if e.kind == "table").data["rows"]
    assert [r[1] for r in rows] == ["ok"] * 3 + ["refused"] * 7


async def test_limiter_that_lets_one_through_later_still_counts_as_later_failed() -> None:
    result = await burst([OK, OK, REFUSED, RESET, REFUSED, OK, REFUSED])
    assert signal_ids(result) == ["burst.later_failed"]
    assert "attempts 1-2 passed, 3-7 failed (1 ok, 3 refused, 1 reset)" in result.signals[0].fact


async def test_a_single_passing_attempt_before_resets_is_later_failed() -> None:
    result = await burst([OK] + [RESET] * 4)
    assert "attempt 1 passed, 2-5 were reset" in result.signals[0].fact


async def test_failures_scattered_among_successes_are_intermittent() -> None:
    result = await burst([OK, RESET, OK, OK, RESET, OK, OK, OK])
    assert signal_ids(result) == ["burst.intermittent"]
    assert result.status == Status.FAIL
    assert "6 ok, 2 reset" in result.signals[0].fact


async def test_failure_first_then_success_is_not_a_rate_limit() -> None:
    result = await burst([REFUSED, OK, OK, OK])
    assert signal_ids(result) == ["burst.intermittent"]


async def test_open_but_silent_connections_count_as_passing_the_burst() -> None:
    result = await burst([("timeout", "first-data")] * 4)
    assert signal_ids(result) == ["burst.all_ok"]
    assert "4 of them with no answer" in result.signals[0].fact


def test_uniform_outcome_the_rules_do_not_know_raises_no_signal() -> None:
    signal, fact = classify_burst(["eof"] * 3)
    assert signal is None and "eof" in fact


@dataclass
class TimedTcp:
    """Answers every exchange after ``delay`` seconds and records when each was launched."""

    delay: float
    launched: list[tuple[int, float]] = field(default_factory=list)

    async def exchange(self, address, port, payload, timeout, hold=0.0, attempt=0, read_limit=65536):
        self.launched.append((attempt, time.monotonic()))
        await asyncio.sleep(self.delay)
        return ExchangeOutcome(address, port, "ok", "first-data", [ProbeEvent(0.0, "syn")],
                               attempt=attempt)


async def test_burst_launches_in_order_staggered_and_waits_concurrently() -> None:
    tcp = TimedTcp(delay=0.4)
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(attempts=6), probes=FakeProbes(tcp=tcp))
    started = time.monotonic()
    result = await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=50))
    elapsed = time.monotonic() - started
    assert [a for a, _ in tcp.launched] == [1, 2, 3, 4, 5, 6]
    # Attempt i starts no sooner than i staggers after the burst began (a sleep never wakes
    # early; on a busy machine one may wake late, so gaps between neighbours can shrink).
    first = tcp.launched[0][1]
    assert all(t - first >= i * 0.05 - 0.005 for i, (_, t) in enumerate(tcp.launched))
    # About delay + attempts * stagger (0.7 s); one after another it would be 6 * delay (2.4 s).
    assert elapsed < 1.6
    assert signal_ids(result) == ["burst.all_ok"]


@dataclass
class ConnectingTcp:
    """Completes each handshake at once (telling ``on_connect``) unless told to refuse it,
    then answers after ``delay`` seconds."""

    delay: float
    refuse: int = 0  # this attempt is refused
    connects: int = 0

    async def exchange(self, address, port, payload, timeout, hold=0.0, attempt=0, read_limit=65536,
                       on_connect=None):
        if attempt == self.refuse:
            return ExchangeOutcome(address, port, "refused", "connect", [ProbeEvent(0.0, "syn")], attempt=attempt)
        self.connects += 1
        if on_connect is not None:
            on_connect()
        await asyncio.sleep(self.delay)
        return ExchangeOutcome(address, port, "ok", "first-data", [ProbeEvent(0.0, "syn")], attempt=attempt)


@pytest.mark.parametrize("refuse", [0, 3])
async def test_burst_lets_the_next_stage_start_once_every_handshake_completed(monkeypatch, refuse) -> None:
    from wizard.diag.net.checks import handshake
    from wizard.engine.contract import STAGE_GATE

    # the exchange and its capture are the shared bracket's, already run
    monkeypatch.setattr(handshake, "exchange_captured", lambda ctx: True)
    tcp = ConnectingTcp(delay=0.3, refuse=refuse)
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(attempts=4), probes=FakeProbes(tcp=tcp))
    gate = asyncio.Event()
    STAGE_GATE.set(gate)
    check = asyncio.ensure_future(TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=10, cooldown_s=0)))
    await asyncio.sleep(0.15)  # every launch is done, no answer yet
    assert gate.is_set() is (refuse == 0) and not check.done()
    await check
    assert gate.is_set() is (refuse == 0)  # a refused handshake: the stage waits for the end


# --- the exchange --------------------------------------------------------------------------

async def test_answered_exchange_passes_with_a_ladder_of_exactly_the_agreed_shape() -> None:
    result, _ = await exchange(("ok", "first-data"))
    assert signal_ids(result) == ["probe.ok"] and result.status == Status.PASS
    assert any(e.title == "sent an HTTP GET (default for port 8080)" for e in result.evidence)
    ladder = next(e for e in result.evidence if e.kind == "ladder").data
    assert ladder["lanes"] == ["client", "server"]
    events = ladder["events"]
    assert [e["label"] for e in events][:3] == ["SYN", "SYN-ACK", f"data {events[2]['label'].split()[1]} B"]
    assert events[0] == {"ms": 0.0, "src": "client", "dst": "server", "label": "SYN"}
    assert events[1]["src"] == "server" and "inferred" in events[1]["note"]
    assert set().union(*(e.keys() for e in events)) <= {"ms", "src", "dst", "label", "note"}


async def test_refused_exchange_is_a_reset_to_the_syn() -> None:
    result, _ = await exchange(("refused", "connect"))
    assert signal_ids(result) == ["probe.refused"] and result.status == Status.FAIL
    labels = [e["label"] for e in next(e for e in result.evidence if e.kind == "ladder").data["events"]]
    assert labels == ["SYN", "RST (to SYN)"]
    assert "reset to the SYN" in result.signals[0].fact


async def test_handshake_timeout_is_no_syn_ack() -> None:
    result, _ = await exchange(("timeout", "connect"))
    assert signal_ids(result) == ["probe.timeout"]
    assert "no SYN-ACK" in result.signals[0].fact


async def test_reset_right_after_the_first_data_says_how_long_after_the_send() -> None:
    out = outcome("reset", "first-data", [(0.0, "syn", "", 0), (0.4, "connected", "", 0),
                                          (0.6, "sent", "", 78), (1.1, "reset", "connection reset by peer", 0)])
    result, _ = await exchange(out)
    assert signal_ids(result) == ["probe.reset_after_data"]
    assert "right after the first data, 0.5 ms after the send" in result.signals[0].fact
    labels = [e["label"] for e in next(e for e in result.evidence if e.kind == "ladder").data["events"]]
    assert labels == ["SYN", "SYN-ACK", "data 78 B", "RST"]


async def test_reset_after_some_answer_bytes_counts_them() -> None:
    out = outcome("reset", "first-data", [(0.0, "syn", "", 0), (0.4, "connected", "", 0),
                                          (0.6, "sent", "", 78), (5.0, "received", "", 1200),
                                          (9.0, "reset", "", 0)], received=1200)
    result, _ = await exchange(out)
    assert signal_ids(result) == ["probe.reset_after_data"]
    assert "reset after 1200 B received" in result.signals[0].fact


async def test_fin_instead_of_an_answer_is_eof_after_data() -> None:
    result, _ = await exchange(("eof", "first-data"))
    assert signal_ids(result) == ["probe.eof_after_data"] and result.status == Status.FAIL
    assert "EOF (FIN) instead of an answer" in result.signals[0].fact


async def test_open_connection_without_answer_is_no_answer_not_a_reset() -> None:
    result, _ = await exchange(("timeout", "first-data"), timeout_s=2)
    assert signal_ids(result) == ["probe.no_answer"] and result.status == Status.WARN
    assert "no answer before the timeout (2s)" in result.signals[0].fact


async def test_reset_only_after_the_hold_is_reset_after_hold_and_the_hold_is_passed_on() -> None:
    result, tcp = await exchange(("reset", "after-hold"), hold_s=30)
    assert tcp.calls == [("exchange", "127.0.0.1", "8080", "30.0")]
    assert signal_ids(result) == ["probe.reset_after_hold"]
    assert "fresh exchange was answered; reset only after the 30s idle hold" in result.signals[0].fact


async def test_rst_arriving_while_idle_is_reset_after_hold() -> None:
    out = outcome("reset", "hold", [(0.0, "syn", "", 0), (0.3, "connected", "", 0), (0.5, "sent", "", 78),
                                    (1.0, "received", "", 40), (500.0, "idle", "30s", 0),
                                    (20500.0, "reset", "connection reset by peer, 20.00s into the idle hold", 0)],
                  received=40, message="connection reset by peer 20.00s into the idle hold, while the probe sent nothing")
    result, _ = await exchange(out, hold_s=30)
    assert signal_ids(result) == ["probe.reset_after_hold"]
    assert "20.00s into the idle hold" in result.signals[0].fact


async def test_server_fin_during_the_hold_is_a_keepalive_race_not_a_middlebox() -> None:
    out = outcome("eof", "hold", [(0.0, "syn", "", 0), (0.3, "connected", "", 0), (0.5, "sent", "", 78),
                                  (1.0, "received", "", 40), (500.0, "idle", "0.5s", 0),
                                  (700.0, "eof", "the peer closed (FIN) 0.20s into the idle hold", 0),
                                  (1000.0, "sent", "", 78), (1000.4, "reset", "", 0)],
                  sent=156, received=40,
                  message="the peer closed the idle connection (FIN) 0.20s into the 0.5s hold; "
                          "the write after the hold was answered with RST")
    result, _ = await exchange(out, hold_s=0.5)
    assert signal_ids(result) == ["probe.closed_during_hold"]
    assert "keep-alive race" in result.signals[0].fact
    labels = [e["label"] for e in next(e for e in result.evidence if e.kind == "ladder").data["events"]]
    assert labels == ["SYN", "SYN-ACK", "data 78 B", "data 40 B", "idle 0.5s", "FIN", "data 78 B", "RST"]


async def test_answered_again_after_the_hold_is_ok() -> None:
    result, _ = await exchange(("ok", "after-hold"), hold_s=5)
    assert signal_ids(result) == ["probe.ok"]
    assert "again after the 5s idle hold" in result.signals[0].fact


@pytest.mark.parametrize(("target", "named"), [
    ("127.0.0.1:443", "sent a TLS ClientHello (default for port 443)"),
    ("https://127.0.0.1:9999/", "sent a TLS ClientHello (for https://)"),
    ("127.0.0.1:5432", "sent nothing: the port has no default, give --payload"),
])
async def test_payload_is_named_by_what_was_chosen(target: str, named: str) -> None:
    result, _ = await exchange(("ok", "first-data"), target=target)
    assert named in [e.title for e in result.evidence]


async def test_custom_payload_is_named_and_shown() -> None:
    result, _ = await exchange(("ok", "first-data"), payload="PING\r\n")
    sent = next(e for e in result.evidence if e.title.startswith("sent"))
    assert sent.title == "sent the --payload given (6 B)" and sent.text == "PING\r\n"


async def test_every_signal_raised_is_declared_and_the_checklist_loads() -> None:
    declared = set(TcpExchangeCheck.emits) | set(TcpBurstCheck.emits)
    for kind, stage in [("ok", "first-data"), ("refused", "connect"), ("timeout", "connect"),
                        ("reset", "first-data"), ("eof", "first-data"), ("timeout", "first-data"),
                        ("reset", "after-hold"), ("eof", "hold"), ("reset", "hold")]:
        result, _ = await exchange((kind, stage), hold_s=1)
        assert set(signal_ids(result)) <= declared
    registry.load()


def test_time_budgets_grow_with_the_hold_and_the_burst_length() -> None:
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(hold_s=350, timeout_s=3, attempts=100))
    assert TcpExchangeCheck.time_budget(ctx, TcpExchangeParams()) >= 350 + 2 * 3
    assert TcpBurstCheck.time_budget(ctx, TcpBurstParams(stagger_ms=500)) >= 99 * 0.5 + 2 * 3


async def test_refusals_that_stop_after_a_pause_are_a_rate_limit() -> None:
    from tests.unit.fakes import FakeTcp

    tcp = FakeTcp(exchanges={"*": [("refused", "connect")] * 4 + [("ok", "first-data")]})
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(attempts=4), probes=FakeProbes(tcp=tcp))
    result = await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=0, cooldown_s=0.05))
    assert "burst.recovers_when_slowed" in signal_ids(result)
    assert len(tcp.calls) == 5


async def test_refusals_that_go_on_after_a_pause_are_no_rate_limit() -> None:
    from tests.unit.fakes import FakeTcp

    tcp = FakeTcp(exchanges={"*": [("refused", "connect")]})
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(attempts=4), probes=FakeProbes(tcp=tcp))
    result = await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=0, cooldown_s=0.05))
    assert "burst.recovers_when_slowed" not in signal_ids(result)
    assert signal_ids(result) == ["burst.all_refused"]


async def test_a_clean_burst_does_not_wait_for_a_retry() -> None:
    from tests.unit.fakes import FakeTcp

    tcp = FakeTcp(exchanges={"*": [("ok", "first-data")]})
    ctx = make_ctx("127.0.0.1:8080", answers=Answers(attempts=3), probes=FakeProbes(tcp=tcp))
    await TcpBurstCheck().run(ctx, TcpBurstParams(stagger_ms=0, cooldown_s=5))
    assert len(tcp.calls) == 3


async def test_a_quiet_connection_closed_before_any_request_is_no_keepalive_race() -> None:
    # HAProxy's `timeout http-request` on a connection that never sent a request: it answers
    # 408 unasked and closes; nothing was kept alive, so this is the server's own timeout
    out = outcome("eof", "hold", [(0.0, "syn", "", 0), (0.3, "connected", "", 0), (500.0, "idle", "3s", 0),
                                  (1000.0, "received", "", 233), (1000.2, "eof", "", 0)],
                  sent=0, received=233, message="the peer closed the idle connection (FIN) 0.50s into the 3s hold")
    result, _ = await exchange(out, hold_s=3)
    assert signal_ids(result) == ["probe.closed_before_request"]
    assert "before any request was sent" in result.signals[0].fact and "HTTP/1.1 200 OK" in result.signals[0].fact


async def test_a_reset_with_nothing_sent_never_says_after_the_first_data() -> None:
    # port 9 has no default payload: the probe sends nothing and is reset 40 ms in
    quiet = outcome("reset", "first-data", [(0.0, "syn", "", 0), (0.2, "connected", "", 0),
                                            (40.0, "reset", "", 0)], sent=0)
    result, _ = await exchange(quiet, target="127.0.0.1:9")
    words = " ".join([result.summary, *(s.fact for s in result.signals), *(e.title for e in result.evidence)])
    assert "first data" not in words and "nothing sent" in result.summary, words
    sent, _ = await exchange(outcome("reset", "first-data", [(0.0, "syn", "", 0), (0.2, "connected", "", 0),
                                                             (0.3, "sent", "", 78), (40.0, "reset", "", 0)]))
    assert "reset after the first data" in sent.summary  # the same reset after a send says so


# --- the exchange's ladder, timed by a capture of the same connection ----------------------

def _slow_socket_reset() -> ExchangeOutcome:
    # The socket saw connect() return 12 ms after the SYN (a busy loop), the packets say 0.02 ms.
    return outcome("reset", "first-data", [(0.0, "syn", "", 0), (12.0, "connected", "", 0),
                                           (12.5, "sent", "", 18), (300.0, "reset", "connection reset by peer", 0)],
                   sent=18)


def _wire() -> list:
    from tests.unit.test_packets_probe import ev

    return [ev(10.0, True, "S"), ev(10.02, False, "SA", ip_id=0), ev(10.03, True, "A"),
            ev(10.05, True, "PA", payload=18), ev(290.0, False, "RA", ip_id=0, window=0)]


async def test_with_a_capture_the_exchange_ladder_has_the_capture_times_and_one_connection() -> None:
    from tests.unit.test_packets_probe import FakePackets, _server
    from wizard.diag.packets.checks import CaptureParams, PacketsCaptureCheck

    tcp = FakeTcp(exchanges={"*": _slow_socket_reset()})
    ctx = make_ctx(server=_server(), probes=FakeProbes(tcp=tcp, packets=FakePackets(events=_wire())))
    mine, captured = await asyncio.gather(TcpExchangeCheck().run(ctx, TcpExchangeParams()),
                                          PacketsCaptureCheck().run(ctx, CaptureParams()))
    assert [c[0] for c in tcp.calls] == ["exchange"]  # one connection, seen by both
    lad = next(e for e in mine.evidence if e.kind == "ladder")
    assert "times from the packet capture" in lad.title
    assert [(e["label"], e["ms"]) for e in lad.data["events"]] == [
        ("SYN", 0.0), ("SYN-ACK", 0.02), ("data 18 B", 0.05), ("RST", 280.0)]
    assert not any("inferred" in e.get("note", "") for e in lad.data["events"])
    wire = next(e for e in captured.evidence if e.kind == "ladder").data["events"]
    syn = wire[0]["ms"]
    assert {e["label"]: round(e["ms"] - syn, 3) for e in wire}["SYN-ACK"] == lad.data["events"][1]["ms"]


async def test_without_a_capture_the_ladder_says_its_times_are_inferred() -> None:
    result, _ = await exchange(_slow_socket_reset())
    lad = next(e for e in result.evidence if e.kind == "ladder")
    assert "inferred" in lad.title
    assert lad.data["events"][1]["ms"] == 12.0 and "inferred" in lad.data["events"][1]["note"]


async def test_a_capture_that_fails_leaves_the_socket_times_and_says_why() -> None:
    from tests.unit.test_packets_probe import FakePackets

    class Broken(FakePackets):
        async def capture(self, address, port, action, **kw):
            raise OSError("no such device")

    tcp = FakeTcp(exchanges={"*": _slow_socket_reset()})
    ctx = make_ctx(probes=FakeProbes(tcp=tcp, packets=Broken()))
    result = await TcpExchangeCheck().run(ctx, TcpExchangeParams())
    assert any("the capture failed (OSError: no such device)" in e.title for e in result.evidence)
    assert "inferred" in next(e for e in result.evidence if e.kind == "ladder").title


def test_an_event_the_capture_missed_keeps_its_distance_and_is_marked() -> None:
    from wizard.diag.packets.parse.retime import retime

    events = [ProbeEvent(0.0, "syn"), ProbeEvent(5.0, "connected"), ProbeEvent(6.0, "sent", size=18),
              ProbeEvent(9.0, "eof")]
    timed = retime(events, _wire()[:4])  # the capture ends before the server's FIN
    assert timed is not None
    assert [(t.ms, t.on_wire) for t in timed] == [(0.0, True), (0.02, True), (0.05, True), (3.05, False)]
    assert retime(events, _wire()[1:]) is None  # no SYN to count from: the socket's times stand


async def test_the_checklists_reasons_for_a_reset_after_data_hold_when_nothing_was_sent() -> None:
    # The exchange raises probe.reset_after_data with nothing sent too (a port with no default
    # payload): a cause's reason for weighing it must not claim that data was sent.
    quiet = outcome("reset", "first-data", [(0.0, "syn", "", 0), (0.2, "connected", "", 0),
                                            (40.0, "reset", "", 0)], sent=0)
    result, _ = await exchange(quiet, target="127.0.0.1:9")
    assert signal_ids(result) == ["probe.reset_after_data"]
    from tests.unit.fakes import make_ctx as ctx_of

    whys = [w.why for c in ctx_of().checklist.causes for w in (*c.supports, *c.contradicts)
            if w.signal == "probe.reset_after_data" and w.why]
    assert whys
    for why in whys:
        assert "data was sent" not in why and "data was exchanged" not in why, why
        assert "none sent" in why, why
