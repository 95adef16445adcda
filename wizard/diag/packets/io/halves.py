"""A large pcap file read in two halves at once, giving exactly what one read gives (I/O).

Both passes of ``gather`` are libpcap's C over the whole file, and ctypes lets go of the
GIL while C runs, so a thread reads the second half beside the first. The cut is a guess
(near the middle, where records that look like records follow one another), and only the
first half's own read can prove it: once that read passes the cut, the records from the
last position it noted are read again one by one, unfiltered, and the cut holds only if
one of them ends exactly there, none failing on the way. Then the records before the cut
are the first half's and those from it the second's, exactly as one read sees them;
otherwise the first half reads on to the end as one read, and the thread's work is dropped.
The first pass's copy and its noted positions are put together as one read makes them (its
batches counted across the cut), and the second pass feeds the tracker the first half's
records and then the second half's, in the file's order: no state is cut in two.
"""

from __future__ import annotations

import bisect
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterator

from wizard.diag.packets.io.pcaplib import CaptureError, Code, Copy, Offline, Skim, skim
from wizard.diag.packets.parse.dump import FILE_HEADER, resync

MIN_SIZE = 64 << 20  # smaller files are read whole
WINDOW = 1 << 20  # bytes at the middle of the file where the cut is looked for
# The second pass's first half is read by the thread that also feeds the tracker every
# record, so it is given less of the file than the second half's thread.
SECOND_PASS_SHARE = 0.4
STREAM_STEP = 512  # records the second pass's thread copies between two chunks it hands over
_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 10**6), b"\xa1\xb2\xc3\xd4": (">", 10**6),
           b"\x4d\x3c\xb2\xa1": ("<", 10**9), b"\xa1\xb2\x3c\x4d": (">", 10**9)}


def _worth_halves(size: int) -> bool:
    """A file this large, and a second processor this process may run on."""
    if size < MIN_SIZE:
        return False
    affinity = getattr(os, "sched_getaffinity", None)
    return (len(affinity(0)) if affinity is not None else os.cpu_count() or 1) >= 2


def cut_for(path: str) -> int | None:
    """Where to cut a plain pcap file in two (a guess, proved by the first half's read);
    None: read it whole (a small file, pcapng, one processor, or no record found there)."""
    return cut_near(path)


def cut_near(path: str, around: int | None = None) -> int | None:
    """``cut_for`` near ``around`` instead of the middle (None as well when less than half
    of MIN_SIZE is left after it)."""
    try:
        size = os.path.getsize(path)
        at = size // 2 if around is None else around
        if not _worth_halves(2 * (size - at) if around is not None else size):
            return None
        with open(path, "rb") as handle:
            head = handle.read(FILE_HEADER + 16)
            handle.seek(at)
            window = handle.read(WINDOW)
    except OSError:
        return None
    if head[:4] not in _MAGICS or len(head) < FILE_HEADER + 16:
        return None
    order, fraction = _MAGICS[head[:4]]
    snaplen, linktype = struct.unpack_from(order + "II", head, 16)
    first = struct.unpack_from(order + "I", head, FILE_HEADER)[0]
    # A capture spans days at most: a record from outside them is no record.
    p = resync(window, order, fraction, snaplen, linktype & 0xFFFF, (max(first - 86400, 0), first + 30 * 86400))
    return None if p is None else at + p


