"""The observation viewer (I/O: the terminal): every reset of a session or of a live watch.

A table of events (one row per reset: when, flow, toward, sender, proof); the selected
one's ladder and reasons beside it; resets per second as a sparkline over the top. Opened
on a saved session it is read-only, with export (`e`); fed by a live watch, the watch runs
in a worker and each event is pushed in as it is attributed (attributes down, messages up).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from wizard.model import Session
from wizard.model.observed import ResetEvent
from wizard.model.wording import plural
from wizard.ui.widgets.ladder import render_ladder

HERE = Path(__file__).resolve().parent
# Who sent it and the proof first: on a narrow terminal the flow's tail is what is cut.
COLUMNS = ("#", "time", "sender", "proof", "toward", "flow")
STACKED_BELOW = 120  # columns under which the list sits above the selected reset, not beside it
LIVE_ROWS = 1000  # a live watch's rows: the newest (its session keeps every event, compactly)


class ResetSeen(Message):
    """A live watch attributed one more reset."""

    def __init__(self, event: ResetEvent) -> None:
        super().__init__()
        self.event = event


class CountersSampled(Message):
    """A live watch sampled the server's TCP counters (what moved in the last second)."""

    def __init__(self, moved: dict[str, int], lost: int = 0) -> None:
        super().__init__()
        self.moved = moved
        self.lost = lost  # packets the capture lost so far (its queue was full)


#: the counter the live sparkline follows, and the words that pick the ones named beside it
SPARK_COUNTER = "TcpOutRsts"
RESET_WORDS = ("Rst", "Reset", "Abort", "Drop", "Overflow", "Fail")


def counters_line(moved: dict[str, int], lost: int = 0) -> str:
    named = [f"{k} +{v}" for k, v in moved.items() if any(w in k for w in RESET_WORDS)]
    missed = (f" · the capture lost {plural(lost, 'packet')} so far (its queue was full): resets among them "
              "are not seen") if lost else ""
    return (f"RSTs the server's kernel sent per second ({SPARK_COUNTER}); last second: "
            + (", ".join(named) if named else "no reset, abort or drop counter moved") + missed)


class WatchEnded(Message):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


def per_second(events: Sequence[ResetEvent], buckets: int = 60) -> list[float]:
    """Resets per second over the observation (the sparkline's data); at least one bucket."""
    if not events:
        return [0.0]
    start = min(e.at for e in events).timestamp()
    end = max(e.at for e in events).timestamp()
    width = max((end - start) / buckets, 1.0)
    counts = [0.0] * (int((end - start) / width) + 1)
    for ev in events:
        counts[int((ev.at.timestamp() - start) / width)] += 1
    return counts


def rate_of(seconds: Counter[int], buckets: int = 60) -> list[float]:
    """Resets per second from resets counted by the second they came in (a live watch's
    sparkline: its cost is the seconds with a reset, not the resets)."""
    if not seconds:
        return [0.0]
    start, end = min(seconds), max(seconds)
    width = max((end - start) / buckets, 1.0)
    counts = [0.0] * (int((end - start) / width) + 1)
    for second, n in seconds.items():
        counts[int((second - start) / width)] += n
    return counts


def summary_line(session: Session, live: bool, counted: tuple[int, dict[str, int]] | None = None) -> str:
    """The head's two lines; ``counted`` (resets, by sender) says them for a live watch."""
    obs = session.observation
    n, by_sender = counted or (len(obs.events) if obs else 0, obs.by_sender if obs else {})
    senders = ", ".join(f"{v} {k}" for k, v in by_sender.items()) or "none yet"
    where = ", ".join(s.source for s in obs.sources) if obs and obs.sources else session.mode
    verdict = session.diagnosis[0].title or session.diagnosis[0].cause if session.diagnosis else ""
    state = "watching live" if live else f"saved {session.mode} session, read-only"
    lost = obs.lost_packets if obs and not live else 0
    return f"{session.target.display()} · {state} · {where}\n{plural(n, 'reset')}: {senders}" + \
        (f" · leading cause: {verdict}" if verdict and not live else "") + \
        (f" · {plural(lost, 'packet')} lost by the capture" if lost else "")


