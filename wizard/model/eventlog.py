"""Every reset of a long watch, kept compactly: the session holds them all, memory does not.

A watch of hours on a busy server can see hundreds of thousands of resets; as Python
objects each one costs about 10 KB (its ladder, its reasons, its log lines). An EventLog
keeps each finished event as its JSON, zlib-compressed and length-prefixed, in an anonymous
temporary file (created unlinked: nothing is left behind, not even when the process is
killed; the file goes with its last reference). What stays in memory is fixed: the count,
the counts by sender and by proof, and one file offset every ``STRIDE`` events. Reading it
back (the analysis, the report, the session JSON) decodes one event at a time.

An EventLog is a Sequence of ResetEvent, so what reads a list of events reads it unchanged.
A copy (``model_copy(deep=True)``) shares the stored records, which are never rewritten; a
view made by ``mapped`` applies a function to each event as it is read (the redaction of an
export), and sees the events stored when it was made.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, overload

from wizard.model.observed import ResetEvent

STRIDE = 256  # one file offset kept every STRIDE events (random access reads at most STRIDE - 1 more)
_HEAD = struct.Struct("<I")  # each record's length
_BLOCK = 1 << 16  # bytes read at once


@dataclass
class _Store:
    """The append-only file of records and what memory keeps of it."""

    # open as long as the log is referenced; closed (and, never named, gone) with it
    file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="reset-wizard-events-"))  # noqa: SIM115
    end: int = 0  # bytes written
    n: int = 0  # records written
    index: array[int] = field(default_factory=lambda: array("Q"))  # the offset of record k * STRIDE
    by_sender: dict[str, int] = field(default_factory=dict)
    by_proof: dict[str, int] = field(default_factory=dict)

    def add(self, ev: ResetEvent) -> None:
        data = zlib.compress(ev.model_dump_json(by_alias=True).encode(), 6)
        if self.n % STRIDE == 0:
            self.index.append(self.end)
        record = _HEAD.pack(len(data)) + data
        os.pwrite(self.file.fileno(), record, self.end)
        self.end += len(record)
        self.n += 1
        self.by_sender[ev.sender] = self.by_sender.get(ev.sender, 0) + 1
        if ev.proof is not None:
            self.by_proof[ev.proof] = self.by_proof.get(ev.proof, 0) + 1

    def records(self, start: int, stop: int) -> Iterator[bytes]:
        """The JSON of records start..stop-1, read a block at a time."""
        if start >= stop:
            return
        fd, k = self.file.fileno(), start // STRIDE * STRIDE
        pos, buf, at = self.index[start // STRIDE], b"", 0
        while k < stop:
            while len(buf) - at < _HEAD.size or len(buf) - at < _HEAD.size + _HEAD.unpack_from(buf, at)[0]:
                more = os.pread(fd, _BLOCK, pos)
                if not more:
                    raise OSError(f"the event log ends at record {k} of {stop}")
                buf, at, pos = buf[at:] + more, 0, pos + len(more)
            (size,) = _HEAD.unpack_from(buf, at)
            if k >= start:
                yield zlib.decompress(buf[at + _HEAD.size:at + _HEAD.size + size])
            at, k = at + _HEAD.size + size, k + 1


class EventLog(Sequence[ResetEvent]):
    """A Sequence of every ResetEvent appended, stored compactly (see the module's text)."""

    def __init__(self, *, store: _Store | None = None, view: Callable[[ResetEvent], ResetEvent] | None = None,
                 length: int | None = None) -> None:
        self._store = store if store is not None else _Store()
        self._view = view
        self._length = length  # a view's: the events stored when it was made

    def append(self, ev: ResetEvent) -> None:
        if self._view is not None or self._length is not None:
            raise TypeError("a view of an event log is read-only")
        self._store.add(ev)

    def __len__(self) -> int:
        return self._store.n if self._length is None else self._length

    def __bool__(self) -> bool:
        return len(self) > 0

    def _read(self, start: int, stop: int) -> Iterator[ResetEvent]:
        for raw in self._store.records(start, stop):
            ev = ResetEvent.model_validate_json(raw)
            yield self._view(ev) if self._view is not None else ev

    def __iter__(self) -> Iterator[ResetEvent]:
        return self._read(0, len(self))

    @overload
    def __getitem__(self, i: int) -> ResetEvent: ...
    @overload
    def __getitem__(self, i: slice) -> list[ResetEvent]: ...
    def __getitem__(self, i: int | slice) -> ResetEvent | list[ResetEvent]:
        n = len(self)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return list(self._read(start, stop))
            return [self[k] for k in range(start, stop, step)]
        k = i + n if i < 0 else i
        if not 0 <= k < n:
            raise IndexError("event index out of range")
        return next(self._read(k, k + 1))

    def mapped(self, fn: Callable[[ResetEvent], ResetEvent]) -> EventLog:
        """A read-only view: ``fn`` applied to each event as it is read."""
        view = self._view
        both = fn if view is None else (lambda ev: fn(view(ev)))
        return EventLog(store=self._store, view=both, length=len(self))

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(by sender, by proof) of the events stored (a view counts its events before its function)."""
        if self._length is not None and self._length != self._store.n:
            senders: dict[str, int] = {}
            proofs: dict[str, int] = {}
            for ev in self._read(0, self._length):
                senders[ev.sender] = senders.get(ev.sender, 0) + 1
                if ev.proof is not None:
                    proofs[ev.proof] = proofs.get(ev.proof, 0) + 1
            return senders, proofs
        return dict(self._store.by_sender), dict(self._store.by_proof)

    def stored_bytes(self) -> int:
        return self._store.end

    def __deepcopy__(self, memo: dict[int, Any]) -> EventLog:
        # The records are never rewritten: a copy shares them (what a copy changes is its own).
        return EventLog(store=self._store, view=self._view, length=len(self))

    def __repr__(self) -> str:
        return f"EventLog({len(self)} events, {self._store.end} bytes stored)"
