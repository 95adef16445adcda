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
    CSS_PATH = ResetWizardApp.CSS_PATH  # the wizard's own styles

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
