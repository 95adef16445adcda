"""The checklist's YAML parse kept as JSON: the same data, the same Checklist, the same
errors, and PyYAML not imported when the text was parsed before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wizard.engine.discovery import checklist_path, load
from wizard.model import WizardError, load_checklist, yamlcache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("RESET_WIZARD_CACHE_DIR", str(where))
    return where


def test_the_kept_parse_gives_the_same_checklist_as_the_yaml(cache: Path) -> None:
    first = load()
    kept = list(cache.glob("yaml-*.json"))
    assert len(kept) == 1
    text = checklist_path().read_text(encoding="utf-8")
    assert json.loads(kept[0].read_text())["data"] == yaml.safe_load(text)
    again = load()
    assert again == first and again.model_dump() == first.model_dump()


def test_a_run_that_parsed_the_checklist_before_does_not_import_yaml(cache: Path) -> None:
    code = ("import sys\nfrom wizard.engine.discovery import load\nload()\n"
            "print('yaml' in sys.modules)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "RESET_WIZARD_CACHE_DIR": str(cache),
           "PYTHONDONTWRITEBYTECODE": "1"}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:] + runs[1].stderr[-2000:]
    assert [r.stdout.split()[-1] for r in runs] == ["True", "False"]


def test_a_changed_file_is_parsed_again(cache: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(checklist_path().read_text())
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_checklist(path).title == data["title"]
    data["title"] = "another title"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_checklist(path).title == "another title"
    assert len(list(cache.glob("yaml-*.json"))) == 2


def test_a_broken_or_foreign_cache_file_is_ignored(cache: Path) -> None:
    text = "a: 1\nb: [x, 2.5, true, null]\n"
    path, _ = yamlcache.cache_path(text)
    want = yaml.safe_load(text)
    for junk in ['{"format": 1, "sha256": "0", "data": {"a": 2}}', '{"format": 1', "not json", ""]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(junk)
        got = yamlcache.parsed(text, yaml.safe_load)
        assert got == want and type(got["b"][1]) is float and got["b"][2] is True
        assert yamlcache.parsed(text, lambda _t: pytest.fail("parsed twice")) == want


@pytest.mark.parametrize("text", ["when: 2026-12-04\n", "1: one\n", "s: !!set {a: null}\n", "x: .nan\n"])
def test_data_json_cannot_hold_exactly_is_not_kept(cache: Path, text: str) -> None:
    assert yamlcache.parsed(text, yaml.safe_load) is not None
    assert not cache.exists() or list(cache.iterdir()) == []


def test_bad_yaml_is_one_line_and_nothing_is_kept(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("steps: [unclosed\n")
    for _ in range(2):
        with pytest.raises(WizardError, match="not YAML"):
            load_checklist(path)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_nothing_is_kept_when_asked_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESET_WIZARD_CACHE_DIR", "")
    assert yamlcache.cache_path("a: 1\n")[0] == ""
    monkeypatch.chdir(tmp_path)
    assert yamlcache.parsed("a: 1\n", yaml.safe_load) == {"a": 1}
    assert list(tmp_path.rglob("*")) == []


def test_the_parse_is_kept_inside_the_installation_and_nowhere_in_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RESET_WIZARD_CACHE_DIR", raising=False)
    path, _ = yamlcache.cache_path(f"kept nowhere else: {tmp_path.name}\n")
    here = Path(path).parent
    assert here.name == "__pycache__" and here.parent == Path(yamlcache.__file__).resolve().parent
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yamlcache.parsed(f"kept nowhere else: {tmp_path.name}\n", yaml.safe_load)
    assert not Path(path).exists()  # Python writes no bytecode: nothing is written either
