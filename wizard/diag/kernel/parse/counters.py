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


# The counters that say who ended connections, and the signal each raises when it moved.
MOVED_SIGNALS = (("TcpOutRsts", "server.rst_sent"), ("TcpExtTCPAbortOnData", "server.abort_on_data"),
                 ("TcpExtTCPAbortOnClose", "server.abort_on_close"),
                 ("TcpExtTCPAbortOnMemory", "server.abort_on_memory"))


def moved_signals(delta: dict[str, int], during: str) -> list[tuple[str, str]]:
    """(signal, fact) for each telling counter that moved ``during`` (e.g. "during the probe"):
    the server's stack sent resets, aborted live sockets, or overflowed a listen queue."""
    out = [(sid, f"{key.removeprefix('TcpExt')} +{delta[key]} {during}")
           for key, sid in MOVED_SIGNALS if delta.get(key, 0) > 0]
    overflows, drops = delta.get("TcpExtListenOverflows", 0), delta.get("TcpExtListenDrops", 0)
    if overflows > 0 or drops > 0:
        out.append(("server.listen_overflow", f"ListenOverflows +{overflows}, ListenDrops +{drops} {during}"))
    return out
