"""firewall.rules against real rules loaded into a throwaway network namespace (root only)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.fakes import FakeProbes, make_ctx
from wizard.diag.firewall.checks.rules import FirewallRulesCheck, FirewallRulesParams
from wizard.diag.firewall.parse.iptables import merge_iptables, parse_iptables_save
from wizard.diag.firewall.parse.nft import parse_nft_json
from wizard.diag.firewall.parse.walk import Flow, walk
from wizard.engine.probes import ExchangeOutcome, ProbeEvent
from wizard.hosts.local import NetnsHost

RULES = """
table inet rwfw {
    chain input {
        type filter hook input priority filter; policy accept;
        ct state invalid counter drop
        tcp dport 18080 ct state new counter reject with tcp reset
        tcp dport { 18081, 18082 } counter jump svc
    }
    chain svc {
        tcp dport 18082 limit rate over 1/minute burst 1 packets counter reject with tcp reset
    }
}
"""


def _need_root() -> None:
    reason = ""
    if os.geteuid() != 0:
        reason = "needs root to create a network namespace"
    elif subprocess.run(["which", "nft"], capture_output=True).returncode != 0:
        reason = "nft is not installed"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=20).stdout


@pytest.fixture
def netns(tmp_path: Path):
    _need_root()
    name = f"rwfw-{secrets.token_hex(4)}"
    _sh("ip", "netns", "add", name)
    try:
        _sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        rules = tmp_path / "rules.nft"
        rules.write_text(RULES)
        _sh("ip", "netns", "exec", name, "nft", "-f", str(rules))
        _sh("ip", "netns", "exec", name, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "18443",
            "-j", "REJECT", "--reject-with", "tcp-reset")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


class NetnsTcp:
    """Connects from inside the namespace, so the probe meets the namespace's rules."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def exchange(self, address: str, port: int, payload: bytes, timeout: float, **_: object) -> ExchangeOutcome:
        code = ("import socket,sys\ns=socket.socket(); s.settimeout(2)\n"
                f"try: s.connect(({address!r}, {port})); print('ok')\n"
                "except ConnectionRefusedError: print('refused')\nexcept OSError: print('error')")
        kind = _sh("ip", "netns", "exec", self.name, sys.executable, "-c", code).strip()
        return ExchangeOutcome(address, port, kind, "connect", [ProbeEvent(0.0, "syn"), ProbeEvent(1.0, kind)])  # type: ignore[arg-type]


def test_real_nft_and_iptables_outputs_parse_into_the_rules_that_were_loaded(netns):
    js = _sh("ip", "netns", "exec", netns, "nft", "-j", "list", "ruleset")
    text = _sh("ip", "netns", "exec", netns, "nft", "-a", "list", "ruleset")
    rs = parse_nft_json(js, text)
    assert not rs.problems
    ipt, backend = parse_iptables_save(_sh("ip", "netns", "exec", netns, "iptables-save", "-c"))
    assert backend == "nf_tables"
    merge_iptables(rs, ipt)
    end = [h for h in walk(rs, Flow(18080, "ipv4", ("127.0.0.1",))) if h.final][-1]
    assert end.rule is not None and end.rule.resets and "tcp dport 18080" in end.rule.text
    end = [h for h in walk(rs, Flow(18443, "ipv4", ("127.0.0.1",))) if h.final][-1]
    assert end.rule.text == "-A INPUT -p tcp -m tcp --dport 18443 -j REJECT --reject-with tcp-reset"
    limited = [h for h in walk(rs, Flow(18082, "ipv4", ("127.0.0.1",))) if h.rule and h.rule.limits]
    assert limited and limited[0].path == ("inet rwfw input", "jump svc")


async def test_check_sees_the_reject_counter_move_during_a_real_probe(netns):
    ctx = make_ctx("127.0.0.1:18080", probes=FakeProbes(tcp=NetnsTcp(netns)))
    ctx.server = NetnsHost(netns)
    result = await FirewallRulesCheck().run(ctx, FirewallRulesParams())
    sig = {s.id: s.strength for s in result.signals}
    assert sig.get("fw.reject_rule") == 1.0 and "fw.reject_moved" in sig, result.summary
    ev = next(e for e in result.evidence if e.data.get("kind") == "reject")
    assert ev.data["delta"] == 1 and ev.source == "nft -a list ruleset"


async def test_check_through_iptables_quotes_the_iptables_save_line(netns):
    ctx = make_ctx("127.0.0.1:18443", probes=FakeProbes(tcp=NetnsTcp(netns)))
    ctx.server = NetnsHost(netns)
    result = await FirewallRulesCheck().run(ctx, FirewallRulesParams())
    assert "fw.reject_moved" in {s.id for s in result.signals}
    ev = next(e for e in result.evidence if e.data.get("kind") == "reject")
    assert ev.text == "-A INPUT -p tcp -m tcp --dport 18443 -j REJECT --reject-with tcp-reset"
    assert ev.source == "iptables-save -c"
