"""The ranking weighs every cause against all the evidence, with the checklist's weights."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wizard.analysis import NO_RESET, diagnose
from wizard.engine.discovery import checklist_path
from wizard.model import (
    CheckResult,
    Context,
    Session,
    Signal,
    Status,
    ToolInfo,
    load_checklist,
    parse_target,
)

CHECKLIST = load_checklist(checklist_path())


def session_with(*signals: tuple[str, str] | tuple[str, str, float]) -> Session:
    """A session whose checks raised ``signals`` (check id, signal id[, strength])."""
    session = Session(tool=ToolInfo(version="t"), started_at=datetime(2026, 1, 1, tzinfo=UTC),
                      target=parse_target("10.0.0.2:8080"), context=Context(client="c", server="netns:srv"))
    by_check: dict[str, list[Signal]] = {}
    for item in signals:
        check_id, signal_id = item[0], item[1]
        strength = item[2] if len(item) > 2 else 1.0
        by_check.setdefault(check_id, []).append(Signal(id=signal_id, fact=f"saw {signal_id}", strength=strength))
    step = session.step("handshake")
    for check_id, sigs in by_check.items():
        step.checks.append(CheckResult(id=check_id, status=Status.WARN, summary="", signals=sigs))
    return session


def ranked(session: Session) -> list[tuple[str, float]]:
    findings, _ = diagnose(CHECKLIST, session)
    return [(f.cause, f.confidence) for f in findings]


def top(session: Session) -> str:
    return ranked(session)[0][0]


def test_closed_port_with_server_evidence_is_port_closed() -> None:
    s = session_with(("listen.sockets", "listener.absent"), ("tcp.connect", "connect.refused"),
                     ("tcp.burst", "burst.all_refused"), ("kernel.counters", "server.rst_sent"))
    findings, close = diagnose(CHECKLIST, s)
    assert findings[0].cause == "port-closed" and findings[0].confidence > 0.9
    assert close is None


def test_refusal_with_a_listener_and_a_moving_reject_rule_is_the_firewall() -> None:
    s = session_with(("listen.sockets", "listener.present"), ("tcp.connect", "connect.refused"),
                     ("firewall.rules", "fw.reject_rule"), ("firewall.rules", "fw.reject_moved"),
                     ("kernel.counters", "server.no_rst_sent"))
    order = dict(ranked(s))
    assert top(s) == "firewall-reject"
    assert order.get("port-closed", 0) < 0.5


def test_a_contradicting_fact_lowers_confidence() -> None:
    alone = dict(ranked(session_with(("tcp.connect", "connect.refused"), ("listen.sockets", "listener.absent"))))
    contradicted = dict(ranked(session_with(("tcp.connect", "connect.refused"),
                                            ("listen.sockets", "listener.absent"),
                                            ("firewall.rules", "fw.reject_moved"))))
    assert contradicted["port-closed"] < alone["port-closed"]


def test_weaker_signal_strength_gives_less_confidence() -> None:
    strong = dict(ranked(session_with(("kernel.counters", "server.abort_on_data", 1.0))))
    weak = dict(ranked(session_with(("kernel.counters", "server.abort_on_data", 0.4))))
    assert weak["abortive-close"] < strong["abortive-close"]


def test_server_counters_tell_abort_from_unread_data_close() -> None:
    aborted = session_with(("tcp.exchange", "probe.reset_after_data"), ("kernel.counters", "server.abort_on_data"),
                           ("kernel.counters", "server.rst_sent"))
    unread = session_with(("tcp.exchange", "probe.reset_after_data"), ("kernel.counters", "server.abort_on_close"),
                          ("kernel.counters", "server.rst_sent"))
    assert top(aborted) == "abortive-close"
    assert top(unread) == "unread-data-close"


def test_reset_with_still_server_counters_points_at_the_path() -> None:
    s = session_with(("tcp.exchange", "probe.reset_after_data"), ("kernel.counters", "server.no_rst_sent"))
    order = dict(ranked(s))
    assert top(s) == "middlebox-reset"
    assert order.get("abortive-close", 0) < 0.5 and order.get("unread-data-close", 0) < 0.5


def test_later_failures_in_a_burst_with_a_limit_rule_are_a_rate_limit() -> None:
    s = session_with(("tcp.burst", "burst.later_failed"), ("firewall.rules", "fw.rate_limit_rule"),
                     ("tcp.connect", "connect.ok"))
    assert top(s) == "rate-limit"


def test_a_limit_rule_that_refused_even_the_first_attempts_is_still_the_limit() -> None:
    # Other clients (or the run's earlier probes) had emptied the limiter's bucket: every
    # attempt of the burst was refused, by netfilter, and no plain reject rule exists.
    s = session_with(("firewall.rules", "fw.rate_limit_rule"), ("firewall.rules", "fw.reject_only_limited"),
                     ("tcp.burst", "burst.all_refused"), ("tcp.connect", "connect.refused"),
                     ("packets.rst", "rst.from_server_firewall"), ("kernel.counters", "server.no_rst_sent"),
                     ("listen.sockets", "listener.present"))
    assert top(s) == "rate-limit", ranked(s)[:3]
    # The same refusals with a plain reject rule (and no limit) stay the firewall's.
    s = session_with(("firewall.rules", "fw.reject_rule"), ("tcp.burst", "burst.all_refused"),
                     ("tcp.connect", "connect.refused"), ("packets.rst", "rst.from_server_firewall"),
                     ("kernel.counters", "server.no_rst_sent"), ("listen.sockets", "listener.present"))
    assert top(s) == "firewall-reject", ranked(s)[:3]


def test_timeouts_with_a_moving_drop_rule_are_a_drop_not_a_reset() -> None:
    s = session_with(("tcp.connect", "connect.timeout"), ("tcp.burst", "burst.all_timeout"),
                     ("firewall.rules", "fw.drop_rule"), ("firewall.rules", "fw.drop_moved"))
    assert top(s) == "firewall-drop"


def test_timeouts_with_a_full_accept_queue_are_a_backlog_overflow() -> None:
    s = session_with(("tcp.connect", "connect.timeout"), ("listen.sockets", "listener.queue_full"),
                     ("kernel.counters", "server.listen_overflow"), ("listen.sockets", "listener.present"))
    assert top(s) == "listen-backlog-overflow"


def test_everything_fine_puts_no_reset_observed_first() -> None:
    s = session_with(("tcp.connect", "connect.ok"), ("tcp.burst", "burst.all_ok"), ("tcp.exchange", "probe.ok"))
    findings, _ = diagnose(CHECKLIST, s)
    assert findings[0].cause == NO_RESET and findings[0].confidence >= CHECKLIST.threshold


def test_an_empty_run_still_names_no_reset_observed_first() -> None:
    findings, _ = diagnose(CHECKLIST, session_with())
    assert findings[0].cause == NO_RESET


def test_every_finding_cites_its_evidence_by_check_id() -> None:
    s = session_with(("listen.sockets", "listener.absent"), ("tcp.connect", "connect.refused"),
                     ("firewall.rules", "fw.reject_rule"))
    findings, _ = diagnose(CHECKLIST, s)
    port_closed = next(f for f in findings if f.cause == "port-closed")
    assert "listen.sockets: saw listener.absent" in port_closed.evidence
    assert "firewall.rules: saw fw.reject_rule" in port_closed.against
    assert port_closed.remedy and "{" not in port_closed.summary


def test_two_causes_close_together_are_a_close_call_with_the_check_that_separates_them() -> None:
    # Counters moved for both kinds of abort: nothing separates the two application causes.
    s = session_with(("tcp.exchange", "probe.reset_after_data"), ("kernel.counters", "server.abort_on_data"),
                     ("kernel.counters", "server.abort_on_close"))
    _, close = diagnose(CHECKLIST, s)
    assert close is not None
    assert set(close.causes) == {"abortive-close", "unread-data-close"}
    assert "kernel.counters" in close.separate_with


@pytest.mark.parametrize("cause", [c.id for c in CHECKLIST.causes if c.id != NO_RESET])
def test_no_cause_is_diagnosed_without_support(cause: str) -> None:
    findings, _ = diagnose(CHECKLIST, session_with(("tcp.connect", "connect.ok")))
    assert cause not in [f.cause for f in findings if f.confidence >= CHECKLIST.threshold]


def test_a_group_of_correlated_signals_counts_once_with_its_strongest_member() -> None:
    from wizard.analysis import _total
    from wizard.model.checklist import Weight

    grouped = [(Weight(signal="a.b", weight=2, group="refused"), 1.0),
               (Weight(signal="c.d", weight=3, group="refused"), 0.5),
               (Weight(signal="e.f", weight=1), 1.0)]
    assert _total(grouped) == 2 + 1
    ungrouped = [(Weight(signal="a.b", weight=2), 1.0), (Weight(signal="c.d", weight=3), 0.5)]
    assert _total(ungrouped) == 3.5


def test_a_fact_that_raised_several_signals_is_cited_once() -> None:
    session = session_with(("packets.capture", "rst.from_path"), ("packets.capture", "rst.ttl_mismatch"))
    for step in session.steps:
        for check in step.checks:
            for sig in check.signals:
                sig.fact = "RST at 22.5 ms: sent by something on the path"
    findings, _ = diagnose(CHECKLIST, session)
    middlebox = next(f for f in findings if f.cause == "middlebox-reset")
    assert middlebox.evidence == ["packets.capture: RST at 22.5 ms: sent by something on the path"]
