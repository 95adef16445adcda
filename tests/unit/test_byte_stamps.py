"""A clean buffer's stamps read from its bytes (``byte_stamp``) are the text the format's
own pattern reads in each decoded line: at a line's start, whatever follows the stamp
(the line's end, a space, a word character, digits, a colon, a dot)."""

from __future__ import annotations

import random

import pytest

from wizard.diag.logs.parse.timestamps import FORMATS, byte_stamp

STAMPS = ["2026-11-22T03:48:08.123+00:00", "2026-11-22 03:48:08,123", "2026-11-22T03:48:08Z",
          "2026-11-22T03:48:08+0100", "2026-11-22 03:48:08 UTC", "<13>1 2026-11-22T03:48:08Z",
          "[2026-12-01 19:00:00 +0000]", "[2026-12-01 19:00:00]", "4121:M 01 Dec 2026 19:00:00.123 ",
          "4121:M 01 Dec 2026 19:00:00", "Nov 22 03:48:08 ", "Nov  2 03:48:08.5 ", "Nov 22 03:48:08",
          "2026/11/22 03:48:08", "2026/11/22 03:48:089", "[Sun Nov 22 03:48:08.123456 2026]",
          "1795321320.660592", "1795321320", "17953213201", "I1122 03:48:08.123456", "I1122 03:48:08."]
TAILS = ["", " ", " x", "x", "9", ":", ".", ".5", "Z", "\t", "\x1c", "\x0b", "+01", " UTC", "]"]


@pytest.mark.parametrize("fmt", [f for f in FORMATS if byte_stamp(f.name) is not None], ids=lambda f: f.name)
def test_a_stamp_read_from_the_bytes_is_the_one_read_from_the_line(fmt: object) -> None:
    rnd = random.Random(3)
    lines = [s + t + (rnd.choice(["", " [error] x"]) if t else "") for s in STAMPS for t in TAILS]
    lines += [fmt.example.split(" / ")[0]]  # type: ignore[attr-defined]
    data = "\n".join(lines).encode()
    assert data.isascii() and b"\r" not in data
    stamp = byte_stamp(fmt.name)  # type: ignore[attr-defined]
    assert stamp is not None
    pos, seen = 0, 0
    for line in lines:
        want = fmt.pattern.match(line)  # type: ignore[attr-defined]
        got = stamp.match(data, pos)
        if want is None:
            assert got is None or b"\n" in got.group(0), line
        else:
            seen += 1
            assert got is not None and got.group(0).decode() == want.group(0), line
        pos += len(line) + 1
    assert seen


def test_formats_whose_line_end_reads_differently_have_no_byte_stamp() -> None:
    assert byte_stamp("access-log") is None and byte_stamp("json-ts") is None  # not at the line's start
    assert byte_stamp("nginx-error") is not None and byte_stamp("syslog") is not None
