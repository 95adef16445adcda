"""Whole-file signature scan (I/O through a Host): count the lines of a log that match each
signature, with a literal prefilter run in the file's own context (rg/grep), Python as fallback."""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from wizard.diag.logs.io import halves, hsmatch
from wizard.diag.logs.io.newlines import newlines
from wizard.diag.logs.io.remote import is_remote
from wizard.hosts.base import Host, HostError, in_thread
from wizard.hosts.cpu import off_loop
from wizard.hosts.local import LocalHost
from wizard.model import linear

# --- whole-file signature scan ------------------------------------------------------------

# The regex parser (Python 3.11+), to find the literal text every match of a signature
# contains; typeshed does not describe these private modules.
_sre_c: Any = importlib.import_module("re._constants")
_sre_p: Any = importlib.import_module("re._parser")


def _required(items: object) -> frozenset[str] | None:
    """A set of literals one of which every match of the parsed pattern contains."""
    run: list[str] = []
    cands: list[set[str] | frozenset[str]] = []

    def flush() -> None:
        if len(run) >= 3:
            cands.append({"".join(run)})
        run.clear()

    for op, av in items:  # type: ignore[attr-defined]
        if op is _sre_c.LITERAL:
            run.append(chr(av))
            continue
        flush()
        if op is _sre_c.SUBPATTERN:
            sub = _required(av[-1])
            if sub:
                cands.append(sub)
        elif op is _sre_c.BRANCH:
            alts = [_required(a) for a in av[1]]
            if all(alts):
                cands.append(set().union(*alts))  # type: ignore[arg-type]
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT) and av[0] >= 1:
            sub = _required(av[2])
            if sub:
                cands.append(sub)
    flush()
    if not cands:
        return None
    return frozenset(max(cands, key=lambda s: (min(len(x) for x in s), -len(s))))


@functools.lru_cache(maxsize=1024)  # the excerpt and the matcher ask for the same regexes
def required_literals(regex: str) -> frozenset[str] | None:
    """Literals (compared case-insensitively) one of which every match of ``regex``
    contains; None when there is none (the signature cannot be prefiltered)."""
    try:
        return _required(_sre_p.parse(regex))
    except (re.error, RecursionError):
        return None


def minimal_literals(literals: set[str] | frozenset[str]) -> list[str]:
    """The literals (lowered) that do not contain another one: a line holding a longer one
    holds the shorter one too, so the shorter alone finds the same lines (and every literal
    searched for costs the prefilter speed)."""
    out: list[str] = []
    for lit in sorted({x.lower() for x in literals}, key=lambda x: (len(x), x)):
        if not any(k in lit for k in out):
            out.append(lit)
    return sorted(out)


def literal_line_starts(low: bytes, literals: list[bytes] | tuple[bytes, ...]) -> set[int]:
    """Offsets of the lines of ``low`` (lowered bytes) that hold one of ``literals``
    (lowered): one ``find`` a hit, resuming after the line a hit was found in."""
    starts: set[int] = set()
    for lit in literals:
        i = low.find(lit)
        while i >= 0:
            starts.add(low.rfind(b"\n", 0, i) + 1)
            nl = low.find(b"\n", i)
            i = -1 if nl < 0 else low.find(lit, nl + 1)
    return starts


@dataclass
class ScanResult:
    path: str
    counts: dict[str, int] = field(default_factory=dict)  # signature id -> matching lines
    lines: list[tuple[int, str, list[str]]] = field(default_factory=list)  # number, text, ids
    candidates: int = 0  # lines the literal prefilter passed
    unfiltered: list[str] = field(default_factory=list)  # signatures not scanned (no literal)
    method: str = ""
    command: str = ""
    truncated: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)


MAX_SCAN_LINES = 10_000
SCAN_CHUNK = 8 << 20
HS_CHUNK = 32 << 20  # one Host.read for Hyperscan: the wizard's memory stays ~2 chunks


SPLIT_MIN = 64 << 20  # a local file this big is scanned in two halves at once (two processes)


async def _scan_hyperscan(host: Host, path: str, signatures: list[tuple[str, str]],
                          m: hsmatch.Matcher, timeout: float) -> ScanResult:
    """scan_file for bytes local to the wizard: the file read in chunks cut at newlines,
    each searched by Hyperscan (the signatures' literals, then ``re`` on the lines they hit);
    a big file on this machine in two halves, the second by a forked child process."""
    res = ScanResult(path, method="hyperscan", command=f"read {path} in {HS_CHUNK >> 20} MiB chunks")
    ids = [sid for sid, _ in signatures]
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        size = (await host.stat(path)).size
        mid = await halves.middle(path, size) if type(host) is LocalHost and size >= SPLIT_MIN else size
    except HostError as exc:
        res.error = exc.message
        return res
    child = halves.start(functools.partial(_scan_part, path, mid, size, m, ids, deadline)) if mid < size else None
    try:
        number = await _scan_range(host, res, m, ids, (0, mid, size), 1, deadline, timeout)
        part = await halves.collect(child, deadline - time.monotonic() + halves.WATCH_S) if child else None
        if isinstance(part, ScanResult):
            _merge(res, part, number)
        elif child is not None and not res.error:  # the child failed: its half is read here
            await _scan_range(host, res, m, ids, (mid, size, size), number, deadline, timeout)
    finally:
        if child is not None:
            halves.end(child)
    return res


