"""The observation viewer: a saved analyze session shown read-only, a live watch growing."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Sparkline, Static

from wizard.engine.discovery import load
from wizard.engine.observe import analyze_captures
from wizard.lab.pcapgen import Ends, conversation, write_pcap
from wizard.model import Session
from wizard.ui.observe.app import ObserveApp


def session_of(tmp_path, endings) -> Session:
    path = tmp_path / "c.pcap"
    write_pcap(str(path), (r for i, e in enumerate(endings)
                           for r in conversation(Ends(), 40000 + i, 1.7e9 + i, e)))
    return analyze_captures([str(path)], None, load())


def text(app: ObserveApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_a_saved_session_lists_every_reset_and_shows_the_selected_ladder(tmp_path):
    session = Session.from_json(session_of(tmp_path, ["server-app", "fin", "path"]).to_json())
    app = ObserveApp(session, export_dir=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one("#events", DataTable)
        assert table.row_count == 2
        assert "server's application" in text(app, "#reasons")
        await pilot.press("j")
        await pilot.pause()
        assert "something on the path" in text(app, "#reasons")
        assert "path" in text(app, "#ladder")
        assert "read-only" in text(app, "#observe-head") and "2 resets" in text(app, "#observe-head")
        await pilot.press("e")
        await pilot.pause()
        assert type(app.screen).__name__ == "ExportModal"


async def test_a_live_watch_adds_each_reset_as_it_is_pushed(tmp_path):
    done = session_of(tmp_path, ["path", "server-kernel"])
    start = done.model_copy(deep=True)
    assert start.observation is not None
    start.observation.events = []
    go = asyncio.Event()

    async def watch(push):
        await go.wait()
        for ev in done.observation.events:
            push(ev)
        return done

    app = ObserveApp(start, watch, export_dir=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        assert app.query_one("#events", DataTable).row_count == 0
        assert "watching live" in text(app, "#observe-head")
        go.set()
        for _ in range(50):
            await pilot.pause(0.05)
            if app.query_one("#events", DataTable).row_count == 2 and app.watch_factory is None:
                break
        assert app.query_one("#events", DataTable).row_count == 2
        assert sum(app.query_one("#rate", Sparkline).data) == 2
        assert "read-only" in text(app, "#observe-head") and "2 resets" in text(app, "#observe-head")
