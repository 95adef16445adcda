"""analyze: capture files read (libpcap and dpkt, gzip), every RST's sender named, and the
two-ended proof telling injected resets from the server's."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from wizard.cli.main import main
from wizard.diag.packets.io import libpcap
from wizard.diag.packets.parse.frames import ETHERNET, decode
from wizard.engine.discovery import load
from wizard.engine.observe import analyze_captures
from wizard.lab.pcapgen import Ends, conversation, frame, write_pcap

ENDS = Ends()
T0 = 1_700_000_000.0


def capture(path: Path, endings: list[str], near: str = "client", port0: int = 40000) -> Path:
    def records():
        for i, ending in enumerate(endings):
            yield from conversation(ENDS, port0 + i, T0 + i * 0.1, ending, near=near)
    write_pcap(str(path), records())
    return path


def senders(session) -> list[tuple[str, str]]:
    return [(e.client, e.sender) for e in session.observation.events]


def test_a_frame_decodes_to_the_segment_attribution_reads():
    seg = decode(ETHERNET, 1.5, frame("10.1.0.2", "10.2.0.2", 40000, 8080, "RA", 7, 9, window=501,
                                      ttl=61, ip_id=77, payload=0))
    assert seg is not None
    assert (seg.src, seg.dst, seg.sport, seg.dport, seg.flags, seg.ttl, seg.ip_id, seg.window) == \
        ("10.1.0.2", "10.2.0.2", 40000, 8080, "RA", 61, 77, 501)
    assert seg.options == ("Timestamp",) and seg.df and seg.payload_len == 0
    assert decode(ETHERNET, 0.0, b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28) is None  # ARP


def test_every_rst_of_one_capture_gets_its_sender(tmp_path):
    path = capture(tmp_path / "c.pcap", ["fin", "server-app", "path", "server-kernel", "fin"])
    session = analyze_captures([str(path)], None, load())
    # A capture has no counters: the kernel's stateless RST is the server's host (its kernel
    # or a reject rule of its firewall: one packet).
    assert senders(session) == [("10.1.0.2:40001", "server-app"), ("10.1.0.2:40002", "path"),
                                ("10.1.0.2:40003", "server-host")]
    path_ev = session.observation.events[1]
    assert path_ev.hop_distance == 1 and path_ev.toward == "client"
    assert any("TTL 63" in r and "the server is 2" in r for r in path_ev.reasons)
    assert path_ev.seq_fit == "its sequence number is exactly the sender's next byte"
    assert path_ev.ladder["lanes"] == ["client", "path", "server"]
    assert session.mode == "analyze" and session.target.port == 8080
    assert session.observation.sources[0].flows == 5


def test_a_client_side_capture_of_path_resets_diagnoses_the_middlebox(tmp_path):
    path = capture(tmp_path / "c.pcap", ["fin", "path", "fin", "path"])
    session = analyze_captures([str(path)], 8080, load())
    assert session.diagnosis[0].cause == "middlebox-reset"


def test_the_two_ended_proof_tells_injected_resets_from_the_servers(tmp_path):
    endings = ["fin", "server-app", "path", "server-kernel", "path"]
    client = capture(tmp_path / "client.pcap", endings, "client")
    server = capture(tmp_path / "server.pcap", endings, "server")
    session = analyze_captures([str(client), str(server)], None, load())
    proofs = [(e.client, e.proof, e.sender) for e in session.observation.events]
    assert proofs == [("10.1.0.2:40001", "sent", "server-app"), ("10.1.0.2:40002", "injected", "path"),
                      ("10.1.0.2:40003", "sent", "server-host"), ("10.1.0.2:40004", "injected", "path")]
    assert session.observation.by_proof == {"sent": 2, "injected": 2}
    # A server's RST is read at the server's end, where its TTL is the one it was sent with.
    assert session.observation.events[0].ttl == 64


def test_an_rst_the_client_side_never_saw_was_lost(tmp_path):
    client = capture(tmp_path / "client.pcap", ["fin", "fin"], "client")
    server = capture(tmp_path / "server.pcap", ["fin", "server-app"], "server")
    session = analyze_captures([str(client), str(server)], None, load())
    # The client capture's second flow ends in FIN: the server's RST never reached it.
    assert [(e.proof, e.toward) for e in session.observation.events] == [("lost", "client")]


def test_two_rsts_of_one_flow_with_the_same_sequence_number_each_find_their_own_twin(tmp_path):
    # A server that aborts at once, then answers the client's bytes already on their way with
    # the kernel's RST: two RSTs, one sequence number. Each is one event, proved sent once.
    endings = ["fin", "server-app-then-kernel", "fin"]
    client = capture(tmp_path / "client.pcap", endings, "client")
    server = capture(tmp_path / "server.pcap", endings, "server")
    events = analyze_captures([str(client), str(server)], None, load()).observation.events
    assert [(e.client, e.proof) for e in events] == [("10.1.0.2:40001", "sent"), ("10.1.0.2:40001", "sent")]
    # Only the first reached the client: the second left the server and was lost.
    client = capture(tmp_path / "client1.pcap", ["fin", "server-app", "fin"], "client")
    events = analyze_captures([str(client), str(server)], None, load()).observation.events
    assert [(e.client, e.proof) for e in events] == [("10.1.0.2:40001", "sent"), ("10.1.0.2:40001", "lost")]


def refused(path: Path, near: str, acks: list[int]) -> Path:
    """Connections to a closed port as captured ``near`` one end: a SYN, then the server's RST-ACK
    (window 0, no options, IP ID 0) acknowledging ``SYN seq + ack``: 1 is the kernel's answer."""
    c_ttl, s_ttl = (64, 62) if near == "client" else (62, 64)
    records = []
    for i, ack in enumerate(acks):
        cport, seq, t = 41000 + i, 7_000_000 + i * 1000, T0 + i * 0.3
        records += [(t, frame(ENDS.client, ENDS.server, cport, ENDS.port, "S", seq, 0, window=64240, ttl=c_ttl,
                              ip_id=i + 1)),
                    (t + 0.0002, frame(ENDS.server, ENDS.client, ENDS.port, cport, "RA", 0, seq + ack, window=0,
                                       ttl=s_ttl, ip_id=0, timestamps=False))]
    write_pcap(str(path), records)
    return path


