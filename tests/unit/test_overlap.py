"""Steps 2-5 overlap; probes bracketed by readings still see no neighbour's probe."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pydantic import Field

from tests.unit.fakes import make_ctx
from wizard.engine.contract import Check, CheckContext, CheckParams, Findings, register
from wizard.engine.runner import OVERLAP, Runner, StepFinished, StepStarted, overlapping
from wizard.engine.traffic import Traffic
from wizard.model import STEP_IDS, CheckResult, CheckSpec, Context, Session, Status, ToolInfo

LOG: list[tuple[str, str, float]] = []  # (check, "start"/"end", time)


class WaitParams(CheckParams):
    seconds: float = Field(default=0.3, ge=0)
    mode: str = ""  # "", "shared" or "alone": how the check talks to the target


async def _wait(ctx: CheckContext, check_id: str, params: WaitParams) -> CheckResult:
    async def body() -> None:
        LOG.append((check_id, "start", time.monotonic()))
        await asyncio.sleep(params.seconds)
        LOG.append((check_id, "end", time.monotonic()))

    if params.mode == "shared":
        async with ctx.traffic.shared():
            await body()
    elif params.mode == "alone":
        async with ctx.traffic.alone():
            await body()
    else:
        await body()
    return Findings().result(Status.PASS, "waited")


def _waiter(check_id: str, step_id: str) -> type[Check[WaitParams]]:
    class _W(Check[WaitParams]):
        id = check_id
        title = check_id
        step = step_id  # type: ignore[assignment]
        Params = WaitParams

        async def run(self, ctx: CheckContext, params: WaitParams) -> CheckResult:
            return await _wait(ctx, self.id, params)

    return register(_W)


for _step in STEP_IDS:
    _waiter(f"test.wait.{_step}", _step)
    _waiter(f"test.probe.{_step}", _step)
_waiter("test.echo.connectivity", "connectivity").beside_next_steps = True  # as the ping's ICMP echo


def runner_with(specs: dict[str, list[CheckSpec]], events: list | None = None) -> tuple[Runner, Session]:
    ctx = make_ctx()
    steps = [s.model_copy(update={"checks": specs.get(s.id, [])}) for s in ctx.checklist.steps]
    ctx.checklist = ctx.checklist.model_copy(update={"steps": steps})
    session = Session(tool=ToolInfo(version="t"), started_at=datetime.now(UTC),
                      target=ctx.target, context=Context(client="c"))
    return Runner(ctx, events.append if events is not None else None), session


def span(check: str) -> tuple[float, float]:
    times = {what: t for c, what, t in LOG if c == check}
    return times["start"], times["end"]


def test_only_the_steps_between_identify_and_the_handshake_are_grouped() -> None:
    assert overlapping(STEP_IDS) == [["identify"], ["connectivity", "server-logs", "firewall", "app-errors"],
                                     ["handshake"]]
    assert overlapping(["identify", "handshake"]) == [["identify"], ["handshake"]]
    assert "identify" not in OVERLAP and "handshake" not in OVERLAP


async def test_steps_two_to_five_run_side_by_side_and_the_handshake_after_them() -> None:
    LOG.clear()
    events: list = []
    specs = {s: [CheckSpec(check=f"test.wait.{s}", params={"seconds": 0.4})] for s in STEP_IDS}
    runner, session = runner_with(specs, events)
    await runner.run_all(session)
    middle = [span(f"test.wait.{s}") for s in sorted(OVERLAP)]
    assert max(a for a, _ in middle) < min(b for _, b in middle)  # they were all running at once
    assert span("test.wait.handshake")[0] >= max(b for _, b in middle)
    # step 1 runs beside the readings of steps 2-5 (these checks probe nothing)
    assert span("test.wait.identify")[0] < min(b for _, b in middle)
    finished = [e.step for e in events if isinstance(e, StepFinished)]
    assert sorted(finished) == sorted(STEP_IDS) and {e.step for e in events if isinstance(e, StepStarted)} == set(STEP_IDS)
    assert all(session.step(s).checks[0].status == Status.PASS for s in STEP_IDS)


async def test_the_handshake_starts_beside_a_check_that_sends_nothing_to_the_port_and_the_run_waits_for_it() -> None:
    LOG.clear()
    events: list = []
    specs = {"connectivity": [CheckSpec(check="test.echo.connectivity", params={"seconds": 0.7}),
                              CheckSpec(check="test.probe.connectivity", params={"seconds": 0.1, "mode": "shared"})],
             "firewall": [CheckSpec(check="test.probe.firewall", params={"seconds": 0.2, "mode": "alone"})],
             "handshake": [CheckSpec(check="test.probe.handshake", params={"seconds": 0.1, "mode": "shared"})]}
    runner, session = runner_with(specs, events)
    await runner.run_all(session)
    handshake = span("test.probe.handshake")
    assert handshake[0] >= max(span("test.probe.connectivity")[1], span("test.probe.firewall")[1])
    assert handshake[0] < span("test.echo.connectivity")[1]  # it did not wait for the echo
    assert session.step("connectivity").checks[0].status == Status.PASS  # the run waited for it
    finished = [e.step for e in events if isinstance(e, StepFinished)]
    assert finished.index("handshake") < finished.index("connectivity")


async def test_no_probe_of_steps_two_to_five_starts_before_step_one_has_ended() -> None:
    # Step 1 lists the client's sockets to the target: none of the run's probes may be among them.
    LOG.clear()
    specs = {"identify": [CheckSpec(check="test.wait.identify", params={"seconds": 0.3})],
             "connectivity": [CheckSpec(check="test.probe.connectivity", params={"seconds": 0.1, "mode": "shared"})],
             "firewall": [CheckSpec(check="test.probe.firewall", params={"seconds": 0.1, "mode": "alone"})],
             "server-logs": [CheckSpec(check="test.wait.server-logs", params={"seconds": 0.1})]}
    runner, session = runner_with(specs)
    await runner.run_all(session)
    ended = span("test.wait.identify")[1]
    assert span("test.probe.connectivity")[0] >= ended and span("test.probe.firewall")[0] >= ended
    assert span("test.wait.server-logs")[0] < ended  # a reading does not wait


async def test_a_window_opened_alone_overlaps_no_probe_of_another_step() -> None:
    LOG.clear()
    specs = {"connectivity": [CheckSpec(check="test.probe.connectivity", params={"seconds": 0.3, "mode": "shared"})],
             "firewall": [CheckSpec(check="test.probe.firewall", params={"seconds": 0.3, "mode": "alone"})],
             "app-errors": [CheckSpec(check="test.probe.app-errors", params={"seconds": 0.3, "mode": "alone"})],
             "server-logs": [CheckSpec(check="test.wait.server-logs", params={"seconds": 0.3})]}
    runner, session = runner_with(specs)
    await runner.run_all(session)
    windows = [span(c) for c in ("test.probe.connectivity", "test.probe.firewall", "test.probe.app-errors")]
    for i, (a1, b1) in enumerate(windows):
        for a2, b2 in windows[i + 1:]:
            assert b1 <= a2 or b2 <= a1, "two probes overlapped a bracketed window"
    reader = span("test.wait.server-logs")
    assert any(reader[0] < b and a < reader[1] for a, b in windows)  # a reader is held back by none


async def test_shared_probes_run_together_and_a_waiting_window_goes_before_later_ones() -> None:
    traffic = Traffic()
    order: list[str] = []

    async def probe(name: str, delay: float, hold: float) -> None:
        await asyncio.sleep(delay)
        async with traffic.shared():
            order.append(f"{name}+")
            await asyncio.sleep(hold)
            order.append(f"{name}-")

    async def window() -> None:
        await asyncio.sleep(0.05)
        async with traffic.alone():
            assert not any(o.endswith("+") and o[:-1] + "-" not in order for o in order), "a probe is still on"
            order.append("window")
            await asyncio.sleep(0.1)

    await asyncio.gather(probe("a", 0, 0.2), probe("b", 0.01, 0.2), window(), probe("c", 0.1, 0.05))
    assert order.index("a+") < order.index("b-") and order.index("b+") < order.index("a-")  # together
    assert order.index("window") > max(order.index("a-"), order.index("b-"))
    assert order.index("c+") > order.index("window")  # c asked after the window did: it waited


async def test_a_cancelled_window_does_not_keep_probes_out() -> None:
    traffic = Traffic()
    got: list[str] = []

    async def hold() -> None:
        async with traffic.shared():
            await asyncio.sleep(0.2)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(traffic.alone().__aenter__())
    await asyncio.sleep(0.01)
    waiting.cancel()

    async def later() -> None:
        async with traffic.shared():
            got.append("in")

    await asyncio.wait_for(later(), 1.0)
    assert got == ["in"]
    await holder


async def test_a_window_may_open_while_held_its_probe_waits_for_the_release() -> None:
    traffic = Traffic()
    traffic.hold()
    seen: list[str] = []

    async def window() -> None:
        async with traffic.alone(while_held=True):
            seen.append("readings")  # the first readings, during the hold
            await traffic.unheld()
            seen.append("probe")

    async def probe() -> None:
        async with traffic.shared():
            seen.append("shared")

    tasks = [asyncio.create_task(window()), asyncio.create_task(probe())]
    await asyncio.sleep(0.05)
    assert seen == ["readings"]  # neither the window's probe nor a shared one went during the hold
    await traffic.release()
    await asyncio.gather(*tasks)
    assert seen == ["readings", "probe", "shared"]  # the window, opened first, goes first


class _LookParams(WaitParams):
    opens: bool = True  # for the opener: whether it asks for the shared bracket


@register
class _Look(Check[WaitParams]):
    """Step 1's look at connections the run's probes would add to (as client.sockets)."""

    id = "test.look.identify"
    title = id
    step = "identify"
    Params = WaitParams
    before_probes = True

    async def run(self, ctx: CheckContext, params: WaitParams) -> CheckResult:
        return await _wait(ctx, self.id, params)


@register
class _Opener(Check[_LookParams]):
    """A check that asks for the shared bracket first thing (as firewall.rules)."""

    id = "test.opener.firewall"
    title = id
    step = "firewall"
    Params = _LookParams
    needs_root = "server"

    @classmethod
    def opens_bracket(cls, params: object) -> bool:
        return isinstance(params, _LookParams) and params.opens

    async def run(self, ctx: CheckContext, params: _LookParams) -> CheckResult:
        return await _wait(ctx, self.id, params)


@register
class _Busy(Check[WaitParams]):
    """A check whose first step holds the loop (imports, parsing), as a real one's may."""

    id = "test.busy.connectivity"
    title = id
    step = "connectivity"
    Params = WaitParams

    async def run(self, ctx: CheckContext, params: WaitParams) -> CheckResult:
        LOG.append((self.id, "start", time.monotonic()))
        time.sleep(params.seconds)  # noqa: ASYNC251 - blocking on purpose: CPU work on the loop
        LOG.append((self.id, "end", time.monotonic()))
        return Findings().result(Status.PASS, "busy")


