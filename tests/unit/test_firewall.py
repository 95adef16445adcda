"""firewall.rules and its parsers, on outputs captured from real rulesets (tests/unit/data/fw)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.fakes import FakeHost, FakeProbes, FakeTcp, make_ctx, output
from wizard.diag.firewall.checks.rules import FirewallRulesCheck, FirewallRulesParams
from wizard.diag.firewall.parse.fronts import parse_firewalld_zones, parse_ufw_status
from wizard.diag.firewall.parse.iptables import (
    merge_iptables,
    parse_iptables_line,
    parse_iptables_save,
)
from wizard.diag.firewall.parse.nft import parse_nft_json
from wizard.diag.firewall.parse.rules import Rule, Selector
from wizard.diag.firewall.parse.walk import Flow, matches_port, walk
from wizard.model import Status

DATA = Path(__file__).parent / "data" / "fw"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def nft(name: str):
    return parse_nft_json(sample(f"{name}.json"), sample(f"{name}.txt"))


def iptables_nft():
    rs = parse_nft_json(sample("iptables-nft.json"), sample("iptables-nft.txt"))
    merge_iptables(rs, parse_iptables_save(sample("iptables-save.txt"))[0])
    merge_iptables(rs, parse_iptables_save(sample("ip6tables-save.txt"), "ip6tables", "ip6")[0])
    return rs


def hits_for(rs, port, hook="input", fam="ipv4", addrs=("10.9.9.9",)):
    return walk(rs, Flow(port, fam, addrs), hook)


def final(hits):
    return [h for h in hits if h.final][-1]


# --------------------------------------------------------------------------- parsers

def test_reject_with_tcp_reset_on_a_dport_keeps_handle_exact_text_and_counter():
    rs = nft("nft-inet")
    rule = next(r for r in rs.all_rules() if r.handle == 6)
    assert (rule.family, rule.table, rule.chain) == ("inet", "rwfw", "input")
    assert rule.text == "tcp dport 8080 ct state new counter packets 0 bytes 0 reject with tcp reset"
    assert rule.resets and rule.packets == 0
    assert rs.chains[("nft", "inet", "rwfw", "input")].hook == "input"
    assert not rs.problems


def test_reject_rule_ends_the_walk_for_its_port_and_only_its_port():
    rs = nft("nft-inet")
    end = final(hits_for(rs, 8080))
    assert end.rule is not None and end.rule.handle == 6
    assert end.describe() == "inet rwfw input → reject with tcp reset"
    assert all(h.rule is None or h.rule.handle != 6 for h in hits_for(rs, 8081))


def test_a_set_of_ports_and_a_range_match_only_their_members():
    rs = nft("nft-inet")
    drop = next(r for r in rs.all_rules() if r.handle == 8)
    accept_range = next(r for r in rs.all_rules() if r.handle == 9)
    assert matches_port(drop, 9001) == "yes" and matches_port(drop, 9002) == "no"
    assert matches_port(accept_range, 8000) == "yes" and matches_port(accept_range, 8100) == "yes"
    assert matches_port(accept_range, 8101) == "no"
    assert final(hits_for(rs, 8050)).rule.verdict == "accept"


def test_a_named_set_is_read_from_its_elements_and_unknown_sets_may_match():
    rs = nft("nft-inet")
    by_set = next(r for r in rs.all_rules() if r.handle == 10)
    assert matches_port(by_set, 443, sets=rs.sets) == "yes"
    assert matches_port(by_set, 444, sets=rs.sets) == "no"
    assert matches_port(by_set, 443) == "may"  # the set's elements are not known


def test_jumps_and_gotos_into_user_chains_are_followed_with_their_path():
    rs = nft("nft-inet")
    # 7000 from 10/8 jumps to svc (the source address is unknown: may), and so does every tcp packet.
    paths = [h.describe() for h in hits_for(rs, 7000)]
    assert "inet rwfw input → jump svc → reject with icmpx admin-prohibited" in paths
    assert [h.match for h in hits_for(rs, 7000) if h.rule and h.rule.handle == 11] == ["may"]
    end = final(hits_for(rs, 7200))
    assert end.describe() == "inet rwfw input → jump svc → goto svc2 → reject with icmpx port-unreachable"
    assert not end.rule.resets


def test_limit_rate_over_reject_is_a_rate_limit_and_the_walk_goes_on():
    rs = nft("nft-inet")
    hits = hits_for(rs, 7100)
    limited = next(h for h in hits if h.rule and h.rule.limits)
    assert limited.rule.limits == ("limit rate over 2/second",) and limited.rule.resets
    assert not limited.final
    assert final(hits).rule is None and final(hits).chain.policy == "accept"


def test_ct_state_invalid_drop_may_match_any_port():
    rs = nft("nft-inet")
    first = hits_for(rs, 1234)[0]
    assert first.rule.ct_states == {"invalid"} and first.match == "may" and not first.final


def test_a_drop_policy_ends_the_walk_when_nothing_accepts_the_port():
    rs = nft("nft-droppolicy")
    end = final(hits_for(rs, 5432))
    assert end.rule is None and end.chain.policy == "drop"
    assert final(hits_for(rs, 22)).rule.verdict == "accept"
    # Loopback traffic comes in on lo, which this ruleset accepts first.
    assert final(hits_for(rs, 5432, addrs=("127.0.0.1",))).rule.verdict == "accept"


def test_meter_and_ct_count_rules_are_rate_limits_on_the_forward_path_only():
    rs = nft("nft-droppolicy")
    fwd = [h for h in hits_for(rs, 8080, hook="forward") if h.rule]
    assert fwd[0].rule.limits[0].startswith("meter flood") and fwd[0].rule.verdict == "drop"
    assert next(h for h in hits_for(rs, 8081, hook="forward") if h.rule).rule.limits == ("ct count over 64",)
    assert all(h.chain.hook == "input" for h in hits_for(rs, 8080) if h.rule or h.chain.policy)


def test_iptables_reject_through_nft_json_is_opaque_until_iptables_save_explains_it():
    raw = parse_nft_json(sample("iptables-nft.json"), sample("iptables-nft.txt"))
    xt = next(r for r in raw.all_rules() if r.family == "ip" and r.handle == 2)
    assert xt.opaque and xt.verdict == "reject" and xt.reject_with == "?"
    assert matches_port(xt, 8443) == "may"
    rs = iptables_nft()
    rule = next(r for r in rs.all_rules() if r.family == "ip" and r.handle == 2)
    assert rule.text == "-A INPUT -p tcp -m tcp --dport 8443 -j REJECT --reject-with tcp-reset"
    assert rule.alt_text.startswith("tcp dport 8443") and rule.resets and rule.packets == 0
    assert matches_port(rule, 8443) == "yes" and matches_port(rule, 8444) == "no"
    assert final(hits_for(rs, 8443)).rule is rule
    v6 = final(hits_for(rs, 8443, fam="ipv6", addrs=("fd00::1",)))
    assert v6.rule.family == "ip6" and v6.rule.resets


def test_iptables_multiport_hashlimit_and_conntrack_invalid_are_understood():
    rs = iptables_nft()
    by_handle = {r.handle: r for r in rs.all_rules() if r.family == "ip"}
    assert matches_port(by_handle[3], 587) == "yes" and matches_port(by_handle[3], 588) == "no"
    assert by_handle[4].limits == ("-m hashlimit --hashlimit-above 5/sec --hashlimit-burst 5 --hashlimit-name rl",)
    assert by_handle[4].resets
    assert by_handle[5].ct_states == {"invalid"}


def test_iptables_save_line_understands_negation_ranges_and_user_chains():
    rule = parse_iptables_line("[3:180] -A INPUT -p tcp ! --dport 1000:2000 -j svc", "iptables", "ip", "filter", 1)
    assert rule.packets == 3 and rule.text == "-A INPUT -p tcp ! --dport 1000:2000 -j svc"
    assert matches_port(rule, 1500) == "no" and matches_port(rule, 2001) == "yes"
    assert rule.verdict == "jump" and rule.target == "svc"
    udp = parse_iptables_line("-A INPUT -p udp --dport 53 -j DROP", "iptables", "ip", "filter", 2)
    assert matches_port(udp, 53) == "no"
    marked = parse_iptables_line("-A INPUT -p tcp -m mark --mark 0x1 -j DROP", "iptables", "ip", "filter", 3)
    assert matches_port(marked, 80) == "may"


def test_iptables_save_drop_policy_and_jump_into_user_chain():
    text = ("# Generated by iptables-save v1.8.9 (legacy)\n*filter\n:INPUT DROP [10:600]\n"
            ":FORWARD ACCEPT [0:0]\n:svc - [0:0]\n[1:60] -A INPUT -p tcp --dport 22 -j ACCEPT\n"
            "[0:0] -A INPUT -p tcp -j svc\n[4:240] -A svc -p tcp --dport 8080 -j REJECT --reject-with tcp-reset\n"
            "[0:0] -A INPUT -j LOG\nCOMMIT\n")
    rs, backend = parse_iptables_save(text, "iptables-legacy")
    assert backend == "legacy" and not rs.problems
    assert rs.chains[("iptables-legacy", "ip", "filter", "INPUT")].packets == 10
    assert final(hits_for(rs, 8080)).describe() == "ip filter INPUT → jump svc → reject with tcp reset"
    assert final(hits_for(rs, 9999)).chain.policy == "drop"
    log = next(r for r in rs.all_rules() if r.target == "LOG")
    assert log.verdict == "none"


def test_matches_port_rejects_a_rule_of_the_other_address_family():
    rule = Rule("nft", "ip6", "t", "c", 1, selectors=(Selector("dport", "==", ("80",)),))
    assert matches_port(rule, 80, flow=Flow(80, "ipv4")) == "no"
    assert matches_port(rule, 80, flow=Flow(80, "ipv6")) == "yes"


# --------------------------------------------------------------------------- robustness

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_parsers_never_crash_on_arbitrary_text(text):
    rs = parse_nft_json(text, text)
    assert rs.problems or rs.chains or text.strip().startswith("{")
    ipt, _ = parse_iptables_save(text)
    if any(line.strip() and not line.strip().startswith(("#", "*")) and line.strip() != "COMMIT"
           for line in text.splitlines()):
        assert ipt.problems or ipt.chains
    walk(ipt, Flow(80))


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                         st.sampled_from(["rule", "chain", "set", "expr", "match", "family", "table",
                                          "name", "handle", "left", "right", "op", "payload", "hook",
                                          "counter", "reject", "jump", "target", "elem", "x"]),
                         kids, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, max_size=6))
def test_nft_json_parser_reports_what_it_could_not_read_instead_of_crashing(items):
    rs = parse_nft_json(json.dumps({"nftables": items}))
    readable = len(rs.chains) + len(rs.all_rules()) + len(rs.sets)
    assert readable + len(rs.problems) >= sum(1 for i in items if isinstance(i, dict) and
                                              set(i) & {"rule", "chain", "set"})
    for port in (80, 8080):
        walk(rs, Flow(port))


def test_garbage_json_is_reported_as_unreadable():
    assert parse_nft_json("{not json").problems[0].startswith("nft JSON unreadable")
    assert parse_iptables_save("*filter\nhello world\n")[0].problems


# --------------------------------------------------------------------------- the check through fakes

def server(commands, **kw):
    return FakeHost("local", commands=commands, **kw)


async def run_check(target, host, refused=True, probe=True):
    probes = FakeProbes(tcp=FakeTcp(exchanges={"*": ("refused", "connect") if refused else ("ok", "first-data")}))
    ctx = make_ctx(target, server=host, probes=probes)
    return await FirewallRulesCheck().run(ctx, FirewallRulesParams(probe=probe)), ctx


def signals(result):
    return {s.id: s.strength for s in result.signals}


async def test_reject_rule_whose_counter_moves_during_the_probe_is_the_strongest_evidence():
    host = server({("nft", "-j"): [sample("nft-inet.json"), sample("nft-inet.after.json")],
                   ("nft", "-a"): [sample("nft-inet.txt"), sample("nft-inet.after.txt")]})
    result, ctx = await run_check("127.0.0.1:8080", host)
    sig = signals(result)
    assert sig["fw.reject_rule"] == 1.0 and "fw.reject_moved" in sig and "fw.no_rule" not in sig
    assert result.status is Status.FAIL and "counter moved" in result.summary
    ev = next(e for e in result.evidence if e.kind == "rules" and e.data.get("kind") == "reject")
    assert ev.text == "tcp dport 8080 ct state new counter packets 1 bytes 60 reject with tcp reset"
    assert ev.source == "nft -a list ruleset"
    assert (ev.data["counter_before"], ev.data["counter_after"], ev.data["delta"]) == (0, 1, 1)
    assert ev.data["path"] == "inet rwfw input → reject with tcp reset"
    whole = [e for e in result.evidence if e.title == "whole ruleset"]
    assert whole and whole[0].source == "nft -a list ruleset" and "table inet rwfw" in whole[0].text
    assert ("exchange", "127.0.0.1", "8080", "0.0") in ctx.probes.tcp.calls


async def test_reject_rule_with_a_still_counter_is_a_rule_but_not_a_moved_one():
    host = server({("nft", "-j"): sample("nft-inet.json"), ("nft", "-a"): sample("nft-inet.txt")})
    result, _ = await run_check("127.0.0.1:8080", host)
    assert "fw.reject_rule" in signals(result) and "fw.reject_moved" not in signals(result)


async def test_open_port_gives_no_rule_and_pass():
    host = server({("nft", "-j"): sample("nft-inet.json"), ("nft", "-a"): sample("nft-inet.txt")})
    result, _ = await run_check("127.0.0.1:443", host, refused=False)
    assert result.status is Status.PASS and "fw.no_rule" in signals(result)
    assert not {"fw.reject_rule", "fw.drop_rule"} & set(signals(result))


async def test_rate_limit_and_drop_policy_give_their_signals():
    host = server({("nft", "-j"): sample("nft-inet.json"), ("nft", "-a"): sample("nft-inet.txt")})
    result, _ = await run_check("127.0.0.1:7100", host)
    assert signals(result)["fw.rate_limit_rule"] == 1.0 and "fw.reject_rule" not in signals(result)
    host = server({("nft", "-j"): sample("nft-droppolicy.json"), ("nft", "-a"): sample("nft-droppolicy.txt")})
    result, _ = await run_check("127.0.0.1:5432", host)
    assert "fw.drop_rule" not in signals(result)  # loopback: iif lo accepts first
    host = server({("nft", "-j"): sample("nft-droppolicy.json"), ("nft", "-a"): sample("nft-droppolicy.txt")},
                  addresses=["10.9.9.9"])
    result, _ = await run_check("10.9.9.9:5432", host)
    assert signals(result)["fw.drop_rule"] == 0.5  # "iif lo accept" may still take it
    assert result.status is Status.WARN


async def test_iptables_rule_is_quoted_from_iptables_save_and_its_counter_followed():
    before = sample("iptables-save.txt")
    after = before.replace("[0:0] -A INPUT -p tcp -m tcp --dport 8443", "[1:60] -A INPUT -p tcp -m tcp --dport 8443")
    json_after = sample("iptables-nft.json").replace(
        '"handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, '
        '"right": 8443}}, {"counter": {"packets": 0', '"handle": 2, "expr": [{"match": {"op": "==", "left": '
        '{"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8443}}, {"counter": {"packets": 1', 1)
    assert json_after != sample("iptables-nft.json")
    host = server({("nft", "-j"): [sample("iptables-nft.json"), json_after],
                   ("nft", "-a"): sample("iptables-nft.txt"),
                   ("iptables-save", "-V"): "iptables-save v1.8.9 (nf_tables)",
                   ("ip6tables-save", "-V"): "ip6tables-save v1.8.9 (nf_tables)",
                   ("iptables-save", "-c"): [before, after],
                   ("ip6tables-save", "-c"): sample("ip6tables-save.txt")})
    result, _ = await run_check("127.0.0.1:8443", host)
    sig = signals(result)
    assert sig["fw.reject_rule"] == 1.0 and "fw.reject_moved" in sig
    ev = next(e for e in result.evidence if e.data.get("kind") == "reject")
    assert ev.text == "-A INPUT -p tcp -m tcp --dport 8443 -j REJECT --reject-with tcp-reset"
    assert ev.source == "iptables-save -c" and ev.data["delta"] == 1
    assert "fw.ct_invalid_rule" not in sig  # it comes after the reject: never reached for 8443


async def test_missing_tools_are_reported_as_not_installed_and_the_check_skips():
    result, _ = await run_check("127.0.0.1:8080", server({}))
    assert result.status is Status.SKIP
    assert "nft is not installed" in result.reason and "iptables-save is not installed" in result.reason


async def test_nothing_is_asked_of_netfilter_that_is_not_loaded():
    host = server({("nft",): sample("nft-inet.json"), ("iptables-save", "-V"): "iptables-save v1.8.9 (legacy)",
                   ("iptables-legacy-save",): "", ("iptables-save", "-c"): ""},
                  files={"/proc/modules": "ext4 1 0 - Live 0x0\n", "/proc/net/ip_tables_names": ""})
    result, _ = await run_check("127.0.0.1:8080", host, probe=False)
    assert not [c for c in host.calls if c[0] == "nft" or c[-1] == "-c"]
    assert result.status is Status.SKIP and "nf_tables is not loaded" in result.reason


async def test_legacy_tables_are_read_with_the_legacy_tool_when_they_exist():
    legacy = "*filter\n:INPUT ACCEPT [0:0]\n[0:0] -A INPUT -p tcp --dport 8080 -j DROP\nCOMMIT\n"
    host = server({("iptables-save", "-V"): "iptables-save v1.8.9 (nf_tables)",
                   ("iptables-save", "-c"): "# Generated by iptables-save v1.8.9 (nf_tables)\n",
                   ("iptables-legacy-save", "-c"): legacy},
                  files={"/proc/net/ip_tables_names": "filter\n"})
    result, _ = await run_check("127.0.0.1:8080", host, probe=False)
    assert ("iptables-legacy-save", "-c") in host.calls
    assert signals(result)["fw.drop_rule"] == 1.0
    ev = next(e for e in result.evidence if e.data.get("kind") == "drop")
    assert ev.source == "iptables-legacy-save -c" and ev.text == "-A INPUT -p tcp --dport 8080 -j DROP"


async def test_forward_chains_are_walked_when_the_server_does_not_own_the_target():
    host = server({("nft", "-j"): sample("nft-droppolicy.json"), ("nft", "-a"): sample("nft-droppolicy.txt")},
                  addresses=["10.0.0.1"])
    result, _ = await run_check("10.9.9.9:8081", host)
    # A global ``ct count over 64 drop`` caps tracked connections: a full table, not a per-client limit.
    assert signals(result)["fw.ct_count_rule"] == 1.0
    assert "fw.rate_limit_rule" not in signals(result)
    assert any("forward chains" in e.title for e in result.evidence)


def test_fake_output_helper_still_builds_command_outputs():
    assert output(["nft"], "x").text == "x"


# --------------------------------------------------------------------------- maps, meters, caps, ICMP

def vmap_ruleset():
    rs = parse_nft_json(sample("nft-vmap.json"), sample("nft-vmap.txt"))
    merge_iptables(rs, parse_iptables_save(sample("nft-vmap.iptables-save.txt"))[0])
    return rs


def test_dport_verdict_map_decides_the_port_it_names():
    rs = vmap_ruleset()
    end = final(hits_for(rs, 443))
    assert end.rule is not None and end.rule.handle == 7 and end.verdict == "drop"
    assert end.rule.text == "tcp dport vmap { 80 : accept, 443 : drop, 8000-8100 : jump svc }"
    assert final(hits_for(rs, 80)).verdict == "accept"


def test_verdict_map_range_jumps_into_the_user_chain():
    hits = hits_for(vmap_ruleset(), 8050)
    jump = next(h for h in hits if h.rule is not None and h.rule.handle == 7)
    assert jump.match == "yes" and jump.rule.verdict_text() == "jump svc"
    assert any(h.chain.name == "svc" and h.path[-1] == "jump svc" for h in hits)


def test_named_verdict_map_is_read_and_decides():
    rs = vmap_ruleset()
    assert rs.maps[("inet", "rwf6t", "portv")].entries == (("8080", "drop", ""), ("9090", "accept", ""))
    end = final(hits_for(rs, 8080))
    assert end.rule is not None and end.rule.handle == 8 and end.verdict == "drop"


def test_ct_state_verdict_map_may_drop_invalid_packets_of_any_port():
    hits = hits_for(vmap_ruleset(), 7777)
    invalid = [h for h in hits if h.rule is not None and h.rule.handle == 20 and h.verdict == "drop"]
    assert invalid and invalid[0].match == "may" and invalid[0].rule.ct_states == {"invalid"}


def test_meter_with_ct_count_and_meter_with_limit_keep_what_they_limit():
    rules = {r.handle: r for r in vmap_ruleset().all_rules() if r.table == "rwf6t"}
    assert rules[9].limits == ("ct count over 10",)
    assert rules[11].limits == ("meter m1 (ct count over 2)",)
    assert rules[13].limits == ("meter m2 (limit rate over 10/second)",)
    assert rules[13].reject_with == "icmp port-unreachable" and not rules[13].resets


def test_dynamic_set_filled_at_run_time_may_match_any_client():
    hits = hits_for(vmap_ruleset(), 7777)
    blocked = next(h for h in hits if h.rule is not None and h.rule.handle == 15)
    assert blocked.match == "may" and blocked.verdict == "drop"


def test_named_set_of_ports_is_exact():
    rs = vmap_ruleset()
    rule = next(r for r in rs.all_rules() if r.handle == 16 and r.table == "rwf6t")
    assert matches_port(rule, 443, sets=rs.sets) == "yes"
    assert matches_port(rule, 444, sets=rs.sets) == "no"


def test_iptables_hashlimit_and_connlimit_through_nft_json_take_their_options_from_iptables_save():
    rules = {r.handle: r for r in vmap_ruleset().all_rules() if r.table == "filter"}
    assert rules[2].limits[0].startswith("-m hashlimit --hashlimit-above 5/sec") and rules[2].resets
    assert rules[3].limits[0].startswith("-m connlimit --connlimit-above 3")
    assert rules[2].alt_text.startswith("tcp dport 5000 xt match hashlimit")


def vmap_server():
    return server({("nft", "-j"): sample("nft-vmap.json"), ("nft", "-a"): sample("nft-vmap.txt"),
                   ("iptables-save", "-c"): sample("nft-vmap.iptables-save.txt")})


async def test_icmp_reject_raises_its_own_signal_not_a_reset():
    result, _ = await run_check("127.0.0.1:27", vmap_server())
    sig = signals(result)
    assert "fw.reject_icmp_rule" in sig and "fw.reject_rule" not in sig
    assert "fw.no_rule" not in sig


async def test_a_port_only_a_limit_can_reset_says_so_and_one_with_a_plain_reject_does_not():
    host = server({("nft", "-j"): sample("nft-inet.json"), ("nft", "-a"): sample("nft-inet.txt")})
    limited = (await run_check("127.0.0.1:7100", host))[0]
    only = next(s for s in limited.signals if s.id == "fw.reject_only_limited")
    assert "limit rate over" in only.fact
    rejected = (await run_check("127.0.0.1:8080", host))[0]
    assert "fw.reject_rule" in signals(rejected) and "fw.reject_only_limited" not in signals(rejected)
    open_port = (await run_check("127.0.0.1:443", host, refused=False))[0]
    assert "fw.reject_only_limited" not in signals(open_port)


async def test_global_ct_count_cap_is_a_ct_count_signal_and_a_per_client_meter_a_rate_limit():
    sig22 = signals((await run_check("127.0.0.1:22", vmap_server()))[0])
    sig23 = signals((await run_check("127.0.0.1:23", vmap_server()))[0])
    assert "fw.ct_count_rule" in sig22 and "fw.rate_limit_rule" not in sig22
    assert "fw.rate_limit_rule" in sig23 and "fw.ct_count_rule" not in sig23


async def test_verdict_map_drop_is_quoted_and_named_as_a_drop():
    result, _ = await run_check("127.0.0.1:443", vmap_server())
    assert signals(result)["fw.drop_rule"] == 1.0
    quoted = [e.text for e in result.evidence if e.kind == "rules" and e.title != "whole ruleset"]
    assert "tcp dport vmap { 80 : accept, 443 : drop, 8000-8100 : jump svc }" in quoted


# --------------------------------------------------------------------------- ufw and firewalld

# `ufw status verbose` (ufw 0.36.2, Debian 12) after `ufw default deny incoming; ufw allow 22/tcp;
# ufw reject 8080/tcp; ufw limit from 10.0.0.0/8 to any port 8000:8100 proto tcp; ufw allow OpenSSH`
UFW = """Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), disabled (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW IN    Anywhere
8080/tcp                   REJECT IN   Anywhere
8000:8100/tcp              LIMIT IN    10.0.0.0/8
OpenSSH                    ALLOW IN    Anywhere
22/tcp (v6)                ALLOW IN    Anywhere (v6)
"""

# `firewall-cmd --list-all-zones` (firewalld 1.3, two zones shown), with
# `firewall-cmd --add-port=8080/tcp --add-rich-rule='rule family="ipv4" source address="10.0.0.0/8"
#  port port="8080" protocol="tcp" reject type="tcp-reset"'`
FIREWALLD = """block
  target: %%REJECT%%
  icmp-block-inversion: no
  interfaces: 
  rich rules: 

public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: dhcpv6-client ssh
  ports: 8080/tcp 9000-9100/tcp
  protocols: 
  forward: yes
  masquerade: no
  rich rules: 
\trule family="ipv4" source address="10.0.0.0/8" port port="8080" protocol="tcp" reject type="tcp-reset"
"""


def test_ufw_rules_for_the_port_are_found_with_their_action():
    fe = parse_ufw_status(UFW)
    assert fe.state == "active" and fe.defaults.startswith("deny (incoming)") and not fe.problems
    found = {r.text.split()[0]: (r.action, m) for r, m in fe.for_port(8080)}
    assert found == {"8080/tcp": ("reject", "yes"), "8000:8100/tcp": ("limit", "yes"), "OpenSSH": ("allow", "may")}
    assert [r.action for r, _ in fe.for_port(22)] == ["allow", "allow", "allow"]


def test_firewalld_zone_ports_and_rich_rules_are_found():
    fe = parse_firewalld_zones(FIREWALLD)
    hits = {r.text: r.action for r, m in fe.for_port(8080) if m == "yes"}
    assert hits["public (active): ports: 8080/tcp"] == "accept"
    assert any("reject type=\"tcp-reset\"" in t and a == "reject" for t, a in hits.items())
    assert hits["block: target: %%REJECT%%"] == "reject"
    assert not fe.problems


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_front_end_parsers_never_raise_and_say_what_they_could_not_read(text):
    ufw = parse_ufw_status(text)
    assert ufw.state or ufw.problems
    fwd = parse_firewalld_zones(text)
    assert isinstance(fwd.rules, list)


async def test_front_ends_that_are_not_installed_are_said_so():
    result, _ = await run_check("127.0.0.1:8080", server({("nft", "-j"): sample("nft-inet.json"),
                                                          ("nft", "-a"): sample("nft-inet.txt")}))
    titles = [e.title for e in result.evidence]
    assert "ufw is not installed in local" in titles and "firewalld is not installed in local" in titles


async def test_ufw_rule_is_quoted_as_the_source_of_the_low_level_rule():
    host = server({("nft", "-j"): sample("nft-inet.json"), ("nft", "-a"): sample("nft-inet.txt"),
                   ("ufw", "status"): UFW})
    result, _ = await run_check("127.0.0.1:8080", host)
    ev = next(e for e in result.evidence if e.source == "ufw status verbose")
    assert "8080/tcp                   REJECT IN   Anywhere" in ev.text and "decide" in ev.title


# Recorded: `nft -j list ruleset` / `nft -a list ruleset` of a port forward (a DNAT in a nat
# prerouting chain) in a namespace, nft 1.0.6.
async def test_a_dnat_of_the_port_says_the_target_forwards_it_and_quotes_the_rule():
    rs = nft("nft-dnat")
    rule = next(r for r in rs.all_rules() if r.handle == 2)
    assert rule.target == "dnat to 10.213.20.2:9" and rule.verdict == "none"
    host = server({("nft", "-j"): sample("nft-dnat.json"), ("nft", "-a"): sample("nft-dnat.txt")})
    result, _ = await run_check("10.213.10.1:8080", host, probe=False)
    (fact,) = [s.fact for s in result.signals if s.id == "target.forwarded"]
    assert "forwards port 8080 (dnat to 10.213.20.2:9; rule ip rwlab_nat pre: tcp dport 8080" in fact
    assert "diagnose the backend next" in fact
    # Another port is not forwarded.
    other, _ = await run_check("10.213.10.1:8443", host, probe=False)
    assert "target.forwarded" not in signals(other)


async def test_the_backends_are_asked_beside_the_look_at_what_is_loaded():
    # The first reading of the rules asks iptables-save -V while it reads what the kernel has
    # loaded, not before: the shared bracket's probe waits for this reading.
    import asyncio

    reading = asyncio.Event()

    class Host(FakeHost):
        async def read(self, path: str, offset: int = 0, max_bytes: int = 1 << 20) -> bytes:
            reading.set()
            return await super().read(path, offset, max_bytes)

        async def run(self, argv, timeout=5.0, max_bytes=1 << 20):  # type: ignore[no-untyped-def,override]
            if tuple(argv)[1:] == ("-V",):
                async with asyncio.timeout(1):
                    await reading.wait()  # the look at what is loaded has begun meanwhile
            return await super().run(argv, timeout, max_bytes)

    h = Host(commands={("iptables-save", "-V"): "iptables-save v1.8.9 (nf_tables)\n",
                       ("ip6tables-save", "-V"): "ip6tables-save v1.8.9 (nf_tables)\n",
                       ("iptables-save", "-c"): "", ("ip6tables-save", "-c"): "", ("nft",): "{}"},
             files={"/proc/modules": "nf_tables 1 0\n"})
    got = await FirewallRulesCheck.read_state(make_ctx(server=h))
    assert ("iptables-save", "-c") in h.calls and ("ip6tables-save", "-c") in h.calls
    assert not any("not installed" in n for n in got.notes)
