"""Every lab scenario and variant, built for real and diagnosed end to end.

Each scenario gets its own client, router and server namespaces (names tagged ``rwlb``) and
`diagnose` runs as the CLI in the client namespace with ``--server netns:SERVER``. The
scenarios share no names, so they run concurrently (threads), once per module; each test
then judges one scenario: the top cause and the decisive evidence in the report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.conftest import _require_lab
from tests.verdicts import disagreements
from wizard.lab.build import Lab, LabState, running, teardown
from wizard.lab.netns import LabError
from wizard.lab.runs import Outcome, run_all
from wizard.lab.scenarios import SCENARIOS, Scenario, by_id
from wizard.lab.tracestate import left_behind, owner, tracefs_mounted, wizard_instances

TAG = "rwlb"
ROOT = Path(__file__).resolve().parents[2]
PARALLEL = int(os.environ.get("RESET_WIZARD_LAB_PARALLEL", "6"))


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _alive(pid: str) -> bool:
    """Running, not merely a zombie waiting for an init that may not reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rwlb-labs")


@pytest.fixture(scope="module")
def tracing_before() -> tuple[bool, set[str]]:
    """tracefs's mount state here and the wizard's instances before any scenario ran."""
    _require_lab()
    return tracefs_mounted(), wizard_instances()


@pytest.fixture(scope="module")
def captures_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rwlb-captures")


@pytest.fixture(scope="module")
def outcomes(lab_root: Path, captures_root: Path, tracing_before: tuple[bool, set[str]]) -> dict[str, Outcome]:
    """Every scenario diagnosed; each one's trigger (the client's request that meets the fault
    before the diagnosis) captured by tcpdump at the client's interface and at the server's,
    the captures kept as ``Outcome.wire`` for `analyze`."""
    _require_lab()

    def keep(lab: Lab) -> tuple[Path, Path]:
        into = captures_root / lab.state.name
        into.mkdir()
        return tuple(Path(shutil.copy(p, into / p.name)) for p in lab.trigger_captures)  # type: ignore[return-value]

    done = run_all(SCENARIOS, parallel=PARALLEL, tag=TAG, root=lab_root, record=True, before=keep)
    return {o.scenario.id: o for o in done}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_is_named_with_its_decisive_evidence(scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert not o.error, o.error
    assert o.said == scenario.cause, f"{scenario.id}: ranked {o.ranking}"
    assert o.confidence >= 0.5
    assert o.exit_code == (0 if scenario.cause == "no-reset-observed" else 1)
    # One verdict everywhere: the JSON's first entry is what the report, console, TUI and exit status say.
    assert not (wrong := disagreements(json.dumps(o.session), o.report, o.stdout, o.exit_code)), wrong
    assert not o.missing_evidence, f"the report does not cite {o.missing_evidence}"
    # The verdict's evidence lines are in the report, each with the check that found it.
    top = o.session["diagnosis"][0]
    assert top["evidence"], "a diagnosis without evidence"
    check_id = top["evidence"][0].split(":", 1)[0]
    assert re.search(re.escape(check_id), o.report)


# The server-side causes: what the server's kernel says (tracefs, kernel.resets) must be quoted
# in the report and cited by the verdict's evidence in the JSON session, with its signal.
# (regex for the report and the JSON alike: the report escapes [ ] as \[ \], signal id, the reason
# beside the server's RST in the ladder or None)
KERNEL_SAYS: dict[str, tuple[str, str, str | None]] = {
    "port-closed": (r"the server's kernel sent RST .* because NO_SOCKET", "ktrace.rst_no_socket", "NO_SOCKET"),
    "unread-data-close": (r"the server's kernel sent RST .* because TCP_ABORT_ON_CLOSE \(process \S+?\\?\[\d+\\?\]\)",
                          "ktrace.rst_abort_on_close", "TCP_ABORT_ON_CLOSE"),
    # This kernel (6.18) gives SO_LINGER 0 (tcp_disconnect from close) the reason TCP_STATE.
    "abortive-close": (r"the server's kernel sent RST .* because TCP_STATE \(process \S+?\\?\[\d+\\?\]\)",
                       "ktrace.rst_disconnect", "TCP_STATE"),
    "firewall-drop": (r"the server's kernel dropped \d+ packets? because NETFILTER_DROP while the probe timed out",
                      "ktrace.drop_netfilter", None),
    "firewall-reject": (r"netfilter reset .*, the server's kernel sent none", "ktrace.netfilter_reject", None),
}
KERNEL_CASES = [s for s in SCENARIOS if s.base in KERNEL_SAYS]


def _kernel_resets(session: dict) -> dict:
    (check,) = [c for step in session["steps"] for c in step["checks"] if c["id"] == "kernel.resets"]
    return check


@pytest.mark.parametrize("scenario", KERNEL_CASES, ids=[s.id for s in KERNEL_CASES])
def test_report_quotes_the_server_kernels_reason_and_the_verdict_cites_it(
        scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert not o.error, o.error
    quote, signal, ladder = KERNEL_SAYS[scenario.base]
    check = _kernel_resets(o.session)
    assert check["status"] == "warn", check["summary"]
    assert signal in {sig["id"] for sig in check["signals"]}, check["signals"]
    assert re.search(quote, o.report), f"the report does not quote the kernel: {quote}"
    cited = [line for line in o.session["diagnosis"][0]["evidence"] if line.startswith("kernel.resets:")]
    assert any(re.search(quote, line) for line in cited), o.session["diagnosis"][0]["evidence"]
    if ladder:
        assert f"server kernel's reason: {ladder}" in o.report, "the ladder's server RST has no reason"


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.base == "listen-backlog-overflow"],
                         ids=lambda s: s.id)
