"""A scripted engine for the UI tests: canned results per check, optional gates to hold a check.

It speaks the same protocol as wizard.ui.engine.RunnerEngine and emits the runner's own
event types, so the app cannot tell the difference; results are fixed, so snapshots are
deterministic (no elapsed times, no random ports).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wizard.engine.runner import CheckFinished, CheckStarted, StepFinished, StepStarted
from wizard.model import (
    Answers,
    CheckResult,
    Context,
    Evidence,
    Session,
    Signal,
    Status,
    StepResult,
    ToolInfo,
    WizardError,
    load_checklist,
    parse_target,
)
from wizard.ui.backend import Skip

FROZEN_CHECKLIST = Path(__file__).with_name("checklist.yaml")
FIXED = datetime(2026, 11, 22, 3, 50, tzinfo=UTC)

TITLES = {
    "error.classify": "Classify the error text", "client.sockets": "Client connections",
    "server.context": "Server context", "dns.resolve": "Name resolution", "tcp.connect": "TCP connect",
    "icmp.ping": "ICMP echo", "logs.excerpt": "Log excerpts", "firewall.rules": "Firewall rules",
    "listen.sockets": "Listening sockets", "kernel.counters": "Kernel counters",
    "tcp.burst": "Handshake burst", "tcp.exchange": "Probe exchange",
}

LOG = """2026-11-22T03:48:07.901+00:00 INFO request from 127.0.0.1:40112 GET /api/orders
2026-11-22T03:48:08.003+00:00 ERROR worker 2 aborted connection 127.0.0.1:40112 (SO_LINGER 0)
2026-11-22T03:48:08.004+00:00 INFO worker 2 restarting
2026-11-22T03:48:09.120+00:00 INFO request from 127.0.0.1:40114 GET /health"""

LADDER = {"lanes": ["client", "server"], "events": [
    {"ms": 0.0, "src": "client", "dst": "server", "label": "SYN", "note": ""},
    {"ms": 0.1, "src": "server", "dst": "client", "label": "SYN-ACK", "note": ""},
    {"ms": 0.1, "src": "client", "dst": "server", "label": "ACK", "note": ""},
    {"ms": 0.3, "src": "client", "dst": "server", "label": "data 78 B", "note": "GET /api/orders"},
    {"ms": 301.2, "src": "server", "dst": "client", "label": "RST", "note": "after the request"},
]}


def _r(check: str, status: Status, summary: str, evidence: list[Evidence] | None = None,
       signals: list[tuple[str, str]] | None = None, **extra: Any) -> CheckResult:
    return CheckResult(id=check, title=TITLES[check], status=status, summary=summary,
                       evidence=evidence or [], duration_ms=12,
                       signals=[Signal(id=s, fact=f) for s, f in (signals or [])], **extra)


def abortive_close_results() -> dict[str, list[CheckResult]]:
    """A server that aborts after the request: every evidence kind the UI renders."""
    return {
        "identify": [
            _r("error.classify", Status.WARN, "curl 56: a reset of an open connection",
               [Evidence(kind="fact", title="curl: (56) Recv failure: Connection reset by peer",
                         source="step 1 error text")], [("log.reset", "curl 56 reset by peer")]),
            _r("client.sockets", Status.PASS, "no client process holds a connection to the target"),
            _r("server.context", Status.PASS, "the server context local owns 127.0.0.1"),
        ],
        "connectivity": [
            _r("dns.resolve", Status.PASS, "127.0.0.1 is an address literal"),
            _r("tcp.connect", Status.PASS, "127.0.0.1:8080 accepted the handshake in 0.1 ms",
               signals=[("connect.ok", "127.0.0.1:8080 accepted the handshake")]),
            _r("icmp.ping", Status.SKIP, "skipped: ping is not installed in local",
               reason="ping is not installed in local", fix="apt install iputils-ping"),
        ],
        "server-logs": [
            _r("logs.excerpt", Status.FAIL, "1 reset line and 1 restart in /var/log/app.log",
               [Evidence(kind="log", title="/var/log/app.log around 03:48:08", source="/var/log/app.log",
                         text=LOG, highlight=[1, 2])], [("log.crash", "worker 2 restarting")]),
        ],
        "firewall": [
            _r("firewall.rules", Status.PASS, "no rule matching port 8080 rejects or drops",
               [Evidence(kind="rules", title="rules matching tcp dport 8080", source="nft -a list ruleset",
                         data={"columns": ["chain", "rule", "packets"],
                               "rows": [["input", "tcp dport 8080 accept", 14],
                                        ["input", "tcp dport 22 accept", 3]], "match": [0]})],
               [("fw.no_rule", "no reject or drop rule matches port 8080")]),
        ],
        "app-errors": [
            _r("listen.sockets", Status.PASS, "python3 listens on 127.0.0.1:8080, queue 0/64",
               [Evidence(kind="table", title="listeners on port 8080", source="ss -ltnp",
                         data={"columns": ["local", "Recv-Q", "Send-Q", "process"],
                               "rows": [["127.0.0.1:8080", 0, 64, "python3 (pid 4242)"]]})],
               [("listener.present", "python3 listens on 127.0.0.1:8080")]),
            _r("kernel.counters", Status.FAIL, "TCPAbortOnData moved by 1 during the probe",
               [Evidence(kind="counters", title="TCP counters around the probe", source="nstat -az",
                         data={"before": {"TcpExtTCPAbortOnData": 7, "TcpOutRsts": 20, "TcpExtListenOverflows": 0},
                               "after": {"TcpExtTCPAbortOnData": 8, "TcpOutRsts": 21, "TcpExtListenOverflows": 0}})],
               [("server.abort_on_data", "TCPAbortOnData moved by 1")]),
        ],
        "handshake": [
            _r("tcp.burst", Status.PASS, "10 of 10 handshakes completed",
               signals=[("burst.all_ok", "10 of 10 handshakes completed")]),
            _r("tcp.exchange", Status.FAIL, "reset 301 ms after the request was sent",
               [Evidence(kind="ladder", title="the probe connection", source="tcp.exchange probe",
                         data=LADDER)], [("probe.reset_after_data", "RST 301 ms after 78 B of data")]),
        ],
    }


class ScriptedEngine:
    """Answers from ``results``; a check whose (step, index) is in ``gates`` waits for it."""

    def __init__(self, results: dict[str, list[CheckResult]] | None = None,
                 skips: list[Skip] | None = None, root_skips: list[Skip] | None = None) -> None:
        # A frozen copy of the checklist: the UI's snapshots must not move when the
        # checklist's weights or wording are tuned (those have their own tests).
        self._checklist = load_checklist(FROZEN_CHECKLIST)
        canned = results if results is not None else abortive_close_results()
        # One result per check of the checklist, in its order: canned where given, else
        # an unremarkable pass, so the script follows the checklist as it grows.
        self.results = {}
        for step in self._checklist.steps:
            by_id = {r.id: r for r in canned.get(step.id, [])}
            self.results[step.id] = [by_id.get(spec.check) or CheckResult(
                id=spec.check, title=self.title(spec.check), status=Status.PASS,
                summary="nothing notable", duration_ms=12) for spec in step.checks]
        self.skips = skips or []
        self.root_skips = root_skips or []
        self.gates: dict[tuple[str, int], asyncio.Event] = {}
        #: a step in here starts (says StepStarted, starts its checks) only once its event is set
        self.step_gates: dict[str, asyncio.Event] = {}
        self.calls: list[tuple[str, int | None]] = []
        self.prepared: tuple[str, Answers, str] | None = None
        self.closed = False

    def checklist(self) -> Any:
        return self._checklist

    def title(self, check_id: str) -> str:
        return TITLES.get(check_id, check_id)

    def index(self, step_id: str, check_id: str) -> int:
        """The position of a check in its step, as the runner's events number it."""
        return [s.check for s in self._checklist.step(step_id).checks].index(check_id)

    def expected_skips(self) -> list[Skip]:
        return list(self.root_skips)

    async def prepare(self, target_text: str, answers: Answers, server_spec: str) -> Session:
        target = parse_target(target_text)
        if target.host.endswith(".invalid"):
            raise WizardError("unresolvable host", f"{target.host} does not exist in DNS (NXDOMAIN)")
        target.addresses = [target.host] if target.is_address else ["192.0.2.10"]
        self.prepared = (target_text, answers, server_spec)
        return Session(tool=ToolInfo(version="0.1.0"), started_at=FIXED, target=target,
                       context=Context(client="testhost", server=server_spec), answers=answers)

    async def preflight(self) -> list[Skip]:
        return list(self.skips)

    async def run_step(self, step_id: str, only: int | None, emit: Callable[[Any], None]) -> StepResult:
        self.calls.append((step_id, only))
        canned = self.results.get(step_id, [])
        indexes = range(len(canned)) if only is None else [only]
        if step_id in self.step_gates:
            await self.step_gates[step_id].wait()
        emit(StepStarted(step_id))
        for i in indexes:
            emit(CheckStarted(step_id, i, canned[i].id, canned[i].title))

        async def one(i: int) -> CheckResult:
            gate = self.gates.get((step_id, i))
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)
            emit(CheckFinished(step_id, i, canned[i]))
            return canned[i]

        done = await asyncio.gather(*(one(i) for i in indexes))
        step = StepResult(id=step_id, checks=list(done))  # type: ignore[arg-type]
        step.refresh_status()
        emit(StepFinished(step_id, step))
        return step

    async def run_steps(self, step_ids: list[str], emit: Callable[[Any], None]) -> list[StepResult]:
        # Side by side, as the real engine runs a group of overlapping steps.
        return list(await asyncio.gather(*(self.run_step(s, None, emit) for s in step_ids)))

    async def run_groups(self, groups: list[list[str]], emit: Callable[[Any], None]) -> list[StepResult]:
        return [step for group in groups for step in await self.run_steps(group, emit)]

    def close(self) -> None:
        self.closed = True
