"""Link types and where a frame's IP header starts (pure, standard library only).

Apart from ``frames`` so that what reads a capture before anything else (the first pass of
``analyze``, begun while the command loads: wizard.diag.packets.io.firstpass) needs neither
typing nor the segment's decoding.
"""

from __future__ import annotations

# Link types (the pcap LINKTYPE_ numbers).
NULL, ETHERNET, RAW, RAW_OLD, LOOP, SLL, IPV4, IPV6, SLL2 = 0, 1, 101, 12, 108, 113, 228, 229, 276
KNOWN_LINKTYPES = (NULL, ETHERNET, RAW, RAW_OLD, 14, LOOP, SLL, IPV4, IPV6, SLL2)


def ip_offset(linktype: int, frame: bytes) -> tuple[int, int] | None:
    """(offset of the IP header, IP version) in a frame of this link type, or None."""
    if linktype == ETHERNET:
        off, ethertype = 14, int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:  # VLAN tags
            ethertype = int.from_bytes(frame[off + 2:off + 4], "big")
            off += 4
        version = {0x0800: 4, 0x86DD: 6}.get(ethertype)
    elif linktype == SLL:
        off, version = 16, {0x0800: 4, 0x86DD: 6}.get(int.from_bytes(frame[14:16], "big"))
    elif linktype == SLL2:
        off, version = 20, {0x0800: 4, 0x86DD: 6}.get(int.from_bytes(frame[0:2], "big"))
    elif linktype in (NULL, LOOP):
        family = int.from_bytes(frame[0:4], "little" if linktype == NULL else "big") if len(frame) >= 4 else 0
        if family > 0xFFFF:  # written on a host of the other byte order
            family = int.from_bytes(frame[0:4], "big" if linktype == NULL else "little")
        off, version = 4, 4 if family == 2 else 6 if family in (10, 24, 28, 30) else None
    elif linktype in (RAW, RAW_OLD, 14, IPV4, IPV6):
        off, version = 0, (frame[0] >> 4) if frame else None
    else:
        return None
    if version not in (4, 6) or len(frame) <= off:
        return None
    return off, version
