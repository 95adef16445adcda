"""The wizard's controller (pure, no textual): the Session, the run's bookkeeping, step order.

The app is the view: it asks the controller what to run next, tells it what the runner
reported, and pushes what the controller holds down into the screens. Only the UI thread
calls it, so the Session it owns is never seen half-changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wizard.ui import steps

if TYPE_CHECKING:
    from wizard.model import Checklist, CheckResult, Session, StepResult
    from wizard.ui.backend import Engine

#: the form's values a run was started with: target, Answers fields, server context
Started = tuple[str, dict[str, Any], str]


class WizardController:
    """Owns the Session and the run; ``on_states`` hears every change of the steps' states."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], monotonic: Callable[[], float],
                 on_states: Callable[[dict[str, str]], None] | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.monotonic = monotonic
        self.on_states = on_states or (lambda states: None)
        self.checklist: Checklist | None = None
        self.session: Session | None = None
        #: (step, check index) of every check running now, and when it started (monotonic)
        self.running: dict[tuple[str, int], float] = {}
        #: (step, check index) of every check a run has asked for that has not started yet
        self.queued: set[tuple[str, int]] = set()
        self.states: dict[str, str] = {}
        self.saved = False
        self.started_with: Started | None = None
        #: whether secrets found in evidence are redacted, on the screen and in exports
        self.redact = True
        self._screen_redactor: Any = None

    # ----- the session ----------------------------------------------------------------
    def title(self, check_id: str) -> str:
        return self.engine.title(check_id)

    def titles(self) -> dict[str, str]:
        """Every check's title, by check id (the step screens label their checks with them)."""
        assert self.checklist is not None
        return {spec.check: self.title(spec.check) for step in self.checklist.steps for spec in step.checks}

    def begin(self, session: Session, started_with: Started) -> None:
        """A new run: a fresh session, every step pending."""
        self.checklist = self.checklist or self.engine.checklist()
        self.session = session
        self.started_with = started_with
        self.running.clear()
        self.queued.clear()
        self.states = dict.fromkeys(steps.STEP_IDS, "pending")
        self.on_states(dict(self.states))

    def form_changed(self, collected: Started | None) -> bool:
        """Whether the form now holds other values than the run was started with."""
        return collected is not None and collected != self.started_with

    def step_result(self, step_id: str) -> StepResult | None:
        if self.session is None:
            return None
        return next((s for s in self.session.steps if s.id == step_id), None)

    # ----- what the screen shows: secrets redacted unless redaction is off ------------------
    def _redactor(self) -> Any:
        from wizard.redact import Redactor

        if self._screen_redactor is None:  # one for the screen: a secret keeps its «secret-N»
            self._screen_redactor = Redactor()
        return self._screen_redactor

    def shown_result(self, result: CheckResult) -> CheckResult:
        from wizard.redact import redact_result

        return redact_result(result, self._redactor()) if self.redact else result

    def shown_step(self, step_id: str) -> StepResult | None:
        """The step as its panel shows it; the notes are the user's own and stay as typed."""
        step = self.step_result(step_id)
        if step is None or not self.redact:
            return step
        return step.model_copy(update={"checks": [self.shown_result(c) for c in step.checks]})

    def shown_session(self) -> Session | None:
        from wizard.redact import redact_session

        if self.session is None or not self.redact:
            return self.session
        return redact_session(self.session, self._redactor())

    def running_in(self, step_id: str) -> dict[int, float]:
        """The checks of ``step_id`` running now: index -> when it started."""
        return {index: at for (step, index), at in self.running.items() if step == step_id}

    def queued_in(self, step_id: str) -> set[int]:
        """The checks of ``step_id`` a run will start (the runner has not said so yet)."""
        return {index for step, index in self.queued if step == step_id}

    def gathered(self) -> bool:
        return self.session is not None and any(s.checks for s in self.session.steps)

    def set_notes(self, step_id: str, text: str) -> None:
        if self.session is not None:
            self.session.step(step_id).notes = text

    def conclude(self) -> None:
        """The findings and the verdict of what was gathered (the verdict screen, an export)."""
        from wizard.engine.runner import conclude

        if self.session is None or self.checklist is None:
            return
        conclude(self.checklist, self.session, self.clock())
        verdict = self.session.verdict
        state = steps.VERDICT_STATES.get(verdict.kind, "pending") if verdict is not None else "pending"
        if self.states.get("summary", "pending") != state:
            self.set_state("summary", state)

    # ----- the run --------------------------------------------------------------------
    def set_state(self, step_id: str, state: str) -> None:
        self.states = {**self.states, step_id: state}
        self.on_states(dict(self.states))

    def steps_began(self, step_ids: list[str], only: int | None = None) -> None:
        """A run of these steps (or of check ``only`` of the one) was asked for: every check
        it will run is queued until the runner starts it."""
        for step_id in step_ids:
            count = len(self.checklist.step(step_id).checks) if self.checklist is not None else 0
            self.queued |= {(step_id, i) for i in (range(count) if only is None else [only])}
            self.set_state(step_id, "running")
        if self.states.get("summary", "pending") != "pending":
            self.set_state("summary", "pending")  # the verdict is made again when shown
        self.saved = False

    def _unqueue(self, step_ids: list[str]) -> None:
        self.queued = {(s, i) for s, i in self.queued if s not in step_ids}

    def check_started(self, step_id: str, index: int) -> float:
        now = self.monotonic()
        self.queued.discard((step_id, index))
        self.running[(step_id, index)] = now
        return now

    def check_finished(self, step_id: str, index: int, result: CheckResult) -> None:
        self.running.pop((step_id, index), None)
        self.queued.discard((step_id, index))
        self.record(step_id, result)

    def record(self, step_id: str, result: CheckResult) -> None:
        # The checklist is set with the session (start of a run).
        if self.session is None or self.checklist is None:
            return
        from wizard.engine.runner import record_result

        spec = self.checklist.step(step_id)
        step = self.session.step(step_id)
        record_result(step, spec, result)
        step.title = spec.title

    def step_done(self, step_id: str, result: StepResult) -> None:
        """The runner's account of a finished step: its checks, and the step's state."""
        assert self.session is not None
        self._unqueue([step_id])
        for check in result.checks:
            self.record(step_id, check)
        self.set_state(step_id, str(self.session.step(step_id).status))

    def cancelled(self, step_ids: list[str]) -> list[tuple[str, int, CheckResult]]:
        """A cancelled run: each check still running becomes a skip saying so; the steps
        keep what finished. Returns (step, index, result) for the views to show."""
        from wizard.model import CheckResult

        assert self.session is not None and self.checklist is not None
        self.session.interrupted = True
        out = []
        for step, index in list(self.running):
            spec = self.checklist.step(step).checks[index]
            result = CheckResult.skipped("cancelled before it finished", "rerun the check or the step",
                                         check_id=spec.check)
            result.title = self.title(spec.check)
            self.check_finished(step, index, result)
            out.append((step, index, result))
        self._unqueue(step_ids)
        for step_id in step_ids:
            kept = self.session.step(step_id)
            self.set_state(step_id, str(kept.status) if kept.checks else "pending")
        return out

    def pending(self) -> list[str]:
        """The steps not run yet, in the checklist's order."""
        return [s for s in steps.STEP_IDS if self.states.get(s, "pending") == "pending"]

    def groups_to_run(self) -> list[list[str]]:
        """The pending steps as the runner runs them: neighbours that may overlap together."""
        from wizard.engine.runner import overlapping  # pure; loaded with the engine already

        return overlapping(self.pending())
