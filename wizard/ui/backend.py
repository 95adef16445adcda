"""The UI's link to the runner: runs preparation and checks on a background event loop.

Checks run on their own thread and loop so that nothing they do (an import of scapy, a
slow psutil call, a probe waiting for its timeout) can freeze the interface. The engine
works on its own scratch Session; the UI receives copies of results through ``emit`` and
is the only one to mutate the Session it shows. Cancelling the awaiting UI worker cancels
the runner's task on the engine loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from wizard.model import Answers, Checklist, Session, StepResult


#: the interpreter's thread switch interval while the engine thread runs beside the UI
ENGINE_SWITCH_S = 0.0005


class Skip(NamedTuple):
    """A check that preflight says cannot run here, why, and what would enable it.

    A NamedTuple, not a frozen dataclass: this module loads before the TUI's first frame,
    and a frozen dataclass's generated methods took 0.58 ms to make there (this: 0.09)."""

    step: str
    check: str
    title: str
    reason: str
    fix: str


class Engine(Protocol):
    """What the app needs from a diagnosis backend (tests give a scripted one)."""

    def checklist(self) -> Checklist: ...

    def title(self, check_id: str) -> str: ...

    def expected_skips(self) -> list[Skip]: ...

    async def prepare(self, target_text: str, answers: Answers, server_spec: str) -> Session: ...

    async def preflight(self) -> list[Skip]: ...

    async def run_step(self, step_id: str, only: int | None,
                       emit: Callable[[Any], None]) -> StepResult: ...

    async def run_steps(self, step_ids: list[str],
                        emit: Callable[[Any], None]) -> list[StepResult]: ...

    async def run_groups(self, groups: list[list[str]],
                         emit: Callable[[Any], None]) -> list[StepResult]: ...

    def close(self) -> None: ...


