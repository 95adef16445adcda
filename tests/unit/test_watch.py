"""watch's parts that need no root: the kernel's lines matched to their reset (its own line,
the drops of its second, its flow's states), the server's log lines of its second, and the
settle before a reset is attributed and emitted."""

from __future__ import annotations

import asyncio
from collections import Counter

from wizard.diag.kernel.io.tracepipe import TracePipe
from wizard.diag.logs.io.follow import LogFollower
from wizard.diag.packets.parse.flows import Tracker
from wizard.diag.packets.parse.frames import ETHERNET, decode
from wizard.engine.watch import SETTLE_S, WatchPlan, WatchState, _flush
from wizard.hosts.local import LocalHost
from wizard.lab.pcapgen import Ends, conversation
from wizard.model.target import Target

LINE = ("python3-21719   [000] .N...  4955.664528: tcp_send_reset: skbaddr=0000000000000000 "
        "skaddr=0000000068e6ea9f src=10.2.0.2:8080 dest=10.1.0.2:{port} state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE")
RECEIVED = ("<idle>-0       [001] ..s1.  4955.664600: tcp_receive_reset: family=AF_INET sport={port} dport=8080 "
            "saddr=10.1.0.2 daddr=10.2.0.2 saddrv6=::ffff:10.1.0.2 daddrv6=::ffff:10.2.0.2 sock_cookie=1")
DROP = ("<idle>-0       [001] ..s1.  {ts}: kfree_skb: skbaddr=00000000a1 rx_sk=0000000000000000 protocol=2048 "
        "location=nft_do_chain+0x3c1/0x620 reason: NETFILTER_DROP")
STATE = ("python3-21719   [000] .....  4955.664500: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP "
         "sport=8080 dport={port} saddr=10.2.0.2 daddr=10.1.0.2 saddrv6=::ffff:10.2.0.2 daddrv6=::ffff:10.1.0.2 "
         "oldstate=TCP_ESTABLISHED newstate=TCP_CLOSE")


def pipe_with(*lines: str) -> TracePipe:
    pipe = TracePipe.__new__(TracePipe)
    pipe.empty()
    for line in lines:
        pipe.add(line)
    pipe.poll = lambda: None  # type: ignore[method-assign]  (no trace_pipe to read here)
    return pipe


def sightings(endings: list[str]) -> list:
    tracker = Tracker(server_port=8080)
    for i, ending in enumerate(endings):
        for ts, frame in conversation(Ends(), 40000 + i, 1.7e9 + i, ending):
            tracker.feed(decode(ETHERNET, ts, frame))
    return tracker.sightings


def test_a_reset_gets_the_kernel_line_of_its_own_flow_only():
    found = sightings(["server-app", "server-app"])
    pipe = pipe_with(LINE.format(port=40001))
    plan, state = WatchPlan(Target(host="10.2.0.2", port=8080)), WatchState()
    emitted: list[dict] = []
    plan.emit = emitted.append
    left = _flush([(4955.7, s) for s in found], 4955.7 + SETTLE_S + 1, state, pipe, plan)
    assert left == []
    first, second = state.observation.events
    assert first.kernel_reason is None
    assert second.kernel_reason is not None and "reason TCP_ABORT_ON_CLOSE" in second.kernel_reason
    assert [e["type"] for e in emitted] == ["reset", "reset"] and emitted[1]["kernel_reason"]


def test_the_senders_line_is_preferred_and_the_direction_must_fit():
    flow = ("10.1.0.2:40001", "10.2.0.2:8080")
    both = pipe_with(LINE.format(port=40001), RECEIVED.format(port=40001))
    sent = both.reason_for(*flow, "client")
    assert sent is not None and sent.startswith("the kernel sent it (tcp_send_reset, reason TCP_ABORT_ON_CLOSE")
    # The client's socket got it (the receiver's line) when no kernel here sent it: a path's RST.
    received = pipe_with(RECEIVED.format(port=40001)).reason_for(*flow, "client")
    assert received is not None and received.startswith("the kernel received it (tcp_receive_reset")
    # Neither line is about a RST toward the server, nor about another flow.
    assert both.reason_for(*flow, "server") is None
    assert both.reason_for("10.1.0.2:40002", "10.2.0.2:8080", "client") is None


