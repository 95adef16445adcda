"""A closed check's body (its evidence) is made when it is opened, and shows as if it had
been there: the whole check scrolled into view, its evidence and actions in it."""

from __future__ import annotations

from textual.widgets import Button

from tests.ui.helpers import make_app, run_all, until
from wizard.ui.widgets.checkview import CheckView, ResultBody


async def test_opening_a_passed_check_makes_its_body_and_scrolls_all_of_it_into_view() -> None:
    app = make_app()
    async with app.run_test(size=(120, 24)) as pilot:
        await run_all(pilot)
        await pilot.press("6")
        await until(pilot, lambda: app.screen.name == "step:handshake")
        views = list(app.screen.query(CheckView))
        await until(pilot, lambda: all(v.result is not None for v in views))
        await pilot.pause()
        closed = [v for v in views if v.collapsed]
        assert closed and all(not v.query(ResultBody) for v in closed)  # nothing made for them yet
        assert all(v.query(ResultBody) for v in views if not v.collapsed)
        last = closed[-1]
        last.query_one("CollapsibleTitle").focus()
        await pilot.press("space")
        await until(pilot, lambda: bool(last.query(ResultBody)) and bool(last.query("#rerun")))
        await pilot.pause(0.3)  # the scroll to it is animated
        body = app.screen.query_one("#body")
        shown, region = body.content_region, last.region
        assert region.height <= shown.height, "the test wants a check that fits the screen"
        assert shown.y <= region.y and region.bottom <= shown.bottom, (shown, region)
        summary = last.query_one(".result-summary")
        assert last.result.summary in str(summary.render())
        assert last.query_one("#rerun", Button).region.height > 0
        await pilot.press("enter")  # closed again: the body stays, and opens as it was
        assert last.collapsed and last.query(ResultBody)
