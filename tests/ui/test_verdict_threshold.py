"""The TUI's verdict follows the finding's own "diagnosed", decided by the analysis with the
checklist's threshold, and agrees with the report and the console for the same session."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Static

from tests.ui.helpers import SIZE, make_app, run_all
from tests.ui.scripted import ScriptedEngine
from wizard.cli.console import verdict_lines
from wizard.model import Finding
from wizard.report import render_report
from wizard.ui.screens.summary import CauseView


class ThresholdEngine(ScriptedEngine):
    def __init__(self, threshold: float) -> None:
        super().__init__()
        self._checklist = self._checklist.model_copy(update={"threshold": threshold})

    def checklist(self) -> Any:
        return self._checklist


@pytest.mark.parametrize("threshold", [0.99, 0.3])
async def test_the_summary_takes_diagnosed_from_the_finding_under_any_threshold(threshold: float) -> None:
    app = make_app(ThresholdEngine(threshold))
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        session = app.session
        assert session is not None and session.verdict is not None
        assert session.verdict.threshold == threshold
        top = session.diagnosis[0]
        headline = str(app.screen.query_one(".verdict", Static).render())
        views = list(app.screen.query(CauseView))
        assert [v.has_class("-diagnosed") for v in views] == [f.diagnosed for f in session.diagnosis]
        report = render_report(session).split("<details>")[0]
        console = verdict_lines(session)[0][0]
        if threshold > top.confidence:
            assert not any(f.diagnosed for f in session.diagnosis)
            assert headline.startswith("No cause") and "**Verdict: no cause" in report
            assert console.startswith("verdict: no cause of resets found")
        else:
            assert top.diagnosed and headline.startswith(f"Most likely: {top.title}")
            assert f"**Verdict: `{top.cause}`" in report and console.startswith(f"verdict: {top.cause} (")


@pytest.mark.parametrize(("cause", "confidence", "diagnosed", "word"), [
    ("no-reset-observed", 1.0, False, "100% sure"),  # not a cause: how sure nothing reset
    ("abortive-close", 0.98, True, "98% likely"),
    ("rate-limit", 0.35, False, "35% possible"),
    ("rate-limit", 0.1, False, "10% unlikely"),
])
def test_a_cause_row_says_how_strong_it_is(cause: str, confidence: float, diagnosed: bool, word: str) -> None:
    finding = Finding(cause=cause, title=cause, confidence=confidence, summary="s", diagnosed=diagnosed)
    assert str(CauseView(1, finding).title).endswith(f"·  {word}")
