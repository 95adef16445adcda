"""Reading a server's firewall rulesets (I/O): nftables and iptables-save (both families,
legacy tables beside nf_tables ones), ufw and firewalld, with their counters; never loading a
kernel module to look."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import cast

from wizard.diag.firewall.parse.fronts import (
    FrontEnd,
    parse_firewalld_zones,
    parse_ufw_status,
)
from wizard.diag.firewall.parse.iptables import merge_iptables, parse_iptables_save
from wizard.diag.firewall.parse.nft import parse_nft_json
from wizard.diag.firewall.parse.rules import Ruleset, combine
from wizard.hosts.base import Host, HostError
from wizard.hosts.commands import CommandOutput

_CAP = 16 << 20  # large rulesets (kube-proxy) run to megabytes
_TIMEOUT = 10.0


@dataclass
class Collected:
    """One reading of every firewall layer in the server context."""

    ruleset: Ruleset = field(default_factory=Ruleset)
    read: list[str] = field(default_factory=list)  # command lines that gave a ruleset
    notes: list[str] = field(default_factory=list)  # not installed, not loaded, failed
    whole: list[tuple[str, str]] = field(default_factory=list)  # (command line, text) to quote whole
    source_cmd: dict[str, str] = field(default_factory=dict)  # rule source -> command line
    fronts: list[tuple[str, FrontEnd]] = field(default_factory=list)  # (command line, ufw/firewalld)


async def _loaded(host: Host, path: str) -> bool:
    """Whether a kernel facility is there already; asking netfilter otherwise could load it."""
    try:
        if path.startswith("/proc/"):
            return bool((await host.read_text(path, 65536)).strip())
        return await host.exists(path)
    except HostError:
        return False


async def _nf_tables_present(host: Host) -> bool:
    """nf_tables is loaded, built in, or the kernel cannot load modules at all (no /proc/modules)."""
    try:
        modules = await host.read_text("/proc/modules", 1 << 20)
    except HostError:
        return True
    return any(line.split(" ", 1)[0] == "nf_tables" for line in modules.splitlines()) or \
        await host.exists("/sys/module/nf_tables")


#: the iptables-save of each family, and the file that lists its legacy tables when they exist
_IPTABLES = (("iptables-save", "ip", "/proc/net/ip_tables_names"),
             ("ip6tables-save", "ip6", "/proc/net/ip6_tables_names"))


def _usable(host: Host, out: CommandOutput, into: Collected) -> CommandOutput | None:
    """The output when it can be parsed; else None, with a note of why."""
    if out.missing:
        into.notes.append(f"{out.argv[0]} is not installed in {host.spec}")
        return None
    if not out.ok:
        into.notes.append(f"{out.command_line}: {out.problem()}")
        return None
    if out.truncated:
        into.notes.append(f"{out.command_line}: output cut at {_CAP} bytes; later rules are not seen")
    return out


async def collect(host: Host, backends: dict[str, str] | Awaitable[dict[str, str]]) -> Collected:
    """nft (JSON for structure, text for exact quotes), then iptables-save for both families.

    ``backends`` maps iptables-save/ip6tables-save to the backend its ``-V`` named, asked once
    per run (an awaitable while it is being asked: it is awaited beside the look at what is
    loaded): a legacy tool only runs where legacy tables exist, an nf_tables one only where
    nf_tables is loaded, so reading never loads a kernel module. The commands run side by
    side (the shared bracket waits on this reading before and after its probe); their
    outputs are folded, and their problems noted, in the order above.
    """
    got = Collected()
    asked = [] if isinstance(backends, dict) else [backends]
    nft_loaded, *loaded = await asyncio.gather(
        _nf_tables_present(host), *(_loaded(host, names) for _, _, names in _IPTABLES), *asked)
    known = backends if isinstance(backends, dict) else cast("dict[str, str]", loaded.pop())
    legacy = [bool(x) for x in loaded]
    argvs: dict[str, list[str]] = {}  # what is run, by what its output is
    if nft_loaded:
        argvs["nft-json"] = ["nft", "-j", "list", "ruleset"]
        argvs["nft-text"] = ["nft", "-a", "list", "ruleset"]
    for (tool, _, _), legacy_there in zip(_IPTABLES, legacy, strict=True):
        backend = known.get(tool, "")
        if backend != "missing" and ((backend == "legacy" and legacy_there) or (backend != "legacy" and nft_loaded)):
            argvs[tool] = [tool, "-c"]
        # Legacy tables apply alongside nftables ones and only the legacy tool shows them.
        if legacy_there and backend != "legacy":
            argvs[f"{tool}:legacy"] = [f"{tool.removesuffix('-save')}-legacy-save", "-c"]
    outs = dict(zip(argvs, await asyncio.gather(
        *(host.run(argv, timeout=_TIMEOUT, max_bytes=_CAP) for argv in argvs.values())), strict=True))

    def usable(what: str) -> CommandOutput | None:
        return _usable(host, outs[what], got) if what in outs else None

    nft_rs: Ruleset | None = None
    if not nft_loaded:
        got.notes.append("nf_tables is not loaded: no nftables rules (not loading it to look)")
    elif js := usable("nft-json"):
        text = usable("nft-text")
        nft_rs = parse_nft_json(js.text, text.text if text else "")
        got.read.append(js.command_line)
        cmd = text.command_line if text else js.command_line
        got.source_cmd["nft"] = cmd
        got.whole.append((cmd, text.text if text else js.text))
        combine(got.ruleset, nft_rs)
    for tool, family, _ in _IPTABLES:
        source = tool.removesuffix("-save")
        if known.get(tool, "") == "missing":
            got.notes.append(f"{tool} is not installed in {host.spec}")
        elif out := usable(tool):
            nf = said_nft(out.text)
            rs, _ = parse_iptables_save(out.text, source if nf else f"{source}-legacy", family)
            _fold(got, rs, out, nft_rs if nf else None)
        if out := usable(f"{tool}:legacy"):
            rs, _ = parse_iptables_save(out.text, f"{source}-legacy", family)
            _fold(got, rs, out, None)
    return got


async def collect_fronts(host: Host) -> tuple[list[tuple[str, FrontEnd]], list[str]]:
    """ufw and firewalld, where installed: the human-level source of the nft/iptables rules."""
    fronts, notes = [], []
    for argv, parse, name in ((["ufw", "status", "verbose"], parse_ufw_status, "ufw"),
                              (["firewall-cmd", "--list-all-zones"], parse_firewalld_zones, "firewalld")):
        out = await host.run(argv, timeout=_TIMEOUT, max_bytes=1 << 20)
        if out.missing:
            notes.append(f"{name} is not installed in {host.spec}")
        elif not out.ok:
            notes.append(f"{out.command_line}: {out.problem()}")
        else:
            fronts.append((out.command_line, parse(out.text)))
    return fronts, notes


def said_nft(text: str) -> bool:
    return "(nf_tables)" in text.split("\n", 3)[0] or "(nf_tables)" in text[:400]


def _fold(got: Collected, rs: Ruleset, out: CommandOutput, nft_rs: Ruleset | None) -> None:
    got.read.append(out.command_line)
    got.whole.append((out.command_line, out.text))
    for key in rs.chains:
        got.source_cmd.setdefault(key[0], out.command_line)
    if nft_rs is not None:
        # iptables-nft rules live in nft's tables: fold them into the chains they are in.
        merge_iptables(got.ruleset, rs)
        for r in rs.all_rules():
            got.source_cmd.setdefault(f"merged:{r.family}", out.command_line)
    else:
        combine(got.ruleset, rs)


async def backends_of(host: Host) -> dict[str, str]:
    """The backend each iptables-save names in its version line (nf_tables, legacy or missing)."""
    tools = [tool for tool, _, _ in _IPTABLES]
    found: dict[str, str] = {}
    for tool, out in zip(tools, await asyncio.gather(*(host.run([t, "-V"], timeout=3, max_bytes=4096)
                                                       for t in tools)), strict=True):
        text = out.text + out.err
        found[tool] = ("missing" if out.missing else "legacy" if "legacy" in text
                       else "nf_tables" if "nf_tables" in text else "")
    return found
