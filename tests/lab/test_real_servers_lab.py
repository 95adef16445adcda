"""Real server software in the lab: each incident shown on the wire, then diagnosed end to end.

Every scenario of wizard.lab.realscenarios runs Debian's own server (nginx, HAProxy, Apache,
Caddy, gunicorn, uvicorn, Node, Redis, PostgreSQL) in the foreground in its server namespace,
with a configuration and logs in its lab directory. Before `diagnose` runs, a real client
(curl, Python's http.client, a socket for Redis, psql) meets the incident under tcpdump in the
client namespace: the test first asserts that it really happens (the client's words, and
whether an RST, or for an in-band refusal the server's FIN, reaches it), then that the verdict
names the cause, the component and the decisive evidence. Scenarios run concurrently, once per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.lab.conftest import _require_lab
from tests.verdicts import disagreements
from wizard.lab import real
from wizard.lab.build import running
from wizard.lab.realscenarios import REAL_SCENARIOS
from wizard.lab.runs import Outcome, run_all
from wizard.lab.scenarios import Scenario
from wizard.lab.wire import observe

TAG = "rwrs"
# The component as the report names it: the server program's own name and its pid.
COMPONENT = {"nginx": "nginx", "haproxy": "HAProxy", "apache2": "Apache httpd", "caddy": "Caddy",
             "gunicorn": "gunicorn", "uvicorn": "uvicorn", "node": "Node.js", "redis": "Redis",
             "postgres": "PostgreSQL"}
# The packages' own configurations, which these servers do not run with (each is started with
# the scenario's file): a reader that falls back on them quotes a server that is not running.
# Debian ships them with values unlike the lab's (HAProxy `timeout client 50000`, nginx
# `keepalive_timeout 65`), so a quote of one is also caught by its value.
UNUSED = (r"/etc/(nginx|haproxy|apache2|caddy|redis|postgresql)/", r"/var/lib/postgresql/", r"timeout client 50000",
          r"keepalive_timeout 65\b")
PARALLEL = int(os.environ.get("RESET_WIZARD_LAB_PARALLEL", "6"))
IDS = [s.id for s in REAL_SCENARIOS]


def _require_software() -> None:
    missing = sorted({why for s in REAL_SCENARIOS if (why := real.missing(s.real))})
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("real servers missing in CI: " + "; ".join(missing), pytrace=False)
        pytest.skip("; ".join(missing))


@pytest.fixture(scope="module")
def lab_root() -> Iterator[Path]:
    # Not under pytest's 0700 tmp: servers that drop to their own user (www-data) read here.
    root = Path(tempfile.mkdtemp(prefix="rwrs-labs-", dir="/run" if os.access("/run", os.W_OK) else None))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def outcomes(lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    _require_lab()
    _require_software()
    keep = tmp_path_factory.mktemp("rwrs-captures")
    done = run_all(REAL_SCENARIOS, parallel=PARALLEL, tag=TAG, root=lab_root, before=partial(observe, keep=keep))
    return {o.scenario.id: o for o in done}


@pytest.mark.parametrize("scenario", REAL_SCENARIOS, ids=IDS)
def test_the_incident_really_happens_on_the_wire(scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert o.wire is not None, o.error
    assert re.search(scenario.said, o.wire.said), f"the client said {o.wire.said!r}"
    assert o.wire.packets > 0, "the capture saw nothing of the client's connection"
    if scenario.rst:
        assert o.wire.resets >= 1, f"no RST reached the client ({o.wire.said})"
    else:
        assert o.wire.resets == 0, f"{o.wire.resets} RSTs reached the client ({o.wire.said})"
    if scenario.closed:
        assert o.wire.fins >= 1, f"the server's FIN never reached the client ({o.wire.said})"


# Who sends each real server's reset, from how it comes about: the application aborting its
# socket (a reject, a limit, a timeout that closes with SO_LINGER 0 or with unread data), or,
# after the server closed the connection (FIN), its kernel refusing the client's late write,
# which a capture tells from a reject rule's reset only by the server's counters: its host.
APP_RESET = {"real-haproxy/src-reject", "real-nginx/deny-drop", "real-haproxy/conn-rate-limit",
             "real-nginx/limit-req-drop", "real-haproxy/client-timeout-nolinger", "real-nginx/header-timeout",
             "real-redis/maxclients"}
AFTER_FIN = {s.id for s in REAL_SCENARIOS if s.cause == "keepalive-race" and s.rst} | {"real-postgres/backend-killed"}
# Redis writes its refusal and closes at once, racing the client's first command: read before
# the close, that command makes the close an abort (the application's); read after, it meets
# a closed socket (the kernel's answer). Both are the server's end, never the path.
RACING = {"real-redis/maxclients": {("sent", "server-app", None), ("sent", "server-host", None)}}


def test_every_real_reset_has_its_sender() -> None:
    assert {s.id for s in REAL_SCENARIOS if s.rst} == APP_RESET | AFTER_FIN and not APP_RESET & AFTER_FIN


@pytest.mark.parametrize("scenario", REAL_SCENARIOS, ids=IDS)
def test_analyze_of_the_two_captures_names_who_sent_each_reset(scenario: Scenario, outcomes: dict[str, Outcome]
                                                                ) -> None:
    o = outcomes[scenario.id]
    assert o.wire is not None and o.wire.captures, o.error
    out = subprocess.run([sys.executable, "-m", "wizard", "analyze", *map(str, o.wire.captures), "--json", "-"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    session = json.loads(out.stdout)
    events = [e for e in session["observation"]["events"] if e["toward"] == "client"]
    assert len(events) == o.wire.resets, [e["reasons"] for e in events]
    if not scenario.rst:
        return
    # Proved sent at the server's end: no device between the two captures made it.
    want = ("sent", "server-app", None) if scenario.id in APP_RESET else ("sent", "server-host", "reset-after-server-fin")
    # A flow's first RST decides; one after it on the same flow is the server kernel's answer to
    # the client's bytes that were already on their way when the application aborted.
    first: dict[str, dict[str, object]] = {}
    for e in sorted(events, key=lambda e: e["at"]):
        if e["client"] in first:
            assert (e["proof"], e["sender"]) == ("sent", "server-host"), e["reasons"]
        first.setdefault(e["client"], e)
    got = {(e["proof"], e["sender"], e["timing"] if want[2] else None) for e in first.values()}
    assert len(got) == 1 and got <= RACING.get(scenario.id, {want}), [e["reasons"] for e in events]
    top = [d["cause"] for d in session["diagnosis"][:2]]
    if scenario.id in AFTER_FIN:
        # The packets show a connection written into after the server closed it: a keep-alive
        # reused late, unless the server's process ended (a crash closes its sockets the same way).
        assert top == ["keepalive-race", "server-crash"], session["diagnosis"][:3]


@pytest.mark.parametrize("scenario", REAL_SCENARIOS, ids=IDS)
def test_the_real_server_is_diagnosed_with_its_component_and_evidence(
        scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert not o.error, o.error
    assert o.said == scenario.cause, f"{scenario.id}: ranked {o.ranking}"
    assert o.confidence >= 0.5
    assert o.exit_code == (0 if scenario.cause == "no-reset-observed" else 1)
    # One verdict everywhere: the JSON's first entry is what the report, console, TUI and exit status say.
    assert not (wrong := disagreements(json.dumps(o.session), o.report, o.stdout, o.exit_code)), wrong
    assert not o.missing_evidence, f"the report does not cite {o.missing_evidence}"
    # The component: the report names the server that owns the listener, with its pid.
    component = rf"\b{re.escape(COMPONENT[scenario.real])}, pid \d+"
    assert re.search(component, o.report), f"the report never names {COMPONENT[scenario.real]} with its pid"
    # The deciding directive, rule or log line, quoted with its source (file:line, the command
    # line, or the server's own CONFIG GET), in the report and in the JSON session.
    assert scenario.quote, "every real scenario says what the report must quote"
    assert re.search(scenario.quote, o.report), f"the report does not quote {scenario.quote!r}"
    assert re.search(scenario.quote, _strings(o.session)), f"the JSON session does not hold {scenario.quote!r}"


def _strings(value: object) -> str:
    """Every string of the JSON session, one a line (facts, evidence titles, texts, sources)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_strings(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(_strings(v) for v in value)
    return ""


@pytest.mark.parametrize("scenario", REAL_SCENARIOS, ids=IDS)
def test_nothing_is_quoted_from_a_configuration_the_running_server_does_not_use(
        scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[scenario.id]
    assert not o.error, o.error
    for text, what in ((o.report, "report"), (json.dumps(o.session), "JSON session")):
        for unused in UNUSED:
            hit = re.search(unused, text)
            assert hit is None, f"the {what} quotes {hit.group(0)!r}, which the running server does not use"


def test_the_real_servers_cover_the_software_and_leave_nothing_behind(
        outcomes: dict[str, Outcome], lab_root: Path) -> None:
    assert len({s.real for s in REAL_SCENARIOS}) >= 7
    assert len({s.id for s in REAL_SCENARIOS}) == len(REAL_SCENARIOS)
    failed = {o.scenario.id: o.left for o in outcomes.values() if o.left}
    assert not failed, f"teardown could not remove: {failed}"
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert f"{TAG}-" not in names
    assert running(lab_root) == []
    assert list(lab_root.iterdir()) == []
    # No packaged service was used: nothing of the real servers runs in the root namespace.
    root_listeners = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=10).stdout
    for s in REAL_SCENARIOS:
        assert f":{s.port} " not in root_listeners or s.real not in root_listeners
