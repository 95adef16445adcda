"""``newlines`` counts what ``bytes.count(b"\\n")`` counts, on every shape of buffer and range."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wizard.diag.logs.io.newlines import DENSE, PIECE, newlines


def _buffer(lengths: list[int]) -> bytes:
    return b"".join(b"x" * n + b"\n" for n in lengths)


def test_long_and_short_lines_and_their_mix() -> None:
    long_lines = _buffer([200] * 3000)  # replace's way, piece after piece
    short = b"\n" * (5 * PIECE)  # all newlines: count's way after the first piece
    for data in (long_lines, short, long_lines + short + long_lines, short + long_lines,
                 long_lines + b"tail without newline", bytearray(long_lines)):
        assert newlines(data) == data.count(b"\n")
        assert newlines(data, 17, len(data) - 5) == data.count(b"\n", 17, len(data) - 5)
    assert newlines(b"") == 0 and newlines(long_lines, 10, 10) == 0


def test_a_range_past_the_end_is_cut_at_the_end() -> None:
    data = _buffer([90] * 5000)
    assert newlines(data, 3, len(data) + 1000) == data.count(b"\n", 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3 * DENSE), min_size=1, max_size=400), st.integers(1, 600),
       st.integers(0, 5000), st.integers(0, 5000))
def test_any_buffer_and_range(lengths: list[int], repeat: int, lo: int, cut: int) -> None:
    data = _buffer(lengths) * repeat
    start = min(lo, len(data))
    end = max(start, len(data) - cut)
    assert newlines(data, start, end) == data.count(b"\n", start, end)
    assert newlines(data) == data.count(b"\n")