def test_drops_of_that_second_and_the_flows_states_come_with_the_reset():
    pipe = pipe_with(DROP.format(ts="4955.100000"), DROP.format(ts="4955.600000"), DROP.format(ts="4950.000000"),
                     STATE.format(port=40001), STATE.format(port=40009))
    view = pipe.view("10.1.0.2:40001", "10.2.0.2:8080", "client", 4955.7)
    assert view.drops == ["2 x NETFILTER_DROP at nft_do_chain+0x3c1/0x620"]  # not the one 5 s before
    assert view.states == ["10.2.0.2:8080 TCP_ESTABLISHED -> TCP_CLOSE"]
    assert pipe.seen == Counter(kfree_skb=3, inet_sock_set_state=2)


def test_a_reset_waits_for_the_kernel_line_before_it_is_emitted():
    found = sightings(["path"])
    plan, state = WatchPlan(Target(host="10.2.0.2", port=8080)), WatchState()
    left = _flush([(10.0, found[0])], 10.0 + SETTLE_S / 2, state, None, plan)
    assert len(left) == 1 and len(state.observation.events) == 0
    _flush(left, 10.0 + SETTLE_S, state, None, plan)
    assert [e.sender for e in state.observation.events] == ["path"]


def test_logs_are_followed_from_their_end_and_a_reset_gets_the_lines_of_its_second(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("2026-12-02T10:00:00Z old line, before the watch\n")

    async def go() -> LogFollower:
        follower = LogFollower(LocalHost(), clean=lambda s: s.replace("hunter2", "[redacted]"))
        await follower.start([str(log)])
        with log.open("a") as f:
            f.write("2026-12-02T10:00:05Z worker 3 aborted the connection password=hunter2\n"
                    "2026-12-02T10:00:09Z later line\n2026-12-02T10:00:10Z unfinis")
        await follower.poll()
        return follower

    follower = asyncio.run(go())
    at = 1796205605.2  # 2026-12-02T10:00:05.2Z
    assert follower.near(at) == [f"{log}: 2026-12-02T10:00:05Z worker 3 aborted the connection "
                                 "password=[redacted]"]
    assert follower.lines == 2  # the unfinished line waits for its newline


def test_without_tracefs_the_kernel_is_a_skipped_source_with_its_fix_and_nothing_is_mounted(monkeypatch):
    from wizard.diag.kernel.io import tracing
    from wizard.engine import watch as engine

    async def nowhere(host):
        return ""

    async def no_mount(*a, **kw):
        raise AssertionError("tracefs mounted without --allow-tracefs-mount")

    monkeypatch.setattr(tracing, "find_tracefs", nowhere)
    monkeypatch.setattr(tracing, "run_command", no_mount)
    plan, state = WatchPlan(Target(host="127.0.0.1", port=8080)), WatchState()
    trace, pipe = asyncio.run(engine._kernel(plan, state))
    assert trace is None and pipe is None
    [said] = state.observation.kernel
    assert said.startswith("skipped: no kernel reasons or drops: tracefs is not mounted")
    assert "fix: mount -t tracefs nodev /sys/kernel/tracing" in said and "--allow-tracefs-mount" in said


def test_a_sessions_export_redacts_its_resets_log_lines_and_with_addresses_its_flows():
    from wizard.cli.diagnose import checklist_for
    from wizard.engine.watch import watch_session
    from wizard.redact import Redactor, redact_session
    from wizard.report import render_json, render_report

    plan, state = WatchPlan(Target(host="10.2.0.2", port=8080)), WatchState()
    line = "/var/log/app.log: login failed password=hunter2 from 10.1.0.2"
    _flush([(0.0, s) for s in sightings(["server-app", "path"])], SETTLE_S + 1, state, None, plan, lambda at: [line])
    session = watch_session(plan, state, checklist_for(False))
    plain = redact_session(session).observation
    assert len(plain.events) == 2
    assert all("hunter2" not in ev.logs[0] and "10.1.0.2" in ev.flow for ev in plain.events)
    hidden = redact_session(session, Redactor(addresses=True)).observation
    assert all("10.1.0.2" not in ev.flow + ev.logs[0] + " ".join(ev.reasons) for ev in hidden.events)
    # what is written: the session JSON (its events read back from the watch's log) and the report
    exported = render_json(session)
    assert "hunter2" not in exported + render_report(session) and "password=«secret-1» from 10.1.0.2" in exported
    assert "10.1.0.2" not in render_json(session, redact_addresses=True) + render_report(session, redact_addresses=True)
    assert [ev.logs for ev in session.observation.events] == [[line], [line]]  # the session itself is not touched
    assert "password=hunter2 from 10.1.0.2" in session.to_json()  # unredacted, as --no-redact writes it


def test_a_watch_session_names_the_server_context_its_counters_and_logs_were_read_in():
    # the report's "server evidence from ..." and the rerun command come from it
    from wizard.cli.diagnose import checklist_for
    from wizard.engine.watch import watch_session
    from wizard.hosts.local import NetnsHost

    target = Target(host="10.2.0.2", port=8080)
    session = watch_session(WatchPlan(target, server=NetnsHost("web1")), WatchState(), checklist_for(False))
    assert session.context.server == "netns:web1"
    assert session.rerun_argv()[-2:] == ["--server", "netns:web1"]
    assert watch_session(WatchPlan(target), WatchState(), checklist_for(False)).context.server == "local"


def test_a_busy_ports_lines_do_not_push_a_resets_own_line_out_before_it_is_matched():
    # a reset is matched some 0.3 s after it; at 600 resets a second thousands of other
    # flows' lines come in between (each reset: a sent and a received line, state changes)
    from wizard.diag.kernel.io import tracepipe

    lines = [LINE.format(port=40001), STATE.format(port=40001)]
    for port in range(41000, 41000 + 3000):
        lines += [LINE.format(port=port), RECEIVED.format(port=port), STATE.format(port=port)]
    pipe = pipe_with(*lines)
    view = pipe.view("10.1.0.2:40001", "10.2.0.2:8080", "client", 4955.7)
    assert view.reason is not None and "reason TCP_ABORT_ON_CLOSE" in view.reason
    assert view.states == ["10.2.0.2:8080 TCP_ESTABLISHED -> TCP_CLOSE"]
    # and what is kept stays bounded: the oldest flows go first
    more = pipe_with(*[LINE.format(port=1024 + i % 60000) for i in range(tracepipe.FLOWS + 500)])
    assert len(more.recent.flows) == tracepipe.FLOWS
    assert more.reason_for("10.1.0.2:1024", "10.2.0.2:8080", "client") is None  # the oldest, gone
    last = 1024 + (tracepipe.FLOWS + 499) % 60000
    assert more.reason_for(f"10.1.0.2:{last}", "10.2.0.2:8080", "client") is not None


def test_a_reset_is_a_line_on_the_terminal_unless_quiet_or_the_tui_draws_there(capsys):
    import io

    from wizard.cli.watch import emitter

    event = {"type": "reset", "n": 3, "at": "2026-12-07T01:40:16Z", "flow": "10.0.0.2:4000 -> 10.0.0.1:80",
             "flags": "RA", "toward": "client", "sender_words": "the server's application"}
    shown, hidden = io.StringIO(), io.StringIO()
    emitter(False, shown, quiet=False)(event)
    emitter(False, hidden, quiet=True)(event)
    emitter(False, hidden, quiet=True)({"type": "end", "resets": 3})
    assert shown.getvalue() == ("   3  2026-12-07T01:40:16Z  10.0.0.2:4000 -> 10.0.0.1:80  RA  toward the client: "
                                "the server's application\n")
    assert hidden.getvalue() == ""
    emitter(True, hidden, quiet=True)(event)  # NDJSON goes to stdout whatever else is asked
    assert '"n":3' in capsys.readouterr().out and hidden.getvalue() == ""