async def test_probes_wait_for_step_ones_look_at_the_sockets_not_for_the_whole_step() -> None:
    LOG.clear()
    specs = {"identify": [CheckSpec(check="test.look.identify", params={"seconds": 0.1}),
                          CheckSpec(check="test.wait.identify", params={"seconds": 0.4})],
             "connectivity": [CheckSpec(check="test.probe.connectivity", params={"seconds": 0.05, "mode": "shared"})],
             "firewall": [CheckSpec(check="test.probe.firewall", params={"seconds": 0.05, "mode": "alone"})]}
    runner, session = runner_with(specs)
    await runner.run_all(session)
    looked = span("test.look.identify")[1]
    for probe in ("test.probe.connectivity", "test.probe.firewall"):
        assert looked <= span(probe)[0] < span("test.wait.identify")[1]


async def test_a_failed_look_still_lets_the_probes_go() -> None:
    LOG.clear()

    async def broken(self: Check[WaitParams], ctx: CheckContext, params: WaitParams) -> CheckResult:
        raise RuntimeError("no socket table")

    specs = {"identify": [CheckSpec(check="test.look.identify")],
             "connectivity": [CheckSpec(check="test.probe.connectivity", params={"seconds": 0.05, "mode": "shared"})]}
    runner, session = runner_with(specs)
    original = _Look.run
    _Look.run = broken  # type: ignore[method-assign]
    try:
        await asyncio.wait_for(runner.run_all(session), 5)
    finally:
        _Look.run = original  # type: ignore[method-assign]
    assert session.step("identify").checks[0].status == Status.ERROR
    assert session.step("connectivity").checks[0].status == Status.PASS