async def _scan_part(path: str, start: int, size: int, m: hsmatch.Matcher, ids: list[str],
                     deadline: float) -> ScanResult:
    """In the child: the lines from offset ``start`` on, numbered from 1 there."""
    part = ScanResult(path)
    await _scan_range(LocalHost(), part, m, ids, (start, size, size), 1, deadline, deadline - time.monotonic())
    return part


def _merge(res: ScanResult, part: ScanResult, number: int) -> None:
    """The second half's result added after the first's (its lines numbered on from ``number``)."""
    res.candidates += part.candidates
    for sid, n in part.counts.items():
        res.counts[sid] = res.counts.get(sid, 0) + n
    room = MAX_SCAN_LINES - len(res.lines)
    res.lines += [(n + number - 1, text, found) for n, text, found in part.lines[:max(0, room)]]
    res.truncated = res.truncated or part.truncated
    res.error = res.error or part.error


async def _scan_range(host: Host, res: ScanResult, m: hsmatch.Matcher, ids: list[str],
                      span: tuple[int, int, int], number: int, deadline: float, timeout: float) -> int:
    """Add to ``res`` the lines of [begin, end) of the file (``span``: begin, end, size;
    ``begin`` a line's start, numbered ``number``); the number of the line at ``end``
    while lines are kept (past MAX_SCAN_LINES no later line's number is needed)."""
    loop = asyncio.get_running_loop()
    pos, end, size = span
    local: _LocalChunks | None = None
    pending: asyncio.Future[bytes | bytearray] | None = None
    try:
        local = _LocalChunks(res.path, end - pos, end) if type(host) is LocalHost else None
        read: Callable[[int], Awaitable[bytes | bytearray]] = (
            local.read if local is not None else functools.partial(host.read, res.path, max_bytes=HS_CHUNK))
        while pos < end:
            if loop.time() > deadline:
                res.error = f"stopped after {timeout:g}s at byte {pos} of {size}"
                break
            data = await (pending if pending is not None else read(pos))
            pending = None
            if not data:
                break
            last = pos + len(data) >= end
            limit = len(data) if last else data.rfind(b"\n") + 1
            if limit and not last and local is not None:
                # the next chunk is read (into the other buffer) while this one is searched
                pending = asyncio.ensure_future(read(pos + limit))
            if limit == 0:  # one line longer than a chunk: skipped and said, not matched
                pos = await _past_line(read, pos + len(data), end)
                number += 1
                res.truncated = True
                continue
            upto = 0
            if len(res.lines) < MAX_SCAN_LINES:  # lines made until enough are kept
                hits, upto = await off_loop(functools.partial(
                    _head_of, m, data, limit, MAX_SCAN_LINES - len(res.lines)))
                number = _record_hits(res, ids, data, hits, number, upto)
            if upto < limit:  # the rest: Hyperscan's reports counted, no line made
                _add_counts(res, ids, await off_loop(functools.partial(_count_of, m, data, limit, upto)))
            pos += limit
            del data
    except HostError as exc:
        res.error = exc.message
    finally:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)  # never left reading a buffer
        if local is not None:
            local.close()
    return number


async def _past_line(read: Callable[[int], Awaitable[bytes | bytearray]], pos: int, size: int) -> int:
    """The offset after the end of the line that runs on at ``pos`` (or the file's end)."""
    while pos < size:
        data = await read(pos)
        nl = data.find(b"\n")
        if not data or nl >= 0:
            return size if not data else pos + nl + 1
        pos += len(data)
    return pos


def _record_hits(res: ScanResult, ids: list[str], data: bytes | bytearray, hits: list[hsmatch.LineHit],
                 number: int, limit: int) -> int:
    """Count and keep (up to MAX_SCAN_LINES) the lines Hyperscan hit in ``data[:limit]``;
    the line number after it."""
    prev = 0
    for hit in hits:
        number += newlines(data, prev, hit.start)
        prev = hit.start
        res.candidates += 1
        for i in hit.ids:
            res.counts[ids[i]] = res.counts.get(ids[i], 0) + 1
        if len(res.lines) < MAX_SCAN_LINES:
            text = data[hit.start:hit.end].rstrip(b"\r").decode("utf-8", "replace")
            res.lines.append((number, text, [ids[i] for i in hit.ids]))
    return number + newlines(data, prev, limit)


def _add_counts(res: ScanResult, ids: list[str], got: hsmatch.LineCounts) -> None:
    res.candidates += got.lines
    for i, n in got.counts.items():
        res.counts[ids[i]] = res.counts.get(ids[i], 0) + n


def _count_of(m: hsmatch.Matcher, data: bytes | bytearray, limit: int, start: int,
              stop: hsmatch.Stop) -> hsmatch.LineCounts:
    return m.count(data, limit, stop, start)


