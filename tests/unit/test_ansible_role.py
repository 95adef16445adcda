"""The Ansible role's own documentation (ansible/): every variable it reads is specified,
every specified option is well formed, and the facts and results it sets are documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "reset_wizard"
README = ROLE.parents[1] / "README.md"
KEYS = {"type", "description", "required", "choices", "elements", "default"}


def _specs() -> dict[str, dict]:
    return yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def test_every_option_is_well_formed() -> None:
    for entry, spec in _specs().items():
        for name, option in spec["options"].items():
            # A flow mapping splits an unquoted description at its commas into stray keys.
            assert set(option) <= KEYS, (entry, name, set(option) - KEYS)
            assert isinstance(option["description"], str) and option["description"].endswith("."), (entry, name)


def test_every_default_and_every_variable_the_tasks_read_is_specified() -> None:
    specs = _specs()
    documented = set(specs["main"]["options"]) | set(specs["collect"]["options"])
    defaults = set(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))
    assert defaults <= documented, defaults - documented
    read = set()
    for tasks in (ROLE / "tasks").glob("*.yml"):
        read |= set(re.findall(r"\brw_[a-z_]+\b", tasks.read_text()))
    set_here = {"rw_installed", "rw_run", "rw_session", "rw_verdict", "rw_merge", "rw_collected", "rw_fleet_verdict"}
    assert read - set_here <= documented, (read - set_here) - documented


def test_the_facts_and_results_the_role_sets_are_documented() -> None:
    tasks = "\n".join(p.read_text() for p in (ROLE / "tasks").glob("*.yml"))
    made = set(re.findall(r"register: (rw_\w+)", tasks)) | set(re.findall(r"^\s{4}(rw_\w+):", tasks, re.M))
    made -= {"rw_collected"}  # a task's own vars: (the hosts whose sessions were saved), not a result
    assert made == {"rw_installed", "rw_run", "rw_session", "rw_verdict", "rw_merge", "rw_fleet_verdict"}, made
    readme = README.read_text()
    specs = (ROLE / "meta" / "argument_specs.yml").read_text()
    for name in made:
        assert f"| `{name}` |" in readme and name in specs, name
