"""Every lab scenario and variant, built for real and diagnosed end to end.

Each scenario gets its own client, router and server namespaces (names tagged ``rwlb``) and
`diagnose` runs as the CLI in the client namespace with ``--server netns:SERVER``. The
scenarios share no names, so they run concurrently (threads), once per module; each test
then judges one scenario: the top cause and the decisive evidence in the report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.conftest import _require_lab
from wizard.lab.build import Lab, LabState, running, teardown
from wizard.lab.netns import LabError
from wizard.lab.runs import Outcome, run_all
from wizard.lab.scenarios import SCENARIOS, Scenario, by_id

TAG = "rwlb"
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
def outcomes(lab_root: Path) -> dict[str, Outcome]:
    _require_lab()
    done = run_all(SCENARIOS, parallel=PARALLEL, tag=TAG, root=lab_root)
    return {o.scenario.id: o for o in done}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_is_named_with_its_decisive_evidence(scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert not o.error, o.error
    assert o.said == scenario.cause, f"{scenario.id}: ranked {o.ranking}"
    assert o.confidence >= 0.5
    assert o.exit_code == (0 if scenario.cause == "no-reset-observed" else 1)
    assert not o.missing_evidence, f"the report does not cite {o.missing_evidence}"
    # The verdict's evidence lines are in the report, each with the check that found it.
    top = o.session["diagnosis"][0]
    assert top["evidence"], "a diagnosis without evidence"
    check_id = top["evidence"][0].split(":", 1)[0]
    assert re.search(re.escape(check_id), o.report)


def test_the_lab_leaves_nothing_behind(outcomes: dict[str, Outcome], lab_root: Path) -> None:
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