def test_a_closed_ports_answer_proved_sent_names_the_servers_host_not_a_closed_port_alone(tmp_path):
    acks = [1, 1, 5]  # the last RST-ACK acknowledges no SYN of its connection
    client, server = refused(tmp_path / "c.pcap", "client", acks), refused(tmp_path / "s.pcap", "server", acks)
    session = analyze_captures([str(client), str(server)], None, load())
    events = session.observation.events
    assert [(e.proof, e.sender) for e in events] == [("sent", "server-host"), ("sent", "server-host"),
                                                     ("sent", "unknown")]
    kernel = events[0]
    # A closed port's answer and a `reject with tcp reset` rule's are the same packet.
    assert kernel.sender_words.startswith("the server's host refused the connection: nothing listens")
    assert "reject rule" in kernel.sender_words
    assert kernel.timing == "reset-to-syn" and kernel.ttl == 64
    assert any("ack = its seq + 1" in r for r in kernel.reasons)
    assert any("the server's TCP and rule counters would tell which" in r for r in kernel.reasons)
    top = [d.cause for d in session.diagnosis[:2]]
    assert set(top) == {"port-closed", "firewall-reject"}, session.diagnosis
    assert not any("ack = its seq + 1" in r for r in events[2].reasons)
    # One capture alone cannot tell the server's answer from one injected on the path.
    alone = analyze_captures([str(client)], None, load())
    assert {e.sender for e in alone.observation.events} == {"unknown"}


