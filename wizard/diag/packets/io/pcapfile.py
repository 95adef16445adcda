"""Capture files read fast and bounded (I/O): pcap and pcapng, gzip too, without root.

Plain files go through libpcap (ctypes), whose BPF filter drops in C every packet the
caller did not ask for, so Python sees only those; gzip files, and machines without
libpcap, are read by dpkt with the same question asked in Python. Both yield
(timestamp, frame bytes) for one link type; nothing is written anywhere. Standard library
only besides dpkt (no model): a capture may be read while the command is still loading.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wizard.diag.packets.io.firstpass import GZIP_MAGIC
from wizard.diag.packets.io.libpcap import libpcap_path
from wizard.diag.packets.io.pcaplib import CaptureError, Offline
from wizard.diag.packets.parse.links import ip_offset

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


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
        raise CaptureError("unreadable capture", f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if head in PCAP_MAGICS:
        return CaptureFile(path, gzipped, "pcap")
    if head == PCAPNG_MAGIC:
        return CaptureFile(path, gzipped, "pcapng")
    raise CaptureError("not a capture", f"{path} is neither pcap nor pcapng (gzip allowed)")


Records = Iterator[tuple[float, bytes]]


def read(capture: CaptureFile, bpf: str, python_filter: Callable[[int, bytes], bool]
         ) -> tuple[int, Records, str]:
    """(link type, records, reader) of a capture: filtered by ``bpf`` in libpcap when it can
    read the file, else by ``python_filter(linktype, frame)`` over dpkt's records."""
    if not capture.gzipped and libpcap_path() is not None:
        return (*_libpcap(capture.path, bpf), "libpcap")
    return (*_dpkt(capture, python_filter), "dpkt")


def _libpcap(path: str, bpf: str) -> tuple[int, Records]:
    off = Offline(path)
    try:
        off.set_filter(bpf)
    except CaptureError:
        off.close()
        raise

    def records() -> Records:
        try:
            while (rec := off.next()) is not None:  # None: the end, or a cut-off last record
                yield rec
        finally:
            off.close()

    return off.linktype, records()


def _dpkt(capture: CaptureFile, keep: Callable[[int, bytes], bool]) -> tuple[int, Records]:
    import dpkt  # only when libpcap cannot read the file (gzip, or no libpcap)

    raw = gzip.open(capture.path, "rb") if capture.gzipped else open(capture.path, "rb")  # noqa: SIM115
    try:
        reader = dpkt.pcapng.Reader(raw) if capture.format == "pcapng" else dpkt.pcap.Reader(raw)
    except (ValueError, dpkt.dpkt.Error) as exc:
        raw.close()
        raise CaptureError("unreadable capture", f"{capture.path}: {exc}") from None
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


def is_tcp(linktype: int, frame: bytes) -> bool:
    """Python's side of the BPF filter 'tcp' (for dpkt's records)."""
    where = ip_offset(linktype, frame)
    if where is None:
        return False
    off, version = where
    if version == 6:  # extension headers may come first: decode() looks past them
        return len(frame) > off + 6
    return len(frame) > off + 9 and frame[off + 9] == 6
