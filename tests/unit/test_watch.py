"""watch's parts that need no root: the kernel's line matched to its reset, and the settle
before a reset is attributed and emitted."""

from __future__ import annotations

from collections import deque

from wizard.diag.kernel.parse.tracelines import parse_line
from wizard.diag.packets.parse.flows import Tracker
from wizard.diag.packets.parse.frames import ETHERNET, decode
from wizard.engine.watch import SETTLE_S, TracePipe, WatchPlan, WatchState, _flush
from wizard.lab.pcapgen import Ends, conversation
from wizard.model.target import Target

LINE = ("python3-21719   [000] .N...  4955.664528: tcp_send_reset: skbaddr=0000000000000000 "
        "skaddr=0000000068e6ea9f src=10.2.0.2:8080 dest=10.1.0.2:{port} state=TCP_CLOSE reason=TCP_STATE")


def pipe_with(*lines: str) -> TracePipe:
    pipe = TracePipe.__new__(TracePipe)
    pipe.rest, pipe.recent = b"", deque(e for e in map(parse_line, lines) if e is not None)
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
    left = _flush([(0.0, s) for s in found], SETTLE_S + 1, state, pipe, plan)
    assert left == []
    first, second = state.observation.events
    assert first.kernel_reason is None
    assert second.kernel_reason is not None and "reason TCP_STATE" in second.kernel_reason
    assert [e["type"] for e in emitted] == ["reset", "reset"] and emitted[1]["kernel_reason"]


def test_a_reset_waits_for_the_kernel_line_before_it_is_emitted():
    found = sightings(["path"])
    plan, state = WatchPlan(Target(host="10.2.0.2", port=8080)), WatchState()
    left = _flush([(10.0, found[0])], 10.0 + SETTLE_S / 2, state, None, plan)
    assert len(left) == 1 and state.observation.events == []
    _flush(left, 10.0 + SETTLE_S, state, None, plan)
    assert [e.sender for e in state.observation.events] == ["path"]