def test_a_syn_refused_by_a_full_accept_queue_is_said_to_leave_no_drop_reason(
        scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    # The scenario's probes only ever send SYNs into the full queue, which the kernel consumes
    # without kfree_skb: no TCP_LISTEN_OVERFLOW can be traced (tests/lab/test_tracing_lab.py
    # produces one with a late ACK). The report says so instead of staying silent.
    o = outcomes[scenario.id]
    check = _kernel_resets(o.session)
    assert "ktrace.drop_listen_overflow" not in {sig["id"] for sig in check["signals"]}
    assert "no TCP_LISTEN_OVERFLOW drop traced: a SYN that a full accept queue refuses" in o.report


# What each scenario's trigger puts on the wire, from how the lab builds its fault: every RST
# toward the client as (the two-ended proof, its sender). A capture has no counters, so the
# server kernel's stateless reply and a reject rule's are one sender: the server's host. Set
# empty: the trigger meets its fault without a reset (a drop, a full queue, a FIN, a limit
# that one request stays under), or there is no fault.
HOST, APP, PATH = ("sent", "server-host"), ("sent", "server-app"), ("injected", "path")
TRIGGER_RESETS: dict[str, set[tuple[str, str]]] = {
    "port-closed": {HOST}, "port-closed/v6": {HOST}, "port-closed/loopback-bind": {HOST},
    "port-forward/dead-backend": {HOST}, "port-forward/v6-dead-backend": {HOST},
    "firewall-reject": {HOST}, "firewall-reject/v6-ip6-table": {HOST},
    "conntrack-table-full/v6-reject": {HOST}, "conntrack-invalid": {HOST},
    "keepalive-race": {HOST}, "keepalive-race/v6-2.5s": {HOST},
    "abortive-close": {APP}, "abortive-close/v6-text": {APP}, "unread-data-close": {APP},
    "unread-data-close/v6-upload": {APP}, "server-crash/v6-segfault": {APP}, "protocol-mismatch": {APP},
    "middlebox-reset": {PATH}, "middlebox-reset/v6-keyword": {PATH}, "idle-timeout": {PATH},
    "idle-timeout/v6-5s": {PATH},
    **{sid: set() for sid in ("firewall-drop", "firewall-drop/v6-policy", "listen-backlog-overflow",
                              "listen-backlog-overflow/v6-abort", "server-crash", "rate-limit",
                              "rate-limit/v6-router", "protocol-mismatch/v6-tls-to-plain",
                              "conntrack-table-full", "conntrack-invalid/v6-drop", "path-mtu-blackhole",
                              "path-mtu-blackhole/v6", "no-reset-observed", "no-reset-observed/v6-hold")},
}
# Where the packets alone decide the cause: the path's resets, and a keep-alive connection
# written into after the server's FIN.
DECIDED_BY_PACKETS = {"middlebox-reset", "idle-timeout", "keepalive-race"}


def test_every_scenario_says_what_its_trigger_puts_on_the_wire() -> None:
    assert set(TRIGGER_RESETS) == {s.id for s in SCENARIOS}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_analyze_names_the_sender_of_every_reset_in_the_triggers_two_captures(
        scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert o.wire is not None, o.error
    client_cap, server_cap = o.wire
    out = subprocess.run([sys.executable, "-m", "wizard", "analyze", str(client_cap), str(server_cap), "--json", "-"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    session = json.loads(out.stdout)
    events = session["observation"]["events"]
    assert all(src["flows"] for src in session["observation"]["sources"]), "a capture without the trigger's flow"
    toward_client = {(e["proof"], e["sender"]) for e in events if e["toward"] == "client"}
    assert toward_client == TRIGGER_RESETS[scenario.id], [e["reasons"] for e in events]
    # An RST toward the server is the client's own (it gave up, or closed with unread data).
    assert {(e["proof"], e["sender"]) for e in events if e["toward"] == "server"} <= {("sent", "client")}
    top = session["diagnosis"][0]
    if scenario.base in DECIDED_BY_PACKETS:
        assert (top["cause"], top["confidence"] >= 0.5) == (scenario.cause, True), session["diagnosis"][:3]
    elif HOST in toward_client and all(e["timing"] == "reset-to-syn" for e in events):
        # A refused SYN: nothing listens, or a rule rejects; only the server's counters tell.
        assert {d["cause"] for d in session["diagnosis"][:2]} == {"port-closed", "firewall-reject"}
        assert top["confidence"] < 0.5, session["diagnosis"][:3]


def test_the_lab_leaves_nothing_behind(outcomes: dict[str, Outcome], lab_root: Path) -> None:
    failed = {o.scenario.id: o.left for o in outcomes.values() if o.left}
    assert not failed, f"teardown could not remove: {failed}"
    assert not [n for n in _netns() if n.startswith(f"{TAG}-")]
    assert running(lab_root) == []
    assert list(lab_root.iterdir()) == []


def test_a_failed_up_removes_what_it_made(tmp_path: Path) -> None:
    _require_lab()
    broken = Scenario("broken", "port-closed", "a ruleset that does not load", server_nft="table inet x { nonsense }")
    lab = Lab(broken, tag=TAG, root=tmp_path)
    with pytest.raises(LabError):
        lab.up()
    assert not {lab.state.client, lab.state.router, lab.state.server} & _netns()
    assert not Path(lab.state.dir).exists()


def test_lab_up_and_down_from_the_cli_leave_nothing_behind(tmp_path: Path) -> None:
    _require_lab()
    env = {**os.environ, "RESET_WIZARD_LAB_DIR": str(tmp_path)}
    up = subprocess.run([sys.executable, "-m", "wizard", "lab", "up", "abortive-close"], capture_output=True,
                        text=True, timeout=60, env=env)
    states = list(tmp_path.glob("*/state.json"))
    try:
        assert up.returncode == 0, up.stderr
        assert "diagnose" in up.stdout and "--server netns:" in up.stdout and "server.log" in up.stdout
        state = LabState.load(states[0])
        assert {state.client, state.router, state.server} <= _netns()
        pids = subprocess.run(["ip", "netns", "pids", state.server], capture_output=True, text=True,
                              timeout=10).stdout.split()
        assert pids, "the server process runs inside the server namespace"
        down = subprocess.run([sys.executable, "-m", "wizard", "lab", "down"], capture_output=True,
                              text=True, timeout=60, env=env)
        assert down.returncode == 0, down.stderr
        assert not {state.client, state.router, state.server} & _netns()
        assert not any(_alive(pid) for pid in pids)
        assert list(tmp_path.iterdir()) == []
    finally:
        for path in states:
            if path.exists():
                teardown(LabState.load(path))


def test_every_scenario_has_a_variant_and_an_explanation() -> None:
    bases: dict[str, list[Scenario]] = {}
    for s in SCENARIOS:
        bases.setdefault(s.base, []).append(s)
        assert len(s.explanation) > 30
    for base, group in bases.items():
        assert len(group) >= 2, f"{base} has no variant"
        setups = {(s.family, s.port, s.server, s.payload, s.hold) for s in group}
        assert len(setups) == len(group), f"{base}: a variant that changes nothing"
    assert by_id("port-closed").cause == "port-closed"


def test_no_tracing_state_outlives_the_runs(outcomes: dict[str, Outcome],
                                            tracing_before: tuple[bool, set[str]]) -> None:
    """Last in the module: every diagnose traced the server (--allow-tracefs-mount); none left
    a tracefs instance, and tracefs is mounted here exactly as before."""
    was_mounted, before = tracing_before
    pids = {o.pid for o in outcomes.values() if o.pid}
    assert len(pids) == len(outcomes)
    assert [n for n in wizard_instances() if owner(n) in pids] == []
    assert left_behind(before, pids) == []
    assert tracefs_mounted() == was_mounted
    traced = [o.scenario.id for o in outcomes.values()
              if any(c["id"] == "kernel.resets" and c["status"] != "skipped"
                     for step in o.session.get("steps", []) for c in step["checks"])]
    assert len(traced) == len(outcomes), "a scenario ran without tracing"
