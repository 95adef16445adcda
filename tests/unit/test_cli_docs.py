"""docs/cli.md and the parser say the same: every command, every option (and positional)
with its default, the exit codes and the session's top-level fields, both ways."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from wizard.cli.parser import build_parser, names
from wizard.cli.status import ExitStatus
from wizard.model import Session

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under a '## title' heading, up to the next '## '."""
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end > 0 else None]


def rows(text: str) -> list[list[str]]:
    """The cells of every table row in ``text`` (header and rule rows left out)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        out.append(cells)
    return out[1:] if out and out[0][0] in ("command", "option", "code", "field") else out


def documented_options() -> dict[str, dict[str, str]]:
    """command -> {option or positional: documented default ('' when none is written)}."""
    out: dict[str, dict[str, str]] = {}
    options = section("Options")
    for match in re.finditer(r"^### `reset-wizard (\S+)[^`]*`\n(.*?)(?=^### |\Z)", options, re.M | re.S):
        table: dict[str, str] = {}
        for cells in rows(match.group(2)):
            default = re.fullmatch(r"`([^`]*)`", cells[1])
            for spec in re.findall(r"`([^`]+)`", cells[0]):
                table[spec.split()[0]] = default.group(1) if default else ""
        out[match.group(1)] = table
    return out


def parser_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option string and positional of a command, its subcommands' included."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.update(parser_options(sub))
        elif action.option_strings:
            out.update(dict.fromkeys(action.option_strings, action))
        else:
            out[str(action.metavar or action.dest)] = action
    return out


def test_the_commands_are_those_of_the_registry() -> None:
    assert [re.sub(r"`", "", r[0]) for r in rows(section("Commands"))] == list(names())


@pytest.mark.parametrize("command", names())
def test_every_option_is_documented_and_every_documented_option_exists(command: str) -> None:
    documented = documented_options()[command]
    actual = parser_options(build_parser().commands[command])
    assert sorted(documented) == sorted(actual)
    for name, action in actual.items():
        default = action.default
        if default in (None, False, [], argparse.SUPPRESS):
            assert documented[name] == "", f"{command} {name}: docs/cli.md gives a default the parser does not have"
        else:
            assert documented[name] == str(default), f"{command} {name}: the default is {default!r}"


def test_the_exit_codes_are_those_of_exit_status() -> None:
    table = {int(r[0]): r[1].strip("`") for r in rows(section("Exit status"))}
    assert table == {int(s): s.name for s in ExitStatus}


def test_the_session_fields_are_those_of_the_model() -> None:
    documented = [r[0].strip("`") for r in rows(section("The session JSON"))]
    assert documented == list(Session.model_json_schema(by_alias=True)["properties"])
