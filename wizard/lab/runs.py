"""Running lab scenarios end to end (I/O): build, `diagnose` from the client namespace, judge, tear down.

The diagnosis runs as the real CLI in a subprocess inside the client namespace, with the
server context, exactly as `lab up` tells a person to run it. Scenarios share no names, so
several run at once (threads: each spends its time waiting on its subprocess).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.lab.build import Lab
from wizard.lab.scenarios import Scenario

RUN_TIMEOUT = 120.0


@dataclass
class Outcome:
    """What the wizard said about one scenario."""

    scenario: Scenario
    said: str = ""
    confidence: float = 0.0
    seconds: float = 0.0
    exit_code: int | None = None
    ranking: list[tuple[str, float]] = field(default_factory=list)
    missing_evidence: list[str] = field(default_factory=list)
    error: str = ""
    report: str = ""
    stdout: str = ""  # the console's verdict lines (progress goes to stderr)
    session: dict = field(default_factory=dict)
    pid: int = 0  # the diagnose process (`ip netns exec` execs it): names its tracefs instance
    left: list[str] = field(default_factory=list)  # what the teardown could not remove, and why
    wire: Any = None  # what `before` returned: e.g. a real client's run on the wire (wizard.lab.wire)

    @property
    def correct(self) -> bool:
        return not self.error and self.said == self.scenario.cause and not self.missing_evidence


def wizard_argv() -> list[str]:
    """The CLI as this interpreter runs it (works from a checkout and from an install)."""
    return [sys.executable, "-m", "wizard"]


def run_scenario(scenario: Scenario, *, tag: str = "rwlab", root: Path | None = None,
                 keep: Path | None = None, before: Callable[[Lab], Any] | None = None,
                 record: bool = False) -> Outcome:
    """Build (``record``: the trigger captured at both ends), (``before``: look at the built
    lab first), diagnose, judge, tear down."""
    out = Outcome(scenario)
    lab = Lab(scenario, tag=tag, root=root, record=record)
    with tempfile.TemporaryDirectory(prefix=f"{tag}-run-") as tmp:
        work = keep or Path(tmp)
        try:
            lab.up()
            if before is not None:
                out.wire = before(lab)
            argv = lab.diagnose_argv()
            wizard_at = argv.index("reset-wizard")
            argv[wizard_at:wizard_at + 1] = wizard_argv()
            argv += ["--json", str(work / "session.json"), "--report", str(work / "report.md"),
                     "--no-redact", "--force", "--quiet"]
            started = time.monotonic()
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    stdin=subprocess.DEVNULL)
            out.pid = proc.pid
            try:
                out.stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)
                raise
            out.seconds = time.monotonic() - started
            out.exit_code = proc.returncode
            if proc.returncode not in (0, 1):
                out.error = f"diagnose exited {proc.returncode}: {stderr[-2000:]}"
                return out
            out.session = json.loads((work / "session.json").read_text())
            out.report = (work / "report.md").read_text()
            ranking = [(d["cause"], d["confidence"]) for d in out.session.get("diagnosis", [])]
            out.ranking = ranking
            if ranking:
                out.said, out.confidence = ranking[0]
            # the decisive evidence, and the directive, rule or log line quoted with its source
            wanted = [*scenario.evidence, *([scenario.quote] if scenario.quote else [])]
            out.missing_evidence = [rx for rx in wanted if not re.search(rx, out.report)]
        except Exception as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        finally:
            out.left = [line for line in lab.down() if line.startswith("FAILED:")]
    return out


def run_all(scenarios: Iterable[Scenario], *, parallel: int = 4, tag: str = "rwlab", root: Path | None = None,
            on_done: Callable[[Outcome], None] | None = None,
            before: Callable[[Lab], Any] | None = None, record: bool = False) -> list[Outcome]:
    scenarios = list(scenarios)
    results: dict[str, Outcome] = {}

    def one(s: Scenario) -> None:
        results[s.id] = run_scenario(s, tag=tag, root=root, before=before, record=record)
        if on_done:
            on_done(results[s.id])

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(one, scenarios))
    return [results[s.id] for s in scenarios]