def _head_of(m: hsmatch.Matcher, data: bytes | bytearray, limit: int, most: int,
             stop: hsmatch.Stop) -> tuple[list[hsmatch.LineHit], int]:
    return m.head(data, limit, stop, most)


class _LocalChunks:
    """Chunks of a file local to the wizard read into two reused buffers: a fresh 32 MiB
    bytes object per chunk costs its page faults (~3x the copy itself), and two buffers let
    the next chunk be read while the previous one is still searched."""

    def __init__(self, path: str, size: int, end: int) -> None:
        self.path = path
        self.fd: int | None = None
        self.size = max(1, min(HS_CHUNK, size))  # a small file gets small buffers
        self.end = end  # nothing is read from here on
        self.bufs = [bytearray(self.size), bytearray(self.size)]
        self.turn = 0

    def _pread(self, pos: int) -> bytes | bytearray:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        buf = self.bufs[self.turn]
        self.turn ^= 1
        want = max(0, min(self.size, self.end - pos))
        view, got = memoryview(buf), 0
        while got < want:
            n = os.preadv(self.fd, [view[got:want]], pos + got)
            if n == 0:
                break
            got += n
        view.release()
        return buf if got == self.size else bytes(buf[:got])  # the range's end: a copy of its size

    async def read(self, pos: int) -> bytes | bytearray:
        return await in_thread(lambda: self._pread(pos), self.path, 60.0)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


async def scan_file(host: Host, path: str, signatures: list[tuple[str, str]], *,
                    timeout: float = 300.0, max_bytes: int = 64 << 20) -> ScanResult:
    """Count the lines of a whole file that match each signature (id, regex; case-insensitive).

    The literals every signature needs are searched first, by ``grep -F -i`` in the file's
    own context (fast, and no file content crosses an SSH link but the candidate lines);
    only those lines are matched against the full expressions. Without grep, the file is
    read through the Host in chunks and prefiltered the same way in Python.
    """
    if not is_remote(host):
        m = hsmatch.matcher([rx for _, rx in signatures])
        if m is not None:
            return await _scan_hyperscan(host, path, signatures, m, timeout)
    res = ScanResult(path)
    compiled: list[tuple[str, re.Pattern[str]]] = []
    literals: set[str] = set()
    for sid, rx in signatures:
        need = required_literals(rx)
        if need is None:
            res.unfiltered.append(sid)
            continue
        literals |= need
        compiled.append((sid, linear.compile_linear(rx)))
    if not literals:
        res.error = "no signature has a literal to search for"
        return res
    if not hsmatch.AVAILABLE and not is_remote(host):
        res.notes.append(hsmatch.NO_ENGINE_NOTE)

    def classify(number: int, text: str) -> None:
        ids = [sid for sid, rx in compiled if linear.search(rx, text)]
        res.candidates += 1
        for sid in ids:
            res.counts[sid] = res.counts.get(sid, 0) + 1
        if ids and len(res.lines) < MAX_SCAN_LINES:
            res.lines.append((number, text, ids))

    # ripgrep's multi-literal search is about twice grep's under LC_ALL=C; both print N:line
    tool = "rg" if await host.which("rg") else "grep"
    argv = [tool, "-a", "-n", "-i", "-F"] + (["--no-heading", "--no-filename", "--no-mmap"] if tool == "rg" else [])
    for lit in minimal_literals(literals):
        argv += ["-e", lit]
    out = await host.run([*argv, "--", path], timeout=timeout, max_bytes=max_bytes)
    if not out.missing:
        res.method, res.command, res.truncated = f"{tool} -F prefilter", out.command_line, out.truncated
        if out.timed_out or out.returncode not in (0, 1):
            res.error = out.problem()
            return res
        for raw in out.stdout.split(b"\n"):
            num, sep, text = raw.partition(b":")
            if sep and num.isdigit():
                classify(int(num), text.rstrip(b"\r").decode("utf-8", "replace"))
        return res
    res.method = "chunked read with a literal prefilter (grep is not installed)"
    await _scan_chunked(host, path, res, [lit.encode() for lit in minimal_literals(literals)], classify)
    return res


async def _scan_chunked(host: Host, path: str, res: ScanResult, lowered: list[bytes],
                        classify: Callable[[int, str], None]) -> None:
    """scan_file without grep: the file read through the Host in chunks, the lines holding
    one of the (lower-case) literals classified."""
    try:
        size = (await host.stat(path)).size
        pos, number, carry = 0, 1, b""
        while pos < size:
            data = carry + await host.read(path, pos, SCAN_CHUNK)
            pos += len(data) - len(carry)
            cut = data.rfind(b"\n") + 1 if pos < size else len(data)
            block, carry = data[:cut], data[cut:]
            seen, at = 0, 0  # newlines before ``at``: counted once, the starts ascend
            for s in sorted(literal_line_starts(block.lower(), lowered)):
                e = block.find(b"\n", s)
                e = len(block) if e < 0 else e
                seen += block.count(b"\n", at, s)
                at = s
                classify(number + seen, block[s:e].decode("utf-8", "replace"))
            number += block.count(b"\n")
            if not cut and pos < size:
                carry = b""  # one line longer than a chunk: dropped
    except HostError as exc:
        res.error = exc.message
