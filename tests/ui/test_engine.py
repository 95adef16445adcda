"""The TUI's engine refuses what `diagnose` refuses, before a run starts."""

from __future__ import annotations

import pytest

from tests.unit.fakes import FakeHost, FakeProbes
from wizard.model import Answers, WizardError
from wizard.ui.backend import RunnerEngine


async def test_an_unreadable_log_stops_the_run_with_the_clis_message() -> None:
    engine = RunnerEngine(probes=FakeProbes(), client=FakeHost(), server=FakeHost(files={}))
    try:
        with pytest.raises(WizardError) as info:
            await engine.prepare("127.0.0.1:8080", Answers(logs=["/var/log/missing.log"]), "local")
        assert info.value.title == "unreadable log" and "/var/log/missing.log" in info.value.message
    finally:
        engine.close()


async def test_a_payload_file_is_read_into_the_answers(tmp_path) -> None:
    blob = tmp_path / "p.bin"
    blob.write_bytes(b"PING\r\n\xff")
    engine = RunnerEngine(probes=FakeProbes(), client=FakeHost(), server=FakeHost())
    try:
        session = await engine.prepare("127.0.0.1:8080", Answers(payload=f"@{blob}"), "local")
        assert session.answers.payload == "PING\\r\\n\\xff"
    finally:
        engine.close()


async def test_run_all_runs_step_one_beside_steps_two_to_five_as_diagnose_does() -> None:
    # The TUI's Ctrl+G hands the engine every group at once: step 1 runs beside the readings of
    # steps 2-5 (Runner.run_all's order), and still no probe starts before step 1 has ended.
    from tests.unit.fakes import checklist_path
    from tests.unit.test_overlap import LOG, span
    from wizard.engine.runner import StepFinished, overlapping
    from wizard.model import STEP_IDS, CheckSpec
    from wizard.model.checklist import load_checklist

    specs = {"identify": [CheckSpec(check="test.wait.identify", params={"seconds": 0.3})],
             "connectivity": [CheckSpec(check="test.probe.connectivity", params={"seconds": 0.1, "mode": "shared"})],
             "server-logs": [CheckSpec(check="test.wait.server-logs", params={"seconds": 0.1})],
             "handshake": [CheckSpec(check="test.wait.handshake", params={"seconds": 0.1})]}
    full = load_checklist(checklist_path())
    checklist = full.model_copy(update={"steps": [s.model_copy(update={"checks": specs.get(s.id, [])})
                                                  for s in full.steps]})
    LOG.clear()
    events: list = []
    engine = RunnerEngine(probes=FakeProbes(), client=FakeHost(), server=FakeHost(), checklist=checklist)
    try:
        await engine.prepare("127.0.0.1:8080", Answers(), "local")
        results = await engine.run_groups(overlapping(STEP_IDS), events.append)
    finally:
        engine.close()
    assert [r.id for r in results] == list(STEP_IDS)
    assert [c.status for c in results[0].checks] == ["pass"] and len(results[2].checks) == 1
    ended = span("test.wait.identify")[1]
    assert span("test.wait.server-logs")[0] < ended  # a reading of step 3 began while step 1 ran
    assert span("test.probe.connectivity")[0] >= ended  # a probe did not
    assert span("test.wait.handshake")[0] >= max(span("test.probe.connectivity")[1], span("test.wait.server-logs")[1])
    assert sorted(e.step for e in events if isinstance(e, StepFinished)) == sorted(STEP_IDS)
