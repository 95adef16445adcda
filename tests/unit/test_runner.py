"""The runner: concurrent checks, bounded, and no check's failure stops the run."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from pydantic import Field

from tests.unit.fakes import FakeHost, make_ctx
from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    Tool,
    register,
)
from wizard.engine.runner import CheckFinished, Runner
from wizard.model import CheckResult, CheckSpec, Context, Session, Status, ToolInfo


class SleepParams(CheckParams):
    seconds: float = Field(default=0.0, ge=0)
    outcome: str = "pass"


@register
class _SleepCheck(Check[SleepParams]):
    id = "test.sleep"
    title = "sleeps, then passes or fails"
    step = "handshake"
    Params = SleepParams
    emits = ("test.slept",)

    async def run(self, ctx: CheckContext, params: SleepParams) -> CheckResult:
        await asyncio.sleep(params.seconds)
        if params.outcome == "raise":
            raise RuntimeError("boom in the check")
        f = Findings()
        f.signal("test.slept", f"slept {params.seconds}s")
        return f.result(Status(params.outcome), f"slept {params.seconds}")


@register
class _SlowCheck(_SleepCheck):
    id = "test.slow"
    title = "another sleeper"


@register
class _EarlyCheck(Check[SleepParams]):
    id = "test.early"
    title = "lets the next stage start, then sleeps"
    step = "handshake"
    Params = SleepParams

    async def run(self, ctx: CheckContext, params: SleepParams) -> CheckResult:
        ctx.let_next_stage_start()
        await asyncio.sleep(params.seconds)
        return Findings().result(Status.PASS, "done")


ENDED: list[str] = []


@register
class _SharedWorkCheck(Check[CheckParams]):
    id = "test.shared"
    title = "waits on shared work"
    step = "handshake"

    async def run(self, ctx: CheckContext, params: CheckParams) -> CheckResult:
        async def long_work() -> None:
            try:
                await asyncio.sleep(30)
            finally:
                ENDED.append("shared work ended")

        await ctx.once("long", long_work)
        return Findings().result(Status.PASS, "done")


@register
class _RootCheck(Check[CheckParams]):
    id = "test.root"
    title = "needs root on the server"
    step = "handshake"
    needs_root: ClassVar = "server"

    async def run(self, ctx: CheckContext, params: CheckParams) -> CheckResult:
        return Findings().result(Status.PASS, "ran as root")


@register
class _ToolCheck(Check[CheckParams]):
    id = "test.tool"
    title = "needs nft on the server"
    step = "handshake"
    needs_tools = (Tool("nft", package="nftables"),)

    async def run(self, ctx: CheckContext, params: CheckParams) -> CheckResult:
        return Findings().result(Status.PASS, "nft was there")


def runner_for(specs: list[CheckSpec], *, root: bool = True, server: FakeHost | None = None,
               events: list | None = None) -> tuple[Runner, Session]:
    ctx = make_ctx(server=server, root=root)
    steps = [s.model_copy(update={"checks": specs}) if s.id == "handshake" else s.model_copy(update={"checks": []})
             for s in ctx.checklist.steps]
    ctx.checklist = ctx.checklist.model_copy(update={"steps": steps})
    session = Session(tool=ToolInfo(version="t"), started_at=datetime.now(UTC),
                      target=ctx.target, context=Context(client="c"))
    return Runner(ctx, events.append if events is not None else None), session


def spec(check: str, timeout: float = 5.0, **params: object) -> CheckSpec:
    return CheckSpec(check=check, params=params, timeout_s=timeout)


async def test_checks_of_a_step_run_concurrently() -> None:
    runner, session = runner_for([spec("test.sleep", seconds=1.0), spec("test.slow", seconds=1.0)])
    started = time.monotonic()
    step = await runner.run_step(session, "handshake")
    # One after the other they would take 2 s; together a little over 1 s, even on a busy box.
    assert time.monotonic() - started < 1.8
    assert [c.status for c in step.checks] == [Status.PASS, Status.PASS]


async def test_stages_of_a_step_run_one_after_another() -> None:
    events: list = []
    runner, session = runner_for([CheckSpec(check="test.sleep", params={"seconds": 0.3}, stage=1),
                                  CheckSpec(check="test.slow", params={"seconds": 0.0}, stage=0)],
                                 events=events)
    await runner.run_step(session, "handshake")
    order = [e.result.id for e in events if isinstance(e, CheckFinished)]
    started = [e.check for e in events if type(e).__name__ == "CheckStarted"]
    assert started == ["test.slow", "test.sleep"] and order == ["test.slow", "test.sleep"]
    assert [c.id for c in session.step("handshake").checks] == ["test.sleep", "test.slow"]


async def test_a_check_may_let_the_next_stage_start_but_not_the_one_after() -> None:
    events: list = []
    runner, session = runner_for([CheckSpec(check="test.early", params={"seconds": 0.4}, stage=0),
                                  CheckSpec(check="test.sleep", params={"seconds": 0.0}, stage=1),
                                  CheckSpec(check="test.slow", params={"seconds": 0.0}, stage=2)],
                                 events=events)
    await runner.run_step(session, "handshake")
    ended = [e.result.id for e in events if isinstance(e, CheckFinished)]
    started = [e.check for e in events if type(e).__name__ == "CheckStarted"]
    # stage 1 ran beside the early check; stage 2 waited for it to end
    assert ended == ["test.sleep", "test.early", "test.slow"]
    assert started.index("test.slow") > started.index("test.sleep")
    assert all(c.status == Status.PASS for c in session.step("handshake").checks)


async def test_a_check_that_raises_becomes_an_error_with_its_traceback_and_the_rest_runs() -> None:
    runner, session = runner_for([spec("test.sleep", outcome="raise"), spec("test.tool")])
    step = await runner.run_step(session, "handshake")
    failed = next(c for c in step.checks if c.id == "test.sleep")
    assert failed.status == Status.ERROR and "boom in the check" in failed.summary
    assert failed.evidence[0].kind == "traceback" and "RuntimeError" in failed.evidence[0].text
    assert next(c for c in step.checks if c.id == "test.tool").status == Status.PASS


async def test_a_check_that_hangs_is_ended_by_its_timeout() -> None:
    runner, session = runner_for([spec("test.sleep", timeout=0.2, seconds=30)])
    started = time.monotonic()
    step = await runner.run_step(session, "handshake")
    assert time.monotonic() - started < 2
    assert step.checks[0].status == Status.ERROR and "0.2s" in step.checks[0].summary


async def test_missing_privilege_is_a_skip_with_the_fix() -> None:
    runner, session = runner_for([spec("test.root")], root=False)
    result = (await runner.run_step(session, "handshake")).checks[0]
    assert result.status == Status.SKIP
    assert "root" in (result.reason or "") and "sudo" in (result.fix or "")


@pytest.mark.parametrize("spec_text, fix", [
    ("local", "run as root: sudo reset-wizard ..."),
    ("netns:srv", "run as root: sudo reset-wizard ..."),
    ("ssh:admin@web1", "allow passwordless sudo (sudo -n) for the ssh user on that host, or connect as root"),
])
async def test_the_fix_for_missing_server_root_is_the_one_for_the_context(spec_text: str, fix: str) -> None:
    runner, session = runner_for([spec("test.root")], root=False, server=FakeHost(spec_text, privileged=False))
    result = (await runner.run_step(session, "handshake")).checks[0]
    assert result.status == Status.SKIP and result.fix == fix


async def test_missing_tool_is_a_skip_naming_the_package() -> None:
    runner, session = runner_for([spec("test.tool")], server=FakeHost(tools={"ss"}))
    result = (await runner.run_step(session, "handshake")).checks[0]
    assert result.status == Status.SKIP and "nft" in (result.reason or "")
    assert result.fix == "apt install nftables"


async def test_an_unreachable_server_context_skips_server_checks_with_the_reason() -> None:
    class Unreachable(FakeHost):
        def unavailable(self) -> str:
            return "ssh: host key of srv has changed"

    runner, session = runner_for([spec("test.root"), spec("test.tool"), spec("test.sleep")],
                                 server=Unreachable())
    step = await runner.run_step(session, "handshake")
    by_id = {c.id: c for c in step.checks}
    assert by_id["test.root"].status == Status.SKIP and "host key" in (by_id["test.root"].reason or "")
    assert by_id["test.tool"].status == Status.SKIP and "cannot be reached" in (by_id["test.tool"].reason or "")
    assert by_id["test.sleep"].status == Status.PASS  # needs nothing of the server


async def test_results_keep_checklist_order_whatever_order_they_finish_in() -> None:
    runner, session = runner_for([spec("test.sleep", seconds=0.2), spec("test.tool")])
    step = await runner.run_step(session, "handshake")
    assert [c.id for c in step.checks] == ["test.sleep", "test.tool"]


async def test_rerunning_one_check_keeps_the_others() -> None:
    runner, session = runner_for([spec("test.sleep", outcome="fail"), spec("test.tool")])
    await runner.run_step(session, "handshake")
    step = await runner.run_step(session, "handshake", only=1)
    assert [c.id for c in step.checks] == ["test.sleep", "test.tool"]
    assert step.status == Status.FAIL


async def test_events_announce_every_check() -> None:
    events: list = []
    runner, session = runner_for([spec("test.sleep"), spec("test.tool")], events=events)
    await runner.run_step(session, "handshake")
    finished = [e for e in events if isinstance(e, CheckFinished)]
    assert sorted(e.result.id for e in finished) == ["test.sleep", "test.tool"]
    assert all(e.result.duration_ms >= 0 and e.result.title for e in finished)


async def test_cancelling_a_run_keeps_what_was_gathered_and_still_concludes() -> None:
    runner, session = runner_for([spec("test.sleep", seconds=0.05), spec("test.sleep", seconds=30, outcome="warn")])
    task = asyncio.create_task(runner.run_all(session))
    await asyncio.sleep(0.4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    handshake = session.step("handshake")
    assert [c.id for c in handshake.checks] == ["test.sleep"]
    assert session.finished_at is not None and session.diagnosis


async def test_a_cancelled_run_ends_the_shared_work_its_checks_left_behind() -> None:
    # ctx.once shields shared work from each check's cancellation; the run must end it, or it
    # would outlive the run holding what it holds (the packet probe's RST guard table).
    ENDED.clear()
    runner, session = runner_for([spec("test.shared")])
    task = asyncio.create_task(runner.run_all(session))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ENDED == ["shared work ended"]
