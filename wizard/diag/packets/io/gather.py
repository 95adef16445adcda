"""Every RST of one capture file and what attribution needs of its flow, read fast (I/O).

Standard library and the pure packet parsers only (no model). The first pass is
wizard.diag.packets.io.firstpass's: usually begun by a process forked as the command
starts (wizard.diag.packets.io.prefetch), its result handed to ``gather``; the rest is read
here, in the command.

A plain pcap or pcapng file is read twice, both times filtered by BPF in libpcap's C:
first the whole file, keeping only the SYNs, SYN-ACKs and RSTs (libpcap copies them into
memory itself: Python sees no packet of this pass), each RST's SYN found in that copy
(its source port is the client's); then the whole file again, keeping only the packets on
the client ports of the reset connections (a search tree of comparisons, some 2 log2(n)
tests a packet), which go through the tracker: it sees every reset connection whole, as
a pass of every packet through it would. A gzip file, a machine without libpcap and a
capture with very many reset connections are read in one pass through the tracker. On a
machine with two processors or more, both passes over a large pcap file read its second
half in a thread meanwhile (wizard.diag.packets.io.halves), with exactly one read's result.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wizard.diag.packets.io.firstpass import (  # noqa: F401 (OPENERS_AND_RESETS named here too)
    BATCH,
    OPENERS_AND_RESETS,
    bpf_for,
    first_bpf,
    first_pass,
)
from wizard.diag.packets.io.halves import Later, noted_cut
from wizard.diag.packets.io.halves import start as second_half
from wizard.diag.packets.io.libpcap import libpcap_path
from wizard.diag.packets.io.pcapfile import is_tcp, read, sniff_format
from wizard.diag.packets.io.pcaplib import CaptureError, Code, Offline, Skim
from wizard.diag.packets.parse.bpfcode import splice
from wizard.diag.packets.parse.dump import (
    FILE_HEADER,
    dumped_records,
    endpoints,
    find_packet,
    record_at,
    records,
)
from wizard.diag.packets.parse.flows import Tracker, opened_only
from wizard.diag.packets.parse.frames import KNOWN_LINKTYPES, Segment, decode

RESETS = "(tcp[tcpflags] & tcp-rst != 0 or (ip6 and ip6[6] == 6 and ip6[53] & 0x04 != 0))"
SYNS = "(tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn or (ip6 and ip6[6] == 6 and ip6[53] & 0x12 == 0x02))"
MAX_RESET_FLOWS = 1500  # reset connections the second pass filters for; beyond, one pass through the tracker
LOOK_BACK = 64 << 20  # bytes of the capture before an RST where its SYN is looked for, at most
SAMPLE_SYNS = 1000  # SYNs read to name the busiest server, when the flows are not all kept

Check = Callable[[], None]


@dataclass
class Gathered:
    """One capture, read: the tracker (its sightings, and its flows) and how it was read."""

    tracker: Tracker
    reader: str
    linktype: int
    format: str


def gather(path: str, port: int | None, every_flow: bool = False, check: Check = lambda: None,
           first: Skim | None = None) -> Gathered:
    """Read one capture, always whole (a connection's first packet decides which end is its
    client, so no part of a file can be read apart from what comes before it); with
    ``every_flow`` the flows without a reset are kept too (their SYN: the two-ended proof
    matches flows across captures by it). ``first``: the first pass of this file with this
    port (firstpass.first_pass), read already."""
    capture = sniff_format(path)
    if not capture.gzipped and libpcap_path() is not None:
        done = _skimmed(path, capture.format, port, every_flow, check, first)
        if done is not None:
            return done
    bpf = bpf_for(port)
    linktype, recs, reader = read(capture, bpf, is_tcp)
    _known(path, linktype)
    tracker = Tracker(server_port=port)
    feed = tracker.feed
    for n, (ts, frame) in enumerate(recs, 1):
        seg = decode(linktype, ts, frame)
        if seg is not None:
            feed(seg)
        if not n & 0x3FFF:
            check()
    return Gathered(tracker, f"{reader} ({capture.format}{', gzip' if capture.gzipped else ''}), filter '{bpf}'",
                    linktype, capture.format)


def _known(path: str, linktype: int) -> None:
    if linktype not in KNOWN_LINKTYPES:
        raise CaptureError("unsupported capture", f"{path}: link type {linktype} (Ethernet, Linux cooked, "
                           "raw IP and loopback are read)")


@dataclass
class _Reset:
    pos: int  # where the RST's record starts in the first pass's copy
    seg: Segment
    frame: bytes
    syn: tuple[int, float, bytes] | None  # the connection's SYN in the copy
    client_port: int  # the SYN's source port; without one, the higher port (or the one not --port)


def _skimmed(path: str, fmt: str, port: int | None, every_flow: bool, check: Check,
             ready: Skim | None = None) -> Gathered | None:
    bpf = first_bpf(port)
    first = ready if ready is not None else first_pass(path, port, check)
    _known(path, first.linktype)
    resets = _resets(first, port)
    if resets is None:
        return None
    check()
    tracker = Tracker(server_port=port)
    _second_pass(path, first, port, resets, tracker, check, noted_cut(first))
    tracker.sightings.sort(key=lambda s: s.rst.ts)
    # the flows opened in the copy, and the reset ones begun before the capture (no SYN)
    unopened = len({id(s.flow) for s in tracker.sightings if s.flow.syn is None})
    tracker.flows_seen = unopened + _opened(first, tracker, every_flow)
    head = record_at(first.dump, FILE_HEADER)
    if head is not None:  # the first and last packets of the copy
        tracker.first_ts = head[0]
        tail = first.dumps[-2] if len(first.dumps) > 1 else FILE_HEADER
        tracker.last_ts = max(ts for ts, _ in records(first.dump, tail))
    tracker.packets += first.kept
    reader = f"libpcap ({fmt}), two passes: filter '{bpf}', then the reset connections' ports"
    return Gathered(tracker, reader, first.linktype, fmt)


def _ends(seg: Segment) -> tuple[tuple[str, int], tuple[str, int]]:
    return (seg.src, seg.sport), (seg.dst, seg.dport)


def _resets(first: Skim, port: int | None) -> list[_Reset] | None:
    """Every RST of the copy with its connection's SYN and SYN-ACK; None: too many connections."""
    out: list[_Reset] = []
    dump, linktype = first.dump, first.linktype
    with Offline("the first pass's copy", dump) as mem:
        mem.set_filter(RESETS)
        while (rec := mem.next()) is not None:
            end = mem.tell()
            ts, frame = rec
            seg, raw = decode(linktype, ts, frame), endpoints(linktype, frame)
            if seg is None or raw is None:
                continue
            out.append(_opener(first, end - 16 - len(frame), seg, frame, raw, port))
            if len(out) > 2 * MAX_RESET_FLOWS:
                return None
    if len({(r.syn[0] if r.syn else None, *sorted(_ends(r.seg))) for r in out}) > MAX_RESET_FLOWS:
        return None
    return out


