"""``within``: the bound on every await of the tool, and never a sink for a cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from wizard.model.cancel import within


def test_within_returns_what_the_awaitable_returns() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(within(answer(), 1.0)) == 42


def test_within_raises_timeout_error_once_its_time_passed() -> None:
    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await within(asyncio.sleep(10), 0.05)
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.0


def test_no_timeout_means_no_bound() -> None:
    async def main() -> str:
        return await within(asyncio.sleep(0.01, result="slept"), None)

    assert asyncio.run(main()) == "slept"


def test_a_cancellation_in_the_turn_the_awaitable_ends_is_not_swallowed() -> None:
    # 3.11's asyncio.wait_for returns the result here and drops the cancellation: a Ctrl-C
    # that lands as a read of /proc finishes goes unseen, and the run goes on to its next probe.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        task = asyncio.create_task(within(fut, 5.0))
        await asyncio.sleep(0)  # the task now waits on fut
        fut.set_result(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_cancellation_while_waiting_reaches_the_awaitable() -> None:
    async def main() -> bool:
        cancelled = asyncio.Event()

        async def work() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        task = asyncio.create_task(within(work(), 5.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return cancelled.is_set()

    assert asyncio.run(main())
