"""The command line's grammar: a target is told from a command by its shape, typos get a
suggestion, values may start with '-', every --help says what it does, its defaults, its
exit codes and two examples, and a command is one module plus one registration line."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from wizard.cli import parser as grammar
from wizard.cli.main import main
from wizard.cli.status import ExitStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, target", [
    ([], None),
    (["10.0.0.5:443"], "10.0.0.5:443"),
    (["[2001:db8::1]:443"], "[2001:db8::1]:443"),
    (["https://api.example.com/health"], "https://api.example.com/health"),
    (["app.example.com:8080"], "app.example.com:8080"),
    (["--server", "netns:web", "10.0.0.5:443"], "10.0.0.5:443"),
    (["tui", "10.0.0.5:443"], "10.0.0.5:443"),
])
def test_a_target_or_nothing_opens_the_tui_with_it(argv: list[str], target: str | None) -> None:
    args = grammar.parse(argv)
    assert args.command == "tui" and args.target == target


@pytest.mark.parametrize("argv, line", [
    (["diagnoze", "127.0.0.1:1"], "reset-wizard: unknown command 'diagnoze' (did you mean diagnose?)"),
    (["dignose"], "reset-wizard: unknown command 'dignose' (did you mean diagnose?)"),
    (["reprot", "s.json"], "reset-wizard: unknown command 'reprot' (did you mean report?)"),
    (["check"], "reset-wizard: unknown command 'check' (did you mean checks?)"),
    (["lab", "lsit"], "reset-wizard: unknown command 'lab lsit' (did you mean lab list?)"),
    (["bogus"], "reset-wizard: unknown command 'bogus' (the commands are tui, diagnose, demo, report, "
                "merge, checks, lab, watch, analyze, open; a target needs a port: bogus:PORT)"),
])
def test_a_word_that_is_no_command_is_one_line_with_a_suggestion_and_exit_2(
        argv: list[str], line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wizard.ui.app.run_tui", lambda *a, **k: pytest.fail("the TUI opened"))
    assert main(argv) == ExitStatus.BAD_INPUT
    out, err = capsys.readouterr()
    assert err.splitlines() == [line] and out == ""


@pytest.mark.parametrize("option, value", [
    ("--at", "-10m"), ("--window", "-5m"), ("--error", "-bash: connection reset"), ("--payload", "-x"),
    ("--hold", "-1"), ("--log", "-weird.log"), ("--journal", "-x"), ("--json", "-"),
])
def test_a_value_that_starts_with_a_dash_is_the_options_value(option: str, value: str) -> None:
    args = grammar.parse(["diagnose", "127.0.0.1:1", option, value, "--quiet"])
    got = getattr(args, option[2:].replace("-", "_") if option != "--log" else "log")
    assert got == ([value] if isinstance(got, list) else value)
    assert args.quiet is True and args.target == "127.0.0.1:1"


def test_an_option_where_a_value_should_be_is_still_an_error() -> None:
    from wizard.model import WizardError

    with pytest.raises(WizardError, match="--window: expected one argument"):
        grammar.parse(["diagnose", "127.0.0.1:1", "--window", "--quiet"])


@pytest.mark.parametrize("command", grammar.names())
def test_every_command_help_has_a_description_defaults_exit_codes_and_two_examples(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    module = grammar.load(command)
    assert module.DESCRIPTION.split("\n")[0] in text
    exits = text[text.index("exit status:"):text.index("examples:")]
    for code, meaning in module.EXIT.items():
        assert f"  {int(code)}  {meaning}" in exits
    examples = [line for line in text[text.index("examples:"):].splitlines()[1:] if line.startswith("  reset")
                or line.startswith("  sudo reset")]
    assert len(examples) >= 2, text
    parser = grammar.build_parser().commands[command]
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"(default: {action.default})" in " ".join(text.split()), action.dest


def test_diagnose_help_shows_the_defaults_of_the_probe(capsys: pytest.CaptureFixture[str]) -> None:
    main(["diagnose", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 15m)", "(default: local)", "(default: 10)", "(default: 3)", "(default: 0)"):
        assert default in text


def test_diagnose_exit_codes_are_those_of_exit_status() -> None:
    assert {int(c): m for c, m in grammar.load("diagnose").EXIT.items()} == {
        0: ExitStatus.OK.__doc__, 1: ExitStatus.DIAGNOSED.__doc__, 2: ExitStatus.BAD_INPUT.__doc__,
        3: ExitStatus.FAILED.__doc__}
    assert all(status.__doc__ and status.__doc__ != ExitStatus.__doc__ for status in ExitStatus)


def test_version_and_help_need_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    from wizard import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"reset-wizard {__version__}"
    assert main(["help"]) == 0
    root_help = capsys.readouterr().out
    assert all(c.name in root_help and c.summary.split()[0] in root_help for c in grammar.COMMANDS)
    assert main(["help", "report"]) == 0
    assert "SESSION.json" in capsys.readouterr().out


def test_a_new_command_is_one_module_and_one_registration_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    hello = types.ModuleType("wizard.cli.hello")
    hello.DESCRIPTION = "Say hello."  # type: ignore[attr-defined]
    hello.EXAMPLES = ("reset-wizard hello", "reset-wizard hello --name you")  # type: ignore[attr-defined]
    hello.EXIT = {ExitStatus.OK: "said"}  # type: ignore[attr-defined]
    hello.options = lambda p: p.add_argument("--name", default="world", help="whom")  # type: ignore[attr-defined]
    hello.run = lambda args, probes=None: print(f"hello {args.name}") or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wizard.cli.hello", hello)
    monkeypatch.setattr(grammar, "COMMANDS", (*grammar.COMMANDS, grammar.Command("hello", "say hello")))
    assert main(["hello", "--name", "-you-"]) == 0
    assert capsys.readouterr().out == "hello -you-\n"
    assert main(["helo"]) == 2
    assert "did you mean hello?" in capsys.readouterr().err
    main(["hello", "--help"])
    assert "(default: world)" in capsys.readouterr().out


def _python(code: str) -> str:
    """The stdout of ``code`` run by a fresh interpreter in the repository (which must succeed)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_only_the_command_that_runs_is_imported() -> None:
    code = ("import sys\n"
            "from wizard.cli.parser import parse\n"
            "parse(['lab', 'list']); parse(['--version']) if False else None\n"
            "print(sorted(m for m in sys.modules if m.startswith('wizard.cli.') or m.split('.')[0] in "
            "('textual', 'rich', 'scapy')))\n")
    loaded = json.loads(_python(code).replace("'", '"'))
    assert "wizard.cli.lab" in loaded
    assert not {"wizard.cli.diagnose", "wizard.cli.tui", "wizard.cli.demo", "wizard.cli.report"} & set(loaded)
    assert not [m for m in loaded if not m.startswith("wizard.")]


