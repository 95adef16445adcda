"""`merge`: many hosts' sessions to one fleet view, what tells the hosts apart, the timeline
of both ends, and the command's inputs and outputs."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wizard.analysis import decide, rank
from wizard.engine.discovery import load
from wizard.model import Session
from wizard.model.fleet import Fleet
from wizard.model.results import CheckResult, Evidence, Signal, Status, StepResult
from wizard.model.session import Context, Finding, ToolInfo
from wizard.model.target import Target
from wizard.report.fleet import render_fleet
from wizard.report.merge import merge

T0 = datetime(2026, 12, 1, 19, 0, 0, tzinfo=UTC)
CHECKLIST = load()


def session(*, cause: str = "no-reset-observed", source: str = "10.1.1.11", target: str = "10.1.9.2",
            resets: int = 0, attempts: int = 5, hop: str = "", server: str = "local", client: str = "box",
            at: datetime = T0, server_signal: str = "", listener: bool = False, confidence: float = 0.9,
            interrupted: bool = False, rule: str = "") -> Session:
    rows = [[i + 1, "reset" if i < resets else "answered", "first-data", 3.0, 40000 + i] for i in range(attempts)]
    burst = CheckResult(id="tcp.burst", status=Status.FAIL if resets else Status.PASS, summary=f"{resets} reset",
                        started_at=at, evidence=[Evidence(kind="table", title="attempts", data={
                            "columns": ["attempt", "outcome", "stage", "ms", "local port"], "rows": rows})])
    exchange = CheckResult(id="tcp.exchange", status=Status.FAIL if resets else Status.PASS, summary="exchange",
                           started_at=at + timedelta(seconds=1), evidence=[Evidence(title="x", data={
                               "kind": "reset" if resets else "answered", "stage": "first-data", "local": f"{source}:5000"})])
    hops = [{"ttl": 1, "address": hop}, {"ttl": 2, "address": target}] if hop else [{"ttl": 1, "address": target}]
    trace = CheckResult(id="packets.traceroute", status=Status.PASS, summary="trace",
                        evidence=[Evidence(kind="table", title="hops", data={"hops": hops})])
    listen = CheckResult(id="listen.sockets", status=Status.PASS, summary="listens", started_at=at,
                         signals=[Signal(id="listener.present", fact="it listens")] if listener else [])
    counters = CheckResult(id="kernel.counters", status=Status.WARN, summary="counters", started_at=at,
                           signals=[Signal(id=server_signal, fact=f"{server_signal} seen")] if server_signal else [])
    rules = CheckResult(id="firewall.rules", status=Status.WARN if rule else Status.PASS, summary="rules", started_at=at,
                        signals=[Signal(id="fw.reject_rule", fact=rule)] if rule else [])
    return analysed(Session(tool=ToolInfo(version="test"), started_at=at, finished_at=at + timedelta(seconds=20),
                   interrupted=interrupted,
                   target=Target(host=target, port=8080, addresses=[target]),
                   context=Context(client=client, server=server),
                   steps=[StepResult(id="app-errors", checks=[listen, counters, rules]),  # type: ignore[arg-type]
                          StepResult(id="handshake", checks=[burst, exchange, trace])],  # type: ignore[arg-type]
                   diagnosis=[Finding(cause=cause, confidence=confidence, summary=f"{cause} summary")]))


def analysed(s: Session) -> Session:
    """As the analysis leaves a session: its finding marked diagnosed or not, its verdict decided."""
    s.diagnosis = rank(s.diagnosis, CHECKLIST.threshold)
    s.verdict = decide(CHECKLIST, s)
    return s


def fleet(**hosts: Session) -> Fleet:
    return merge([(name, f"{name}.json", s) for name, s in hosts.items()], now=T0)


def test_the_one_host_that_sees_resets_is_named_with_what_sets_it_apart() -> None:
    f = fleet(web1=session(source="10.1.1.11"), web2=session(cause="firewall-reject", source="10.1.2.12", resets=5),
              web3=session(source="10.1.1.13"))
    assert f.pointer.kind == "some-hosts"
    assert f.pointer.hosts == ["web2"]
    assert "only web2 (1 of 3 hosts) sees resets (its verdict: firewall-reject): it differs from web1 and web3 in source subnet" in f.pointer.headline
    attrs = {d.attribute: d for d in f.pointer.differences}
    assert attrs["source subnet"].with_resets == ["10.1.2.0/24"]
    assert attrs["source subnet"].without_resets == ["10.1.1.0/24"]
    assert "target address" not in attrs  # all reach the same address: not what differs
    assert [h.resets for h in f.hosts] == [0, 6, 0]


def test_hosts_behind_one_router_are_told_apart_by_their_first_hop() -> None:
    f = fleet(a=session(hop="10.2.0.1", resets=3, cause="middlebox-reset", source="10.3.0.5"),
              b=session(hop="10.2.0.1", resets=2, cause="middlebox-reset", source="10.3.0.6"),
              c=session(hop="10.2.0.254", source="10.3.0.7"))
    assert f.pointer.hosts == ["a", "b"]
    assert "only a and b (2 of 3 hosts) see resets" in f.pointer.headline
    assert "first hop (10.2.0.1 against 10.2.0.254)" in f.pointer.headline


def test_resets_everywhere_with_one_cause_point_at_what_the_hosts_share() -> None:
    f = fleet(a=session(cause="abortive-close", resets=5), b=session(cause="abortive-close", resets=5, source="10.9.9.9"))
    assert f.pointer.kind == "everywhere"
    assert "all 2 hosts see resets, and all name abortive-close" in f.pointer.headline


def test_no_resets_anywhere_and_an_unfinished_host_is_not_called_clean() -> None:
    assert fleet(a=session(), b=session()).pointer.kind == "no-resets"
    broken = session()
    broken.interrupted = True
    p = fleet(a=session(), b=broken).pointer
    assert p.kind == "interrupted"
    assert p.hosts == ["b"]


def test_a_clients_reset_is_matched_to_what_the_server_end_saw_then() -> None:
    client = session(cause="middlebox-reset", resets=5, source="10.1.1.11", target="10.1.9.2")
    server = session(source="10.1.9.2", target="10.1.9.2", listener=True, server_signal="server.no_rst_sent",
                     at=T0 + timedelta(seconds=2))
    f = fleet(app1=client, db1=server)
    roles = {h.label: h.role for h in f.hosts}
    assert roles == {"app1": "client", "db1": "server"}
    resets = [e for e in f.timeline if e.role == "client"]
    assert resets and all("db1: kernel.counters: server.no_rst_sent seen" in e.matched for e in resets)
    assert [e.at for e in f.timeline] == sorted(e.at for e in f.timeline)


@pytest.mark.parametrize(("rule", "names"), [
    ("inet acl input: ip saddr 10.1.2.12 tcp dport 8080 reject with tcp reset", True),
    ("inet acl input: ip saddr 10.1.3.13 tcp dport 8080 reject with tcp reset", False),
])
def test_a_server_event_near_a_reset_comes_with_the_servers_rule_that_names_the_client(rule: str,
                                                                                       names: bool) -> None:
    # The server end recorded something then that names no client (its runs overlap the
    # fleet's other probes): the rule that names this client's source is said beside it.
    client = session(cause="firewall-reject", resets=3, source="10.1.2.12")
    server = session(source="10.1.9.2", target="10.1.9.2", listener=True, server_signal="server.rst_sent",
                     rule=rule, at=T0 + timedelta(seconds=1))
    f = fleet(app2=client, db1=server)
    matched = [e.matched for e in f.timeline if e.host == "app2"]
    assert matched and all(m.startswith("db1: kernel.counters: server.rst_sent seen") for m in matched)
    want = "; db1's firewall has a rule that names app2's source (inet acl input)"
    assert all(m.endswith(want) == names and ("names app2's source" in m) == names for m in matched)


def test_the_report_leads_with_the_pointer_and_redacts_secrets() -> None:
    leaky = session(cause="firewall-reject", resets=5, source="10.1.2.12")
    leaky.diagnosis[0].summary = "rejected; Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789"
    text = render_fleet(fleet(web1=session(), web2=leaky))
    first = text.splitlines()[2]
    assert first.startswith("**Only web2 (1 of 2 hosts) sees resets")
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in text
    assert "| web2 (box) | client | firewall-reject | 90% | 6 of 6 |" in text


def _write(tmp: Path, name: str, s: Session) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(s.to_json())
    return path


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", "merge", *argv], capture_output=True, text=True, timeout=60)


def test_the_command_writes_json_and_report_and_exits_with_the_fleet_status(tmp_path: Path) -> None:
    a = _write(tmp_path, "web1", session())
    b = _write(tmp_path, "web2", session(cause="port-closed", resets=5, source="10.1.2.12"))
    done = _cli(str(a), str(b), "--json", str(tmp_path / "f.json"), "--report", str(tmp_path / "f.md"))
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("only web2 (1 of 2 hosts) sees resets")
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["schema"] == "fleet/2" and data["pointer"]["hosts"] == ["web2"]
    assert (tmp_path / "f.md").read_text().startswith("# Connection resets across a fleet")
    clean = _cli(str(a), str(_write(tmp_path, "web3", session())), "--json", "-")
    assert clean.returncode == 0 and json.loads(clean.stdout)["pointer"]["kind"] == "no-resets"


@pytest.mark.parametrize("case", ["one", "twice", "missing", "not-json", "exists", "both-stdout"])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path: Path, case: str) -> None:
    a = _write(tmp_path, "a", session())
    b = _write(tmp_path, "b", session())
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "old.md").write_text("keep me")
    argv = {"one": [a], "twice": [a, a], "missing": [a, tmp_path / "nope.json"], "not-json": [a, tmp_path / "junk.json"],
            "exists": [a, b, "--report", tmp_path / "old.md"], "both-stdout": [a, b, "--json", "-", "--report", "-"]}[case]
    done = _cli(*map(str, argv))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("reset-wizard: ")
    assert done.stdout == ""
    assert (tmp_path / "old.md").read_text() == "keep me"


def test_refusals_from_one_source_while_others_connect_are_not_a_closed_port() -> None:
    refused = session(cause="port-closed", resets=3, source="10.1.1.12")
    for ev in refused.steps[1].checks[0].evidence:
        ev.data["rows"] = [[r[0], "refused" if r[1] == "reset" else r[1], *r[2:]] for r in ev.data["rows"]]
    f = fleet(app1=session(source="10.1.1.11"), app2=refused)
    assert f.hosts[1].resets == 4  # 3 refused in the burst, 1 reset in the exchange
    assert "The port is open: app1 reached 10.1.9.2, so the refusals come from a rule" in f.pointer.headline
    # A cause that is not a refusal gets no such sentence.
    other = fleet(app1=session(source="10.1.1.11"), app2=session(cause="abortive-close", resets=3))
    assert "The port is open" not in other.pointer.headline


def _watch(events: list[tuple[int, str, str]], at: datetime = T0) -> Session:
    """A watch session with RSTs (seconds after ``at``, flow, sender words)."""
    from wizard.model.observed import Observation, ResetEvent

    s = session(at=at)
    s.steps = []
    s.mode = "watch"
    s.observation = Observation(events=[
        ResetEvent(n=i + 1, at=at + timedelta(seconds=sec), source="live:eth0", flow=flow, client=flow.split(" ")[0],
                   server=flow.split(" ")[-1], toward="client", flags="R", sender="path", sender_words=words, ttl=63,
                   hop_distance=1) for i, (sec, flow, words) in enumerate(events)])
    return s


def test_two_watches_of_the_same_flows_say_what_the_other_end_saw() -> None:
    flow_a, flow_b = "10.1.1.11:40000 -> 10.1.9.2:443", "10.1.1.11:40002 -> 10.1.9.2:443"
    client = _watch([(1, flow_a, "sent by a device on the path"), (3, flow_b, "sent by the server's kernel")])
    client.diagnosis[0].cause = "middlebox-reset"
    server = _watch([(3, flow_b, "sent by this machine's kernel")])
    f = fleet(app1=client, web1=server)
    assert f.hosts[0].resets == 2 and f.hosts[1].resets == 1
    by_flow = {(e.host, e.flow): e.matched for e in f.timeline}
    assert by_flow[("app1", flow_a)] == "web1 watched then and saw no RST in this flow"
    assert by_flow[("app1", flow_b)].startswith("web1: RST toward the client in " + flow_b)
    text = render_fleet(f)
    assert "web1 watched then and saw no RST in this flow" in text


# Each kind of host a fleet can hold, as its own session's verdict leaves it.
KINDS = {
    "clean": lambda src: session(source=src),
    "refused": lambda src: session(cause="firewall-reject", resets=3, source=src),
    "aborted": lambda src: session(cause="abortive-close", resets=2, source=src, confidence=0.7),
    "unexplained": lambda src: session(cause="middlebox-reset", resets=2, source=src, confidence=0.2),
    "cut-short": lambda src: session(source=src, confidence=0.2, interrupted=True),
}


def _bold(report: str) -> str:
    return report.splitlines()[2].removeprefix("**").removesuffix(".**")


@pytest.mark.parametrize("kinds", list(itertools.product(KINDS, repeat=3)), ids="-".join)
def test_the_merged_verdict_is_decided_once_and_every_output_says_it(kinds: tuple[str, ...]) -> None:
    """The one-verdict contract for a fleet: the JSON's verdict and diagnosis[0], the report's
    lead and verdict line, and the exit status agree, for every mix of hosts."""
    f = fleet(**{f"h{i}": KINDS[k](f"10.1.{i}.1{i}") for i, k in enumerate(kinds)})
    data = json.loads(f.to_json())
    verdict, report = data["verdict"], render_fleet(f)
    diagnosed = [k for k in kinds if k in ("refused", "aborted")]
    if diagnosed:
        assert verdict["kind"] == "cause"
        assert verdict["cause"] == data["diagnosis"][0]["cause"] and data["diagnosis"][0]["diagnosed"]
        # The cause most hosts name leads; a tie goes to the surer one.
        refused, aborted = diagnosed.count("refused"), diagnosed.count("aborted")
        assert verdict["cause"] == ("firewall-reject" if refused >= aborted else "abortive-close")
        assert verdict["cause"] in verdict["statement"]
        assert verdict["exit_status"] == 1
    elif all(k == "clean" for k in kinds):
        assert (verdict["kind"], verdict["cause"], verdict["exit_status"]) == ("no-reset", "no-reset-observed", 0)
        assert data["diagnosis"][0]["cause"] == "no-reset-observed"
    elif "unexplained" not in kinds:
        assert (verdict["kind"], verdict["cause"], verdict["exit_status"]) == ("interrupted", None, 3)
        assert "not known to be clean" in verdict["statement"]
    else:
        assert (verdict["kind"], verdict["cause"], verdict["exit_status"]) == ("no-cause", None, 0)
        assert "no cause found" in verdict["statement"]
    if verdict["cause"] is None:
        assert not any(d["diagnosed"] for d in data["diagnosis"])
    # The hosts that saw resets are the ones the verdict names, and never a clean one.
    hit = {f"h{i}" for i, k in enumerate(kinds) if k in ("refused", "aborted", "unexplained")}
    if hit and len(hit) < 3:
        assert set(verdict["hosts"]) == hit
    assert _bold(report) == verdict["statement"][:1].upper() + verdict["statement"][1:]
    line = report.splitlines()[4]
    assert line.startswith("Verdict: ") and f"(exit status {verdict['exit_status']})" in line
    if verdict["cause"]:
        assert line.split("; ")[1].startswith(f"`{verdict['cause']}` on ")


def test_the_command_prints_and_exits_with_the_merged_verdict(tmp_path: Path) -> None:
    files = {name: _write(tmp_path, name, s) for name, s in {
        "web1": session(), "web2": session(cause="firewall-reject", resets=3, source="10.1.2.12"),
        "web3": session(cause="middlebox-reset", resets=2, source="10.1.3.13", confidence=0.2),
        "web4": session(source="10.1.4.14", confidence=0.2, interrupted=True)}.items()}
    for names, status in ((["web1", "web2", "web3"], 1), (["web1", "web3"], 0), (["web1", "web4"], 3)):
        out = tmp_path / f"{'-'.join(names)}.json"
        done = _cli(*(str(files[n]) for n in names), "--json", str(out), "--report", str(out.with_suffix(".md")))
        data = json.loads(out.read_text())
        assert done.returncode == status == data["verdict"]["exit_status"], (names, done.stderr)
        assert done.stdout == data["verdict"]["statement"] + "\n"
        assert _bold(out.with_suffix(".md").read_text()).lower() == data["verdict"]["statement"].lower()


def test_a_host_whose_resets_no_cause_explains_is_not_counted_clean() -> None:
    f = fleet(app1=session(source="10.1.1.11"),
              app2=session(cause="middlebox-reset", resets=2, source="10.1.2.12", confidence=0.2))
    assert f.hosts[1].saw_reset and f.hosts[1].verdict == "" and f.hosts[1].kind == "no-cause"
    assert f.pointer.hosts == ["app2"]
    assert f.pointer.headline.startswith("only app2 (1 of 2 hosts) sees resets (its verdict: no cause found)")
    text = render_fleet(f)
    assert "| app2 (box) | client | no cause found | 0% | 3 of 6 |" in text
    assert "middlebox-reset" not in text.split("## Each host's verdict")[0]  # a lead below the threshold is no verdict


def test_the_report_reads_top_down_as_an_sre_needs_it() -> None:
    """Lead, verdict line, hosts, what sets them apart and what they share, each host's
    verdict, the timeline; without a server end it says why nothing is matched."""
    text = render_fleet(fleet(app1=session(source="10.1.1.11", hop="10.1.0.1"),
                              app2=session(cause="firewall-reject", resets=3, source="10.1.1.12", hop="10.1.0.1"),
                              app3=session(source="10.1.1.13", hop="10.1.0.1")))
    lines = text.splitlines()
    assert lines[0] == "# Connection resets across a fleet"
    assert lines[2].startswith("**Only app2 (1 of 3 hosts) sees resets (its verdict: firewall-reject): it differs "
                               "from app1 and app3 in source address (10.1.1.12 against 10.1.1.11; 10.1.1.13). "
                               "The port is open: app1 and app3 reached 10.1.9.2")
    assert lines[4] == ("Verdict: a cause (exit status 1); `firewall-reject` on app2 (90%); "
                        "`no-reset-observed` on app1, app3 (90%).")
    heads = [ln for ln in lines if ln.startswith("## ")]
    assert heads == ["## Hosts", "## What sets them apart", "## Each host's verdict", "## Timeline (UTC, both ends)"]
    assert "What every host shares: target address 10.1.9.2; first hop 10.1.0.1." in lines
    assert any(ln.startswith("No session of the server end was merged") for ln in lines)
    # With the server end merged, the note goes and the client's resets are matched.
    server = session(source="10.1.9.2", target="10.1.9.2", listener=True, server_signal="server.rst_sent")
    both = render_fleet(fleet(app1=session(cause="firewall-reject", resets=3), db1=server))
    assert "No session of the server end" not in both
    assert "| db1: kernel.counters: server.rst_sent seen |" in both


@pytest.mark.parametrize(("rule", "singles", "names_app2"), [
    ("ip saddr 10.1.2.12 tcp dport 8080 reject with tcp reset", True, True),
    ("ip saddr { 10.1.2.0/24, 192.0.2.7 } tcp dport 8080 reject with tcp reset", True, True),
    ("ip saddr 10.1.0.0/16 tcp dport 8080 reject with tcp reset", False, True),  # names the clean hosts too
    ("ip saddr 10.1.3.13 tcp dport 8080 reject with tcp reset", False, False),  # another address
    ("tcp dport 8080 reject with tcp reset", False, False),  # names no source: every client would be refused
])
def test_the_server_ends_rule_that_names_only_the_refused_hosts_is_quoted(rule: str, singles: bool,
                                                                          names_app2: bool) -> None:
    server = session(source="10.1.9.2", target="10.1.9.2", listener=True, rule=f"inet acl input: {rule}")
    f = fleet(app1=session(source="10.1.1.11"), app2=session(cause="port-closed", resets=3, source="10.1.2.12"),
              db1=server)
    assert [h.role for h in f.hosts] == ["client", "client", "server"]
    assert f.pointer.rules == ([f"db1: inet acl input: {rule}"] if singles else [])
    lead = f.pointer.headline
    if singles:
        assert lead.endswith(f"The port is open (app1 reached 10.1.9.2), and db1's firewall has the rule that names "
                             f"app2's source alone: inet acl input: {rule}")
    else:
        assert "db1's firewall" not in lead and "so the refusals come from a rule that singles out" in lead
    matched = [e.matched for e in f.timeline if e.host == "app2"]
    assert matched and all(m.startswith("db1 ran then and recorded no reset sent (its kernel trace did not run)")
                           for m in matched)
    assert all(("names app2's source" in m) == names_app2 for m in matched)
