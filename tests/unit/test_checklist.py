"""The checklist is data, validated strictly on load, with the YAML path of any problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wizard.engine.discovery import checklist_path
from wizard.model import STEP_IDS, WizardError, load_checklist


@pytest.fixture()
def data() -> dict:
    return yaml.safe_load(checklist_path().read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_shipped_checklist_has_the_six_steps_in_order() -> None:
    checklist = load_checklist(checklist_path())
    assert tuple(s.id for s in checklist.steps) == STEP_IDS
    assert all(s.guidance.strip() and s.checks for s in checklist.steps)


def test_unknown_key_fails_with_its_yaml_path(tmp_path: Path, data: dict) -> None:
    data["steps"][3]["colour"] = "red"
    with pytest.raises(WizardError) as info:
        load_checklist(_write(tmp_path, data))
    assert "steps[3:firewall].colour" in info.value.message


def test_steps_out_of_order_fail(tmp_path: Path, data: dict) -> None:
    data["steps"][0], data["steps"][1] = data["steps"][1], data["steps"][0]
    with pytest.raises(WizardError, match="in that order"):
        load_checklist(_write(tmp_path, data))


def test_a_regex_that_does_not_compile_fails_at_load(tmp_path: Path, data: dict) -> None:
    data["signatures"][0]["regex"] = "(unclosed"
    with pytest.raises(WizardError) as info:
        load_checklist(_write(tmp_path, data))
    assert "signatures[0:" in info.value.message and "regex" in info.value.message


def test_a_loader_that_matches_no_line_leaves_the_regexes_uncompiled_and_the_rest_strict(
        tmp_path: Path, data: dict) -> None:
    data["signatures"][0]["regex"] = "(unclosed"
    path = _write(tmp_path, data)
    # analyze's load: the signatures are kept as written, never compiled
    assert load_checklist(path, compile_signatures=False).signatures[0].regex == "(unclosed"
    with pytest.raises(WizardError, match="regex"):  # and the next default load still compiles them
        load_checklist(path)
    data["steps"][3]["colour"] = "red"
    with pytest.raises(WizardError) as info:
        load_checklist(_write(tmp_path, data), compile_signatures=False)
    assert "steps[3:firewall].colour" in info.value.message


def test_unknown_check_id_and_bad_params_fail_with_their_path(tmp_path: Path, data: dict) -> None:
    from pydantic import BaseModel, ConfigDict

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        count: int = 3

    known = {spec["check"]: Params for step in data["steps"] for spec in step["checks"]}
    data["steps"][1]["checks"][0]["params"] = {"cuont": 3}
    with pytest.raises(WizardError) as info:
        load_checklist(_write(tmp_path, data), known)
    assert "steps[1:connectivity].checks[0:dns.resolve].params.cuont" in info.value.message

    data["steps"][1]["checks"][0] = {"check": "dns.resolv"}
    with pytest.raises(WizardError, match=r"unknown check id 'dns\.resolv'"):
        load_checklist(_write(tmp_path, data), known)


def test_rule_naming_a_signal_no_check_emits_fails(tmp_path: Path, data: dict) -> None:
    emitted = {w["signal"] for c in data["causes"] for k in ("supports", "contradicts")
               for w in c.get(k, [])} | set(data["observed_reset"])
    load_checklist(_write(tmp_path, data), None, emitted)
    data["observed_reset"].append("probe.reset_after_dat")
    with pytest.raises(WizardError, match=r"observed_reset\[\d+\]: no check emits signal 'probe.reset_after_dat'"):
        load_checklist(_write(tmp_path, data), None, emitted)
    data["observed_reset"].pop()
    data["causes"][0]["supports"].append({"signal": "listener.absnet", "weight": 1})
    with pytest.raises(WizardError, match=r"no check emits signal 'listener\.absnet'"):
        load_checklist(_write(tmp_path, data), None, emitted)


def test_unreadable_checklist_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WizardError) as info:
        load_checklist(tmp_path / "missing.yaml")
    assert info.value.title == "unreadable checklist"


def test_diagnose_loads_the_shipped_checklist_without_compiling_its_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from wizard.cli.diagnose import checklist_for
    from wizard.engine.discovery import load

    compiled: list[str] = []
    real = re.compile

    def counting(pattern: str, flags: int = 0) -> re.Pattern[str]:
        compiled.append(pattern)
        return real(pattern, flags)

    monkeypatch.setattr(re, "compile", counting)
    checklist = checklist_for(False)
    regexes = {s.regex for s in checklist.signatures}
    assert regexes and not regexes & set(compiled)
    monkeypatch.undo()
    # the same checklist as the default load, which compiles every one of them
    assert checklist == load()