def test_reset_wizard_alone_is_what_the_parser_makes_of_nothing() -> None:
    from wizard.cli import tui

    assert vars(tui.nothing_typed()) == vars(grammar.parse([]))


def test_reset_wizard_alone_opens_the_tui_without_loading_the_grammar() -> None:
    """Nothing to parse: the TUI opens as the parser would open it, argparse never loaded."""
    code = ("import json, sys\n"
            "import wizard.ui.app\n"
            "def opened(target, **kw):\n"
            "    print(json.dumps([target, kw['server'], sorted(m for m in ('argparse', 'wizard.cli.parser', "
            "'wizard.cli.console') if m in sys.modules)]))\n"
            "    return 0\n"
            "wizard.ui.app.run_tui = opened\n"
            "from wizard.cli.main import main\n"
            "sys.exit(main([]))\n")
    assert json.loads(_python(code)) == [None, "local", []]


@pytest.mark.parametrize("word", ["10.0.0.5", "::1", "api.example.com", "web1.internal:8443"])
def test_an_address_or_a_dotted_name_is_a_target_for_the_tui(word: str) -> None:
    args = grammar.parse([word])
    assert args.command == "tui" and args.target == word


def test_an_existing_file_as_first_word_is_opened_not_taken_for_a_target(tmp_path: Path) -> None:
    saved = tmp_path / "session.json"
    saved.write_text("{}")
    args = grammar.parse([str(saved)])
    assert args.command == "open" and args.session == str(saved)


