"""The Textual app (the view): screens, key bindings, and the workers that drive the runner.

The session and the run's bookkeeping are the controller's (wizard.ui.controller); the app
pushes what it holds down into the screens and turns keys and widgets' messages into its
calls. Everything slow runs in workers (the engine runs the checks on its own thread); the
runner's events arrive as typed messages (wizard.ui.messages), handled on this UI thread.
The first frame imports nothing but textual and parses only step 1's styles: the checklist,
pydantic, the checks, a run's screens and the engine (scapy too, as root) load in a worker
once the form is out, DNS only after step 1 is sent.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.content import Content
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen

from wizard.ui import fields, keys, messages, steps, styles
from wizard.ui.commands import WizardCommands
from wizard.ui.controller import WizardController
from wizard.ui.dialogs import DialogActions
from wizard.ui.keys import KeyActions
from wizard.ui.navigation import NavActions
from wizard.ui.runs import StepRuns
from wizard.ui.screens.target import TargetScreen, first_screen

if TYPE_CHECKING:
    from wizard.model import Answers, Checklist, Session
    from wizard.ui.backend import Engine
    from wizard.ui.widgets.checkview import CheckView
    from wizard.ui.widgets.steppanel import StepPanel
    from wizard.ui.widgets.stepper import Stepper


class ResetWizardApp(KeyActions, NavActions, DialogActions, StepRuns, App[int]):
    """The wizard. Tests inject ``engine`` (scripted results), ``clock`` and ``monotonic``."""

    CSS_PATH = styles.FIRST_FRAME  # step 1's first frame: parsed before it (wizard.ui.styles)
    #: the rest (a step's checks, the verdict, the dialogs): parsed once the form is out
    RUN_CSS_PATH = styles.RUN
    TITLE = "reset-wizard"
    SUB_TITLE = "why was the connection reset?"
    BINDINGS = keys.BINDINGS
    COMMANDS = {WizardCommands}

    def format_title(self, title: str, sub_title: str) -> Content:
        """"reset-wizard — target …": the spaces around the dash in the title's own style,
        the dash alone dimmed. Textual dims " — " as one run, which an SVG screenshot draws
        squeezed against the title ("reset-wizard—  target")."""
        if not sub_title:
            return Content(title)
        return Content.assemble(Content(title), " ", ("—", "dim"), " ", Content(sub_title).stylize("dim"))

    step_states: reactive[dict[str, str]] = reactive(dict)

    def __init__(self, target: str | None = None, *, server: str = "local", answers: Answers | None = None,
                 demo: bool = False, engine: Engine | None = None,
                 clock: Callable[[], datetime] | None = None, monotonic: Callable[[], float] | None = None,
                 export_dir: Path | None = None, started: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._started = started
        self.initial = fields.form_values(answers, target, server)
        self.demo = demo
        self.demo_scenario: Any = None
        if engine is None:
            from wizard.ui.backend import RunnerEngine

            engine = RunnerEngine()
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self.monotonic = monotonic or time.monotonic
        self.export_dir = export_dir or Path.cwd()
        self.controller = WizardController(engine, self.clock, self.monotonic, self._states_changed)
        self._notice_shown = False
        self._pending_show: str | None = None
        self._quit_after_export = False
        self._focusing: asyncio.Task[None] | None = None  # the identify panel's mount, then its focus
        self._planned: dict[str, list[str]] = {}  # step -> its group, while a run of groups runs
        self._groups: list[list[str]] = []  # the groups of that run ([] once it has ended)
        self._begun: set[str] = set()  # the steps of that run whose checks are queued or running
        self._next = 0  # the index in _groups of the next group to show (0: no run of groups)
        self._shown: asyncio.Task[None] | None = None  # the last screen a run of groups asked for

    # ----- what the controller holds, as the tests and screenshots read it -------------------
    @property
    def session(self) -> Session | None:
        return self.controller.session

    @property
    def checklist(self) -> Checklist | None:
        return self.controller.checklist

    @property
    def running(self) -> dict[tuple[str, int], float]:
        return self.controller.running

    @property
    def redact(self) -> bool:
        """Whether secrets are redacted, on the screen and in exports (the palette toggles it)."""
        return self.controller.redact

    @redact.setter
    def redact(self, on: bool) -> None:
        self.controller.redact = on

    @property
    def saved(self) -> bool:
        return self.controller.saved

    def _states_changed(self, states: dict[str, str]) -> None:
        self.step_states = states

    def watch_step_states(self, states: dict[str, str]) -> None:
        # Attributes down: every screen with a stepper gets the new states, built or not.
        for screen in self._stepper_screens():
            screen.show_states(states)

    def _stepper_screens(self) -> list[Any]:
        from wizard.ui.widgets.stepper import StepperScreen

        names = ["target", *(f"step:{s}" for s in steps.STEP_IDS[1:]), "summary"]
        installed = [self.get_screen(n) for n in names if self.is_screen_installed(n)]
        return [s for s in installed if isinstance(s, StepperScreen)]

    # ----- start-up -------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        return first_screen(self, self.initial)  # step 1, not pushed over Textual's default one

    def on_mount(self) -> None:
        self._ticker = self.set_interval(0.1, self._tick, pause=True)

    def on_target_screen_form_complete(self) -> None:
        # After the form's full frame: the checklist load imports pydantic and every check,
        # and a thread importing holds the GIL long enough to delay a paint. The demo fills
        # in fields, so it waits for all of them too.
        self.load_run_css()
        self.call_after_refresh(self.load_checklist)
        if self.demo:
            self.call_after_refresh(self.start_demo)

    def load_run_css(self) -> None:
        """Add the styles of what follows step 1's form (parsed as the next widget is styled)."""
        styles.add(self.stylesheet, styles.FORM, styles.RUN)  # form.tcss first: their cascade

    def _load_screen_css(self, screen: Screen[Any]) -> None:
        # Textual's hook as any screen is shown: any but step 1's needs the rest of the styles.
        if not isinstance(screen, TargetScreen):
            self.load_run_css()
        super()._load_screen_css(screen)

    @work(thread=True, exclusive=True, group="load")
    def load_checklist(self) -> None:
        checklist = self.engine.checklist()
        skips = self.engine.expected_skips()
        # What a run needs, loaded while the form is read, not on Enter on the engine's time.
        for module in ("wizard.ui.screens.step", "wizard.ui.screens.summary"):
            importlib.import_module(module)
        warm = getattr(self.engine, "warm", None)
        if warm is not None:
            warm()
        self.call_from_thread(self._loaded, checklist, skips)

    def _loaded(self, checklist: Any, skips: list[Any]) -> None:
        self.controller.checklist = checklist
        started, self._started = self._started, None
        if started is not None:  # start-up is over: the CLI turns the collector back on
            started()
        if skips:
            from wizard.model.wording import plural  # not before the first frame: wizard.model loads pydantic

            titles = ", ".join(s.title for s in skips)
            self._target_screen().set_root_notice(
                f"Not running as root: {plural(len(skips), 'check')} will be skipped ({titles}). "
                "To run them: sudo reset-wizard …, or grant cap_net_raw,cap_net_admin.")

    @work(thread=True, exclusive=True, group="demo")
    def start_demo(self) -> None:
        from wizard.lab.demo import start_demo

        scenario = start_demo()
        self.call_from_thread(self._demo_ready, scenario)

    def _demo_ready(self, scenario: Any) -> None:
        self.demo_scenario = scenario
        screen = self._target_screen()
        screen.fill({"target": scenario.target, "error": scenario.error, "logs": str(scenario.log_path),
                     "payload": scenario.payload, "side": "client"})  # curl, on this machine, saw it
        screen.set_status("Demo: a local server that resets connections. Press Enter to start, Ctrl+G to run all.")

    def on_unmount(self) -> None:
        if self.demo_scenario is not None:
            self.demo_scenario.stop()
        self.engine.close()

    # ----- helpers ----------------------------------------------------------------------
    def _target_screen(self) -> TargetScreen:
        return self.get_screen("target")  # type: ignore[return-value]

    def check_title(self, check_id: str) -> str:
        return self.controller.title(check_id)

    def run_in_progress(self) -> bool:
        return any(w.group == "run" and w.is_running for w in self.workers)

    def panel(self, step_id: str) -> StepPanel | None:
        """The step's panel, built or not yet (None before the run made it)."""
        if step_id == "identify":
            return self._target_screen().panel()
        name = f"step:{step_id}"
        if not self.is_screen_installed(name):
            return None
        return self.get_screen(name).panel()  # type: ignore[attr-defined]

    def push_step(self, step_id: str) -> None:
        """Push what the controller knows of a step into its panel."""
        panel = self.panel(step_id)
        if panel is not None:
            panel.sync(self.controller.shown_step(step_id), self.controller.running_in(step_id),
                       self.monotonic(), self.controller.queued_in(step_id))

    # ----- messages up ------------------------------------------------------------------
    def on_check_started(self, message: messages.CheckStarted) -> None:
        now = self.controller.check_started(message.step, message.index)
        self._ticker.resume()
        panel = self.panel(message.step)
        if panel is not None:
            panel.check_started(message.index, now)

    def on_check_finished(self, message: messages.CheckFinished) -> None:
        self.controller.check_finished(message.step, message.index, message.result)
        panel = self.panel(message.step)
        if panel is not None:
            panel.check_finished(message.index, self.controller.shown_result(message.result))

    def on_step_panel_notes_changed(self, message: Any) -> None:
        self.controller.set_notes(message.step, message.text)

    def on_check_view_rerun_requested(self, message: CheckView.RerunRequested) -> None:
        self.rerun_check(message.step, message.index)

    async def on_stepper_step_chosen(self, message: Stepper.StepChosen) -> None:
        await self.action_goto(message.step)

    def _emit(self, event: Any) -> None:
        # Called on the engine's thread: post_message is the thread-safe way in.
        self.post_message(messages.from_event(event))

    def _tick(self) -> None:
        if not self.running:
            self._ticker.pause()
            return
        now = self.monotonic()
        for step_id in {s for s, _ in self.running}:
            panel = self.panel(step_id)
            # Only what is on the screen: a step's panel elsewhere is synced when it is shown.
            if panel is not None and panel.is_mounted and panel.screen is self.screen:
                panel.tick(now)

    # ----- workers ------------------------------------------------------------------------
    @work(exclusive=True, group="run")
    async def start_run(self, target: str, answers: dict[str, Any], server: str, then_all: bool) -> None:
        with self.heap_frozen():
            await self._start_run(target, answers, server, then_all)

    async def _start_run(self, target: str, answers: dict[str, Any], server: str, then_all: bool) -> None:
        self.load_run_css()  # the identify panel's styles (the form is out by now anyway)
        session = await self._prepare(target, answers, server)
        if session is None:
            return
        self.controller.begin(session, (target, answers, server))
        screen = self._target_screen()
        assert self.checklist is not None
        skips = await self.engine.preflight()
        if skips and not self._notice_shown:
            from wizard.ui.screens.modals import NoticeModal

            self._notice_shown = True
            self.push_screen(NoticeModal(skips), self._after_dialog)
        # The checks start first; the identify panel and the steps' screens are made while
        # they run (a panel shows what its checks did once it is there). Run all hands the
        # engine every step at once, so that it runs step 1 beside steps 2-5 as `diagnose` does.
        identify = asyncio.create_task(self._run_groups(self.controller.groups_to_run()) if then_all
                                       else self._run_steps(["identify"]))
        await asyncio.sleep(0)  # it hands its checks to the engine before the widgets are made
        self._focusing = asyncio.create_task(
            self._focus_identify(screen.show_identify(self.checklist.step("identify"), self.controller.titles())))
        self.sub_title = f"target {session.target.display()} · server evidence: {server}"
        self._install_step_screens()
        screen.set_status(f"Diagnosing {session.target.display()} ({', '.join(session.target.addresses)})")
        await identify  # cancelling the run cancels it
        if then_all:
            await self._show("summary")

    async def _focus_identify(self, shown: Awaitable[StepPanel]) -> None:
        from wizard.ui.widgets.items import focus_first_item  # with the run's widgets (loaded by now)

        panel = await shown
        # Off the form: the step keys (1-6, j/k, q) work now, instead of typing into a field.
        if not focus_first_item(panel):
            self._target_screen().set_focus(None)
        self.refresh_bindings()

    async def _prepare(self, target: str, answers: dict[str, Any], server: str) -> Session | None:
        """The session for the form's values; None when they are refused (said on the form)."""
        from pydantic import ValidationError

        from wizard.model import Answers, WizardError

        screen = self._target_screen()
        screen.set_status(f"Resolving {target} and opening the server context…")
        try:
            return await self.engine.prepare(target, Answers(**answers), server)
        except WizardError as exc:
            field = {"unknown context": "server", "ssh": "server", "unreadable log": "logs",
                     "unreadable payload": "payload", "bad payload": "payload"}.get(exc.title, "target")
            screen.show_problem(field, exc.message)
            screen.set_status(f"✗ {exc.title}: {exc.message}")
        except ValidationError as exc:
            screen.set_status(f"✗ {exc.errors()[0]['msg']}")
        return None

    def _install_step_screens(self) -> None:
        from wizard.ui.screens.step import StepScreen
        from wizard.ui.screens.summary import SummaryScreen

        assert self.checklist is not None
        titles, states = self.controller.titles(), dict(self.step_states)
        for step in self.checklist.steps[1:]:
            name = f"step:{step.id}"
            if self.is_screen_installed(name):
                self.uninstall_screen(name)
            self.install_screen(StepScreen(step, titles, states), name)
        if not self.is_screen_installed("summary"):
            self.install_screen(SummaryScreen(states), "summary")

    async def _run_remaining(self) -> None:
        groups = self.controller.groups_to_run()
        if groups:
            await self._run_groups(groups)
        await self._show("summary")

    @work(exclusive=True, group="run")
    async def run_remaining(self) -> None:
        with self.heap_frozen():
            await self._run_remaining()

    @work(exclusive=True, group="run")
    async def run_one_step(self, step_id: str, only: int | None = None) -> None:
        with self.heap_frozen():
            await self._run_steps([step_id], only)

    def rerun_check(self, step_id: str, index: int) -> None:
        if self._busy():
            return
        self.run_one_step(step_id, index)

    def conclude(self) -> None:
        self.controller.conclude()

    async def _show(self, step_id: str) -> None:
        if isinstance(self.screen, ModalScreen):
            # A dialog is open (the skipped-checks notice): go there once it is closed,
            # so "run all" still ends on the verdict.
            self._pending_show = step_id
            return
        self._pending_show = None
        if step_id == "summary":
            self.controller.conclude()
            summary: Any = self.get_screen("summary")
            summary.session = self.controller.shown_session()
        name = {"identify": "target"}.get(step_id, step_id if step_id == "summary" else f"step:{step_id}")
        if self.screen.name != name:
            await self.switch_screen(name)
        elif step_id == "summary":
            await self.screen.refresh_verdict()  # type: ignore[attr-defined]
        if step_id != "summary":
            self.push_step(step_id)
        self.refresh_bindings()

    def _after_dialog(self, _result: Any = None) -> None:
        if self._pending_show:
            self.call_later(self._show, self._pending_show)


def run_tui(target: str | None = None, *, server: str = "local", answers: Answers | None = None,
            demo: bool = False, started: Callable[[], None] | None = None) -> int:
    """Open the wizard; the exit status for the CLI. ``started``: called once the checklist is in."""
    app = ResetWizardApp(target, server=server, answers=answers, demo=demo, started=started)
    return int(app.run() or 0)
