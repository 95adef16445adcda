"""The stages of one step's checks, run one after another, concurrently within one (pure
asyncio, no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


async def run_stages(checks: list[tuple[int, int]],
                     start: Callable[[int, asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``(stage, index)`` checks stage after stage, concurrently within one. A stage
    starts when every check of the stage before has ended or let it start (its gate set by
    ``CheckContext.let_next_stage_start``), and every check of the stages before that has
    ended: a check that lets the next stage in early still ends before the one after it."""
    async with asyncio.TaskGroup() as group:
        ended: list[asyncio.Task[None]] = []  # the stages before the previous one
        previous: list[tuple[asyncio.Task[None], asyncio.Event]] = []
        for stage in sorted({s for s, _ in checks}):
            if ended:
                await asyncio.wait(ended)
            for task, gate in previous:
                if not task.done() and not gate.is_set():
                    opened = asyncio.ensure_future(gate.wait())
                    try:
                        await asyncio.wait({task, opened}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        opened.cancel()
            ended += [task for task, _ in previous]
            previous = []
            for s, index in checks:
                if s == stage:
                    gate = asyncio.Event()
                    previous.append((group.create_task(start(index, gate)), gate))
