"""analyze's second pass: the port sets spliced into libpcap's code of a template keep exactly
the packets libpcap's own compilation of the written-out filter keeps, on every link type
read, for sets small and large (jumps too long for one conditional jump), and a template
that is not as expected is not spliced."""

from __future__ import annotations

import random
import struct

import pytest

from wizard.diag.packets.io import gather
from wizard.diag.packets.io.pcaplib import CaptureError, Code, Offline
from wizard.diag.packets.parse import bpfcode
from wizard.diag.packets.parse.frames import KNOWN_LINKTYPES


def _v4(sport: int, dport: int, proto: int = 6, frag: int = 0x4000, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 0x50, 0x10, 500, 0, 0)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), 7, frag, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + options + l4


def _v6(sport: int, dport: int, nxt: int = 6) -> bytes:
    l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 0x50, 0x10, 500, 0, 0)
    if nxt == 0:  # a hop-by-hop header, then TCP
        l4 = bytes([6, 0]) + b"\x01\x04\0\0\0\0" + l4
    return struct.pack("!IHBB", 0x60000000, len(l4), nxt, 64) + b"\x20\x01" + b"\0" * 13 + b"\x01" \
        + b"\x20\x01" + b"\0" * 13 + b"\x02" + l4


def _link(linktype: int, ip: bytes, vlan: bool = False, bsd: bool = True) -> bytes:
    v6 = ip[0] >> 4 == 6
    ethertype = b"\x86\xdd" if v6 else b"\x08\x00"
    if linktype == 1:
        tag = b"\x81\x00\x00\x07" if vlan else b""
        return b"\x02" * 6 + b"\x04" * 6 + tag + ethertype + ip
    if linktype == 113:
        return struct.pack("!HHH", 0, 1, 6) + b"\x02" * 8 + ethertype + ip
    if linktype == 276:
        return ethertype + b"\0\0" + struct.pack("!IHBB", 2, 1, 0, 6) + b"\x02" * 8 + ip
    if linktype == 0:
        return struct.pack("<I", (24 if bsd else 10) if v6 else 2) + ip  # BSD's AF_INET6 or Linux's
    if linktype == 108:
        return struct.pack(">I", 24 if v6 else 2) + ip
    return ip  # raw IP (101, 12, 14, 228, 229)


def _capture(linktype: int, frames: list[bytes]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, data in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(data), len(data)) + data)
    return b"".join(out)


def _frames(linktype: int, ports: list[int], rng: random.Random) -> list[bytes]:
    near = [p + d for p in ports for d in (-1, 0, 1) if 0 <= p + d < 65536]
    picks = near + [rng.randrange(65536) for _ in range(60)] + [0, 65535]
    frames = [_link(linktype, ip(p, 443)) for p in ports[:3] for ip in (_v4, _v6)]
    frames += [_link(linktype, ip(443, p)) for p in ports[-3:] for ip in (_v4, _v6)]
    frames = [f for f in frames if not ((linktype == 228 and f[0] >> 4 == 6) or (linktype == 229 and f[0] >> 4 == 4))]
    for _ in range(400):
        a, b = rng.choice(picks), rng.choice(picks)
        kind = rng.randrange(8)
        ip = (_v4(a, b) if kind < 3 else _v6(a, b) if kind < 5 else
              _v4(a, b, options=b"\x01\x01\x01\x00") if kind == 5 else
              _v4(a, b, frag=rng.choice([0x2000, 0x0001, 0x00B9])) if kind == 6 else
              rng.choice([_v4(a, b, proto=17), _v6(a, b, nxt=17), _v6(a, b, nxt=0)]))
        if (linktype == 228 and ip[0] >> 4 == 6) or (linktype == 229 and ip[0] >> 4 == 4):
            continue
        frames.append(_link(linktype, ip, vlan=rng.random() < 0.1, bsd=rng.random() < 0.5))
    return frames


