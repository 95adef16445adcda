"""The Textual app: screens, key bindings, and the workers that drive the runner.

Everything slow runs in workers (the engine runs the checks on its own thread); the
runner's events arrive as messages, and only this UI thread mutates the Session. The
first frame imports nothing but textual: the checklist, pydantic and the checks load in a
worker after it, scapy only when a check asks for packets, DNS only after step 1 is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen

from wizard.ui import steps
from wizard.ui.screens.target import TargetScreen

if TYPE_CHECKING:
    from wizard.model import Answers, Session
    from wizard.ui.engine import Engine


class RunnerEvent(Message):
    """A runner event (CheckStarted, CheckFinished, ...), posted from the engine thread."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


def _answers_values(answers: Answers | None, target: str | None, server: str) -> dict[str, str]:
    values = {"target": target or "", "server": server if server != "local" else ""}
    if answers is not None:
        values.update({
            "error": answers.error or "", "side": answers.side, "logs": ", ".join(answers.logs),
            "payload": answers.payload or "", "at": answers.at.isoformat() if answers.at else "",
            "window": f"{answers.window_s:g}s" if answers.window_s != 900 else "",
            "hold": f"{answers.hold_s:g}" if answers.hold_s else "",
            "attempts": str(answers.attempts) if answers.attempts != 10 else "",
            "timeout": f"{answers.timeout_s:g}" if answers.timeout_s != 3 else ""})
    return values