def _opener(first: Skim, pos: int, seg: Segment, frame: bytes, raw: tuple[int, bytes, bytes, bytes, bytes],
            port: int | None) -> _Reset:
    """The RST at ``pos`` and the nearest SYN before it, in either direction, of the same ends
    (first toward the RST's sender, as when the RST goes to the client; then the other way,
    only after the SYN found)."""
    _v, a, b, pa, pb = raw
    lo = _dump_pos_back(first, pos, LOOK_BACK)
    dump, lt = first.dump, first.linktype
    syn = None
    for src, dst, ports in ((b, a, pb + pa), (a, b, pa + pb)):
        found = find_packet(dump, lt, syn[0] if syn else lo, pos, src, dst, ports, 0x12, 0x02)
        if found is not None:
            syn, client = found, int.from_bytes(ports[:2], "big")
    if syn is None:
        client = seg.dport if port == seg.sport else seg.sport if port == seg.dport else max(seg.sport, seg.dport)
    return _Reset(pos, seg, frame, syn, client)


def _dump_pos_back(first: Skim, pos: int, span: int) -> int:
    """The copy's position of the noted boundary ``span`` bytes of the original before ``pos``."""
    i = max(bisect.bisect_right(first.dumps, pos) - 1, 0)
    j = bisect.bisect_left(first.sources, first.sources[i] - span)
    return first.dumps[min(j, i)]


MARKERS = (0xBEE1, 0xBEE3, 0xBEE5, 0xBEE7)  # the template's stand-ins for the port sets
TREE_LEAF = 8  # ports compared one by one at the tree's leaves


def port_tree(ports: list[int], field: str) -> str:
    """A BPF expression true when ``field`` is one of ``ports`` (sorted), as a search tree of
    comparisons: libpcap compiles it to some log2(n / 8) comparisons and at most 8 equality
    tests a packet, not n. (Leaves of eight: libpcap's optimiser takes a third of the time
    it took on leaves of three, 160 ports compiled in 17 ms instead of 43, and the filter
    runs as fast.)"""
    if len(ports) <= TREE_LEAF:
        return "(" + " or ".join(f"{field} = {p}" for p in ports) + ")"
    m = len(ports) // 2
    return (f"(({field} < {ports[m]} and {port_tree(ports[:m], field)}) or "
            f"({field} >= {ports[m]} and {port_tree(ports[m:], field)}))")


