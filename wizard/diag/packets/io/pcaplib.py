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
from collections.abc import Callable
from dataclasses import dataclass

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

    def set_filter(self, bpf: str, optimize: bool = True) -> None:
        self.bpf = bpf
        program = Program()
        if self.lib.pcap_compile(self.handle, ctypes.byref(program), bpf.encode(), int(optimize), 0xFFFFFFFF) != 0:
            why = (self.lib.pcap_geterr(self.handle) or b"").decode(errors="replace")
            raise CaptureError("bad capture filter", f"{bpf!r}: {why}")
        ok = self.lib.pcap_setfilter(self.handle, ctypes.byref(program)) == 0
        self.lib.pcap_freecode(ctypes.byref(program))
        if not ok:
            raise CaptureError("bad capture filter", f"{bpf!r}: {(self.lib.pcap_geterr(self.handle) or b'').decode()}")

    def next(self) -> tuple[float, bytes] | None:
        """The next record the filter keeps, or None at the end (or a cut-off record)."""
        if self.lib.pcap_next_ex(self.handle, ctypes.byref(self._header), ctypes.byref(self._bytes)) != 1:
            return None
        h = self._header.contents
        return h.sec + h.usec / 1e6, ctypes.string_at(self._bytes, h.caplen)

    def tell(self) -> int:
        return int(self.libc.ftell(self.file))

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


@dataclass
class Skim:
    """The first pass: the records a filter kept, as a pcap file in memory, and where they were."""

    linktype: int
    dump: bytes  # a pcap file (24-byte header, host byte order) of the kept records
    # Record boundaries, the same ones in both: offsets in the original and in ``dump``,
    # before the first record and after every batch
    sources: list[int]
    dumps: list[int]
    kept: int


def skim(path: str, bpf: str, batch: int = 16, check: Callable[[], None] | None = None) -> Skim:
    """Read ``path`` once through ``bpf``; libpcap copies what it keeps into memory itself
    (pcap_dump as the callback: no Python per packet), ``batch`` records per call."""
    with Offline(path) as off:
        off.set_filter(bpf)
        c, pcap = off.libc, off.lib
        buf, size = c_void_p(), c_size_t()
        stream = c.open_memstream(ctypes.byref(buf), ctypes.byref(size))
        dumper = pcap.pcap_dump_fopen(off.handle, stream)
        if not dumper:
            raise CaptureError("unreadable capture", f"{path}: no memory for the first pass")
        try:
            sources, dumps, kept = _dispatch(off, dumper, batch, check)
            pcap.pcap_dump_flush(dumper)
            data = ctypes.string_at(buf, size.value)
        finally:
            pcap.pcap_dump_close(dumper)
            c.free(buf)
        linktype = off.linktype
    return Skim(linktype, data, sources, dumps, kept)


def _dispatch(off: Offline, dumper: int, batch: int, check: Callable[[], None] | None
              ) -> tuple[list[int], list[int], int]:
    """The first pass's loop: dispatch in batches, note both positions after each."""
    pcap = off.lib
    dump_fn = ctypes.cast(pcap.pcap_dump, c_void_p)
    dispatch, ftell, dump_tell, handle, file = pcap.pcap_dispatch, off.libc.ftell, pcap.pcap_dump_ftell, \
        off.handle, off.file
    sources, dumps = [int(ftell(file))], [int(dump_tell(dumper))]
    kept = 0
    while (n := dispatch(handle, batch, dump_fn, dumper)) > 0:
        here = ftell(file)
        kept += n
        sources.append(here)
        dumps.append(dump_tell(dumper))
        if check is not None and not len(dumps) & 0x3FF:
            check()
    return sources, dumps, kept
