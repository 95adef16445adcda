"""conntrack and the kernel settings that change TCP verdicts, read in a server context (I/O).

Reading never loads a module: sysctls and /proc/net/stat are plain file reads (missing when
nf_conntrack is not loaded, which is said as such), and the ``conntrack`` tool, which talks
to ctnetlink and could have it auto-loaded, runs only where ctnetlink is already there.
The parsers are pure and never raise; what they could not read is returned as problems.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from wizard.hosts.base import Host, HostError

_TIMEOUT = 5.0
_CAP = 1 << 20
_NETFILTER = "/proc/sys/net/netfilter/"

# name -> what the value changes; the order is the report's.
SETTINGS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.tcp_abort_on_overflow", "1: a full accept queue answers the handshake's ACK with a reset"),
    ("net.ipv4.tcp_syncookies", "0: a full SYN queue drops SYNs; 1: cookies when it overflows"),
    ("net.netfilter.nf_conntrack_tcp_loose", "0: a flow picked up mid-stream is INVALID"),
    ("net.netfilter.nf_conntrack_tcp_be_liberal", "1: only out-of-window RSTs are INVALID"),
    ("net.netfilter.nf_conntrack_tcp_timeout_established", "seconds an idle established flow is kept"),
    ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "seconds in CLOSE_WAIT"),
    ("net.netfilter.nf_conntrack_tcp_timeout_fin_wait", "seconds in FIN_WAIT"),
    ("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "seconds in TIME_WAIT"),
    ("net.netfilter.nf_conntrack_count", "flows tracked now (in this namespace)"),
    ("net.netfilter.nf_conntrack_max", "the table's size (global; read-only in a child namespace)"),
)

STAT_KEYS = ("invalid", "drop", "early_drop", "insert_failed", "search_restart", "error",
             "found", "insert", "clash_resolve", "chaintoolong", "icmp_error", "ignore")


def sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


@dataclass(frozen=True)
class Setting:
    name: str
    value: str | None  # None: not there or not readable (see note)
    means: str = ""
    note: str = ""

    @property
    def number(self) -> int | None:
        try:
            return int(self.value) if self.value is not None else None
        except ValueError:
            return None


def parse_sysctl(name: str, text: str) -> tuple[str | None, str]:
    """One sysctl file's content: its value, or None and why it is not one."""
    value = text.strip()
    if not value or "\n" in value or len(value) > 200:
        return None, f"{name}: not a single value ({text[:40]!r})"
    return value, ""


async def read_settings(host: Host) -> tuple[Setting, ...]:
    out = []
    for name, means in SETTINGS:
        path = sysctl_path(name)
        try:
            value, problem = parse_sysctl(name, await host.read_text(path, 4096))
            out.append(Setting(name, value, means, problem))
        except HostError as exc:
            note = ("not there: nf_conntrack is not loaded (not loading it to look)"
                    if path.startswith(_NETFILTER) else f"not readable: {str(exc)[:120]}")
            out.append(Setting(name, None, means, note))
    return tuple(out)


@dataclass(frozen=True)
class ConntrackStats:
    """Counters summed over CPUs, with where they were read."""

    counters: dict[str, int] = field(default_factory=dict)
    source: str = ""
    text: str = ""
    problems: tuple[str, ...] = ()


_KV = re.compile(r"([a-z_]+)=(\S+)")


def parse_conntrack_stats(text: str) -> tuple[dict[str, int], list[str]]:
    """``conntrack -S``: ``cpu=0 found=0 invalid=3 ...`` lines, summed; unreadable lines listed."""
    sums: dict[str, int] = {}
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        pairs = _KV.findall(line)
        if not pairs:
            problems.append(f"conntrack -S line {n} not understood: {line[:80]}")
            continue
        for key, val in pairs:
            if key == "cpu":
                continue
            try:
                sums[key] = sums.get(key, 0) + int(val)
            except ValueError:
                problems.append(f"conntrack -S line {n}: {key}={val[:20]} is not a number")
    return sums, problems


