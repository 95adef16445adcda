"""The shipped JSON schema of the checklist is generated from the model and must not go stale."""

from __future__ import annotations

import json
from pathlib import Path

from wizard.model import Checklist

SCHEMA = Path(__file__).resolve().parents[2] / "checklists" / "connection-reset.schema.json"
REGENERATE = ".venv/bin/reset-wizard checks --checklist-schema > checklists/connection-reset.schema.json"


def test_checklist_schema_file_matches_the_checklist_model() -> None:
    assert SCHEMA.is_file(), f"{SCHEMA} is missing; generate it with: {REGENERATE}"
    shipped = json.loads(SCHEMA.read_text(encoding="utf-8"))
    current = Checklist.model_json_schema(by_alias=True)
    assert shipped == current, f"{SCHEMA.name} is stale; regenerate it with: {REGENERATE}"


def test_checklist_schema_forbids_unknown_keys_like_the_model() -> None:
    # The schema is only useful to editors if it is as strict as the loader.
    shipped = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert shipped.get("additionalProperties") is False
    assert set(shipped["required"]) >= {"id", "steps", "causes", "signatures"}
