"""Matching log lines against the checklist's signatures (pure): the excerpt of one source
(matches with their context, merged), and the matches over time as a histogram."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wizard.diag.logs.io.reader import LogLine
from wizard.model import Signature, linear
from wizard.model.wording import plural

HIST_BUCKETS = 12
SPARK = "▁▂▃▄▅▆▇█"
HIST_CLASSES = (("resets", ("rst_certain",)), ("eof", ("eof_or_rst",)), ("proxy", ("proxy_state",)),
                ("crashes", ("crash",)), ("resource", ("resource", "kernel_event")))
#: a histogram column's lines counted in words ("1 reset line", "6 crash lines")
HIST_WORDS = {"resets": "reset line", "eof": "eof-or-reset line", "proxy": "proxy line", "crashes": "crash line",
              "resource": "resource line"}

TITLE_CLASSES = (("rst_certain", "reset"), ("eof_or_rst", "eof-or-reset"), ("crash", "crash"),
                 ("resource", "resource"), ("kernel_event", "kernel"), ("proxy_state", "proxy"),
                 ("protocol", "protocol"), ("not_reset", "refused/timeout"))



@dataclass
class Match:
    line: LogLine
    index: int  # position in the window's lines
    signatures: list[Signature]


@dataclass
class Excerpt:
    """The matched lines of one source with their context, merged into one text."""

    text: str = ""
    highlight: list[int] = field(default_factory=list)
    first_line: int | None = None
    matches: list[Match] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # signature id -> matching lines
    lines: int = 0  # matching lines (a line two signatures match counts once)
    class_lines: Counter[str] = field(default_factory=Counter)  # class -> matching lines
    left_out: int = 0
    times: list[tuple[float, set[str]]] = field(default_factory=list)  # every match: ts, classes


def match_lines(lines: list[LogLine], signatures: list[Signature]) -> list[Match]:
    """The lines in the window that match, with their signatures: as the log search found
    them (``LogLine.sigs``, indices into ``signatures``), else by ``re`` in linear form."""
    compiled: list[tuple[Signature, object]] | None = None
    out = []
    for i, line in enumerate(lines):
        if not line.in_window:
            continue
        if line.sigs is not None:
            hits = [signatures[k] for k in line.sigs]
        else:
            compiled = compiled or [(s, linear.compile_linear(s.regex)) for s in signatures]
            hits = [s for s, rx in compiled if linear.search(rx, line.text)]  # type: ignore[arg-type]
        if hits:
            out.append(Match(line, i, hits))
    return out


def adjacent(a: LogLine, b: LogLine) -> bool:
    """Whether ``b`` is the line right after ``a`` in its file. The lines given to excerpt()
    may be only the matches and their context, so neighbours in the list can be far apart."""
    if a.number is not None and b.number is not None:
        return b.number == a.number + 1
    if a.offset == b.offset == 0:
        return True  # no position known (a journal's entries): taken as given
    # The decoded text is at least as long in UTF-8 as the raw line (a replaced byte grows),
    # plus "\r\n" at most.
    return 0 < b.offset - a.offset <= len(a.text.encode("utf-8", "replace")) + 2


def excerpt(lines: list[LogLine], signatures: list[Signature], context: int, budget: int,
            more: Sequence[tuple[float | None, tuple[int, ...]]] = ()) -> Excerpt:
    """Keep ``context`` lines around each of the first ``budget`` matches, merging overlaps;
    context never reaches across a gap between lines that are not neighbours in the file.
    ``more``: matches after those lines, only timed (see LogWindow.more): counted, never kept."""
    found = match_lines(lines, signatures)
    rest = [(ts, [signatures[k] for k in ids]) for ts, ids in more]
    every = [(m.line.ts, m.signatures) for m in found] + rest
    ex = Excerpt(counts=Counter(s.id for _, sigs in every for s in sigs), lines=len(every),
                 class_lines=Counter(c for _, sigs in every for c in {s.cls for s in sigs}),
                 times=[(ts, {s.cls for s in sigs}) for ts, sigs in every if ts is not None])
    kept = found[:max(budget, 0)]
    ex.left_out = len(every) - len(kept)
    ex.matches = kept
    if not kept:
        return ex
    spans: list[list[int]] = []
    for m in kept:
        lo = hi = m.index
        while lo > 0 and m.index - lo < context and adjacent(lines[lo - 1], lines[lo]):
            lo -= 1
        while hi < len(lines) - 1 and hi - m.index < context and adjacent(lines[hi], lines[hi + 1]):
            hi += 1
        if spans and lo <= spans[-1][1] + 1 and (lo <= spans[-1][1] or adjacent(lines[spans[-1][1]], lines[lo])):
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    hit_idx = {m.index for m in kept}
    text: list[str] = []
    for n, (lo, hi) in enumerate(spans):
        if n:
            text.append("...")
        for i in range(lo, hi + 1):
            if i in hit_idx:
                ex.highlight.append(len(text))
            text.append(linear.shown(lines[i].text))
    ex.text = "\n".join(text)
    ex.first_line = lines[spans[0][0]].number
    return ex


def line_place(path: str, line: LogLine) -> str:
    return f"{path}:{line.number}" if line.number is not None else f"{path}@{line.offset}"


def trim_line(text: str, n: int = 160) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def source_title(path: str, per_class: Counter[str]) -> str:
    parts = [plural(per_class[c], f"{word} line") for c, word in TITLE_CLASSES if per_class[c]]
    return f"{path}: " + (", ".join(parts) if parts else "no matching lines")


def _hhmmss(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    """A bucket's length as people write it: 0.3 s, 50 s, 2.5 min, 1.2 h."""
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.2g} min"
    return f"{seconds / 3600:.2g} h"


def histogram(times: list[tuple[float, set[str]]], t0: float, t1: float,
              buckets: int = HIST_BUCKETS) -> tuple[dict, str] | None:
    """Matches counted per time bucket of [t0, t1] and per kind: the table's data and a
    sparkline text (one row per kind that occurs). None when nothing is in the window."""
    width = (t1 - t0) / buckets if t1 > t0 else 0.0
    if width <= 0:
        return None
    counts = [[0] * len(HIST_CLASSES) for _ in range(buckets)]
    seen = False
    for ts, classes in times:
        if not t0 <= ts <= t1:
            continue
        b = min(buckets - 1, int((ts - t0) / width))
        for k, (_, members) in enumerate(HIST_CLASSES):
            if classes & set(members):
                counts[b][k] += 1
                seen = True
    if not seen:
        return None
    columns = ["from", "to", *(name for name, _ in HIST_CLASSES)]
    spec = "seconds" if width >= 1 else "milliseconds"  # short windows: buckets under a second
    rows = [[datetime.fromtimestamp(t0 + i * width, UTC).isoformat(timespec=spec),
             datetime.fromtimestamp(t0 + (i + 1) * width, UTC).isoformat(timespec=spec),
             *counts[i]] for i in range(buckets)]
    lines = []
    for k, (name, _) in enumerate(HIST_CLASSES):
        series = [row[k] for row in counts]
        top = max(series)
        if not top:
            continue
        spark = "".join(" " if v == 0 else SPARK[min(7, (v * 8 - 1) // top)] for v in series)
        lines.append(f"{name:<9}|{spark}| max {top} per {_span(width)}")
    lines.append(f"{'':<9} {_hhmmss(t0)}{'':{max(1, buckets - 16)}}{_hhmmss(t1)} UTC")
    return {"columns": columns, "rows": rows, "bucket_s": width}, "\n".join(lines)
