"""libpcap and the C library through ctypes (I/O): capture files read and filtered in C.

Standard library only (no model, no pydantic): this runs in the process that reads a
capture while the command is still loading. ``Offline`` reads one file (or bytes held in
memory) through a BPF filter and tells where each record ends; ``skim`` is the
first pass over a whole file: every record the filter keeps is copied, in C, into an
in-memory capture, and every few of them the two files' positions are noted, so a
record of the copy can be found again in the original.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
from collections.abc import Callable

from wizard.diag.packets.io.libpcap import libpcap_path

c_void_p, c_int, c_long, c_size_t, c_char_p = (ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_size_t,
                                               ctypes.c_char_p)


class CaptureError(Exception):
    """A capture that cannot be read: a title and one line (the CLI makes it a WizardError)."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(f"{title}: {message}")
        self.title, self.message = title, message


class Header(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long),
                ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint), ("insns", ctypes.c_void_p)]


class BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Value:
    """Equality, hash and repr by the fields in ``__slots__``: what a dataclass would give,
    without importing dataclasses (this module is read before anything heavy: the first
    pass of analyze begins while the command loads, wizard.diag.packets.io.firstpass)."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


class Code(_Value):
    """A BPF program made here rather than compiled from text by libpcap."""

    __slots__ = ("insns", "text")

    def __init__(self, text: str, insns: tuple[tuple[int, int, int, int], ...]) -> None:
        self.text = text  # what it keeps, as a filter expression (for messages)
        self.insns = insns  # code, jt, jf, k


def _bind(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = restype, list(argtypes)


@functools.cache
def lib() -> ctypes.CDLL:
    """libpcap, its functions typed."""
    pcap = ctypes.CDLL(libpcap_path() or "libpcap.so.0.8")
    for name, res, args in (
            ("pcap_open_offline", c_void_p, (c_char_p, c_char_p)),
            ("pcap_fopen_offline", c_void_p, (c_void_p, c_char_p)),
            ("pcap_datalink", c_int, (c_void_p,)),
            ("pcap_compile", c_int, (c_void_p, ctypes.POINTER(Program), c_char_p, c_int, ctypes.c_uint32)),
            ("pcap_setfilter", c_int, (c_void_p, ctypes.POINTER(Program))),
            ("pcap_freecode", None, (ctypes.POINTER(Program),)),
            ("pcap_geterr", c_char_p, (c_void_p,)),
            ("pcap_next_ex", c_int, (c_void_p, ctypes.POINTER(ctypes.POINTER(Header)),
                                     ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)))),
            ("pcap_dispatch", c_int, (c_void_p, c_int, c_void_p, c_void_p)),
            ("pcap_file", c_void_p, (c_void_p,)),
            ("pcap_dump_fopen", c_void_p, (c_void_p, c_void_p)),
            ("pcap_dump_open", c_void_p, (c_void_p, c_char_p)),
            ("pcap_dump_ftell", c_long, (c_void_p,)),
            ("pcap_dump_file", c_void_p, (c_void_p,)),
            ("pcap_dump_flush", c_int, (c_void_p,)),
            ("pcap_dump_close", None, (c_void_p,)),
            ("pcap_close", None, (c_void_p,))):
        _bind(pcap, name, res, *args)
    return pcap


@functools.cache
def libc() -> ctypes.CDLL:
    c = ctypes.CDLL(None)
    for name, res, args in (("ftell", c_long, (c_void_p,)),
                            ("fseek", c_int, (c_void_p, c_long, c_int)),
                            ("open_memstream", c_void_p, (ctypes.POINTER(c_void_p), ctypes.POINTER(c_size_t))),
                            ("fmemopen", c_void_p, (c_void_p, c_size_t, c_char_p)),
                            ("fopen", c_void_p, (c_char_p, c_char_p)),
                            ("fclose", c_int, (c_void_p,)),
                            ("setvbuf", c_int, (c_void_p, c_void_p, c_int, c_size_t)),
                            ("free", None, (c_void_p,))):
        _bind(c, name, res, *args)
    return c


# The stdio buffer a capture file is read through. libpcap's own (pcap_open_offline) is the
# file system's block, 4 KiB: a 1 GB capture took 262,144 read() calls, and the kernel spent
# twice the time it spends on the same bytes read 128 KiB at a time. (From 256 KiB on, the
# first pass of a process spent four times as long in the kernel again.)
READ_BUFFER = 128 << 10
_IOFBF = 0
DUMPED = struct.Struct("=IIII")  # a record's header as pcap_dump writes it (32-bit seconds, as C converts)


class Offline:
    """One capture opened with libpcap: filtered reads, and ``tell`` between records
    (after a record, ``tell`` is where the next one starts)."""

    def __init__(self, path: str, data: bytes | None = None) -> None:
        self.lib, self.libc = lib(), libc()
        err = ctypes.create_string_buffer(256)
        self._data = data  # a capture in memory: kept alive while libpcap reads it
        self._buffer: ctypes.Array[ctypes.c_char] | None = None  # the file's stdio buffer, alive as long
        if data is None:
            self.handle = self._open_file(path, err)
        else:
            stream = self.libc.fmemopen(ctypes.cast(c_char_p(data), c_void_p), len(data), b"rb")
            self.handle = self.lib.pcap_fopen_offline(stream, err) if stream else None
        if not self.handle:
            raise CaptureError("unreadable capture", f"{path}: {err.value.decode(errors='replace')}")
        self.path = path
        self.linktype = self.lib.pcap_datalink(self.handle)
        self.file = self.lib.pcap_file(self.handle)
        self._header = ctypes.POINTER(Header)()
        self._bytes = ctypes.POINTER(ctypes.c_ubyte)()
        self.bpf = ""

    def _open_file(self, path: str, err: ctypes.Array[ctypes.c_char]) -> int | None:
        """The file opened through a stdio stream of READ_BUFFER bytes (libpcap's own open
        when the C library cannot open it: libpcap then says why)."""
        stream = self.libc.fopen(os.fsencode(path), b"rb")
        if not stream:
            return self.lib.pcap_open_offline(os.fsencode(path), err)
        self._buffer = ctypes.create_string_buffer(READ_BUFFER)
        self.libc.setvbuf(stream, self._buffer, _IOFBF, READ_BUFFER)
        handle = self.lib.pcap_fopen_offline(stream, err)
        if not handle:
            self.libc.fclose(stream)
        return handle

    def set_filter(self, bpf: str | Code, optimize: bool = True, also: Offline | None = None) -> None:
        """Filter by ``bpf`` (compiled once, unless it is code already), here and on ``also``
        (the same file opened again)."""
        text = bpf.text if isinstance(bpf, Code) else bpf
        self.bpf = text
        if isinstance(bpf, Code):
            insns = (BpfInsn * len(bpf.insns))(*(BpfInsn(*insn) for insn in bpf.insns))
            program = Program(len(bpf.insns), ctypes.cast(insns, c_void_p))
        else:
            program = self._compile(bpf, optimize)
        try:  # libpcap keeps a copy of the program
            ok = self.lib.pcap_setfilter(self.handle, ctypes.byref(program)) == 0
            if ok and also is not None:
                also.bpf = text
                ok = self.lib.pcap_setfilter(also.handle, ctypes.byref(program)) == 0
        finally:
            if not isinstance(bpf, Code):
                self.lib.pcap_freecode(ctypes.byref(program))
        if not ok:
            raise CaptureError("bad capture filter", f"{text!r}: {(self.lib.pcap_geterr(self.handle) or b'').decode()}")

    def _compile(self, bpf: str, optimize: bool) -> Program:
        program = Program()
        if self.lib.pcap_compile(self.handle, ctypes.byref(program), bpf.encode(), int(optimize), 0xFFFFFFFF) != 0:
            why = (self.lib.pcap_geterr(self.handle) or b"").decode(errors="replace")
            raise CaptureError("bad capture filter", f"{bpf!r}: {why}")
        return program

    def compiled(self, bpf: str) -> list[tuple[int, int, int, int]]:
        """libpcap's optimised code of ``bpf`` for this capture, instruction by instruction."""
        program = self._compile(bpf, True)
        try:
            insns = ctypes.cast(program.insns, ctypes.POINTER(BpfInsn))
            return [(i.code, i.jt, i.jf, i.k) for i in (insns[n] for n in range(program.len))]
        finally:
            self.lib.pcap_freecode(ctypes.byref(program))

    def next(self) -> tuple[float, bytes] | None:
        """The next record the filter keeps, or None at the end (or a cut-off record)."""
        if self.lib.pcap_next_ex(self.handle, ctypes.byref(self._header), ctypes.byref(self._bytes)) != 1:
            return None
        h = self._header.contents
        return h.sec + h.usec / 1e6, ctypes.string_at(self._bytes, h.caplen)

    def next_dumped(self) -> bytes | None:
        """The next record the filter keeps as pcap_dump writes it (16-byte header in this
        machine's byte order, then the frame), or None at the end (or a cut-off record)."""
        if self.lib.pcap_next_ex(self.handle, ctypes.byref(self._header), ctypes.byref(self._bytes)) != 1:
            return None
        h = self._header.contents
        return DUMPED.pack(h.sec & 0xFFFFFFFF, h.usec & 0xFFFFFFFF, h.caplen, h.len) \
            + ctypes.string_at(self._bytes, h.caplen)

    def tell(self) -> int:
        return int(self.libc.ftell(self.file))

    def seek(self, offset: int) -> None:
        """Go to ``offset`` of the file (a record's start, or the next read is garbage)."""
        if self.libc.fseek(self.file, offset, 0) != 0:
            raise CaptureError("unreadable capture", f"{self.path}: cannot seek to {offset}")

    def count(self) -> int:
        """How many of the remaining records the filter keeps, counted in C."""
        dumper = self.lib.pcap_dump_open(self.handle, b"/dev/null")
        if not dumper:
            return 0
        try:
            n = self.lib.pcap_dispatch(self.handle, -1, ctypes.cast(self.lib.pcap_dump, c_void_p), dumper)
        finally:
            self.lib.pcap_dump_close(dumper)
        return max(n, 0)

    def close(self) -> None:
        if self.handle:
            self.lib.pcap_close(self.handle)
            self.handle = None

    def __enter__(self) -> Offline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Skim(_Value):
    """The first pass: the records a filter kept, as a pcap file in memory, and where they were."""

    __slots__ = ("dump", "dumps", "kept", "linktype", "sources")
    __hash__ = None  # type: ignore[assignment]  # (its lists change)

    def __init__(self, linktype: int, dump: bytes, sources: list[int], dumps: list[int], kept: int) -> None:
        self.linktype = linktype
        self.dump = dump  # a pcap file (24-byte header, host byte order) of the kept records
        # Record boundaries, the same ones in both: offsets in the original and in ``dump``,
        # before the first record and after every batch
        self.sources = sources
        self.dumps = dumps
        self.kept = kept


