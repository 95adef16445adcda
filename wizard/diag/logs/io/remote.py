"""The window search run where the log is (I/O through a Host): a small Python program sent
as ``python3 -c CODE ARGS`` reads the window's byte range on the server, finds the lines that
match the signatures and their context, and prints only those, so that a window of a huge
remote log costs kilobytes of transfer instead of the window's bytes.

The program is a constant of this module; its one argument is JSON (path, byte range,
literals, regexes, margin, caps). It needs nothing but Python 3's standard library. Without
python3 on the server the caller reads the window by ranged reads instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from wizard.hosts.base import Host, HostError
from wizard.model.linear import HALF, linear_regex

REMOTE_TIMEOUT = 120.0
REMOTE_OUT_CAP = 2 << 20  # bytes printed by the helper at most
REMOTE_MAX_HITS = 10_000
COUNT_PREFIX_MAX = 4 << 30  # the helper counts the lines before the window up to this offset

# Runs on the server: keep it Python 3.6-compatible and free of anything but the stdlib.
HELPER = r'''
import collections, json, re, sys
a = json.loads(sys.argv[1])
path, lo, hi, margin = a["path"], a["start"], a["end"], a["margin"]
lits = [x.encode() for x in a["literals"]]
unf = [re.compile(x.encode(), re.I | re.M) for x in a["unfiltered"]]
rxs = [re.compile(x, re.I) for x in a["regexes"]]
cap, max_hits, CH, HALF = a["cap"], a["max_hits"], 4 << 20, a["half"]
try:
    f = open(path, "rb")
except OSError as e:
    sys.stderr.write("%s\n" % e)
    sys.exit(13 if e.errno == 13 else 4)
out = sys.stdout
sent = [0]
def emit(obj):
    s = json.dumps(obj) + "\n"
    sent[0] += len(s)
    out.write(s)
def dec(raw):
    return raw.rstrip(b"\r").decode("utf-8", "replace")
prefix = None
if a["count_prefix"] and lo <= a["count_prefix_max"]:
    prefix, left = 0, lo
    while left > 0:
        d = f.read(min(left, CH))
        if not d:
            break
        prefix += d.count(b"\n")
        left -= len(d)
tail = collections.deque(maxlen=max(margin, 1))
if margin and lo > 0:
    off = max(0, lo - 8192)
    f.seek(off)
    parts = f.read(lo - off).split(b"\n")[:-1]
    if off > 0:
        parts = parts[1:]
    parts = parts[-margin:]
    pos = lo - sum(len(p) + 1 for p in parts)
    for k, p in enumerate(parts):
        tail.append((k - len(parts), pos, p))
        pos += len(p) + 1
wanted, done = set(), set()
hits, idx, pos, truncated = 0, 0, lo, False
f.seek(lo)
while pos < hi and not truncated:
    d = f.read(min(CH, hi - pos))
    if not d:
        break
    if pos + len(d) < hi:
        c = d.rfind(b"\n") + 1
        d = d[:c] if c else d
        f.seek(pos + len(d))
    raws = d.split(b"\n")
    if d.endswith(b"\n"):
        raws.pop()
    starts, s = [], 0
    for r in raws:
        starts.append(s)
        s += len(r) + 1
    low = d.lower()
    cand = set()
    for lit in lits:
        i = low.find(lit)
        while i >= 0:
            cand.add(low.rfind(b"\n", 0, i) + 1)
            nl = low.find(b"\n", i)
            i = -1 if nl < 0 else low.find(lit, nl + 1)
    for rx in unf:
        for m in rx.finditer(d):
            cand.add(d.rfind(b"\n", 0, m.start()) + 1)
    import bisect
    hit_here = set()
    for c in sorted(cand):
        k = bisect.bisect_right(starts, c) - 1
        if k < 0 or k in hit_here:
            continue
        t = dec(raws[k])
        if len(t) > 2 * HALF:  # a long line: its head and tail only (no line may hang it)
            t = t[:HALF] + "\n" + t[-HALF:]
        if any(rx.search(t) for rx in rxs):
            hit_here.add(k)
            hits += 1
            wanted.update(range(idx + k - margin, idx + k + margin + 1))
            if hits >= max_hits:
                truncated = True
                break
    rows = list(tail) + [(idx + k, pos + starts[k], raws[k]) for k in range(len(raws))]
    for n, off, raw in rows:
        if n in wanted and n not in done:
            done.add(n)
            emit([n, off, dec(raw), 1 if (n >= idx and n - idx in hit_here) else 0])
            if sent[0] > cap:
                truncated = True
                break
    for r in rows[-margin:] if margin else []:
        tail.append(r)
    idx += len(raws)
    pos += len(d)
if not truncated and any(n >= idx for n in wanted):
    f.seek(hi)
    d = f.read(8192)
    parts = d.split(b"\n")
    if len(d) == 8192:
        parts = parts[:-1]
    elif d.endswith(b"\n"):
        parts.pop()
    off = hi
    for k, p in enumerate(parts[:margin]):
        if idx + k in wanted:
            emit([idx + k, off, dec(p), 0])
        off += len(p) + 1
emit({"end": True, "lines": idx, "prefix": prefix, "truncated": truncated, "hits": hits})
'''


@dataclass
class RemoteRows:
    """What the helper found: rows of (index in the window, offset, text, is a hit); an index
    below 0 or from ``lines`` on is a context line outside the window."""

    rows: list[tuple[int, int, str, bool]] = field(default_factory=list)
    lines: int = 0
    prefix: int | None = None  # lines before the window (None: not counted)
    truncated: bool = False
    bytes_received: int = 0
    command: str = ""


def is_remote(host: Host) -> bool:
    """Whether reading a file of ``host`` costs transfer (then the search runs there)."""
    return bool(getattr(host, "remote_search", False))


async def remote_rows(host: Host, path: str, start: int, end: int, literals: Sequence[bytes],
                      unfiltered: Sequence[str], regexes: Sequence[str], margin: int, *,
                      count_prefix: bool = True, timeout: float = REMOTE_TIMEOUT,
                      cap: int = REMOTE_OUT_CAP) -> RemoteRows | None:
    """Run the helper over bytes [start, end) of ``path`` on ``host``; None when the server
    has no python3 (the caller reads the range instead). Raises HostError when the file
    cannot be read or the helper fails."""
    arg = json.dumps({"path": path, "start": start, "end": end, "margin": margin,
                      "literals": [lit.decode("utf-8", "surrogateescape") for lit in literals],
                      "unfiltered": [linear_regex(x) for x in unfiltered],
                      "regexes": [linear_regex(x) for x in regexes], "half": HALF,
                      "cap": cap, "max_hits": REMOTE_MAX_HITS, "count_prefix": count_prefix,
                      "count_prefix_max": COUNT_PREFIX_MAX})
    argv = ["python3", "-c", HELPER, arg]
    out = await host.run(argv, timeout=timeout, max_bytes=cap + 65536)
    if out.missing:
        return None
    if out.returncode == 13 and await host.is_privileged():
        out = await host.run_as_root(argv, timeout=timeout, max_bytes=cap + 65536)
    if out.timed_out or out.returncode != 0:
        raise HostError(f"cannot search {path} in {host.spec}: {out.problem()}")
    res = RemoteRows(bytes_received=len(out.stdout) + len(out.stderr), command=f"python3 -c HELPER {path}")
    end_seen = False
    for raw in out.stdout.splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, list) and len(item) == 4:
            res.rows.append((int(item[0]), int(item[1]), str(item[2]), bool(item[3])))
        elif isinstance(item, dict) and item.get("end"):
            end_seen = True
            res.lines, res.prefix = int(item["lines"]), item.get("prefix")
            res.truncated = bool(item.get("truncated"))
    if not end_seen:
        res.truncated = True
    res.rows.sort(key=lambda r: r[0])
    return res


__all__ = ["HELPER", "RemoteRows", "is_remote", "remote_rows"]