class RunnerEngine:
    """The real backend: wizard.engine.runner on a daemon thread's event loop."""

    def __init__(self, *, probes: Any = None, client: Any = None, server: Any = None,
                 checklist: Checklist | None = None) -> None:
        self._probes, self._client, self._server = probes, client, server
        self._checklist = checklist
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ctx: Any = None
        self._scratch: Session | None = None
        self._lock = threading.Lock()
        self._switch: float | None = None

    def checklist(self) -> Checklist:
        with self._lock:
            if self._checklist is None:
                from wizard.engine.discovery import load

                self._checklist = load()
            return self._checklist

    def warm(self) -> None:
        """Import what a run loads (the runner, the probes; scapy when root), before it starts."""
        from wizard.engine.runner import real_probes

        real_probes()  # for its imports: each run makes its own probes
        if os.geteuid() == 0:
            from wizard.diag.packets.io.scapylib import warm_scapy

            warm_scapy()

    def title(self, check_id: str) -> str:
        from wizard.engine.discovery import get_check

        try:
            return str(get_check(check_id).title)
        except KeyError:
            return check_id

    def expected_skips(self) -> list[Skip]:
        """Checks that need root, when not root: known before anything is probed."""
        if os.geteuid() == 0:
            return []
        from wizard.engine.discovery import get_check

        out = []
        for step in self.checklist().steps:
            for spec in step.checks:
                cls = get_check(spec.check)
                if cls.needs_root:
                    out.append(Skip(step.id, cls.id, cls.title, f"needs root ({cls.needs_root} side)",
                                    "sudo reset-wizard …, or grant cap_net_raw,cap_net_admin"))
        return out

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            # The UI thread lays out and styles for milliseconds at a time; at the default
            # switch interval (5 ms) every wake-up of the engine's loop (a probe's answer, a
            # command's exit) waited that long for the GIL, and a run took twice headless's.
            self._switch = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch, ENGINE_SWITCH_S))
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="reset-wizard-engine", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    async def _on_engine(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        # asyncio.wrap_future chains cancellation: cancelling this await cancels the task.
        future = asyncio.run_coroutine_threadsafe(make(), self._ensure_loop())
        return await asyncio.wrap_future(future)

    async def prepare(self, target_text: str, answers: Answers, server_spec: str) -> Session:
        from wizard.engine.runner import prepare

        checklist = await asyncio.to_thread(self.checklist)

        async def go() -> Any:
            from wizard.hosts.files import check_logs, read_payload

            # The same refusals as `diagnose` (CLI.md: the form is the options, field for
            # field): an unreadable log or a missing @FILE stops the run before it starts.
            answers.payload = await read_payload(answers.payload)
            session, ctx = await prepare(target_text, answers, server_spec, probes=self._probes,
                                         checklist=checklist, client=self._client, server=self._server)
            if answers.logs:
                await check_logs(answers.logs, ctx.server)
            return session, ctx

        session, ctx = await self._on_engine(go)
        self._ctx, self._scratch = ctx, session.model_copy(deep=True)
        return session

    async def preflight(self) -> list[Skip]:
        from wizard.engine.discovery import get_check
        from wizard.engine.runner import Runner

        runner = Runner(self._ctx)
        checklist = self.checklist()

        async def go() -> list[Skip]:
            skips = []
            for step in checklist.steps:
                for spec in step.checks:
                    cls = get_check(spec.check)
                    result = await runner.preflight(cls)
                    if result is not None:
                        skips.append(Skip(step.id, cls.id, cls.title, result.reason or "",
                                          result.fix or ""))
            return skips

        return await self._on_engine(go)

    async def run_step(self, step_id: str, only: int | None,
                       emit: Callable[[Any], None]) -> StepResult:
        from wizard.engine.runner import Runner

        runner = Runner(self._ctx, emit)
        scratch = self._scratch
        assert scratch is not None, "prepare() first"

        async def go() -> Any:
            step = await runner.run_step(scratch, step_id, only=only)
            return step.model_copy(deep=True)

        return await self._on_engine(go)

    async def run_steps(self, step_ids: list[str],
                        emit: Callable[[Any], None]) -> list[StepResult]:
        """Steps that may overlap, run side by side exactly as `diagnose` runs them."""
        from wizard.engine.runner import Runner

        runner = Runner(self._ctx, emit)
        scratch = self._scratch
        assert scratch is not None, "prepare() first"

        async def go() -> Any:
            steps = await runner.run_group(scratch, step_ids)
            return [step.model_copy(deep=True) for step in steps]

        return await self._on_engine(go)

    async def run_groups(self, groups: list[list[str]],
                         emit: Callable[[Any], None]) -> list[StepResult]:
        """Groups of ``run_steps``, one after another on the engine's loop: each starts as the
        one before ends, as in `diagnose`, not when the UI thread gets round to asking. Step 1
        followed by steps that overlap runs beside them, as `diagnose` runs it (Runner.run_all):
        their readings start at once, their probes once step 1 has read the client's sockets."""
        from wizard.engine.runner import Runner

        runner = Runner(self._ctx, emit)
        scratch = self._scratch
        assert scratch is not None, "prepare() first"

        async def go() -> Any:
            await runner.run_groups(scratch, groups)
            return [scratch.step(s).model_copy(deep=True) for group in groups for s in group]

        return await self._on_engine(go)

    def close(self) -> None:
        loop = self._loop
        if loop is not None:
            # Here, not at the top: this module is loaded before the TUI's first frame, and
            # wizard.model's package loads pydantic (the engine has loaded it by now).
            from wizard.model.cancel import within

            ctx = self._ctx

            async def shut() -> None:
                for host in (getattr(ctx, "client", None), getattr(ctx, "server", None)):
                    close = getattr(host, "close", None)
                    if close is not None:
                        try:
                            await within(close(), 2.0)
                        except Exception:
                            pass

            try:
                asyncio.run_coroutine_threadsafe(shut(), loop).result(3.0)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            self._loop = None
            if self._switch is not None:
                sys.setswitchinterval(self._switch)
                self._switch = None
