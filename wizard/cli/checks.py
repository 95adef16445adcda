"""`reset-wizard checks`: every check with its step and what it needs (I/O: prints)."""

from __future__ import annotations

import argparse

from wizard.cli.status import ExitStatus

DESCRIPTION = """\
List every check the checklist can run: its id, its step, what it needs to run (root on
the client or in the server context, a tool, a server context) and its title. A check
whose needs are not met is skipped with the command that would fix it."""

EXAMPLES = (
    "reset-wizard checks",
    "reset-wizard checks | grep server",
)

EXIT = {ExitStatus.OK: "listed"}


def options(p: argparse.ArgumentParser) -> None:
    # Regenerates checklists/connection-reset.schema.json (tests/unit/test_schema.py).
    p.add_argument("--checklist-schema", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, probes: object = None) -> int:
    import json

    from wizard.engine.discovery import all_checks
    from wizard.model import STEP_IDS, Checklist

    if args.checklist_schema:
        print(json.dumps(Checklist.model_json_schema(by_alias=True), indent=2))
        return ExitStatus.OK

    def order(step: str) -> int:
        return STEP_IDS.index(step) if step in STEP_IDS else len(STEP_IDS)

    rows = [("ID", "STEP", "NEEDS", "TITLE")]
    for cls in sorted(all_checks().values(), key=lambda c: (order(c.step), c.id)):
        needs = [f"root({cls.needs_root})"] if cls.needs_root else []
        needs += [f"{t.name}({t.where})" for t in cls.needs_tools]
        if getattr(cls, "reads_server", False):
            needs.append("server context")
        rows.append((cls.id, cls.step, ", ".join(needs) or "-", cls.title))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return ExitStatus.OK
