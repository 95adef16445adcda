"""Reading the verdict back from each place it is shown, for the one-verdict tests (issue 20):
the report's verdict line, the console's first line, the TUI's headline, the JSON and the exit
status. Unit tests feed generated sessions; lab tests feed what a real `diagnose` wrote."""

from __future__ import annotations

import json
import re

from wizard.model import Session
from wizard.ui.screens.summary import verdict_head


def report_verdict(report: str) -> str | None:
    """The cause the report's verdict names, or None for "no cause" and "none"."""
    line = next(ln for ln in report.splitlines() if ln.startswith("**Verdict:"))
    found = re.match(r"\*\*Verdict: `([a-z0-9-]+)`", line)
    return found.group(1) if found else None


def console_verdict(first_line: str) -> str | None:
    """The cause the console's verdict line names, or None when it names no cause."""
    found = re.match(r"verdict: ([a-z0-9-]+) \(\d+%\): ", first_line)
    return found.group(1) if found else None


def disagreements(session_json: str, report: str, stdout: str, exit_code: int | None) -> list[str]:
    """Every place where a finished run's outputs do not show the JSON's verdict."""
    data = json.loads(session_json)
    session = Session.from_json(session_json)
    verdict = data["verdict"]
    first = data["diagnosis"][0]["cause"] if data["diagnosis"] else None
    named = verdict.get("cause") if verdict["kind"] == "cause" else None
    wrong = []
    if verdict.get("cause") is not None and first != verdict["cause"]:
        wrong.append(f"JSON: verdict {verdict['cause']!r} but diagnosis[0] is {first!r}")
    if report_verdict(report) != named:
        wrong.append(f"report: verdict line names {report_verdict(report)!r}, JSON {named!r}")
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    said = console_verdict(lines[0]) if lines else None
    if not lines or not lines[0].startswith("verdict: ") or said != named:
        wrong.append(f"console: {lines[0] if lines else '(nothing on stdout)'!r}, JSON {named!r}")
    head = verdict_head(session)
    top = session.diagnosis[0] if session.diagnosis else None
    if named is not None:
        if top is None or not head.startswith(f"Most likely: {top.title or top.cause} ("):
            wrong.append(f"TUI: headline {head!r}, JSON {named!r}")
    elif head.startswith("Most likely: "):
        wrong.append(f"TUI: headline {head!r} but the JSON names no cause")
    expected = 3 if data.get("interrupted") else (1 if named else 0)
    if exit_code != expected:
        wrong.append(f"exit status {exit_code}, the verdict wants {expected}")
    return wrong
