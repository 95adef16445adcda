"""Layout at a narrow terminal: text in columns scrolls sideways instead of wrapping."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll

from wizard.model.results import Evidence
from wizard.ui.app import ResetWizardApp
from wizard.ui.widgets.evidence import EvidenceView


def _packet_table(rows: int) -> str:
    head = "      ms  dir                from                 to  flags ttl  ipid DF        seq        ack   win"
    line = "   44.20  ->      127.0.0.1:33890    127.0.0.1:40561  S      64 15343 DF 3760140633          0 65495"
    return "\n".join([head, *[line] * rows])


class _One(App[None]):
    CSS_PATH = [ResetWizardApp.CSS_PATH, ResetWizardApp.RUN_CSS_PATH]  # noqa: RUF012 - the wizard's own styles

    def __init__(self, evidence: Evidence) -> None:
        super().__init__()
        self.evidence = evidence

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield EvidenceView(self.evidence)


async def _heights(kind: str, text: str, width: int) -> tuple[int, int, int]:
    """The text view's height, the sideways scroller's width and its scrollable width."""
    app = _One(Evidence(kind=kind, title="capture", source="scapy", text=text))  # type: ignore[arg-type]
    async with app.run_test(size=(width, 30)) as pilot:
        await pilot.pause()
        scroller = app.query_one(".sideways")
        view = app.query_one(".sideways > .verbatim")
        return view.size.height, scroller.size.width, scroller.virtual_size.width


async def test_a_packet_table_keeps_one_line_per_row_at_80_columns_and_scrolls_sideways() -> None:
    text = _packet_table(4)
    height, width, scrollable = await _heights("packets", text, 80)
    assert height == 5  # the header and four rows, none wrapped
    assert scrollable > width  # wider than the view: scrolled, not cut or folded
    assert scrollable >= max(len(line) for line in text.splitlines())


async def test_a_packet_table_that_fits_needs_no_scrolling_at_160_columns() -> None:
    text = _packet_table(3)
    height, width, scrollable = await _heights("packets", text, 160)
    assert height == 4
    assert scrollable <= width


async def test_a_command_output_is_not_wrapped_either() -> None:
    text = "State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process " * 3
    height, width, scrollable = await _heights("command", text, 80)
    assert height == 1
    assert scrollable > width


_NOTE = "ttl 64, win 64, TS, ip id 14120 — sent by the server's application (a live socket aborted)"


def _ladder() -> Evidence:
    return Evidence(kind="ladder", title="the probe connection", source="scapy", data={
        "lanes": ["client", "server"],
        "events": [{"ms": 0.0, "src": "client", "dst": "server", "label": "SYN", "note": "ttl 64, win 65495, TS"},
                   {"ms": 0.02, "src": "server", "dst": "client", "label": "SYN-ACK"},
                   {"ms": 309.5, "src": "server", "dst": "client", "label": "RST-ACK", "note": _NOTE}]})


async def _ladder_lines(width: int) -> tuple[list[str], int, int]:
    """The ladder's lines as drawn, the sideways scroller's width and its scrollable width."""
    from wizard.ui.widgets.ladder import Ladder

    app = _One(_ladder())
    async with app.run_test(size=(width, 30)) as pilot:
        await pilot.pause()
        view = app.query_one(Ladder)
        scroller = app.query_one(".sideways")
        lines = view.render().plain.split("\n")
        assert view.size.height == len(lines)  # every line shown, none wrapped
        return lines, scroller.size.width, scroller.virtual_size.width


async def test_ladder_notes_go_under_their_arrow_at_80_columns_and_never_wrap() -> None:
    lines, width, scrollable = await _ladder_lines(80)
    rst = next(i for i, line in enumerate(lines) if "RST-ACK" in line)
    assert "ip id" not in lines[rst]  # the note did not fit beside the arrow...
    assert lines[rst + 1].strip().startswith("│ ttl 64, win 64")  # ...so it has its own line
    assert lines[rst + 1].rstrip().endswith("(a live socket aborted)")  # whole, on one line
    assert max(len(line) for line in lines) <= width or scrollable > width  # scrolls, not folds
    syn = next(i for i, line in enumerate(lines) if "SYN " in line and "SYN-ACK" not in line)
    assert "ttl 64, win 65495, TS" in lines[syn] + lines[syn + 1]


async def test_ladder_notes_stay_beside_their_arrow_when_they_fit() -> None:
    lines, width, scrollable = await _ladder_lines(160)
    assert any("RST-ACK" in line and line.rstrip().endswith("(a live socket aborted)") for line in lines)
    assert len(lines) == 4 and scrollable <= width


async def test_the_title_bar_keeps_a_space_each_side_of_its_dash_on_screen_and_in_a_screenshot() -> None:
    from textual.widgets._header import HeaderTitle

    app = ResetWizardApp(target="127.0.0.1:8080")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = app.screen.query_one(HeaderTitle).render()
        assert "reset-wizard — why was the connection reset?" in str(shown)
        svg = app.export_screenshot()
    # The screenshot draws each run of one style on its own: the space after the title must
    # not ride in the dimmed dash's run, or it is drawn squeezed ("reset-wizard—  ...").
    assert "reset-wizard&#160;</text>" in svg or "reset-wizard&#160;—" in svg


async def test_at_80x24_the_export_dialog_shows_its_checkboxes_and_buttons_whole() -> None:
    from tests.ui.helpers import make_app, open_export, run_all

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await run_all(pilot)
        await open_export(pilot)
        await pilot.pause()
        dialog = app.screen.query_one(".export-dialog").region
        for name in ("#redact", "#redact-addresses", "#json", "#cancel", "#write", "#preview"):
            region = app.screen.query_one(name).region
            assert region.width and dialog.contains_region(region), (name, region, dialog)
        assert app.screen.query_one("#preview").region.height >= 3


async def test_at_80_columns_the_footer_shows_whole_keys_in_their_order() -> None:
    from textual.widgets._footer import FooterKey

    from tests.ui.helpers import make_app, run_all
    from wizard.ui.widgets.footer import WizardFooter

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await run_all(pilot)
        await pilot.press("6")
        await pilot.pause(0.3)
        footer = app.screen.query_one(WizardFooter)
        keys = [k for k in footer.query(FooterKey) if not k.has_class("-command-palette")]
        palette = footer.query_one(".-command-palette", FooterKey)
        shown = [k for k in keys if k.display]
        assert shown[0].key_display == "^q" and len(shown) < len(keys)  # the first kept, the last dropped
        assert keys[:len(shown)] == shown  # dropped from the end, never a gap
        assert all(k.region.right <= palette.region.x for k in shown)
    async with make_app().run_test(size=(160, 48)) as pilot:
        await run_all(pilot)
        await pilot.press("6")
        await pilot.pause(0.3)
        footer = pilot.app.screen.query_one(WizardFooter)
        assert all(k.display for k in footer.query(FooterKey))  # at 160 columns every key fits


async def test_the_footer_rebuilds_once_for_changes_that_come_before_its_rebuild(monkeypatch) -> None:
    """Start-up builds the footer's keys once (after an empty footer); two changes of the
    keys in a row (a target typed, then cleared) before the rebuild has composed make one
    rebuild, and it shows the keys as they are by then."""
    from textual.widgets import Input

    from tests.ui.helpers import SIZE, make_app, until
    from wizard.ui.widgets.footer import WizardFooter

    composed: list[bool] = []
    compose = WizardFooter.compose

    def counted(self: WizardFooter):  # type: ignore[no-untyped-def]
        composed.append(self._bindings_ready)
        return compose(self)

    monkeypatch.setattr(WizardFooter, "compose", counted)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.complete and app.checklist is not None)
        await pilot.pause(0.1)
        assert composed == [False, True]
        footer = app.screen.query_one(WizardFooter)
        target = app.screen.query_one("#target", Input)

        def change(value: str) -> None:  # in the footer's own turn, as the screen's signal calls it
            target.value = value
            footer.bindings_changed(app.screen)

        footer.call_next(change, "127.0.0.1:8080")  # Enter (Start) comes
        footer.call_next(change, "")  # and goes, before the rebuild has composed
        await pilot.pause(0.1)
        assert composed == [False, True, True]
        assert footer.shown_keys() == footer._shown
        assert "Start" not in " ".join(str(k.render()) for k in footer.query("FooterKey"))
        target.value = "127.0.0.1:8080"  # typed as a person does: the footer follows
        await until(pilot, lambda: "Start" in " ".join(str(k.render()) for k in footer.query("FooterKey")))
        assert composed == [False, True, True, True]
