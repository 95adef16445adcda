"""The observation viewer: a saved analyze session shown read-only, a live watch growing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

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


def live(done: Session, events) -> tuple[Session, asyncio.Event, object]:
    """A watch's empty start, and a watch that pushes ``events`` at once, then ends with
    ``done`` when the returned event is set."""
    start = done.model_copy(deep=True)
    start.observation.events = []  # type: ignore[union-attr]
    go = asyncio.Event()

    async def watch(push):
        for ev in events:
            push(ev)
        await go.wait()
        return done

    return start, go, watch


def ten_a_second(done: Session, n: int) -> list:
    """``n`` copies of ``done``'s first reset, numbered 1..n, ten a second."""
    first = done.observation.events[0]  # type: ignore[union-attr]
    return [first.model_copy(update={"n": i + 1, "at": first.at + timedelta(seconds=i // 10)}) for i in range(n)]


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
        assert "lost by the capture" not in text(app, "#observe-head")  # a capture file loses nothing
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


async def test_a_long_live_watch_costs_the_same_per_reset_at_its_end_as_at_its_start(tmp_path, monkeypatch):
    """Each pushed reset is added to the views it changes (a row, the counts): the sparkline
    and the head are refreshed once a second from running counts, never by going over every
    event again (that made a watch's TUI cost grow with the number of resets it had seen)."""

    from wizard.model.observed import Observation
    from wizard.ui.observe import app as observe

    done = session_of(tmp_path, ["server-app"])
    assert done.observation is not None
    many = ten_a_second(done, 300)
    start, go, watch = live(done, many)
    walks = {"per_second": 0, "count": 0}
    real_per_second, real_count = observe.per_second, Observation.count
    monkeypatch.setattr(observe, "per_second", lambda *a, **k: walks.__setitem__("per_second", walks["per_second"] + 1)
                        or real_per_second(*a, **k))
    monkeypatch.setattr(Observation, "count", lambda self: walks.__setitem__("count", walks["count"] + 1)
                        or real_count(self))

    app = ObserveApp(start, watch, export_dir=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.query_one("#events", DataTable).row_count == 300 and "300 resets" in text(app, "#observe-head"):
                break
        assert app.query_one("#events", DataTable).row_count == 300
        assert "300 resets: 300 server-app" in text(app, "#observe-head")
        assert sum(app.query_one("#rate", Sparkline).data) == 300
        assert app.query_one("#rate", Sparkline).data[:2] == [10.0, 10.0]  # ten a second, by second
        await pilot.press("j")
        await pilot.pause()
        assert "reset 2:" in text(app, "#reasons")
        go.set()
    assert walks == {"per_second": 1, "count": 0}  # per_second: once, for the saved session's start


async def test_a_live_watch_shows_the_counters_over_time_and_each_resets_kernel_and_log_lines(tmp_path):
    done = session_of(tmp_path, ["server-app"])
    assert done.observation is not None
    ev = done.observation.events[0]
    ev.drops, ev.states = ["1 x NETFILTER_DROP at nft_do_chain+0x46f/0x690"], ["10.0.0.1:80 TCP_ESTABLISHED -> TCP_CLOSE"]
    ev.logs = ["/var/log/app.log: 2026-12-02T10:00:05Z [error] worker aborted the request"]
    start = done.model_copy(deep=True)
    start.observation.events = []  # type: ignore[union-attr]
    go = asyncio.Event()
    app: ObserveApp

    async def watch(push):
        for moved in ({"TcpOutRsts": 2, "TcpInSegs": 40}, {"TcpInSegs": 12}, {"TcpOutRsts": 5, "TcpEstabResets": 1}):
            app.sample_seen(moved, lost=0 if moved.get("TcpInSegs") else 31)
        push(ev)
        await go.wait()
        return done

    app = ObserveApp(start, watch, export_dir=tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.query_one("#events", DataTable).row_count == 1 and len(app.samples) == 4:
                break
        assert app.query_one("#counters", Sparkline).data == [0.0, 2.0, 0.0, 5.0]
        label = text(app, "#counters-label")
        assert "TcpOutRsts +5" in label and "TcpEstabResets +1" in label and "TcpInSegs" not in label
        assert "the capture lost 31 packets so far (its queue was full)" in label  # said as it happens
        reasons = text(app, "#reasons")
        # shown as written: a log line's brackets are not taken for markup
        assert "[error] worker aborted the request" in reasons
        assert "NETFILTER_DROP" in reasons and "TCP_ESTABLISHED -> TCP_CLOSE" in reasons
        go.set()


async def test_open_shows_an_analyze_session_file_read_only_and_exports_its_report(tmp_path, monkeypatch):
    import json

    from textual.widgets import TextArea

    from tests.ui.helpers import until
    from wizard.cli.main import main
    from wizard.ui.screens.export_modal import ExportModal

    capture = tmp_path / "c.pcap"
    write_pcap(str(capture), (r for i, e in enumerate(["server-app", "fin", "path", "server-kernel"])
                              for r in conversation(Ends(), 40000 + i, 1.7e9 + i, e)))
    saved = tmp_path / "analyze.json"
    # the command, as a person runs it (in a thread: this test's loop is running)
    assert await asyncio.to_thread(main, ["analyze", str(capture), "--json", str(saved), "--quiet"]) in (0, 1)
    opened: list[Session] = []
    monkeypatch.setattr("wizard.ui.observe.app.run_observe", lambda session, watch=None: opened.append(session) or 0)
    assert main(["open", str(saved)]) == 0  # the command hands the file's session to the viewer
    (session,) = opened
    assert session.mode == "analyze" and len(session.observation.events) == 3
    app = ObserveApp(session, export_dir=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        assert app.query_one("#events", DataTable).row_count == 3
        assert "read-only" in text(app, "#observe-head") and "3 resets" in text(app, "#observe-head")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        preview = app.screen.query_one("#preview", TextArea).text
        await pilot.click("#write")
        await until(pilot, lambda: not isinstance(app.screen, ExportModal))
    report = tmp_path / "reset-wizard-analyze.md"
    assert report.read_text() == preview and "path" in preview
    exported = json.loads(report.with_suffix(".json").read_text())
    assert exported["mode"] == "analyze" and len(exported["observation"]["events"]) == 3


async def test_a_live_watch_keeps_its_newest_rows_and_counts_every_reset(tmp_path, monkeypatch):
    """The table of a live watch holds its newest LIVE_ROWS resets (the watch's session keeps
    every one); the head and the rate count them all."""

    from wizard.ui.observe import app as observe

    monkeypatch.setattr(observe, "LIVE_ROWS", 40)
    done = session_of(tmp_path, ["server-app"])
    assert done.observation is not None
    many = ten_a_second(done, 200)
    start, go, watch = live(done, many)

    app = ObserveApp(start, watch, export_dir=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if "200 resets" in text(app, "#observe-head"):
                break
        table = app.query_one("#events", DataTable)
        assert table.row_count == 40 and len(app.events) == 40 and sorted(app.by_n, key=int) == [
            str(n) for n in range(161, 201)]
        assert str(table.get_row_at(0)[0]) == "161"
        assert "200 resets: 200 server-app" in text(app, "#observe-head")
        assert sum(app.query_one("#rate", Sparkline).data) == 200
        go.set()


async def test_a_saved_watch_that_lost_packets_says_so_in_its_head(tmp_path):
    session = Session.from_json(session_of(tmp_path, ["server-app"]).to_json())
    assert session.observation is not None
    session.observation.sources[0].lost = 12
    app = ObserveApp(session, export_dir=tmp_path)
    async with app.run_test(size=(140, 40)):
        assert "12 packets lost by the capture" in text(app, "#observe-head")


async def test_on_an_80_column_terminal_the_list_sits_above_the_reset_whose_ladder_never_wraps(tmp_path):
    session = Session.from_json(session_of(tmp_path, ["server-app", "fin", "path"]).to_json())
    app = ObserveApp(session, export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table, pane = app.query_one("#events", DataTable), app.query_one("#detail-pane")
        assert table.region.bottom <= pane.region.y, (table.region, pane.region)  # stacked, not side by side
        # the sender and the proof are the first columns after the time: they are on screen
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[2:4] == ["sender", "proof"]
        widths = [c.get_render_width(table) for c in table.columns.values()]
        assert sum(widths[:4]) <= table.region.width
        ladder = app.query_one("#ladder", Static)
        lines = text(app, "#ladder").splitlines()
        assert any("RST" in line for line in lines)
        # each ladder line is one row of the view: the notes went under their arrows
        assert ladder.region.height == len(lines)
        assert max(len(line) for line in lines) <= pane.scrollable_content_region.width
    wide = ObserveApp(session, export_dir=tmp_path)
    async with wide.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app = wide
        table, pane = app.query_one("#events", DataTable), app.query_one("#detail-pane")
        assert table.region.right <= pane.region.x  # wide: side by side