class ResetWizardApp(App[int]):
    """The wizard. Tests inject ``engine`` (scripted results), ``clock`` and ``monotonic``."""

    CSS_PATH = Path(__file__).with_name("wizard.tcss")
    TITLE = "reset-wizard"
    SUB_TITLE = "why was the connection reset?"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+n", "next", "Next step", priority=True),
        Binding("ctrl+b", "back", "Back", priority=True),
        Binding("ctrl+r", "rerun_step", "Rerun step", priority=True),
        Binding("ctrl+g", "run_all", "Run all", priority=True),
        Binding("ctrl+s", "export", "Export", priority=True),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        *(Binding(str(n), f"goto('{step}')", f"Step {n}", show=False)
          for n, step in enumerate(steps.STEP_IDS, start=1)),
    ]

    step_states: reactive[dict[str, str]] = reactive(dict)

    def __init__(self, target: str | None = None, *, server: str = "local", answers: Answers | None = None,
                 demo: bool = False, engine: Engine | None = None,
                 clock: Callable[[], datetime] | None = None, monotonic: Callable[[], float] | None = None,
                 export_dir: Path | None = None) -> None:
        super().__init__()
        self.initial = _answers_values(answers, target, server)
        self.demo = demo
        self.demo_scenario: Any = None
        if engine is None:
            from wizard.ui.engine import RunnerEngine

            engine = RunnerEngine()
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.monotonic = monotonic or time.monotonic
        self.export_dir = export_dir or Path.cwd()
        self.checklist: Any = None
        self.session: Session | None = None
        self.running: dict[tuple[str, int], float] = {}
        self.saved = False
        self.started_with: tuple[Any, ...] | None = None
        self._notice_shown = False
        self._pending_show: str | None = None
        self._quit_after_export = False

    # ----- start-up -------------------------------------------------------------------
    def on_mount(self) -> None:
        self.install_screen(TargetScreen(self.initial), "target")
        self.push_screen("target")
        self._ticker = self.set_interval(0.1, self._tick, pause=True)

    def on_target_screen_form_complete(self) -> None:
        # After the form's full frame: the checklist load imports pydantic and every check,
        # and a thread importing holds the GIL long enough to delay a paint. The demo fills
        # in fields, so it waits for all of them too.
        self.call_after_refresh(self.load_checklist)
        if self.demo:
            self.call_after_refresh(self.start_demo)

    @work(thread=True, exclusive=True, group="load")
    def load_checklist(self) -> None:
        checklist = self.engine.checklist()
        skips = self.engine.expected_skips()
        self.call_from_thread(self._loaded, checklist, skips)

    def _loaded(self, checklist: Any, skips: list[Any]) -> None:
        self.checklist = checklist
        if skips:
            titles = ", ".join(s.title for s in skips)
            self._target_screen().set_root_notice(
                f"Not running as root: {len(skips)} checks will be skipped ({titles}). "
                "To run them: sudo reset-wizard …, or grant cap_net_raw,cap_net_admin.")

    @work(thread=True, exclusive=True, group="demo")
    def start_demo(self) -> None:
        from wizard.lab.demo import start_demo

        scenario = start_demo()
        self.call_from_thread(self._demo_ready, scenario)

    def _demo_ready(self, scenario: Any) -> None:
        from textual.widgets import Input, Select, TextArea

        self.demo_scenario = scenario
        screen = self._target_screen()
        screen.query_one("#target", Input).value = scenario.target
        screen.query_one("#error", TextArea).load_text(scenario.error)
        screen.query_one("#logs", Input).value = str(scenario.log_path)
        screen.query_one("#payload", Input).value = scenario.payload
        screen.query_one("#side", Select).value = "client"  # curl, on this machine, saw it
        screen.set_status("Demo: a local server that resets connections. Press Enter to start, Ctrl+G to run all.")

    def on_unmount(self) -> None:
        if self.demo_scenario is not None:
            self.demo_scenario.stop()
        self.engine.close()

    # ----- helpers ----------------------------------------------------------------------
    def _target_screen(self) -> TargetScreen:
        return self.get_screen("target")  # type: ignore[return-value]

    def check_title(self, check_id: str) -> str:
        return self.engine.title(check_id)

    def current_step(self) -> str:
        name = self.screen.name or ""
        if name == "target":
            return "identify"
        return name.removeprefix("step:")

    def run_in_progress(self) -> bool:
        return any(w.group == "run" and w.is_running for w in self.workers)

    def set_state(self, step_id: str, state: str) -> None:
        self.step_states = {**self.step_states, step_id: state}

    def panel(self, step_id: str) -> Any:
        name = "target" if step_id == "identify" else f"step:{step_id}"
        if not self.is_screen_installed(name):
            return None
        screen: Any = self.get_screen(name)
        try:
            return screen.panel() if screen.is_mounted else None
        except Exception:  # noqa: BLE001 - not composed yet: it syncs when shown
            return None

    def set_notes(self, step_id: str, text: str) -> None:
        if self.session is not None:
            self.session.step(step_id).notes = text

    # ----- runner events (UI thread) ----------------------------------------------------
    def on_runner_event(self, message: RunnerEvent) -> None:
        event = message.event
        kind = type(event).__name__
        if kind == "CheckStarted":
            now = self.monotonic()
            self.running[(event.step, event.index)] = now
            self._ticker.resume()
            panel = self.panel(event.step)
            if panel is not None:
                panel.check_started(event.index, now)
        elif kind == "CheckFinished":
            self.running.pop((event.step, event.index), None)
            self._record(event.step, event.result)
            panel = self.panel(event.step)
            if panel is not None:
                panel.check_finished(event.index, event.result)

    def _record(self, step_id: str, result: Any) -> None:
        if self.session is None:
            return
        step = self.session.step(step_id)
        order = [c.check for c in self.checklist.step(step_id).checks] if self.checklist else []
        checks = [c for c in step.checks if c.id != result.id] + [result]
        step.checks = sorted(checks, key=lambda c: order.index(c.id) if c.id in order else 99)
        step.refresh_status()
        if self.checklist:
            step.title = self.checklist.step(step_id).title

    def _tick(self) -> None:
        if not self.running:
            self._ticker.pause()
            return
        now = self.monotonic()
        for step_id in {s for s, _ in self.running}:
            panel = self.panel(step_id)
            if panel is not None:
                panel.tick(now)

    # ----- workers ------------------------------------------------------------------------
    async def _run_step(self, step_id: str, only: int | None = None) -> None:
        assert self.session is not None
        self.set_state(step_id, "running")
        self.saved = False
        try:
            result = await self.engine.run_step(step_id, only, lambda ev: self.post_message(RunnerEvent(ev)))
        except asyncio.CancelledError:
            self._cancelled(step_id)
            raise
        for check in result.checks:
            self._record(step_id, check)
        step = self.session.step(step_id)
        self.set_state(step_id, str(step.status))
        panel = self.panel(step_id)
        if panel is not None:
            panel.sync()

    def _cancelled(self, step_id: str) -> None:
        from wizard.model import CheckResult

        assert self.session is not None
        self.session.interrupted = True
        for (step, index), _ in list(self.running.items()):
            spec = self.checklist.step(step).checks[index]
            result = CheckResult.skipped("cancelled before it finished", "rerun the check or the step",
                                         check_id=spec.check)
            result.title = self.check_title(spec.check)
            self.running.pop((step, index), None)
            self._record(step, result)
            panel = self.panel(step)
            if panel is not None:
                panel.check_finished(index, result)
        done = self.session.step(step_id).checks
        self.set_state(step_id, str(self.session.step(step_id).status) if done else "pending")
        self.notify("The run was cancelled; finished checks keep their results.", title="Cancelled")

    @work(exclusive=True, group="run")
    async def start_run(self, target: str, answers: dict[str, Any], server: str, then_all: bool) -> None:
        from pydantic import ValidationError

        from wizard.model import Answers, WizardError

        screen = self._target_screen()
        screen.set_status(f"Resolving {target} and opening the server context…")
        try:
            parsed = Answers(**answers)
            session = await self.engine.prepare(target, parsed, server)
        except WizardError as exc:
            field = {"unknown context": "server", "ssh": "server", "unreadable log": "logs",
                     "unreadable payload": "payload", "bad payload": "payload"}.get(exc.title, "target")
            screen.show_problem(field, exc.message)
            screen.set_status(f"✗ {exc.title}: {exc.message}")
            return
        except ValidationError as exc:
            screen.set_status(f"✗ {exc.errors()[0]['msg']}")
            return
        self.checklist = self.checklist or self.engine.checklist()
        self.session = session
        self.started_with = (target, answers, server)
        self.running.clear()
        self.step_states = {s: "pending" for s in steps.STEP_IDS}
        self.sub_title = f"target {session.target.display()} · server evidence: {server}"
        from wizard.ui.screens.step import StepScreen
        from wizard.ui.screens.summary import SummaryScreen

        for step in self.checklist.steps[1:]:
            name = f"step:{step.id}"
            if self.is_screen_installed(name):
                self.uninstall_screen(name)
            self.install_screen(StepScreen(step), name)
        if not self.is_screen_installed("summary"):
            self.install_screen(SummaryScreen(), "summary")
        screen.set_status(f"Diagnosing {session.target.display()} ({', '.join(session.target.addresses)})")
        await screen.show_identify(self.checklist.step("identify"))
        skips = await self.engine.preflight()
        if skips and not self._notice_shown:
            from wizard.ui.screens.modals import NoticeModal

            self._notice_shown = True
            self.push_screen(NoticeModal(skips), self._after_dialog)
        await self._run_step("identify")
        if then_all:
            await self._run_remaining()

    async def _run_remaining(self) -> None:
        for step_id in steps.STEP_IDS:
            if self.step_states.get(step_id, "pending") == "pending":
                await self._show(step_id)
                await self._run_step(step_id)
        await self._show("summary")

    @work(exclusive=True, group="run")
    async def run_remaining(self) -> None:
        await self._run_remaining()

    @work(exclusive=True, group="run")
    async def run_one_step(self, step_id: str, only: int | None = None) -> None:
        await self._run_step(step_id, only)

    def rerun_check(self, step_id: str, index: int) -> None:
        if self._busy():
            return
        self.run_one_step(step_id, index)

    def conclude(self) -> None:
        from wizard.analysis import diagnose

        if self.session is None or self.checklist is None:
            return
        self.session.diagnosis, self.session.close_call = diagnose(self.checklist, self.session)
        self.session.finished_at = self.clock()

    async def _show(self, step_id: str) -> None:
        if isinstance(self.screen, ModalScreen):
            # A dialog is open (the skipped-checks notice): go there once it is closed,
            # so "run all" still ends on the verdict.
            self._pending_show = step_id
            return
        self._pending_show = None
        if step_id == "summary":
            self.conclude()
        name = {"identify": "target"}.get(step_id, step_id if step_id == "summary" else f"step:{step_id}")
        if self.screen.name != name:
            await self.switch_screen(name)
        elif step_id == "summary":
            await self.screen.refresh_verdict()  # type: ignore[attr-defined]

    def _after_dialog(self, _result: Any = None) -> None:
        if self._pending_show:
            self.call_later(self._show, self._pending_show)

    def _busy(self) -> bool:
        if self.run_in_progress():
            self.notify("Checks are running: wait, or press Esc to cancel them.", title="Busy",
                        severity="warning")
            return True
        return False

    # ----- actions --------------------------------------------------------------------------
    def _form_changed(self) -> bool:
        collected = self._target_screen().collect()
        return collected is not None and collected != self.started_with

    def action_start(self, then_all: bool = False) -> None:
        if self._busy():
            return
        collected = self._target_screen().collect()
        if collected is None:
            self.notify("Fix the fields marked ✗ first.", title="Step 1", severity="warning")
            return
        if self.session is not None and collected == self.started_with:
            if then_all:
                self.run_remaining()
            else:
                self.call_later(self.action_goto, 'connectivity')
            return
        target, answers, server = collected
        typed_at = self._target_screen().field_text("at")
        if answers["at"] is not None or typed_at.strip():
            from wizard.ui.fields import moment

            answers["at"] = moment(typed_at, self.clock())
        self.start_run(target, answers, server, then_all)

    async def action_goto(self, step_id: str) -> None:
        if step_id != "identify" and self.session is None:
            self.notify("Fill in step 1 and press Enter first.", title="Not started", severity="warning")
            return
        await self._show(step_id)
        if step_id not in ("identify", "summary") and self.step_states.get(step_id) == "pending" \
                and not self.run_in_progress():
            self.run_one_step(step_id)

    async def action_next(self) -> None:
        current = self.current_step()
        if current == "identify" and (self.session is None or self._form_changed()):
            self.action_start()
            return
        following = steps.neighbour(current, 1)
        if following:
            await self.action_goto(following)

    async def action_back(self) -> None:
        previous = steps.neighbour(self.current_step(), -1)
        if previous:
            await self.action_goto(previous)

    def action_rerun_step(self) -> None:
        if self.session is None:
            self.action_start()
        elif self.current_step() != "summary" and not self._busy():
            self.run_one_step(self.current_step())

    def action_run_all(self) -> None:
        if self.session is None or (self.current_step() == "identify" and self._form_changed()):
            self.action_start(then_all=True)
        elif not self._busy():
            self.run_remaining()

    def action_cancel_run(self) -> None:
        cancelled = [w for w in self.workers if w.group == "run" and w.is_running]
        for worker in cancelled:
            worker.cancel()

    def action_help(self) -> None:
        from wizard.ui.screens.modals import HelpScreen

        if not isinstance(self.screen, ModalScreen):
            self.push_screen(HelpScreen())

    def action_export(self) -> None:
        if self.session is None:
            self.notify("Nothing to export yet: start with step 1.", severity="warning")
            return
        if isinstance(self.screen, ModalScreen):
            return
        from wizard.ui.screens.export_modal import ExportModal

        self.conclude()
        stamp = self.clock().strftime("%Y%m%d-%H%M%S")
        default = self.export_dir / f"reset-wizard-{stamp}.md"
        self.push_screen(ExportModal(self.session, str(default)), self._exported)

    def _exported(self, paths: list[str] | None) -> None:
        if paths:
            self.saved = True
            self.notify("Wrote " + " and ".join(paths), title="Exported", timeout=8)
            if self._quit_after_export:
                self.exit(0)
        self._quit_after_export = False

    async def action_quit(self) -> None:
        running = self.run_in_progress()
        gathered = self.session is not None and any(s.checks for s in self.session.steps)
        if not running and (not gathered or self.saved):
            self.exit(0)
            return
        if isinstance(self.screen, ModalScreen):
            return
        from wizard.ui.screens.modals import ConfirmModal

        message = ("Checks are still running. " if running else "The results are not saved. ") + \
            "Save what was gathered before quitting?"
        self.push_screen(ConfirmModal("Quit reset-wizard?", message, [
            ("stay", "Stay", "default"), ("discard", "Quit without saving", "error"),
            ("save", "Save and quit", "primary")], cancel="stay"), self._quit_answer)

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "discard":
            self.action_cancel_run()
            self.exit(0)
        elif answer == "save":
            self.action_cancel_run()
            self._quit_after_export = True
            self.call_after_refresh(self.action_export)


def run_tui(target: str | None = None, *, server: str = "local", answers: Answers | None = None,
            demo: bool = False) -> int:
    """Open the wizard; returns the exit status for the CLI."""
    app = ResetWizardApp(target, server=server, answers=answers, demo=demo)
    result = app.run()
    return int(result or 0)
