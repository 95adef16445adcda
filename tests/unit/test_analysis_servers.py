"""The ranking with what the running server's configuration and logs say: the rule, the
limit, the timeout or the worker that did it outranks the kernel mechanism it used."""

from __future__ import annotations

from tests.unit.test_analysis import ranked, session_with, top

# How a connection is aborted, as the kernel and the capture see it (no cause of its own).
ABORT = (("kernel.counters", "server.abort_on_data"), ("tcp.exchange", "probe.reset_after_data"),
         ("packets.capture", "rst.from_server_app"), ("kernel.resets", "ktrace.rst_disconnect"))


def test_an_abort_alone_stays_abortive_close() -> None:
    assert top(session_with(*ABORT)) == "abortive-close"


def test_a_matching_reject_rule_of_the_running_proxy_is_proxy_reject() -> None:
    s = session_with(*ABORT, ("process.settings", "proxy.reject_rule"))
    causes = ranked(s)
    assert causes[0][0] == "proxy-reject" and causes[0][1] > 0.9
    assert dict(causes)["abortive-close"] < causes[0][1] - 0.1
    # a rule that only may apply (it depends on the request) does not outweigh the mechanism
    assert top(session_with(*ABORT, ("process.settings", "proxy.reject_rule", 0.2))) == "abortive-close"


def test_a_limit_with_a_burst_whose_later_attempts_fail_is_rate_limit() -> None:
    s = session_with(*ABORT, ("tcp.burst", "burst.later_failed"), ("packets.capture", "timing.reset_beyond_nth"),
                     ("process.settings", "proxy.limit_rule"))
    assert top(s) == "rate-limit"


def test_the_servers_own_timeout_after_a_hold_is_idle_timeout() -> None:
    s = session_with(("tcp.exchange", "probe.reset_after_hold"), ("packets.capture", "rst.from_server_app"),
                     ("process.settings", "server.own_timeout"), ("process.settings", "server.reset_timedout"))
    assert top(s) == "idle-timeout"


def test_plain_text_to_a_tls_port_of_the_running_config_is_protocol_mismatch() -> None:
    s = session_with(("tcp.exchange", "probe.reset_after_data"), ("kernel.counters", "server.abort_on_close"),
                     ("process.settings", "server.protocol_differs"))
    assert top(s) == "protocol-mismatch"


def test_a_replaced_worker_under_a_stable_master_is_server_crash() -> None:
    s = session_with(("tcp.exchange", "probe.reset_after_data"), ("kernel.counters", "server.abort_on_close"),
                     ("process.workers", "process.worker_replaced"), ("logs.excerpt", "log.worker_killed"))
    assert top(s) == "server-crash"


def test_a_filled_connection_cap_outranks_the_abort_it_uses() -> None:
    s = session_with(*ABORT, ("tcp.burst", "burst.all_reset"), ("process.settings", "proxy.limit_rule"),
                     ("process.settings", "proxy.limit_reached"))
    assert top(s) == "rate-limit"


def test_the_running_configs_protocol_for_the_port_decides_an_in_band_error() -> None:
    answered = (("tcp.burst", "burst.all_ok"), ("tcp.exchange", "probe.ok"), ("tcp.connect", "connect.ok"),
                ("packets.capture", "rst.none_seen"))
    # plain HTTP to nginx's TLS port: a 400 and a FIN, no reset, yet the client cannot work
    assert top(session_with(*answered, ("process.settings", "server.protocol_differs"))) == "protocol-mismatch"
    # a probe that judged the port wrongly is outweighed by the configuration that serves it
    s = session_with(*answered, ("tcp.protocol", "protocol.mismatch"), ("process.settings", "server.protocol_matches"))
    assert top(s) == "no-reset-observed"


def test_an_abort_on_every_attempt_without_a_rule_does_not_propose_proxy_reject() -> None:
    # what the demo's aborting loopback server shows: no proxy, no rule, no proxy log line
    s = session_with(*ABORT, ("tcp.burst", "burst.all_reset"))
    assert "proxy-reject" not in dict(ranked(s))
    # the proxy's own log line alone names it, below a quoted rule
    logged = dict(ranked(session_with(*ABORT, ("tcp.burst", "burst.all_reset"), ("logs.excerpt", "log.proxy_reject"))))
    assert 0.3 < logged["proxy-reject"] < dict(ranked(session_with(*ABORT, ("process.settings", "proxy.reject_rule"))))[
        "proxy-reject"]
