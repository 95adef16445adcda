"""The command line's grammar (pure): the registry of commands and the parser built from it.

argparse is built from each command's own options function; a first word is told from a
target by its shape.

Adding a command is a module ``wizard.cli.NAME`` (DESCRIPTION, EXAMPLES, EXIT, ``options``,
``run``) and one line in COMMANDS. Only the command that runs is imported, so ``--help``,
``--version`` and a typo cost no more than this module.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import NoReturn, Protocol, cast

from wizard import __version__
from wizard.cli.status import ExitStatus
from wizard.model.errors import WizardError

PROG = "reset-wizard"


@dataclass(frozen=True)
class Command:
    name: str  # the word typed; its module is wizard.cli.NAME
    summary: str  # one line, for `reset-wizard --help`

    @property
    def module(self) -> str:
        return f"wizard.cli.{self.name}"


# The registry: one line per command, in the order `--help` lists them.
COMMANDS: tuple[Command, ...] = (
    Command("tui", "open the TUI (the default: reset-wizard [TARGET])"),
    Command("diagnose", "run the whole checklist headless: verdict, JSON, report"),
    Command("demo", "a loopback server that resets connections (TUI or --headless)"),
    Command("report", "render a saved session again as Markdown"),
    Command("merge", "many hosts' sessions as one fleet report"),
    Command("checks", "list every check: id, step, what it needs"),
    Command("lab", "the fault lab: scenarios in network namespaces (root)"),
    Command("watch", "attribute every reset in the live traffic to a port (root)"),
    Command("analyze", "who sent every RST in pcap/pcapng files (no root)"),
    Command("open", "show a saved session in the TUI, read-only, with export"),
)


def names() -> tuple[str, ...]:
    """The command words, in the registry's order."""
    return tuple(c.name for c in COMMANDS)


_ROOT_FLAGS = ("-h", "--help", "--version")
# A host name with at least one dot (a name without one is told from a typo by nothing).
_DOTTED_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\.?")


class CommandModule(Protocol):
    """What a command's module offers (a module, structurally)."""

    DESCRIPTION: str
    EXAMPLES: Sequence[str]
    EXIT: Mapping[ExitStatus, str]

    def options(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, probes: object = None) -> int: ...


class UnknownCommand(WizardError):
    """A first word that is no command (and no target): a suggestion, never the TUI."""

    def __init__(self, word: str, known: Sequence[str] = (), prefix: str = "") -> None:
        known = known or names()
        close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {prefix}{close[0]}?"
        else:
            hint = f"the commands are {', '.join(known)}"
            if not prefix:
                hint += f"; a target needs a host: HOST:{word}" if word.isdigit() \
                    else f"; a target needs a port: {word}:PORT"
        super().__init__("unknown command", f"{prefix + word!r} ({hint})")

    def line(self) -> str:
        return f"{PROG}: {self.title} {self.message}"


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one WizardError line instead of usage text."""

    commands: dict[str, Parser]

    def error(self, message: str) -> NoReturn:
        raise WizardError("bad option", message)

    def _check_value(self, action: argparse.Action, value: object) -> None:
        choices = action.choices
        if isinstance(action, argparse._SubParsersAction) and choices is not None and value not in choices:
            raise UnknownCommand(str(value), list(choices), prefix=f"{self.prog.split()[-1]} ")
        super()._check_value(action, value)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and epilogs as written; each option's default said when it has one (not
    the None and False of an option without one, as ArgumentDefaultsHelpFormatter would)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and default not in (None, False, [], argparse.SUPPRESS)
                and "default" not in text):
            text += f" (default: {default})"
        return text


def epilog(module: CommandModule) -> str:
    """The exit codes and the examples under a command's --help."""
    lines = ["exit status:", *(f"  {int(code)}  {meaning}" for code, meaning in module.EXIT.items()),
             "", "examples:", *(f"  {example}" for example in module.EXAMPLES)]
    # (an example may go on over several lines, each already indented)
    return "\n".join(lines)


ROOT_EPILOG = "\n".join([
    f"`{PROG} COMMAND --help` describes each command, its defaults and its exit status.", "",
    "exit status:", *(f"  {int(code)}  {code.meaning}" for code in ExitStatus),
    "  (an unknown command is bad input: exit 2 with a suggestion, never the TUI)", "",
    "examples:", f"  {PROG} 10.0.0.5:443", f"  {PROG} diagnose 127.0.0.1:8080 --json - | jq .diagnosis"])


def load(name: str) -> CommandModule:
    module: ModuleType = importlib.import_module(next(c.module for c in COMMANDS if c.name == name))
    return cast(CommandModule, module)