def parse_proc_stat(text: str) -> tuple[dict[str, int], list[str]]:
    """/proc/net/stat/nf_conntrack: a header of names, one row of hex numbers per CPU."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {}, ["/proc/net/stat/nf_conntrack is empty"]
    header, problems = lines[0], []
    sums: dict[str, int] = {}
    for n, row in enumerate(lines[1:], 2):
        if len(row) != len(header):
            problems.append(f"/proc/net/stat/nf_conntrack line {n}: {len(row)} fields for {len(header)} names")
            continue
        try:
            for key, val in zip(header, row, strict=True):
                if key != "entries":  # per-CPU "entries" is the global count repeated
                    sums[key] = sums.get(key, 0) + int(val, 16)
        except ValueError:
            problems.append(f"/proc/net/stat/nf_conntrack line {n} is not hexadecimal")
    return sums, problems


@dataclass(frozen=True)
class ConntrackEntry:
    line: str
    state: str
    timeout: int | None
    src: str
    dst: str
    sport: int | None
    dport: int | None
    reply_src: str = ""           # who answers: the reply direction's source (DNAT: the backend)
    reply_sport: int | None = None

    @property
    def forwarded_to(self) -> str:
        """``address:port`` the flow was forwarded to (a DNAT or port forward), or ""."""
        if not self.reply_src or (same_address(self.reply_src, self.dst) and self.reply_sport == self.dport):
            return ""
        host = f"[{self.reply_src}]" if ":" in self.reply_src else self.reply_src
        return f"{host}:{self.reply_sport}" if self.reply_sport is not None else host


def parse_conntrack_list(text: str) -> tuple[list[ConntrackEntry], list[str]]:
    """``conntrack -L`` or /proc/net/nf_conntrack lines: the original direction of each TCP flow."""
    entries, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if "tcp" not in toks:
            continue
        try:
            i = toks.index("tcp")
            timeout = int(toks[i + 2]) if i + 2 < len(toks) and toks[i + 2].isdigit() else None
            state = next((t for t in toks[i + 2:] if t.isupper() and "=" not in t and not t.startswith("[")), "")
            first: dict[str, str] = {}
            second: dict[str, str] = {}  # the reply direction: the second src=/sport=
            for key, val in _KV.findall(line):
                (second if key in first else first).setdefault(key, val)
            entries.append(ConntrackEntry(line.strip(), state, timeout, first.get("src", ""),
                                          first.get("dst", ""),
                                          int(first["sport"]) if first.get("sport", "").isdigit() else None,
                                          int(first["dport"]) if first.get("dport", "").isdigit() else None,
                                          second.get("src", ""),
                                          int(second["sport"]) if second.get("sport", "").isdigit() else None))
        except (ValueError, IndexError) as exc:
            problems.append(f"conntrack entry line {n} not understood ({exc}): {line[:80]}")
    return entries, problems


def same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


async def ctnetlink_present(host: Host) -> bool:
    """ctnetlink is loaded or built in, so the conntrack tool cannot cause a module load."""
    try:
        modules = await host.read_text("/proc/modules", 1 << 20)
    except HostError:
        return True  # no module support: nothing can be loaded
    return any(line.split(" ", 1)[0] == "nf_conntrack_netlink" for line in modules.splitlines()) or \
        await host.exists("/sys/module/nf_conntrack_netlink")


async def read_stats(host: Host, use_tool: bool) -> ConntrackStats:
    """``conntrack -S`` where it is safe and installed, else /proc/net/stat/nf_conntrack."""
    problems: list[str] = []
    if use_tool:
        out = await host.run(["conntrack", "-S"], timeout=_TIMEOUT, max_bytes=_CAP)
        if out.ok:
            sums, problems = parse_conntrack_stats(out.text)
            return ConntrackStats(sums, out.command_line, out.text, tuple(problems))
        problems.append("conntrack is not installed" if out.missing else f"{out.command_line}: {out.problem()}")
    path = "/proc/net/stat/nf_conntrack"
    try:
        text = await host.read_text(path, _CAP)
    except HostError as exc:
        return ConntrackStats({}, path, "", (*problems, f"{path}: {str(exc)[:120]}"))
    sums, more = parse_proc_stat(text)
    return ConntrackStats(sums, path, text, tuple(problems + more))


async def read_entries(host: Host, port: int, use_tool: bool) -> tuple[str, list[ConntrackEntry], list[str]]:
    """The tracked TCP flows to ``port``: (source, entries, problems); bounded by the byte cap."""
    if use_tool:
        out = await host.run(["conntrack", "-L", "-p", "tcp", "--dport", str(port)],
                             timeout=_TIMEOUT, max_bytes=_CAP)
        if out.ok:
            entries, problems = parse_conntrack_list(out.text)
            if out.truncated:
                problems.append(f"{out.command_line}: output cut at {_CAP} bytes")
            return out.command_line, entries, problems
        if not out.missing:
            return out.command_line, [], [f"{out.command_line}: {out.problem()}"]
    path = "/proc/net/nf_conntrack"
    try:
        text = await host.read_text(path, _CAP)
    except HostError:
        return "", [], ["no conntrack tool with ctnetlink and no /proc/net/nf_conntrack: flows not listed"]
    entries, problems = parse_conntrack_list(text)
    return path, [e for e in entries if e.dport == port], problems