def test_gzip_and_a_machine_without_libpcap_read_the_same(tmp_path, monkeypatch):
    plain = capture(tmp_path / "c.pcap", ["server-app", "path", "fin"])
    gz = tmp_path / "c.pcap.gz"
    with open(plain, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    first = analyze_captures([str(plain)], None, load())
    assert "libpcap" in first.observation.sources[0].reader or libpcap.libpcap_path() is None
    from_gz = analyze_captures([str(gz)], None, load())
    assert "dpkt" in from_gz.observation.sources[0].reader
    monkeypatch.setattr("wizard.diag.packets.io.pcapfile.libpcap_path", lambda: None)
    monkeypatch.setattr("wizard.diag.packets.io.gather.libpcap_path", lambda: None)
    no_pcap = analyze_captures([str(plain)], None, load())
    assert "dpkt" in no_pcap.observation.sources[0].reader
    assert senders(first) == senders(from_gz) == senders(no_pcap) == [
        ("10.1.0.2:40000", "server-app"), ("10.1.0.2:40001", "path")]


def test_a_capture_cut_while_written_is_read_up_to_the_cut(tmp_path):
    path = capture(tmp_path / "c.pcap", ["server-app", "path"])
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # the last record (the path RST) is cut short
    session = analyze_captures([str(path)], None, load())
    assert senders(session) == [("10.1.0.2:40000", "server-app")]


@pytest.mark.parametrize("port", [None, "8080"])
def test_the_command_writes_the_session_and_exits_1_on_a_diagnosis(tmp_path, capsys, port):
    path = capture(tmp_path / "c.pcap", ["path", "fin", "path"])
    argv = ["analyze", str(path), "--json", "-"] + (["--port", port] if port else [])
    assert main(argv) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["mode"] == "analyze" and len(data["observation"]["events"]) == 2
    assert "2 resets: 2 path" in err and "toward the client" in err


def test_a_capture_without_resets_exits_0_and_the_report_says_none(tmp_path, capsys):
    path = capture(tmp_path / "c.pcap", ["fin", "fin"])
    report = tmp_path / "r.md"
    assert main(["analyze", str(path), "--report", str(report)]) == 0
    assert "0 resets" in capsys.readouterr().out
    assert "no reset in the traffic" in report.read_text()


def test_the_tracker_keeps_at_most_max_flows_and_lets_the_ended_go_first():
    from wizard.diag.packets.parse.flows import Tracker

    tracker = Tracker(max_flows=3)
    for i, ending in enumerate(["fin", "server-app", "fin", "server-app", "fin"]):
        for ts, data in conversation(ENDS, 40000 + i, T0 + i, ending):
            tracker.feed(decode(ETHERNET, ts, data))
    assert len(tracker.flows) <= 3 and tracker.flows_seen == 5
    assert [s.flow.key[1] for s in tracker.sightings] == [40001, 40003]


def test_the_trackers_queue_of_ended_flows_stays_bounded_when_ports_are_reused():
    from wizard.diag.packets.parse.flows import Tracker

    tracker = Tracker(max_flows=8)
    segments = [decode(ETHERNET, ts, data) for ts, data in conversation(ENDS, 40000, T0, "fin")]
    for i in range(2_000):  # 2,000 connections from 4 ports: the table never fills, no flow is evicted
        for seg in segments:
            tracker.feed(seg._replace(ts=seg.ts + i, sport=seg.sport if seg.sport == 8080 else 40000 + i % 4,
                                      dport=seg.dport if seg.dport == 8080 else 40000 + i % 4))
    assert tracker.flows_seen == 2_000 and len(tracker.flows) == 4
    assert len(tracker._ended) <= 2 * 8
    assert set(tracker._ended) <= set(tracker.flows)  # no key of a flow long replaced


def test_a_flow_reset_both_ways_is_read_once_each_rst_once(tmp_path):
    records = list(conversation(ENDS, 40000, T0, "path"))
    last = records[-1][0]
    # The client's kernel answers the server's late FIN with a reset of its own.
    records.append((last + 1.0, frame(ENDS.client, ENDS.server, 40000, ENDS.port, "R", 999, 0, window=0,
                                      timestamps=False)))
    path = tmp_path / "c.pcap"
    write_pcap(str(path), records)
    session = analyze_captures([str(path)], None, load())
    assert [(e.toward, e.sender) for e in session.observation.events] == [("client", "path"), ("server", "client")]


def interleaved(path: Path, endings: list[str], exchanges: int = 6, every: float = 0.0005) -> Path:
    """Connections open at once, their packets interleaved in time (as on a busy server)."""
    import heapq

    convs = [conversation(ENDS, 41000 + i, T0 + i * every, e, exchanges=exchanges) for i, e in enumerate(endings)]
    write_pcap(str(path), heapq.merge(*convs, key=lambda r: r[0]))
    return path


def sightings_of(got) -> list[tuple]:
    return [(s.rst, s.before, s.toward, s.expected_seq, s.flow.syn, s.flow.synack) for s in got.tracker.sightings]


def test_the_two_pass_read_gives_the_tracker_what_one_pass_through_it_gives(tmp_path, monkeypatch):
    from wizard.diag.packets.io import gather

    endings = ["fin", "server-app", "fin", "path", "server-kernel", "fin", "server-app"] * 6
    path = interleaved(tmp_path / "busy.pcap", endings, exchanges=12)
    monkeypatch.setattr(gather, "BATCH", 2)  # small batches: windows that must grow backwards
    two = gather.gather(str(path), None)
    assert "two passes" in two.reader
    monkeypatch.setattr(gather, "libpcap_path", lambda: None)
    one = gather.gather(str(path), None)
    assert "two passes" not in one.reader  # every TCP packet through the tracker
    assert len(two.tracker.sightings) == endings.count("server-app") + endings.count("path") \
        + endings.count("server-kernel")
    assert sightings_of(two) == sightings_of(one)
    assert two.tracker.flows_seen == one.tracker.flows_seen == len(endings)


def test_a_port_used_again_gives_each_connection_its_own_reset(tmp_path):
    records = list(conversation(ENDS, 40000, T0, "server-app")) + list(conversation(ENDS, 40000, T0 + 5, "path"))
    path = tmp_path / "again.pcap"
    write_pcap(str(path), records)
    session = analyze_captures([str(path)], None, load())
    assert [(e.client, e.sender) for e in session.observation.events] == [
        ("10.1.0.2:40000", "server-app"), ("10.1.0.2:40000", "path")]


def test_the_command_line_read_at_start_up_is_only_one_read_beyond_doubt():
    from wizard.diag.packets.io.prefetch import read_command_line

    assert read_command_line(["a.pcap", "--port", "443", "--json", "-", "--quiet"]) == (["a.pcap"], 443)
    assert read_command_line(["a.pcap", "b.pcap", "--port=80"]) == (["a.pcap", "b.pcap"], 80)
    assert read_command_line(["a.pcap", "--po", "80"]) is None  # an abbreviation: argparse's to read
    assert read_command_line(["a.pcap", "--port", "x"]) is None
    assert read_command_line(["--help"]) is None
    assert read_command_line(["a", "b", "c"]) is None


def test_the_command_reads_the_capture_ahead_in_children_and_says_the_same(tmp_path):
    import subprocess
    import sys


    path = interleaved(tmp_path / "busy.pcap", ["fin", "server-app", "path", "fin", "server-kernel"] * 4)
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-m", "wizard", "analyze", str(path), "--json", "-"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr  # mixed senders: perhaps no cause reaches the threshold
    data = json.loads(out.stdout)
    inproc = analyze_captures([str(path)], None, load())
    assert [(e["client"], e["sender"], e["ttl"]) for e in data["observation"]["events"]] == \
        [(e.client, e.sender, e.ttl) for e in inproc.observation.events] and len(inproc.observation.events) == 12
    assert data["observation"]["sources"][0]["flows"] == 20


def test_a_timeout_in_the_analysis_thread_is_the_commands_failure(tmp_path, capsys):
    from wizard.cli.status import ExitStatus

    path = capture(tmp_path / "c.pcap", ["fin", "server-app", "path"])
    # in this process no child read ahead: the thread reads it and the deadline has passed
    assert main(["analyze", str(path), "--timeout", "0.000001"]) == ExitStatus.FAILED
    _, err = capsys.readouterr()
    assert "reset-wizard: analysis failed: the analysis did not finish within 1e-06s" in err


def test_the_analysis_threads_result_and_exception_reach_the_caller():
    from wizard.cli.analyze import in_thread

    assert in_thread(lambda: 6 * 7) == 42
    with pytest.raises(ZeroDivisionError):
        in_thread(lambda: 1 / 0)


def test_analyze_quiet_loads_no_event_loop_nor_the_output_checks(tmp_path):
    import subprocess
    import sys

    path = capture(tmp_path / "c.pcap", ["fin", "path"])
    probe = ("import sys; from wizard.cli.main import main; code = main(['analyze', sys.argv[1], '--quiet']); "
             "print(code, sorted(m for m in ('asyncio', 'ssl', 'wizard.hosts.files') if m in sys.modules))")
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", probe, str(path)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "1 []", out.stdout + out.stderr
