"""A long watch's memory is bounded whatever the traffic, and its session still holds every
event: tens of thousands of resets fed through the real watch loop (the capture replaced by
synthetic segments: no root, no network), the Python heap measured with tracemalloc."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Iterator
from typing import ClassVar

from wizard.diag.packets.io.live import Tally
from wizard.diag.packets.parse.frames import ETHERNET, Segment, decode
from wizard.engine import watch as engine
from wizard.engine.watch import WATCH_FLOWS, WatchPlan, WatchState
from wizard.lab.pcapgen import Ends, conversation
from wizard.model.target import Target

RESETS = 20_000
WARM = WATCH_FLOWS + 1_000  # by then the tracker holds as many flows as it ever will
PORTS = 20_000  # client ports cycle: a port is reused, as a busy client reuses them
#: the heap's growth allowed over the last RESETS - WARM resets (about 15,000): some 70 bytes
#: a reset. Each event kept as a Python object costs about 10 KB (some 150 MB for these).
BOUND = 1 << 20


def _template(ending: str) -> list[Segment]:
    return [decode(ETHERNET, ts, frame) for ts, frame in conversation(Ends(), 40000, 0.0, ending)]


class _Capture:
    """LiveCapture's interface, its packets made up: connections ending in a reset of the
    server's application or of the path (the senders alternate), a batch per read; its kernel
    says it dropped some packets (a queue that was full once)."""

    opened: ClassVar[list[_Capture]] = []

    def __init__(self, expression: str) -> None:
        self.shapes = [_template("server-app"), _template("path")]
        self.made = 0
        self.tally = Tally(kept=RESETS * 9, dropped=7)
        _Capture.opened.append(self)

    def open(self) -> _Capture:
        return self

    def _connection(self, i: int, now: float) -> Iterator[Segment]:
        cport = 1024 + i % PORTS
        for seg in self.shapes[i % 2]:
            mine = seg.sport == 40000
            yield seg._replace(ts=now + seg.ts, sport=cport if mine else seg.sport, dport=seg.dport if mine else cport)

    def read(self, timeout: float, max_packets: int = 4096) -> list[Segment]:
        if self.made >= RESETS:
            time.sleep(min(timeout, 0.01))
            return []
        batch, now = [], time.time()
        for i in range(self.made, min(self.made + 300, RESETS)):
            batch += self._connection(i, now)
        self.made = min(self.made + 300, RESETS)
        return batch

    def stats(self) -> Tally:
        return self.tally

    def close(self) -> None:
        pass


async def _none(*args: object) -> tuple[None, None]:
    return None, None


async def _nothing(*args: object) -> None:
    return None


def test_a_long_watch_keeps_every_event_in_a_bounded_heap(monkeypatch):
    monkeypatch.setattr(engine, "LiveCapture", _Capture)
    monkeypatch.setattr(engine, "_kernel", _none)  # no tracefs, no logs: the packets' events alone
    monkeypatch.setattr(engine, "_logs", _nothing)
    monkeypatch.setattr(engine, "_journal", _nothing)
    heap: dict[int, int] = {}
    sampled: list[dict[str, object]] = []
    plan, state = WatchPlan(Target(host="10.2.0.2", port=8080, addresses=["10.2.0.2"]), duration_s=3600), WatchState()

    def emit(event: dict[str, object]) -> None:
        n = event.get("n")
        if n in (WARM, RESETS):
            heap[n] = tracemalloc.get_traced_memory()[0]
        if isinstance(n, int) and n % 1000 == 1:
            sampled.append(json.loads(json.dumps(event)))

    plan.emit = emit

    async def run() -> None:
        task = asyncio.ensure_future(engine.watch(plan, state))
        while not task.done() and not (_Capture.opened and _Capture.opened[-1].made >= RESETS):
            await asyncio.sleep(0.05)
        end = time.monotonic() + 60  # the last ones settle (SETTLE_S) and are emitted
        while not task.done() and RESETS not in heap and time.monotonic() < end:
            await asyncio.sleep(0.05)
        task.cancel()  # as Ctrl-C ends a watch: what is pending is still attributed
        try:
            await task
        except asyncio.CancelledError:
            pass
        heap[0] = tracemalloc.get_traced_memory()[0]  # what the ended watch keeps

    tracemalloc.start()
    try:
        asyncio.run(run())
    finally:
        tracemalloc.stop()
    for at in (RESETS, 0):  # while the last reset is emitted, and once the watch ended
        grown = heap.get(at, heap[0]) - heap[WARM]
        assert grown < BOUND, f"the heap grew {grown} bytes over {RESETS - WARM} resets ({heap})"
    # Every event is in the session, as it was streamed, numbered in order and counted.
    events = state.observation.events
    assert len(events) == RESETS
    state.observation.count()
    assert state.observation.by_sender == {"server-app": RESETS // 2, "path": RESETS // 2}
    assert [ev.n for ev in events] == list(range(1, RESETS + 1))
    for streamed in sampled:
        stored = events[int(streamed["n"]) - 1].model_dump(mode="json")  # type: ignore[call-overload]
        assert {"type": "reset", **stored} == streamed
    # What the capture lost is said, in the session and in the check's summary.
    source = state.observation.sources[0]
    assert source.lost == 7 and any("dropped 7 of the 180000 packets" in note for note in source.notes)
    summary = engine.observed_result(state.observation, "live capture").summary
    assert summary.endswith("; 7 packets lost by the capture, resets among them not seen")
