"""The stepper with the mouse: a click on a tab opens its step, hovering a tab marks it and
shows its tooltip, in the styles the stylesheet gives each state (one widget draws all seven
tabs, so these are checked on the cells it draws)."""

from __future__ import annotations

from rich.segment import Segment
from textual.pilot import Pilot

from tests.ui.helpers import SIZE, click_tab, drawn_stepper, make_app, run_all, until
from wizard.ui.widgets.stepper import Stepper


def _stepper(pilot: Pilot) -> Stepper:
    return pilot.app.screen.query_one(Stepper)


def _text_segment(pilot: Pilot, step_id: str) -> Segment:
    """The drawn segment that holds a step's tab text."""
    text = _stepper(pilot).tab_text(step_id)
    return next(s for s in _stepper(pilot).render_line(0) if s.text == text)


async def _hover_tab(pilot: Pilot, step_id: str) -> None:
    stepper = _stepper(pilot)
    text = stepper.tab_text(step_id)
    x = drawn_stepper(pilot).index(text) + 1
    await pilot.hover(stepper, offset=(stepper.gutter.left + x, 0))
    await pilot.pause()


async def test_a_click_on_a_tab_opens_its_step_and_the_verdicts_tab_the_verdict() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await run_all(pilot)
        await click_tab(pilot, "firewall")
        await until(pilot, lambda: app.screen.name == "step:firewall")
        assert _stepper(pilot).current == "firewall"
        # A tab's blank cells are its own: the one after it, then the one before it.
        await click_tab(pilot, "app-errors", len(_stepper(pilot).tab_text("app-errors")))
        await until(pilot, lambda: app.screen.name == "step:app-errors")
        await click_tab(pilot, "server-logs", -1)
        await until(pilot, lambda: app.screen.name == "step:server-logs")
        await click_tab(pilot, "identify")
        await until(pilot, lambda: app.screen.name == "target")
        await click_tab(pilot, "summary")
        await until(pilot, lambda: app.screen.name == "summary")
        # Beside the tabs (the stepper's padding, the blank after the verdict): nothing opens.
        stepper = _stepper(pilot)
        for x in (0, stepper.size.width + stepper.gutter.width - 1):
            await pilot.click(stepper, offset=(x, 0))
            await pilot.pause()
            assert app.screen.name == "summary"


async def test_hovering_a_tab_underlines_it_on_the_hover_background_and_shows_its_tooltip() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query(Stepper))
        stepper = _stepper(pilot)
        resting = _text_segment(pilot, "connectivity").style
        assert resting is not None and not resting.underline
        await _hover_tab(pilot, "connectivity")
        hovered = _text_segment(pilot, "connectivity").style
        assert hovered is not None and hovered.underline and hovered.bgcolor != resting.bgcolor
        assert stepper.tooltip == "Connectivity: pending (click to open)"
        assert not (_text_segment(pilot, "server-logs").style or resting).underline  # only that tab
        # The current step's tab looks the same hovered or not; its tooltip is its own.
        current = _text_segment(pilot, "identify").style
        await _hover_tab(pilot, "identify")
        assert _text_segment(pilot, "identify").style == current
        assert stepper.tooltip == "Identify: pending (click to open)"
        await pilot.hover("#target")
        await pilot.pause()
        assert not any(s.style and s.style.underline for s in stepper.render_line(0))
        assert stepper.tooltip is None


async def test_a_bold_state_stays_bold_without_the_underline_when_hovered() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query(Stepper))
        stepper = _stepper(pilot)
        stepper.show({"identify": "warn", "connectivity": "fail", "server-logs": "pass"})
        await pilot.pause()
        failed = _text_segment(pilot, "connectivity").style
        passed = _text_segment(pilot, "server-logs").style
        assert failed is not None and passed is not None
        assert failed.bold and not passed.bold and failed.color != passed.color
        await _hover_tab(pilot, "connectivity")
        hovered = _text_segment(pilot, "connectivity").style
        assert hovered is not None and hovered.bold and not hovered.underline
        assert hovered.color == failed.color and hovered.bgcolor != failed.bgcolor
        assert stepper.tooltip == "Connectivity: fail (click to open)"
        # The current step takes the current's colour over a passed state's.
        current = _text_segment(pilot, "identify").style
        assert current is not None and current.bold and current.color != passed.color