@pytest.mark.parametrize("argv, line", [
    (["8080"], "reset-wizard: unknown command '8080' (the commands are tui, diagnose, demo, report, "
               "merge, checks, lab, watch, analyze, open; a target needs a host: HOST:8080)"),
    (["help", "diagnoze"], "reset-wizard: unknown command 'diagnoze' (did you mean diagnose?)"),
    (["./rwcl-no-such-session.json"], "reset-wizard: no such file: ./rwcl-no-such-session.json (open "
                                      "SESSION.json shows a saved session; a target is host:port or a URL)"),
])
def test_a_first_word_that_is_neither_command_target_nor_file_is_exit_2(
        argv: list[str], line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wizard.ui.app.run_tui", lambda *a, **k: pytest.fail("the TUI opened"))
    assert main(argv) == ExitStatus.BAD_INPUT
    out, err = capsys.readouterr()
    assert err.splitlines() == [line] and out == ""


def test_a_typo_in_the_real_process_is_one_line_exit_2_and_no_tui() -> None:
    done = subprocess.run([sys.executable, "-m", "wizard", "diagnoze", "127.0.0.1:1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr == "reset-wizard: unknown command 'diagnoze' (did you mean diagnose?)\n"
    assert done.stdout == ""  # no escape sequences: the TUI never started


def test_top_level_help_lists_each_command_on_one_line_with_exit_codes_and_examples() -> None:
    done = subprocess.run([sys.executable, "-m", "wizard", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    for command in grammar.COMMANDS:
        row = next(line for line in lines if line.split()[:1] == [command.name])
        assert row.split(None, 1)[1] == command.summary, row  # the whole summary, not wrapped
    exits = done.stdout[done.stdout.index("exit status:"):done.stdout.index("examples:")]
    assert all(f"  {int(code)}  {code.meaning}" in exits for code in ExitStatus)
    examples = done.stdout[done.stdout.index("examples:"):].splitlines()[1:]
    assert len([e for e in examples if e.startswith("  reset-wizard ")]) >= 2


@pytest.mark.parametrize("name", ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_every_name_of_stdout_is_taken_as_stdout_by_every_output_option(name: str) -> None:
    assert grammar.parse(["diagnose", "127.0.0.1:1", "--json", name]).json == "-"
    assert grammar.parse(["diagnose", "127.0.0.1:1", "--report", name]).report == "-"
    assert grammar.parse(["demo", "--headless", "--report", name]).report == "-"
    assert grammar.parse(["report", "s.json", "-o", name]).output == "-"
    assert grammar.parse(["merge", "a.json", "b.json", "--json", name]).json == "-"
    assert grammar.parse(["diagnose", "127.0.0.1:1", "--json", "./-x"]).json == "./-x"  # a file stays a file


@pytest.mark.parametrize("argv, line", [
    (["--server", "netns:web", "diagnoze", "10.0.0.5:443"],
     "reset-wizard: unknown command 'diagnoze' (did you mean diagnose?)"),
    (["--server=local", "bogus"], "reset-wizard: unknown command 'bogus' (the commands are tui, diagnose, demo, "
                                  "report, merge, checks, lab, watch, analyze, open; a target needs a port: bogus:PORT)"),
])
def test_a_word_in_the_targets_place_after_options_is_checked_too(
        argv: list[str], line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wizard.ui.app.run_tui", lambda *a, **k: pytest.fail("the TUI opened"))
    assert main(argv) == ExitStatus.BAD_INPUT
    assert capsys.readouterr().err.splitlines() == [line]
    assert grammar.parse(["--server", "netns:web", "10.0.0.5:443"]).target == "10.0.0.5:443"