class Later:
    """The second half, from ``cut`` to the end, read in a thread: the records the filter
    keeps copied by libpcap, and with ``note`` where each of them ends in the file and in
    the copy. With ``stream`` the copy is handed over as it grows, in chunks (``chunks``)."""

    def __init__(self, path: str, bpf: str | Code, cut: int, note: bool, first: Offline | None = None,
                 stream: bool = False) -> None:
        self.off = Offline(path)
        try:
            self.off.set_filter(bpf, also=first)  # compiled once (a long filter takes tens of ms)
            self.off.seek(cut)
            self.copy = Copy(self.off)
        except BaseException:
            self.off.close()
            raise
        self.cut, self.note, self.end = cut, note, cut
        self.status: int | None = None  # set once the thread has read to the end
        self.sources: list[int] = []
        self.dumps: list[int] = []
        self._stream: queue.SimpleQueue[tuple[bytes, int] | None] | None = queue.SimpleQueue() if stream else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="capture-second-half", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self._run()
        finally:  # the end of the chunks, however the thread ends
            if self._stream is not None:
                self._stream.put(None)

    def _run(self) -> None:
        off, file, stop = self.off, self.off.file, self._stop
        dispatch, ftell, dump_tell = off.lib.pcap_dispatch, off.libc.ftell, off.lib.pcap_dump_ftell
        handle, fn, dumper = off.handle, self.copy.fn, self.copy.dumper
        # ctypes lets go of the GIL in every call
        step = 1 if self.note else STREAM_STEP if self._stream is not None else 4096
        sources, dumps = self.sources, self.dumps
        n, sent = 0, FILE_HEADER
        while (n := dispatch(handle, step, fn, dumper)) > 0:
            if self.note:
                sources.append(ftell(file))
                dumps.append(dump_tell(dumper))
            if self._stream is not None:
                sent = self._hand_over(sent, int(ftell(file)))
            if stop.is_set():
                break
        self.end = int(ftell(file))
        if n <= 0:  # 0: the end; -1: a record libpcap could not read (one read stops there too)
            if self._stream is not None:
                self._hand_over(sent, self.end)  # with -1, the records copied before it
            self.status = n

    def _hand_over(self, sent: int, end: int) -> int:
        """The records copied since ``sent`` (a position in the copy), handed over with ``end``,
        where the last of them ends in the file; the copy's new end."""
        data = self.copy.data_from(sent)
        if data and self._stream is not None:
            self._stream.put((data, end))
        return sent + len(data)

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        """With ``stream``: the records kept from the cut on, in pcap_dump's layout, chunk by
        chunk as the thread copies them, each with where its last record ends in the file.
        Once they are all given, ``status`` is None unless the thread read to the end."""
        while self._stream is not None and (got := self._stream.get()) is not None:
            yield got

    def result(self) -> bytes | None:
        """The copy (its own file header first) once the thread has read to the end; None
        if it did not (it failed: the caller reads the second half itself)."""
        self._thread.join()
        data = self.copy.data() if self.status is not None else None
        self.drop()
        return data

    def drop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.off.handle:
            self.copy.close()
            self.off.close()


def noted_cut(first: Skim, share: float = SECOND_PASS_SHARE) -> int | None:
    """A cut for the second pass: the position the first pass noted nearest ``share`` of the
    file (every noted position is where a record ended, as read from the file's start)."""
    end = first.sources[-1]
    if not _worth_halves(end):
        return None
    i = bisect.bisect_left(first.sources, int(end * share))
    return first.sources[i] if 0 < i < len(first.sources) - 1 else None


def start(path: str, bpf: str | Code, cut: int | None, note: bool, first: Offline | None = None,
          stream: bool = False) -> Later | None:
    """The second half's thread, or None (no cut, or the file not readable from the cut);
    ``first``, the first half's handle, is given the same filter."""
    if cut is None:
        return None
    try:
        return Later(path, bpf, cut, note, first, stream)
    except CaptureError:  # the first half then reads it all, as one read
        return None


def skim_halves(path: str, bpf: str, batch: int, check: Callable[[], None],
                go: threading.Event | None = None) -> tuple[Skim, int | None]:
    """The first pass (pcaplib.skim's result, exactly) and the proved cut, or None when the
    file was read whole. With ``go``, the second half's thread starts only once ``go`` is
    set (another processor is free by then), cut in the middle of what is left to read;
    until then, and if it never is, one read."""
    later = start(path, bpf, cut_for(path), note=True) if go is None else None
    if later is None and go is None:
        return skim(path, bpf, batch, check), None
    try:
        with Offline(path) as off:
            off.set_filter(bpf)
            copy = Copy(off)
            try:
                return _first_half(off, copy, later, bpf, batch, check, go)
            finally:
                copy.close()
    finally:
        if later is not None:
            later.drop()