def _recording_begin(monkeypatch: object, begun: list[tuple[str, float]]) -> None:
    import wizard.engine.runner as runner_module

    def begin(ctx: CheckContext, check_id: str) -> None:
        begun.append((check_id, time.monotonic()))

    monkeypatch.setattr(runner_module, "begin_shared_bracket", begin)  # type: ignore[attr-defined]


async def test_the_shared_bracket_begins_before_the_other_checks_first_steps(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    LOG.clear()
    begun: list[tuple[str, float]] = []
    _recording_begin(monkeypatch, begun)
    specs = {"identify": [CheckSpec(check="test.look.identify", params={"seconds": 0.05})],
             "connectivity": [CheckSpec(check="test.busy.connectivity", params={"seconds": 0.2})],
             "firewall": [CheckSpec(check="test.opener.firewall", params={"seconds": 0.05})]}
    runner, session = runner_with(specs)
    await runner.run_all(session)
    # the busy check comes first in the checklist, and holds the loop 0.2 s in its first step
    assert [c for c, _ in begun] == ["test.opener.firewall"]
    assert begun[0][1] <= span("test.busy.connectivity")[0]


async def test_no_bracket_begins_for_a_check_that_will_not_ask_for_one(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    begun: list[tuple[str, float]] = []
    _recording_begin(monkeypatch, begun)
    for params, root, stage in (({"opens": False}, True, 0), ({}, False, 0), ({}, True, 1)):
        specs = {"identify": [CheckSpec(check="test.look.identify", params={"seconds": 0})],
                 "firewall": [CheckSpec(check="test.opener.firewall", params={"seconds": 0, **params}, stage=stage)]}
        runner, session = runner_with(specs)
        runner.ctx.server_root = root  # without it the check is skipped: it asks for nothing
        await runner.run_all(session)
        assert begun == [], (params, root, stage)


async def test_a_failing_look_ahead_for_the_bracket_leaves_the_run_to_the_checks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    begun: list[tuple[str, float]] = []
    _recording_begin(monkeypatch, begun)

    async def unreachable(self: Runner, cls: type) -> None:
        raise OSError("ssh: connection refused")

    specs = {"identify": [CheckSpec(check="test.look.identify", params={"seconds": 0})],
             "firewall": [CheckSpec(check="test.opener.firewall", params={"seconds": 0})]}
    runner, session = runner_with(specs)
    monkeypatch.setattr(Runner, "preflight", unreachable)
    await runner.run_all(session)  # the look-ahead's failure does not end the run
    assert begun == []
    assert session.step("firewall").checks[0].status == Status.ERROR  # its run_check says why
