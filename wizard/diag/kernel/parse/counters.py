"""Kernel TCP counters (pure): /proc/net/snmp and /proc/net/netstat as nstat names them."""

from __future__ import annotations


def parse_proc_counters(text: str) -> dict[str, int]:
    """Both files pair a header line with a value line: ``Tcp: OutRsts ...`` / ``Tcp: 27 ...``.
    Names come out as nstat spells them: ``TcpOutRsts``, ``TcpExtTCPAbortOnData``."""
    out: dict[str, int] = {}
    lines = [ln for ln in text.splitlines() if ":" in ln]
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        prefix, _, names = header.partition(":")
        vprefix, _, nums = values.partition(":")
        if prefix != vprefix:
            continue
        for name, num in zip(names.split(), nums.split(), strict=False):
            try:
                out[prefix + name] = int(num)
            except ValueError:
                continue
    return out
