"""Making untrusted text safe to put in Markdown: escapes stripped, controls shown, fences unbreakable.

Log lines, command output and error text come from systems the reader does not control.
Terminal escape sequences could recolour or hide text when the report is viewed with
``cat``; a line of backticks could close a fence and turn the rest of a log into Markdown;
a ``|`` breaks a table row. Everything rendered passes through here.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC
# (ESC P/X/^/_ ... ST), two-character escapes (ESC followed by one byte), and the 8-bit
# C1 introducers (0x9b CSI, 0x9d OSC, 0x90/0x98/0x9e/0x9f string controls).
_ESCAPES = re.compile(
    r"""\x1b\[[0-?]*[ -/]*[@-~]
      | \x9b[0-?]*[ -/]*[@-~]
      | (?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
      | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?
      | \x1b[ -/]*[0-~]?""",
    re.X)
# Other controls (but tab and newline), DEL, C1, lone surrogates (undecodable bytes read with
# surrogateescape) and the bidirectional overrides that can make text read differently
# from how it is stored.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\ufeff]")
_BACKTICKS = re.compile(r"`+")

# Characters that start Markdown constructs inline; escaped with a backslash.
_INLINE = re.compile(r"([\\`*\[\]<>|~])")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])(?=\s|$)")


def _visible(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def clean(text: str) -> str:
    """Strip terminal escape sequences; show other control characters and bad bytes as ``\\xNN``."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    text = _ESCAPES.sub("", text)
    return _UNSAFE.sub(lambda m: _visible(m.group(0)), text)


def fence_for(text: str, char: str = "`") -> str:
    """A backtick fence longer than any backtick run in ``text``, so no line can close it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0) if char == "`" else 0
    return char * max(3, longest + 1)


def fenced(text: str, lang: str = "") -> str:
    """A fenced code block holding ``text`` verbatim (after :func:`clean`)."""
    body = clean(text).rstrip("\n")
    fence = fence_for(body)
    return f"{fence}{lang}\n{body}\n{fence}"


def inline(text: str) -> str:
    """Text for an inline position (a heading, a list item, a sentence): one line, escaped."""
    one = " ".join(clean(text).split())
    one = _INLINE.sub(r"\\\1", one)
    one = _EDGE_UNDERSCORE.sub(r"\\_", one)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), one)


def cell(text: str) -> str:
    """Text for a table cell: one line, escaped, ``|`` included."""
    return inline(text) or " "


def code(text: str) -> str:
    """An inline code span that holds ``text`` verbatim, whatever backticks it contains."""
    one = " ".join(clean(text).split("\n")).strip()
    if not one:
        return ""
    longest = max((len(run) for run in _BACKTICKS.findall(one)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if one.startswith("`") or one.endswith("`") or longest else ""
    return f"{tick}{pad}{one}{pad}{tick}"


def code_cell(text: str) -> str:
    """A code span inside a table cell: ``|`` must be escaped even there (GFM splits cells first)."""
    return code(text).replace("|", "\\|")


def authored(text: str) -> str:
    """Checklist-authored Markdown (cause summaries, remedies): kept as Markdown, one paragraph."""
    return " ".join(clean(text).split())


def html(text: str) -> str:
    """Text inside an HTML element such as ``<summary>``."""
    one = " ".join(clean(text).split())
    return one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
