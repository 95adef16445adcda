"""Capture files read fast and bounded (I/O): pcap and pcapng, gzip too, without root.

Plain files go through libpcap (ctypes), whose BPF filter drops in C every packet the
caller did not ask for, so Python sees only those; gzip files, and machines without
libpcap, are read by dpkt with the same question asked in Python. Both yield
(timestamp, frame bytes) for one link type; nothing is written anywhere.
"""

from __future__ import annotations

import ctypes
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wizard.diag.packets.io.libpcap import libpcap_path
from wizard.model.errors import WizardError

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


class _Header(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long),
                ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint), ("insns", ctypes.c_void_p)]


@dataclass(frozen=True)
class CaptureFile:
    """What kind of file a capture is, read from its first bytes."""

    path: str
    gzipped: bool
    format: str  # pcap | pcapng


def sniff_format(path: str) -> CaptureFile:
    """The capture's format from its magic numbers; a WizardError if it is none we read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            gzipped = head[:2] == GZIP_MAGIC
            if gzipped:
                handle.seek(0)
                with gzip.open(handle) as inner:
                    head = inner.read(4)
    except (OSError, EOFError) as exc:
        raise WizardError("unreadable capture", f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if head in PCAP_MAGICS:
        return CaptureFile(path, gzipped, "pcap")
    if head == PCAPNG_MAGIC:
        return CaptureFile(path, gzipped, "pcapng")
    raise WizardError("not a capture", f"{path} is neither pcap nor pcapng (gzip allowed)")


Records = Iterator[tuple[float, bytes]]


def read(capture: CaptureFile, bpf: str, python_filter: Callable[[int, bytes], bool]
         ) -> tuple[int, Records, str]:
    """(link type, records, reader) of a capture: filtered by ``bpf`` in libpcap when it can
    read the file, else by ``python_filter(linktype, frame)`` over dpkt's records."""
    if not capture.gzipped and libpcap_path() is not None:
        return (*_libpcap(capture.path, bpf), "libpcap")
    return (*_dpkt(capture, python_filter), "dpkt")


def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(libpcap_path() or "libpcap.so.0.8")
    lib.pcap_open_offline.restype = ctypes.c_void_p
    lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_datalink.argtypes = [ctypes.c_void_p]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_setfilter.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program)]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(_Header)),
                                 ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def _libpcap(path: str, bpf: str) -> tuple[int, Records]:
    lib = _lib()
    err = ctypes.create_string_buffer(256)
    handle = lib.pcap_open_offline(path.encode(), err)
    if not handle:
        raise WizardError("unreadable capture", f"{path}: {err.value.decode(errors='replace')}")
    linktype = lib.pcap_datalink(handle)
    program = _Program()
    if lib.pcap_compile(handle, ctypes.byref(program), bpf.encode(), 1, 0xFFFFFFFF) != 0 \
            or lib.pcap_setfilter(handle, ctypes.byref(program)) != 0:
        why = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
        lib.pcap_close(handle)
        raise WizardError("bad capture filter", f"{bpf!r}: {why}")
    lib.pcap_freecode(ctypes.byref(program))

    def records() -> Records:
        header = ctypes.POINTER(_Header)()
        data = ctypes.POINTER(ctypes.c_ubyte)()
        next_ex, string_at = lib.pcap_next_ex, ctypes.string_at
        try:
            while True:
                status = next_ex(handle, ctypes.byref(header), ctypes.byref(data))
                if status == 1:
                    h = header.contents
                    yield h.sec + h.usec / 1e6, string_at(data, h.caplen)
                else:  # -2: the end of the file; -1: a cut-off last record, kept up to it
                    return
        finally:
            lib.pcap_close(handle)

    return linktype, records()


def _dpkt(capture: CaptureFile, keep: Callable[[int, bytes], bool]) -> tuple[int, Records]:
    import dpkt  # only when libpcap cannot read the file (gzip, or no libpcap)

    raw = gzip.open(capture.path, "rb") if capture.gzipped else open(capture.path, "rb")  # noqa: SIM115
    try:
        reader = dpkt.pcapng.Reader(raw) if capture.format == "pcapng" else dpkt.pcap.Reader(raw)
    except (ValueError, dpkt.dpkt.Error) as exc:
        raw.close()
        raise WizardError("unreadable capture", f"{capture.path}: {exc}") from None
    linktype = reader.datalink()

    def records() -> Records:
        try:
            for ts, frame in reader:
                if keep(linktype, frame):
                    yield float(ts), bytes(frame)
        except (ValueError, EOFError, OSError, dpkt.dpkt.Error):
            return  # a truncated tail (a capture cut while written): keep what was read
        finally:
            raw.close()

    return linktype, records()


class Offline:
    """A capture opened with libpcap for several filtered passes: ``tell`` after a record is
    where the next one starts, so a later pass can ``seek`` straight back to it."""

    def __init__(self, path: str) -> None:
        self.lib = _lib()
        self.lib.pcap_file.restype = ctypes.c_void_p
        self.lib.pcap_file.argtypes = [ctypes.c_void_p]
        self.libc = ctypes.CDLL(None)
        self.libc.ftell.restype = ctypes.c_long
        self.libc.ftell.argtypes = [ctypes.c_void_p]
        self.libc.fseek.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
        err = ctypes.create_string_buffer(256)
        self.handle = self.lib.pcap_open_offline(path.encode(), err)
        if not self.handle:
            raise WizardError("unreadable capture", f"{path}: {err.value.decode(errors='replace')}")
        self.path = path
        self.linktype = self.lib.pcap_datalink(self.handle)
        self.file = self.lib.pcap_file(self.handle)
        self._header = ctypes.POINTER(_Header)()
        self._data = ctypes.POINTER(ctypes.c_ubyte)()

    def set_filter(self, bpf: str) -> None:
        program = _Program()
        if self.lib.pcap_compile(self.handle, ctypes.byref(program), bpf.encode(), 1, 0xFFFFFFFF) != 0 \
                or self.lib.pcap_setfilter(self.handle, ctypes.byref(program)) != 0:
            why = (self.lib.pcap_geterr(self.handle) or b"").decode(errors="replace")
            raise WizardError("bad capture filter", f"{bpf!r}: {why}")
        self.lib.pcap_freecode(ctypes.byref(program))

    def next(self) -> tuple[float, bytes] | None:
        """The next record the filter keeps, or None at the end (or a cut-off record)."""
        if self.lib.pcap_next_ex(self.handle, ctypes.byref(self._header), ctypes.byref(self._data)) != 1:
            return None
        h = self._header.contents
        return h.sec + h.usec / 1e6, ctypes.string_at(self._data, h.caplen)

    def tell(self) -> int:
        return int(self.libc.ftell(self.file))

    def seek(self, offset: int) -> None:
        self.libc.fseek(self.file, offset, 0)

    def close(self) -> None:
        if self.handle:
            self.lib.pcap_close(self.handle)
            self.handle = None