def _kept(data: bytes, bpf: str | Code) -> list[bytes]:
    with Offline("capture in memory", data) as off:
        off.set_filter(bpf)
        out = []
        while (rec := off.next()) is not None:
            out.append(rec[1])
        return out


CASES = [(linktype, size) for linktype in KNOWN_LINKTYPES for size in (1, 2, 3, 17, 162)] + [(1, 600)]


@pytest.mark.parametrize(("linktype", "size"), CASES)  # (libpcap takes a second to compile 600 ports)
def test_the_spliced_code_keeps_what_libpcaps_compiled_filter_keeps(linktype, size):
    rng = random.Random(linktype * 10_000 + size)
    ports = sorted(rng.sample(range(1, 65535), size))
    data = _capture(linktype, _frames(linktype, ports, rng))
    for v4s in ([True], [False], [False, True]):
        if (linktype == 228 and False in v4s) or (linktype == 229 and True in v4s):
            continue  # IPv4 only, IPv6 only: no reset of the other family
        text = gather._ports_filter(None, v4s, lambda field: gather.port_tree(ports, field))
        with Offline("capture in memory", data) as off:
            code = gather._spliced(off, text, v4s, ports)
            try:
                off.set_filter(text)
            except CaptureError:  # libpcap has no code for this link type: nor for the template
                assert code == text
                continue
        assert isinstance(code, Code), (linktype, v4s)  # spliced, not compiled whole
        assert code.text == text
        want = _kept(data, text)
        assert want, (linktype, v4s)  # the capture has packets on the set's ports
        assert _kept(data, code) == want, (linktype, v4s)


def test_long_jumps_go_through_unconditional_ones():
    ports = list(range(1000, 4000, 2))
    insns = [(0x28, 0, 0, 12), (bpfcode.JEQ_K, 0, 1, 0xBEE1), (0x06, 0, 0, 65535), (0x06, 0, 0, 0)]
    out = bpfcode.splice(insns, {0xBEE1: ports})
    assert out is not None and len(out) > 2 * 256
    assert any(code == bpfcode.JA_CODE for code, _jt, _jf, _k in out)
    # every conditional jump fits in its 8 bits and every jump lands inside the program
    for i, (code, jt, jf, k) in enumerate(out):
        if code & 0x07 == bpfcode.JMP:
            targets = [k] if code == bpfcode.JA_CODE else [jt, jf]
            assert all(t >= 0 and i + 1 + t < len(out) for t in targets)


def test_a_template_not_as_expected_is_not_spliced():
    ret_keep, ret_drop = (0x06, 0, 0, 65535), (0x06, 0, 0, 0)
    ok = [(0x28, 0, 0, 12), (bpfcode.JEQ_K, 0, 1, 0xBEE1), ret_keep, ret_drop]
    assert bpfcode.splice(ok, {0xBEE1: [80, 443]}) is not None
    assert bpfcode.splice(ok, {0xBEE1: [80, 443], 0xBEE3: [80]}) is None  # a marker missing
    reused = [(0x28, 0, 0, 0xBEE1), *ok[1:]]  # the marker's constant used by another instruction
    assert bpfcode.splice(reused, {0xBEE1: [80, 443]}) is None
    assert bpfcode.splice(ok, {0xBEE1: [443, 80]}) is None  # not sorted
    assert bpfcode.splice([(bpfcode.JEQ_K, 5, 1, 0xBEE1), ret_keep], {0xBEE1: [80]}) is None  # jumps out


def test_with_a_port_the_filter_is_compiled_whole(tmp_path, monkeypatch):
    spliced = []
    monkeypatch.setattr(gather, "_spliced", lambda *a: spliced.append(a) or a[1])
    from tests.unit.test_analyze_halves import busy

    path = busy(tmp_path / "busy.pcap")
    gather.gather(str(path), 8080)
    assert spliced == []
    gather.gather(str(path), None)
    assert len(spliced) == 1