class Copy:
    """Records a handle's filter keeps, copied by libpcap itself into a pcap file in memory
    (pcap_dump as pcap_dispatch's callback: no Python per record)."""

    def __init__(self, off: Offline) -> None:
        self.off, c, pcap = off, off.libc, off.lib
        self._buf, self._size = c_void_p(), c_size_t()
        stream = c.open_memstream(ctypes.byref(self._buf), ctypes.byref(self._size))
        self.dumper = pcap.pcap_dump_fopen(off.handle, stream) if stream else None
        if not self.dumper:
            raise CaptureError("unreadable capture", f"{off.path}: no memory for a copy of its records")
        self.fn = ctypes.cast(pcap.pcap_dump, c_void_p)

    def dispatch(self, count: int) -> int:
        """pcap_dispatch: up to ``count`` kept records copied (-1: all); 0 at the end, -1 on an error."""
        return int(self.off.lib.pcap_dispatch(self.off.handle, count, self.fn, self.dumper))

    def tell(self) -> int:
        return int(self.off.lib.pcap_dump_ftell(self.dumper))

    def data(self) -> bytes:
        """Everything copied so far (its file header first)."""
        return self.data_from(0)

    def data_from(self, pos: int) -> bytes:
        """What was copied from ``pos`` (a position in the copy) on."""
        self.off.lib.pcap_dump_flush(self.dumper)
        size, start = self._size.value, self._buf.value
        return ctypes.string_at(start + pos, size - pos) if start is not None and size > pos else b""

    def close(self) -> None:
        if self.dumper:
            self.off.lib.pcap_dump_close(self.dumper)
            self.off.libc.free(self._buf)
            self.dumper = None


def skim(path: str, bpf: str, batch: int = 16, check: Callable[[], None] | None = None) -> Skim:
    """Read ``path`` once through ``bpf``; libpcap copies what it keeps into memory itself
    (pcap_dump as the callback: no Python per packet), ``batch`` records per call."""
    with Offline(path) as off:
        off.set_filter(bpf)
        copy = Copy(off)
        try:
            sources, dumps, kept = _dispatch(off, copy, batch, check)
            data = copy.data()
        finally:
            copy.close()
        linktype = off.linktype
    return Skim(linktype, data, sources, dumps, kept)


def _dispatch(off: Offline, copy: Copy, batch: int, check: Callable[[], None] | None
              ) -> tuple[list[int], list[int], int]:
    """The first pass's loop: dispatch in batches, note both positions after each."""
    ftell, file = off.libc.ftell, off.file
    sources, dumps = [int(ftell(file))], [copy.tell()]
    kept = 0
    while (n := copy.dispatch(batch)) > 0:
        kept += n
        sources.append(ftell(file))
        dumps.append(copy.tell())
        if check is not None and not len(dumps) & 0x3FF:
            check()
    return sources, dumps, kept
