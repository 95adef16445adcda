"""conntrack.state and its parsers: captured `conntrack -S` and /proc outputs, fakes for the host."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.fakes import FakeHost, FakeProbes, FakeTcp, make_ctx
from wizard.diag.firewall.checks.conntrack import (
    ConntrackStateCheck,
    ConntrackStateParams,
)
from wizard.diag.firewall.io.conntrack import (
    SETTINGS,
    parse_conntrack_list,
    parse_conntrack_stats,
    parse_proc_stat,
    parse_sysctl,
    sysctl_path,
)
from wizard.model import Status

DATA = Path(__file__).parent / "data" / "fw"

# `cat /proc/net/stat/nf_conntrack` on Debian 12 / Linux 6.18 (two CPUs), values edited to be non-zero.
PROC_STAT = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
    "00000005  00000000 00000001 00000000 0000000a 00000000 00000000 00000000 00000003 00000000 "
    "00000002 00000000 00000000  00000000 00000000 00000000 00000000\n"
    "00000005  00000000 00000000 00000000 00000006 00000000 00000000 00000000 00000001 00000000 "
    "00000000 00000001 00000000  00000000 00000000 00000000 00000010\n")

# `conntrack -L -p tcp --dport 7070` after a loopback connection in a throwaway namespace.
ENTRY = ("tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=55050 dport=7070 "
         "src=127.0.0.1 dst=127.0.0.1 sport=7070 dport=55050 [ASSURED] mark=0 use=1\n")


def stats_line(**values: int) -> str:
    keys = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
            "search_restart", "clash_resolve", "chaintoolong")
    cpu0 = " ".join(f"{k}={values.get(k, 0)}" for k in keys)
    cpu1 = " ".join(f"{k}=0" for k in keys)
    return f"cpu=0   \t{cpu0} \ncpu=1   \t{cpu1} \n"


def sysctls(**over: str) -> dict[str, str]:
    base = {"net.ipv4.tcp_abort_on_overflow": "0", "net.ipv4.tcp_syncookies": "1",
            "net.netfilter.nf_conntrack_tcp_loose": "1", "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
            "net.netfilter.nf_conntrack_tcp_timeout_established": "432000",
            "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "60",
            "net.netfilter.nf_conntrack_tcp_timeout_fin_wait": "120",
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "120",
            "net.netfilter.nf_conntrack_count": "12", "net.netfilter.nf_conntrack_max": "262144"}
    base.update(over)
    return {sysctl_path(k): v + "\n" for k, v in base.items()}


def host(files: dict[str, str], commands: dict | None = None, modules: str | None = None) -> FakeHost:
    files = dict(files)
    if modules is not None:
        files["/proc/modules"] = modules
    return FakeHost("netns:srv", commands=commands or {}, files=files, addresses=["127.0.0.1"])


async def run(h: FakeHost, target: str = "127.0.0.1:7070", **params):
    ctx = make_ctx(target, server=h, probes=FakeProbes(tcp=FakeTcp(exchanges={"*": ("reset", "first-data")})))
    return await ConntrackStateCheck().run(ctx, ConntrackStateParams(**params))


def signals(result) -> dict[str, float]:
    return {s.id: s.strength for s in result.signals}


# --------------------------------------------------------------------------- parsers

def test_conntrack_S_counters_are_summed_over_cpus():
    sums, problems = parse_conntrack_stats((DATA / "conntrack-S.txt").read_text() + stats_line(invalid=4, drop=2))
    assert sums["invalid"] == 4 and sums["drop"] == 2 and sums["early_drop"] == 0
    assert "cpu" not in sums and not problems


def test_proc_stat_is_hexadecimal_and_skips_the_repeated_entries_column():
    sums, problems = parse_proc_stat(PROC_STAT)
    assert sums["invalid"] == 16 and sums["drop"] == 2 and sums["early_drop"] == 1
    assert sums["search_restart"] == 16 and "entries" not in sums and not problems


def test_proc_stat_row_of_the_wrong_width_is_reported_not_guessed():
    sums, problems = parse_proc_stat(PROC_STAT.splitlines()[0] + "\n00000001 00000002\n")
    assert sums == {} and "2 fields" in problems[0]


def test_conntrack_list_keeps_the_original_direction_state_and_timeout():
    (entry,), problems = parse_conntrack_list(ENTRY)
    assert (entry.state, entry.timeout, entry.src, entry.sport, entry.dport) == (
        "ESTABLISHED", 431999, "127.0.0.1", 55050, 7070)
    assert not problems


def test_proc_nf_conntrack_lines_parse_like_conntrack_list():
    line = "ipv6     10 tcp      6 117 TIME_WAIT src=fd00::1 dst=fd00::2 sport=40000 dport=8080 " \
           "src=fd00::2 dst=fd00::1 sport=8080 dport=40000 [ASSURED] mark=0 zone=0 use=2\n"
    (entry,), _ = parse_conntrack_list(line)
    assert (entry.state, entry.timeout, entry.dst, entry.dport) == ("TIME_WAIT", 117, "fd00::2", 8080)


def test_sysctl_with_more_than_one_value_is_not_a_value():
    assert parse_sysctl("x", "4096\t131072\t6291456\n")[0] == "4096\t131072\t6291456"
    value, problem = parse_sysctl("x", "1\n2\n")
    assert value is None and "not a single value" in problem


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_conntrack_parsers_never_raise_and_say_what_they_could_not_read(text: str):
    sums, problems = parse_conntrack_stats(text)
    assert all(isinstance(v, int) for v in sums.values())
    if text.strip() and not sums:
        assert problems
    parse_proc_stat(text)
    entries, _ = parse_conntrack_list(text)
    assert all(e.line for e in entries)
    value, problem = parse_sysctl("net.x", text)
    assert (value is None) == bool(problem)


# --------------------------------------------------------------------------- the check

async def test_table_at_its_maximum_is_full():
    h = host(sysctls(**{"net.netfilter.nf_conntrack_count": "65000",
                        "net.netfilter.nf_conntrack_max": "65536"}),
             {("conntrack", "-S"): stats_line(), ("conntrack", "-L"): ""}, modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    assert signals(result)["conntrack.table_full"] == 1.0
    assert "conntrack.ok" not in signals(result)
    assert result.status == Status.FAIL


async def test_early_drop_moving_during_the_probe_is_a_full_table_even_below_the_maximum():
    h = host(sysctls(), {("conntrack", "-S"): [stats_line(), stats_line(early_drop=3)],
                         ("conntrack", "-L"): ""}, modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    assert "conntrack.table_full" in signals(result)
    counters = next(e for e in result.evidence if e.kind == "counters")
    assert counters.data["delta"]["early_drop"] == 3 and counters.source == "conntrack -S"


async def test_invalid_moving_during_the_probe_is_its_own_signal():
    h = host(sysctls(), {("conntrack", "-S"): [stats_line(invalid=1), stats_line(invalid=5)],
                         ("conntrack", "-L"): ""}, modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    assert "conntrack.invalid_moved" in signals(result)
    assert "+4" in next(s.fact for s in result.signals if s.id == "conntrack.invalid_moved")


async def test_still_counters_and_room_say_ok():
    h = host(sysctls(), {("conntrack", "-S"): stats_line(invalid=7), ("conntrack", "-L"): ENTRY},
             modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    assert set(signals(result)) == {"conntrack.ok"}
    assert result.status == Status.PASS
    flow = next(e for e in result.evidence if e.kind == "command")
    assert "dport=7070" in flow.text


async def test_the_ports_entries_are_listed_after_the_probe_only():
    # Before the probe only the statistics are compared: `conntrack -L` (the slowest reading
    # of the bracket, which the probe waits for) runs once, in the reading after it.
    h = host(sysctls(), {("conntrack", "-S"): stats_line(invalid=7), ("conntrack", "-L"): ENTRY},
             modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    listed = [c for c in h.calls if c[:2] == ("conntrack", "-L")]
    assert len(listed) == 1 and sum(1 for c in h.calls if c[:2] == ("conntrack", "-S")) == 2
    flow = next(e for e in result.evidence if e.kind == "command")
    assert "dport=7070" in flow.text and set(signals(result)) == {"conntrack.ok"}


async def test_short_established_timeout_with_the_flow_tracked_here_points_to_idle_timeout():
    h = host(sysctls(**{"net.netfilter.nf_conntrack_tcp_timeout_established": "5"}),
             {("conntrack", "-S"): stats_line(), ("conntrack", "-L"): ENTRY}, modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    assert signals(result)["conntrack.short_established_timeout"] == 1.0


async def test_flow_of_another_address_is_not_taken_for_the_probe():
    other = ENTRY.replace("dst=127.0.0.1 sport=55050", "dst=127.0.0.9 sport=55050")
    h = host(sysctls(**{"net.netfilter.nf_conntrack_tcp_timeout_established": "5"}),
             {("conntrack", "-S"): stats_line(), ("conntrack", "-L"): other}, modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    assert signals(result)["conntrack.short_established_timeout"] == 0.5
    assert not any(e.kind == "command" for e in result.evidence)


async def test_without_ctnetlink_loaded_the_tool_is_not_run_and_proc_is_read_instead():
    files = sysctls() | {"/proc/net/stat/nf_conntrack": PROC_STAT}
    h = host(files, {("conntrack",): stats_line()}, modules="nf_conntrack 1 0\nnf_tables 1 0\n")
    result = await run(h)
    assert not any(c[0] == "conntrack" for c in h.calls)  # could have loaded nf_conntrack_netlink
    counters = next(e for e in result.evidence if e.kind == "counters")
    assert counters.source == "/proc/net/stat/nf_conntrack" and counters.data["after"]["invalid"] == 16


async def test_conntrack_not_loaded_is_said_and_nothing_is_run():
    files = {k: v for k, v in sysctls().items() if "netfilter" not in k}
    h = host(files, {("conntrack",): stats_line()}, modules="")
    result = await run(h)
    assert result.status == Status.PASS and not h.calls
    assert any("not loaded" in e.title for e in result.evidence)
    table = next(e for e in result.evidence if e.kind == "table")
    rows = {r["name"]: r for r in table.data["settings"]}
    assert rows["net.netfilter.nf_conntrack_max"]["value"] is None
    assert "not loaded" in rows["net.netfilter.nf_conntrack_max"]["note"]
    assert rows["net.ipv4.tcp_syncookies"]["value"] == "1"


async def test_every_verdict_setting_is_reported_as_a_fact():
    h = host(sysctls(**{"net.ipv4.tcp_abort_on_overflow": "1", "net.netfilter.nf_conntrack_tcp_loose": "0"}),
             {("conntrack", "-S"): stats_line(), ("conntrack", "-L"): ""}, modules="nf_conntrack_netlink 1 0\n")
    result = await run(h)
    table = next(e for e in result.evidence if e.kind == "table")
    assert [r["name"] for r in table.data["settings"]] == [name for name, _ in SETTINGS]
    assert {"sysctl.abort_on_overflow", "sysctl.ct_loose_off"} <= set(signals(result))
    assert "sysctl.ct_be_liberal" not in signals(result)


def test_every_signal_the_check_raises_is_declared():
    assert set(ConntrackStateCheck.emits) >= {"conntrack.table_full", "conntrack.invalid_moved",
                                              "conntrack.short_established_timeout", "conntrack.ok"}


def test_a_flow_whose_reply_comes_from_elsewhere_was_forwarded():
    from wizard.diag.firewall.io.conntrack import parse_conntrack_list

    dnat = ("tcp      6 431999 ESTABLISHED src=10.213.10.2 dst=10.213.10.1 sport=40522 dport=8080 "
            "src=10.213.20.2 dst=10.213.10.2 sport=9 dport=40522 [ASSURED] mark=0 use=1")
    plain = ("tcp      6 431999 ESTABLISHED src=10.213.10.2 dst=10.213.20.2 sport=40524 dport=8080 "
             "src=10.213.20.2 dst=10.213.10.2 sport=8080 dport=40524 [ASSURED] mark=0 use=1")
    six = ("tcp      6 10 CLOSE src=fd13:10::2 dst=fd13:10::1 sport=4000 dport=9443 "
           "src=fd13:20::2 dst=fd13:10::2 sport=10443 dport=4000 mark=0 use=1")
    (a, b, c), problems = parse_conntrack_list("\n".join((dnat, plain, six)))
    assert not problems
    assert a.forwarded_to == "10.213.20.2:9" and (a.dst, a.dport) == ("10.213.10.1", 8080)
    assert b.forwarded_to == ""
    assert c.forwarded_to == "[fd13:20::2]:10443"