def build_parser(only: Sequence[str] | None = None) -> Parser:
    """The whole grammar; with ``only``, the options of just those commands (the others are
    listed by name and summary, their modules not imported)."""
    root = Parser(prog=PROG, formatter_class=HelpFormatter,
                  description="Find out why a TCP connection was reset: a guided six-step diagnosis "
                              "with evidence.",
                  epilog=ROOT_EPILOG)
    root.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    root.commands = {}
    for command in COMMANDS:
        if only is not None and command.name not in only:
            root.commands[command.name] = sub.add_parser(command.name, help=command.summary)
            continue
        module = load(command.name)
        p = sub.add_parser(command.name, help=command.summary, description=module.DESCRIPTION,
                           epilog=epilog(module), formatter_class=HelpFormatter)
        module.options(p)
        root.commands[command.name] = p
    return root


def plausible_target(word: str) -> bool:
    """Whether a first word reads as a target of `reset-wizard [TARGET]`: host:port,
    [v6]:port or a URL (a ':'), an address, or a host name with a dot."""
    if ":" in word or word.startswith("["):
        return True
    try:
        ipaddress.ip_address(word)
    except ValueError:
        return bool(_DOTTED_NAME.fullmatch(word))
    return True


def route(argv: list[str]) -> list[str]:
    """The argv with its command: ``reset-wizard [TARGET] [options]`` is the TUI, an existing
    file is ``open FILE``; any other first word is an UnknownCommand (with the command it is
    a near miss of, if any), never the TUI; ``help [COMMAND]`` is --help."""
    if not argv:
        return ["tui"]
    first = argv[0]
    if first in names() or first in _ROOT_FLAGS:
        return argv
    if first == "help":
        if len(argv) > 1 and argv[1] not in names():
            raise UnknownCommand(argv[1])
        return [argv[1], "--help"] if len(argv) > 1 else ["--help"]
    if first.startswith("-"):
        word = _tui_positional(argv)  # `--server netns:web diagnoze ...`: the word after the options
        if word is not None and (os.path.isfile(word) or not plausible_target(word)):
            _not_a_target(word, opens=False)
        return ["tui", *argv]
    if os.path.isfile(first):  # a saved session (open says so if it is none)
        return ["open", *argv]
    if plausible_target(first):
        return ["tui", *argv]
    _not_a_target(first, opens=True)


def _not_a_target(word: str, opens: bool) -> NoReturn:
    """The one line for a word in the target's place that is none: a file, a path, a typo."""
    if not opens and os.path.isfile(word):
        raise WizardError("bad target", f"{word} is a file: `{PROG} open {word}` shows a saved session")
    if "/" in word:
        raise WizardError("no such file", f"{word} (open SESSION.json shows a saved session; "
                                          "a target is host:port or a URL)")
    raise UnknownCommand(word)


def _tui_positional(argv: list[str]) -> str | None:
    """The first word of a TUI command line that is no option nor an option's value."""
    tui = build_parser(only=("tui",)).commands["tui"]
    takes_value = {s for a in tui._actions if a.option_strings and a.nargs is None for s in a.option_strings}
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return next(tokens, None)
        if token in takes_value:
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def join_dash_values(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """``--at -10m`` as ``--at=-10m``: argparse takes a value that starts with '-' for an
    option; a value that is none of this parser's options is a value."""
    options = {s for a in parser._actions for s in a.option_strings}
    takes_value = {s for a in parser._actions if a.option_strings and a.nargs is None
                   for s in a.option_strings}
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return out + args[i:]
        if token in takes_value and i + 1 < len(args):
            value = args[i + 1]
            if value.startswith("-") and value != "-" and value.split("=", 1)[0] not in options:
                out.append(f"{token}={value}")
            else:
                out += [token, value]
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _nested(parser: Parser, args: list[str]) -> Parser:
    """The deepest subcommand parser the args name (``lab up`` -> lab's ``up``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and args and args[0] in action.choices:
            return _nested(cast(Parser, action.choices[args[0]]), args[1:])
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The Namespace of a command line; raises WizardError (bad input) or SystemExit (--help)."""
    argv = route(argv)
    if argv[0] in _ROOT_FLAGS:
        return build_parser(only=()).parse_args(argv)
    root = build_parser(only=(argv[0],))
    command = root.commands[argv[0]]
    typed = list(argv)
    argv = [argv[0], *join_dash_values(_nested(command, argv[1:]), argv[1:])]
    args = to_stdout(root.parse_args(argv))
    args.argv = typed  # the command line as typed (with its command), for fixes that rerun it
    return args


#: output paths that name this process's stdout: written as ``-`` is (never as a file)
STDOUT_NAMES = ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")
_OUTPUTS = ("json", "report", "output")


def to_stdout(args: argparse.Namespace) -> argparse.Namespace:
    """Every output option (--json, --report, -o) that names stdout, as ``-``."""
    for name in _OUTPUTS:
        if getattr(args, name, None) in STDOUT_NAMES:
            setattr(args, name, "-")
    return args