class ObserveApp(App[int]):
    """Shows ``session``'s resets; with ``watch`` (a coroutine factory taking the push
    callback) the session grows live until the watch ends."""

    CSS_PATH = [HERE.parent / "wizard.tcss", HERE.parent / "run.tcss", HERE / "observe.tcss"]
    TITLE = "reset-wizard"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("e", "export", "Export"),
                Binding("j", "cursor(1)", "Next", show=False), Binding("k", "cursor(-1)", "Previous", show=False)]

    def __init__(self, session: Session,
                 watch: Callable[[Callable[[ResetEvent], None]], Awaitable[Session]] | None = None,
                 export_dir: Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.watch_factory = watch
        self.export_dir = export_dir or Path.cwd()
        # a saved session's events; a live watch's newest LIVE_ROWS (the watch's session keeps them all)
        self.events: deque[ResetEvent] = deque(session.observation.events if session.observation else [])
        self.seen = len(self.events)  # a live watch's resets so far
        self.samples: deque[float] = deque([0.0], maxlen=120)  # SPARK_COUNTER per second, live
        # a live watch's resets by number, by second and by sender, kept as they come: the
        # views are refreshed from these once a second, never by going over every event again
        self.by_n: dict[str, ResetEvent] = {str(e.n): e for e in self.events}
        self.seconds: Counter[int] = Counter()
        self.by_sender: Counter[str] = Counter()
        self.stale = False
        self.shown: ResetEvent | None = None  # the reset whose ladder and reasons are on view

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(summary_line(self.session, self.watch_factory is not None), id="observe-head")
        yield Sparkline(per_second(self.events), id="rate")
        if self.watch_factory is not None:
            yield Static(counters_line({}), id="counters-label")
            yield Sparkline(list(self.samples), id="counters")
        with Horizontal(id="observe-body"):
            yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-pane"):
                yield Static("", id="ladder")
                yield Static("", id="reasons")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        table.add_columns(*COLUMNS)
        for ev in self.events:
            self._add_row(ev)
        if self.events:
            self.show(self.events[0])
        elif self.session.mode == "diagnose":
            self.query_one("#reasons", Static).update(self._diagnose_text())
        else:
            self.query_one("#reasons", Static).update("No reset in this observation.")
        table.focus()
        if self.watch_factory is not None:
            self.set_interval(1.0, self._refresh_live)
            self.run_watch()

    def _diagnose_text(self) -> str:
        lines = ["A diagnose session: its causes, most likely first.", ""]
        lines += [f"{f.confidence:.0%}  {f.title or f.cause}: {f.summary}" for f in self.session.diagnosis[:5]]
        return "\n".join(lines)

    def _add_row(self, ev: ResetEvent) -> None:
        self.query_one("#events", DataTable).add_row(
            str(ev.n), f"{ev.at:%H:%M:%S.%f}"[:-3], ev.sender, ev.proof or "", ev.toward, ev.flow, key=str(ev.n))

    def on_resize(self) -> None:
        self.query_one("#observe-body").set_class(self.size.width < STACKED_BELOW, "-stacked")
        self.call_after_refresh(self._reshow)  # the ladder laid out for the pane's new width

    def _reshow(self) -> None:
        if self.shown is not None and self.screen.query("#ladder"):
            self.show(self.shown)

    def show(self, ev: ResetEvent) -> None:
        self.shown = ev
        lanes = ev.ladder.get("lanes") or ["client", "server"]
        # Notes beside their arrows only where the pane has room; the ladder never wraps.
        fit = self.query_one("#detail-pane").scrollable_content_region.width or None
        self.query_one("#ladder", Static).update(render_ladder(list(lanes), list(ev.ladder.get("events") or []), fit))
        text = [f"reset {ev.n}: {ev.flow}, toward the {ev.toward}", f"sent by {ev.sender_words}", ""]
        if ev.timing_detail:
            text += [f"when: {ev.timing_detail}", ""]
        text += [f"- {r}" for r in ev.reasons]
        if ev.kernel_reason:
            text += ["", f"kernel: {ev.kernel_reason}"]
        for title, lines in (("kernel drops that second", ev.drops), ("the flow's TCP states", ev.states),
                             ("server log lines that second", ev.logs),
                             ("counters that moved that second", [f"{k} +{v}" for k, v in ev.counters.items()])):
            if lines:
                text += ["", f"{title}:", *(f"  {line}" for line in lines)]
        self.query_one("#reasons", Static).update(Text("\n".join(text)))

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        key = message.row_key.value if message.row_key is not None else None
        ev = self.by_n.get(key) if key is not None else None
        if ev is None or not self.screen.query("#ladder"):
            return  # a late highlight, on a screen being torn down (the app quitting): nothing to show
        self.show(ev)

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#events", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_export(self) -> None:
        from wizard.ui.screens.export_modal import ExportModal

        default = self.export_dir / f"reset-wizard-{self.session.mode}.md"
        if self.watch_factory is not None and self.session.observation is not None:
            self.session.observation.count()  # the watch so far: its session holds every event
        self.push_screen(ExportModal(self.session, str(default)), self._exported)

    def _exported(self, paths: list[str] | None) -> None:
        if paths:
            self.notify("Wrote " + " and ".join(paths), title="Exported", timeout=8)

    # -- live -----------------------------------------------------------------------
    @work(exclusive=True, group="watch")
    async def run_watch(self) -> None:
        assert self.watch_factory is not None

        def seen(event: ResetEvent) -> None:
            self.post_message(ResetSeen(event))

        session = await self.watch_factory(seen)
        self.post_message(WatchEnded(session))

    def on_reset_seen(self, message: ResetSeen) -> None:
        ev = message.event
        if self.watch_factory is not None and len(self.events) >= LIVE_ROWS:  # the oldest row goes
            gone = self.events.popleft()
            self.by_n.pop(str(gone.n), None)
            self.query_one("#events", DataTable).remove_row(str(gone.n))
        self.events.append(ev)
        self.seen += 1
        self.by_n[str(ev.n)] = ev
        self.seconds[int(ev.at.timestamp())] += 1
        self.by_sender[ev.sender] += 1
        self._add_row(ev)
        if self.seen == 1:
            self.show(ev)
        self.stale = True  # the sparkline and the head follow within the second

    def _refresh_live(self) -> None:
        if not self.stale or not self.screen.query("#rate"):
            return
        self.stale = False
        self.query_one("#rate", Sparkline).data = rate_of(self.seconds)
        self._refresh_head(live=True)

    def sample_seen(self, moved: dict[str, int], lost: int = 0) -> None:
        """The watch's callback for each second's counters (from the watch's worker)."""
        self.post_message(CountersSampled(dict(moved), lost))

    def on_counters_sampled(self, message: CountersSampled) -> None:
        if not self.query("#counters"):
            return
        self.samples.append(float(message.moved.get(SPARK_COUNTER, 0)))
        self.query_one("#counters", Sparkline).data = list(self.samples)
        self.query_one("#counters-label", Static).update(counters_line(message.moved, message.lost))

    def on_watch_ended(self, message: WatchEnded) -> None:
        self.session = message.session
        self.watch_factory = None
        self.query_one("#rate", Sparkline).data = rate_of(self.seconds) if self.seconds else per_second(self.events)
        self._refresh_head(live=False)
        self.notify("The watch ended; e exports the session.", title="Watch ended")

    def _refresh_head(self, live: bool) -> None:
        counted = (self.seen, dict(self.by_sender)) if live else None
        self.query_one("#observe-head", Static).update(summary_line(self.session, live, counted))


def run_observe(session: Session, watch: Any = None) -> int:
    return ObserveApp(session, watch).run() or 0
