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
