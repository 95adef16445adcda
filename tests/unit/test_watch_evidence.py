"""What a watch's resets come with besides their packets, weighed: the counters that moved in
a reset's second and the server's log lines of that second (wizard.engine.observe)."""

from __future__ import annotations

from wizard.analysis import conclude
from wizard.engine.discovery import load
from wizard.engine.observe import analyze_captures, evidence_signals, observed_result
from wizard.lab.pcapgen import Ends, conversation, write_pcap
from wizard.model.observed import ResetEvent

ABORT = ("app.log: 2026-12-07T01:42:29.421Z app[30678] ERROR worker 2: aborted connection from {peer} "
         "(SO_LINGER 0): client sees recv() failed (104: Connection reset by peer)")
CRASH = "app.log: 2026-12-07T01:42:29.421Z app[30678] WARNING worker 2 died (exit status 1); restarting worker"


def resets(tmp_path, n: int) -> list[ResetEvent]:
    """``n`` resets by the server's application, as a capture of them gives them."""
    path = tmp_path / "c.pcap"
    write_pcap(str(path), (r for i in range(n) for r in conversation(Ends(), 40000 + i, 1.7e9 + i, "server-app")))
    session = analyze_captures([str(path)], None, load())
    assert session.observation is not None
    return list(session.observation.events)


def with_evidence(ev: ResetEvent, logs: list[str], counters: dict[str, int] | None = None) -> ResetEvent:
    return ev.model_copy(update={"logs": logs, "counters": counters or {}})


def test_the_counters_of_a_resets_second_and_its_log_lines_become_signals_quoted_with_their_source(tmp_path):
    (ev,) = resets(tmp_path, 1)
    session = analyze_captures([str(tmp_path / "c.pcap")], None, load())
    session.observation.events = [with_evidence(ev, [ABORT.format(peer=ev.client)], {"TcpExtTCPAbortOnData": 1})]
    said = {s.id: s for s in evidence_signals(session.observation, load())}
    assert said["server.abort_on_data"].strength == 0.7  # that second holds the host's other traffic too
    assert said["server.abort_on_data"].fact.startswith("TCPAbortOnData +1 in the second of reset 1")
    assert said["log.reset"].strength == 1.0  # the line names the reset's own client and port
    assert said["log.reset"].fact.startswith("app.log: ") and ev.client in said["log.reset"].fact
    assert evidence_signals(session.observation, None)[0].id == "server.abort_on_data"  # no checklist: no logs


def test_a_line_beside_some_resets_weighs_by_their_share_and_less_when_it_names_no_client(tmp_path):
    events = resets(tmp_path, 4)
    session = analyze_captures([str(tmp_path / "c.pcap")], None, load())
    session.observation.events = [with_evidence(e, [ABORT.format(peer=e.client)] + ([CRASH] if i == 0 else []),
                                                {"TcpExtTCPAbortOnData": 1})
                                  for i, e in enumerate(events)]
    said = {s.id: s for s in evidence_signals(session.observation, load())}
    assert said["log.reset"].strength == 1.0
    assert said["log.crash"].strength == 0.125  # beside 1 of 4 resets, naming no client: 0.5 x 1/4
    assert said["log.crash"].fact.endswith("; beside 1 of 4 resets")


def test_a_watch_whose_every_reset_is_logged_as_an_abort_is_not_called_a_crash_by_the_restarts_beside_it(tmp_path):
    # The demo's shape: each reset logged as an abort by its client's address, a worker
    # restart logged in the same seconds (naming nobody): the aborts are the cause.
    events = resets(tmp_path, 4)
    session = analyze_captures([str(tmp_path / "c.pcap")], None, load())
    session.observation.events = [with_evidence(e, [ABORT.format(peer=e.client), CRASH], {"TcpExtTCPAbortOnData": 1})
                                  for e in events]
    step = session.step("handshake")
    step.checks = [observed_result(session.observation, "live capture", load())]
    conclude(load(), session)
    ranked = [d.cause for d in session.diagnosis]
    assert ranked.index("abortive-close") < ranked.index("server-crash"), session.diagnosis[:3]
    assert session.diagnosis[0].cause == "abortive-close" and session.diagnosis[0].confidence >= 0.5
    assert any("TCPAbortOnData +1 in the second of reset" in line for line in session.diagnosis[0].evidence)
    # without the counters and the lines, the packets alone leave it below the threshold
    bare = analyze_captures([str(tmp_path / "c.pcap")], None, load())
    assert bare.diagnosis[0].cause == "abortive-close" and bare.diagnosis[0].confidence < 0.5
