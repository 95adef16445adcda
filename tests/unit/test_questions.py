"""Step 1's questions are written once (wizard.model.questions): the `diagnose` options take
their help and defaults from them, and each default is what the input rules make of blank."""

from __future__ import annotations

import pytest

from wizard.cli.parser import build_parser
from wizard.model import Answers
from wizard.model import inputs as rules
from wizard.model.questions import QUESTIONS, question


def diagnose_actions() -> dict[str, object]:
    parser = build_parser(only=("diagnose",)).commands["diagnose"]
    return {(a.option_strings[0] if a.option_strings else a.metavar): a for a in parser._actions}


@pytest.mark.parametrize("q", QUESTIONS, ids=[q.key for q in QUESTIONS])
def test_each_question_is_an_option_of_diagnose_with_its_help(q) -> None:
    action = diagnose_actions()[q.option]
    assert action.help == q.help  # type: ignore[attr-defined]
    if q.default:
        assert action.default == q.default  # type: ignore[attr-defined]


def test_each_default_as_typed_is_the_default_of_answers() -> None:
    assert rules.parse_duration(question("window").default) == Answers().window_s
    assert rules.parse_hold(question("hold").default) == Answers().hold_s
    assert rules.parse_attempts(question("attempts").default) == Answers().attempts
    assert rules.parse_timeout(question("timeout").default) == Answers().timeout_s
    assert rules.parse_side(question("side").default) == Answers().side
    assert rules.parse_context(question("server").default) == "local"


def test_a_question_is_found_by_its_field_or_its_option() -> None:
    assert question("at") is question("--at")
    assert question("logs").option == "--log" and question("target").option == "TARGET"
    assert all(q.label and q.prompt.endswith(("?", ":")) and q.hint for q in QUESTIONS)
    with pytest.raises(KeyError):
        question("--frobnicate")


def test_the_questions_keys_are_answers_fields_the_target_or_the_server() -> None:
    fields = set(Answers.model_fields)
    for q in QUESTIONS:
        assert q.key in ("target", "server") or q.key in fields or f"{q.key}_s" in fields, q.key