def _ports_filter(port: int | None, v4s: list[bool], test: Callable[[str], str]) -> str:
    """The second pass's filter: ``test(field)`` of each port field of the families reset."""
    # Only the families that were reset: libpcap's optimiser takes time quadratic in the filter
    families = [f"(ip and ({test('tcp[0:2]')} or {test('tcp[2:2]')}))" if v4 else
                f"(ip6 and ip6[6] == 6 and ({test('ip6[40:2]')} or {test('ip6[42:2]')}))" for v4 in v4s]
    # Each family's test reads TCP's header (tcp[...] checks the protocol, as ip6[6] == 6
    # does), so a leading 'tcp and' would keep the same packets and triple the compile time.
    return (f"{bpf_for(port)} and " if port else "") + f"({' or '.join(families)})"


def _spliced(off: Offline, bpf: str, v4s: list[bool], ports: list[int]) -> str | Code:
    """The filter ``bpf`` as code: libpcap's of a template with a marker for each port field,
    each marker's test made a search of ``ports`` (wizard.diag.packets.parse.bpfcode); ``bpf``
    itself when the template is not as expected."""
    markers = iter(MARKERS)
    template = _ports_filter(None, v4s, lambda _field: f"{_field} = {next(markers)}")
    try:
        spliced = splice(off.compiled(template), dict.fromkeys(MARKERS[:2 * len(v4s)], ports))
    except CaptureError:
        return bpf
    return Code(bpf, tuple(spliced)) if spliced is not None else bpf


def _second_pass(path: str, first: Skim, port: int | None, resets: list[_Reset], tracker: Tracker,
                 check: Check, cut: int | None) -> None:
    """Every packet on the client ports of the reset connections, filtered in libpcap (a
    search tree of ports), through the tracker: it sees each reset connection whole, as a
    pass of every packet would show it. With a ``cut`` (a record boundary the first pass
    noted) the records from it on are copied by a thread meanwhile and handed over in
    chunks as it goes: they go through the tracker after those before it, in the file's
    order, while the thread reads on (the tracker's Python work beside libpcap's C)."""
    if not resets:
        return
    ports = sorted({r.client_port for r in resets})
    v4s = sorted({":" not in r.seg.src for r in resets})
    text = _ports_filter(port, v4s, lambda field: port_tree(ports, field))
    resume = None
    with Offline(path) as off:
        # (with --port, the optimiser may fold a marker's test into the port's: compiled whole)
        bpf = _spliced(off, text, v4s, ports) if port is None else text
        later = second_half(path, bpf, cut, note=False, first=off, stream=True)
        if later is None:
            off.set_filter(bpf)
        try:
            _feed(off, tracker, first.linktype, later.cut if later is not None else None, check)
            resume = _feed_stream(later, tracker, first.linktype, check) if later is not None else None
        finally:
            if later is not None:
                later.drop()
    if resume is not None:  # the thread failed: the rest read here, from the last record it handed over
        with Offline(path) as off:
            off.set_filter(bpf)
            off.seek(resume)
            _feed(off, tracker, first.linktype, None, check)


def _feed_stream(later: Later, tracker: Tracker, linktype: int, check: Check) -> int | None:
    """The second half's records through the tracker as its thread hands them over (it reads
    on meanwhile); None, or where to read on from when the thread did not read to the end."""
    fed = later.cut
    for data, end in later.chunks():
        _feed_records(dumped_records(data), tracker, linktype)
        fed = end
        check()
    return None if later.status is not None else fed


def _feed(off: Offline, tracker: Tracker, linktype: int, cut: int | None, check: Check) -> None:
    """The records ``off`` keeps through the tracker (up to ``cut``, a record boundary)."""
    feed = tracker.feed
    n = 0
    while (rec := off.next()) is not None:
        if cut is not None and off.tell() > cut:
            break  # the second half's first record
        seg = decode(linktype, rec[0], rec[1])
        if seg is not None:
            feed(seg)
        n += 1
        if not n & 0xFFF:
            check()


def _feed_records(recs: Iterable[tuple[float, bytes]], tracker: Tracker, linktype: int) -> None:
    feed = tracker.feed
    for ts, frame in recs:
        seg = decode(linktype, ts, frame)
        if seg is not None:
            feed(seg)


def _opened(first: Skim, tracker: Tracker, every_flow: bool) -> int:
    """The flows the copy saw open: counted, a sample read to name the busiest server (every
    one kept, with ``every_flow``, up to the tracker's cap)."""
    with Offline("the first pass's copy", first.dump) as mem:
        mem.set_filter(SYNS)
        n = 0
        while (every_flow or n < SAMPLE_SYNS) and (rec := mem.next()) is not None:
            n += 1
            syn = decode(first.linktype, rec[0], rec[1])
            if syn is None:
                continue
            key = (syn.src, syn.sport, syn.dst, syn.dport)
            tracker.servers[(syn.dst, syn.dport)] += 0 if key in tracker.flows else 1
            if every_flow and key not in tracker.flows and len(tracker.flows) < tracker.max_flows:
                tracker.flows[key] = opened_only(syn)
        if not every_flow:
            n += mem.count()
    return n