def _first_half(off: Offline, copy: Copy, later: Later | None, bpf: str, batch: int, check: Callable[[], None],
                go: threading.Event | None = None) -> tuple[Skim, int | None]:
    """pcaplib's first-pass loop up to the cut, then the halves joined (or on to the end).
    Without ``later`` yet, one is started once ``go`` is set, from a cut past this read."""
    ftell, file = off.libc.ftell, off.file
    sources, dumps, kept, proving = [int(ftell(file))], [copy.tell()], 0, later is not None
    try:
        while (n := copy.dispatch(batch)) > 0:
            if go is not None and go.is_set():
                go, later = None, _started_late(off, bpf, int(ftell(file)))
                proving = later is not None
            if proving and later is not None and ftell(file) >= later.cut:
                proving = False
                tail = up_to(off.path, bpf, sources[-1], later.cut)
                rest = later.result() if tail is not None else None
                if tail is not None and rest is not None:
                    head = Skim(off.linktype, copy.data()[:dumps[-1]], sources, dumps, kept)
                    return joined(head, tail, later, rest, batch), later.cut
                later.drop()
            kept += n
            sources.append(ftell(file))
            dumps.append(copy.tell())
            if not len(dumps) & 0x3FF:
                check()
        return Skim(off.linktype, copy.data(), sources, dumps, kept), None
    finally:
        if later is not None:
            later.drop()


def _started_late(off: Offline, bpf: str, pos: int) -> Later | None:
    """The second half's thread from a cut in the middle of what is left after ``pos`` (where
    this read is), or None (too little left, or no cut found past ``pos``)."""
    end = os.path.getsize(off.path)
    cut = cut_near(off.path, (pos + end) // 2)
    return start(off.path, bpf, cut, note=True) if cut is not None and cut > pos else None


def up_to(path: str, bpf: str, start: int, cut: int) -> list[tuple[bytes, int]] | None:
    """The records ``bpf`` keeps from ``start`` (a record's start) to ``cut``, as pcap_dump
    writes them, each with where it ends; None unless a record ends exactly at ``cut``."""
    with Offline(path) as walk:
        walk.seek(start)
        while (end := walk.tell()) < cut:
            if walk.next() is None:  # a record libpcap cannot read: one read stops there
                return None
        if end != cut:
            return None
    out: list[tuple[bytes, int]] = []
    with Offline(path) as kept:
        kept.set_filter(bpf)
        kept.seek(start)
        while (rec := kept.next_dumped()) is not None and (end := kept.tell()) <= cut:
            out.append((rec, end))
    return out


def joined(head: Skim, tail: list[tuple[bytes, int]], later: Later, rest: bytes, batch: int) -> Skim:
    """The first pass of the whole file from the first half's (up to its last noted
    position), the records after it up to the cut, and the second half's (``rest``, its
    copy): the same copy, positions noted after every ``batch`` records, and count, as one
    read gives."""
    base = len(head.dump) + sum(len(rec) for rec, _ in tail) - FILE_HEADER
    sources, dumps, count = list(head.sources), list(head.dumps), head.kept
    pos = len(head.dump)
    ends = []
    for rec, end in tail:
        pos += len(rec)
        ends.append((end, pos))
    ends += [(src, base + d) for src, d in zip(later.sources, later.dumps, strict=True)]
    for src, d in ends:
        count += 1
        if not count % batch:
            sources.append(src)
            dumps.append(d)
    data = b"".join([head.dump, *(rec for rec, _ in tail), rest[FILE_HEADER:]])
    if later.status == 0 and count % batch:  # one read's last batch, shorter, ends at the file's end
        sources.append(later.end)
        dumps.append(len(data))
    elif later.status != 0:  # one read's batch that met the unreadable record is not counted
        count -= count % batch
    return Skim(head.linktype, data, sources, dumps, count)
