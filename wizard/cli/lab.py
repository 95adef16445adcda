"""`reset-wizard lab list | up NAME | down [NAME]`: the fault lab (I/O: network namespaces)."""

from __future__ import annotations

import argparse
import sys

from wizard.cli.status import ExitStatus

DESCRIPTION = """\
The fault lab builds a scenario in network namespaces (a client, a router, a server with
its rules and logs) so that a diagnosis can be tried on a real fault: `list` names every
scenario with its expected cause, `up NAME` builds one and prints the diagnose command for
it, `down` removes one lab (NAME) or all of them. up and down need root."""

EXAMPLES = (
    "reset-wizard lab list",
    "sudo reset-wizard lab up abortive-close && sudo reset-wizard lab down",
)

LIST = "every scenario with its expected cause and explanation"
UP = "build a scenario (root) and print how to diagnose it"
DOWN = "remove a lab (root), or every lab without NAME"

EXIT = {ExitStatus.OK: "done",
        ExitStatus.BAD_INPUT: "bad input: an unknown scenario, no root or no namespaces here",
        ExitStatus.FAILED: "building or removing the lab failed"}


def options(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lab_command", metavar="list|up|down", parser_class=type(p), required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        from wizard.cli.parser import HelpFormatter, epilog

        return sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter,
                              epilog=epilog(sys.modules[__name__]))

    command("list", LIST)
    command("up", UP).add_argument("name", metavar="NAME", help="a scenario of `reset-wizard lab list`")
    command("down", DOWN).add_argument("name", nargs="?", metavar="NAME",
                                       help="the lab to remove (default: every lab)")


def run(args: argparse.Namespace, probes: object = None) -> int:
    from wizard.lab.commands import lab_down, lab_list, lab_up

    if args.lab_command == "list":
        return lab_list()
    if args.lab_command == "up":
        return lab_up(args.name)
    return lab_down(args.name)
