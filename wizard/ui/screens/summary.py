"""The verdict: ranked causes with confidence and evidence, remedies, close call, unknowns."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Header, ProgressBar, Static

from wizard.model import NO_RESET
from wizard.ui.widgets.fixes import fix_text, rerun_of
from wizard.ui.widgets.footer import WizardFooter
from wizard.ui.widgets.items import SCREEN_BINDINGS, ItemsScreen, KeyedItem, focus_first_item
from wizard.ui.widgets.stepper import Stepper, StepperScreen


def unknowns(session: Any) -> list[tuple[str, str, str]]:
    """(check, why, how to run it) for every check that was skipped or failed to run."""
    out = []
    for step in session.steps:
        for check in step.checks:
            if str(check.status) in ("skip", "error"):
                out.append((check.title or check.id, check.reason or check.summary, check.fix or ""))
    return out


def verdict_head(session: Any) -> str:
    """The verdict's headline, from the verdict the analysis wrote into the session."""
    verdict = session.verdict
    if verdict is None:
        return "Not analysed yet."
    if verdict.diagnosed:
        top = session.diagnosis[0]
        head = f"Most likely: {top.title or top.cause} ({top.confidence:.0%})"
        return head + ("  ·  no reset was observed in this run" if verdict.reset_observed is False else "")
    if verdict.kind == "no-reset":
        return "No cause of resets found: every probe behaved."
    if verdict.kind == "interrupted":
        return "No verdict: the run was interrupted before its checks could tell."
    return "No cause reached the threshold; the leads are below."


def _strength(finding: Any) -> str:
    """The word after a finding's percentage: how strong a lead it is; for
    no-reset-observed (never diagnosed, not a cause) how sure the run is that nothing reset."""
    if finding.cause == NO_RESET:
        return "sure"
    if finding.diagnosed:
        return "likely"
    return "possible" if finding.confidence >= 0.2 else "unlikely"


class CauseView(KeyedItem):
    """One ranked cause: its confidence bar, summary, evidence for and against, remedy."""

    def __init__(self, rank: int, finding: Any) -> None:
        diagnosed = bool(finding.diagnosed)
        word = _strength(finding)
        self.finding = finding
        collapsed = rank > 1
        # The first cause is open; the others' bodies (a bar, the evidence, the remedy) are
        # made when they are opened: most are never, and they were half the verdict's widgets.
        super().__init__(*([] if collapsed else self._body(finding)),
                         title=f"{rank}. {finding.title or finding.cause}  ·  {finding.confidence:.0%} {word}",
                         collapsed=collapsed, classes="cause " + ("-diagnosed" if diagnosed else "-weak"))
        if collapsed:
            self.defer_body(lambda: self._body(finding))

    @staticmethod
    def _body(f: Any) -> list[Widget]:
        bar = ProgressBar(total=100, show_eta=False, show_percentage=True, classes="confidence")
        bar.progress = round(f.confidence * 100)
        out: list[Widget] = [bar, Static(Text(f.summary), classes="cause-summary")]
        body = Text()
        if f.evidence:
            body.append("Evidence for\n", style="bold green")
            for line in f.evidence:
                body.append(f"  + {line}\n")
        if f.against:
            body.append("Evidence against\n", style="bold red")
            for line in f.against:
                body.append(f"  − {line}\n")
        body.rstrip()
        if body.plain:
            out.append(Static(body, classes="cause-evidence"))
        if f.remedy:
            out.append(Static(Text.assemble(("Remedy  ", "bold"), f.remedy), classes="remedy"))
        return out


class SummaryScreen(ItemsScreen, StepperScreen, Screen):
    """The verdict of the session the app pushes (``session``), shown again on each visit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "app.export", "Export report", priority=True), *SCREEN_BINDINGS]
    # The first cause takes the focus once the verdict is mounted (refresh_verdict), not the
    # body as the screen is composed: its focus passing on to the cause restyled the whole
    # verdict just mounted.
    AUTO_FOCUS = "CauseView > CollapsibleTitle"

    def __init__(self, states: dict[str, str]) -> None:
        super().__init__(name="summary", classes="summary-screen")
        self.step_states = states
        self.session: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Stepper("summary", self.step_states)
        yield VerticalScroll(id="body")
        yield Horizontal(
            Button("◂ Back", id="back", tooltip="Ctrl+B", compact=True),
            Button("Export report…", id="export", variant="primary", tooltip="Ctrl+S", compact=True),
            classes="nav-bar")
        yield WizardFooter()

    async def on_screen_resume(self, event: events.ScreenResume) -> None:
        await self.refresh_verdict()  # (StepperScreen's handler runs too: Textual calls each class's)

    async def refresh_verdict(self) -> None:
        session = self.session
        body = self.query_one("#body", VerticalScroll)
        await body.remove_children()
        if session is None:
            await body.mount(Static("Nothing has run yet: fill in step 1 first.", classes="verdict"))
            if self.focused is None:
                body.focus()
            return
        verdict = session.verdict
        diagnosed = verdict is not None and verdict.diagnosed
        widgets: list[Any] = [Static(f"Verdict for {session.target.display()}", classes="step-title")]
        if session.interrupted:
            widgets.append(Static("The run was cancelled: this verdict rests on what was gathered so far.",
                                  classes="notice"))
        widgets.append(Static(verdict_head(session), classes="verdict" + (" -diagnosed" if diagnosed else "")))
        if session.close_call is not None:
            a, b = session.close_call.causes
            widgets.append(Static(Text.assemble(("Close call  ", "bold"), f"{a} and {b} are too close to call; "
                                                f"to tell them apart: {session.close_call.separate_with}"),
                                  classes="close-call"))
        for rank, finding in enumerate(session.diagnosis, start=1):
            widgets.append(CauseView(rank, finding))
        missing = unknowns(session)
        if missing:
            text = Text()
            for title, why, fix in missing:
                text.append(f"• {title}: ", style="bold")
                text.append(why)
                # each way on its own line: a command alone (to copy), its purpose after
                text.append_text(fix_text(fix, rerun_of(session)))
                text.append("\n")
            text.rstrip()
            did_not_run = f"{len(missing)} check{'s' if len(missing) != 1 else ''} did not run"
            widgets.append(Static(f"Unknowns ({did_not_run})", classes="section-title"))
            widgets.append(Static(text, classes="unknowns"))
        await body.mount_all(widgets)
        # The causes were mounted anew: the first takes the focus, so j/k and the arrows
        # move between them straight away; with none, the body (the arrows scroll it).
        if not focus_first_item(body) and self.focused is None:
            body.focus()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.app.run_action("export" if event.button.id == "export" else "back")
