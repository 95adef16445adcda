"""analyze: a large pcap read in two halves at once gives exactly what one read gives, wherever
the cut falls (connections open across it, their SYN before it and RST after, retransmissions
and segments out of order on both sides), and a cut that is no record boundary is not taken."""

from __future__ import annotations

import heapq
from pathlib import Path

import pytest

from wizard.diag.packets.io import gather, halves
from wizard.diag.packets.io.pcaplib import skim
from wizard.diag.packets.parse.dump import FILE_HEADER, record_at
from wizard.lab.pcapgen import Ends, conversation, write_pcap

ENDS = Ends()
T0 = 1_700_000_000.0
ENDINGS = ["server-app", "fin", "path", "server-kernel", "server-app", "fin", "path", "server-app"]


def busy(path: Path, truncate: int = 0) -> Path:
    """Connections open at once, interleaved; each reset one's third data segment sent again
    at its end, and its fourth and fifth packets swapped (out of order)."""
    convs = []
    for i, ending in enumerate(ENDINGS):
        recs = list(conversation(ENDS, 42000 + i, T0 + i * 0.0007, ending, exchanges=5))
        if ending != "fin":
            recs[3], recs[4] = (recs[4][0], recs[3][1]), (recs[3][0], recs[4][1])
            recs.insert(len(recs) - 1, (recs[-2][0], recs[5][1]))
        convs.append(recs)
    write_pcap(str(path), heapq.merge(*convs, key=lambda r: r[0]))
    if truncate:
        path.write_bytes(path.read_bytes()[:-truncate])
    return path


def boundaries(path: Path) -> list[int]:
    data, pos, out = path.read_bytes(), FILE_HEADER, []
    while (rec := record_at(data, pos)) is not None:
        out.append(pos)
        pos = rec[2]
    return out


def facts(got: gather.Gathered) -> tuple:
    t = got.tracker
    return ([(s.rst, s.before, s.toward, s.expected_seq, s.flow.syn, s.flow.synack, s.flow.packets, s.flow.fins,
              s.flow.next_seq) for s in t.sightings], t.packets, t.flows_seen, t.first_ts, t.last_ts, t.servers)


def read(path: Path, monkeypatch: pytest.MonkeyPatch, first_cut: int | None, second_cut: int | None):
    monkeypatch.setattr(halves, "cut_for", lambda _path: first_cut)
    monkeypatch.setattr(gather, "noted_cut", lambda _first: second_cut)
    bpf = f"tcp and {gather.OPENERS_AND_RESETS}"
    return halves.skim_halves(str(path), bpf, gather.BATCH, lambda: None), gather.gather(str(path), None)


@pytest.mark.parametrize("truncate", [0, 10])
def test_a_cut_at_any_record_boundary_reads_what_one_read_reads(tmp_path, monkeypatch, truncate):
    monkeypatch.setattr(gather, "BATCH", 3)  # positions noted every 3 records: batches that cross the cut
    path = busy(tmp_path / "busy.pcap", truncate)
    one_skim = skim(str(path), f"tcp and {gather.OPENERS_AND_RESETS}", 3)
    (_, whole_cut), one = read(path, monkeypatch, None, None)
    assert whole_cut is None and len(one.tracker.sightings) >= 5
    cuts = boundaries(path)
    assert len(cuts) > 100
    for cut in cuts[1:]:
        (two_skim, proved), two = read(path, monkeypatch, cut, cut)
        assert proved == cut
        assert two_skim == one_skim, cut  # the same copy, positions noted and count
        assert facts(two) == facts(one), cut


def test_a_cut_inside_a_record_is_not_taken_and_the_file_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(gather, "BATCH", 3)
    path = busy(tmp_path / "busy.pcap")
    (_, _), one = read(path, monkeypatch, None, None)
    one_skim = skim(str(path), f"tcp and {gather.OPENERS_AND_RESETS}", 3)
    for cut in boundaries(path)[5::7]:
        for inside in (cut + 1, cut + 16, cut - 3):
            (two_skim, proved), two = read(path, monkeypatch, inside, None)
            assert proved is None
            assert two_skim == one_skim and facts(two) == facts(one)


def test_a_second_half_whose_thread_fails_is_read_by_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(gather, "BATCH", 3)
    path = busy(tmp_path / "busy.pcap")
    (_, _), one = read(path, monkeypatch, None, None)
    one_skim = skim(str(path), f"tcp and {gather.OPENERS_AND_RESETS}", 3)
    monkeypatch.setattr(halves.Later, "_run", lambda self: None)  # ends without reading to the end
    cut = boundaries(path)[60]
    (two_skim, proved), two = read(path, monkeypatch, cut, cut)
    assert proved is None and two_skim == one_skim and facts(two) == facts(one)


def test_the_cut_is_looked_for_only_in_large_pcap_files_and_lands_on_a_record(tmp_path, monkeypatch):
    path = busy(tmp_path / "busy.pcap")
    assert halves.cut_for(str(path)) is None  # below MIN_SIZE
    monkeypatch.setattr(halves, "MIN_SIZE", 0)
    monkeypatch.setattr(halves.os, "sched_getaffinity", lambda _pid: {0, 1})
    cut = halves.cut_for(str(path))
    size = path.stat().st_size
    assert cut in boundaries(path) and size // 2 <= cut < size // 2 + 2000
    first, proved = halves.skim_halves(str(path), f"tcp and {gather.OPENERS_AND_RESETS}", 3, lambda: None)
    assert proved == cut
    noted = halves.noted_cut(first)
    assert noted in first.sources[1:-1] and noted in boundaries(path)
    monkeypatch.setattr(halves.os, "sched_getaffinity", lambda _pid: {0})
    assert halves.cut_for(str(path)) is None and halves.noted_cut(first) is None  # one processor: one read


def test_the_command_reads_a_large_capture_in_halves_ahead_and_says_what_one_read_says(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys

    from wizard.engine.discovery import load
    from wizard.engine.observe import analyze_captures

    endings = ["fin"] * 9 + ["server-app", "fin", "path", "fin", "server-kernel"]
    convs = [conversation(ENDS, 30000 + i, T0 + i * 0.003, endings[i % len(endings)], exchanges=40, size=1400)
             for i in range(1100)]
    path = tmp_path / "large.pcap"
    write_pcap(str(path), heapq.merge(*convs, key=lambda r: r[0]))
    assert path.stat().st_size >= halves.MIN_SIZE
    monkeypatch.setattr(halves.os, "sched_getaffinity", lambda _pid: {0, 1})
    cut = halves.cut_for(str(path))
    assert cut in boundaries(path)
    env = dict(__import__("os").environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-m", "wizard", "analyze", str(path), "--json", "-"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr
    data = json.loads(out.stdout)["observation"]
    monkeypatch.setattr(halves, "_worth_halves", lambda _size: False)  # one read, in this process
    one = analyze_captures([str(path)], None, load()).observation
    assert len(one.events) == 3 * 78  # three resets in each 14 connections
    fields = ("client", "toward", "flags", "sender", "ttl", "hop_distance", "seq_fit", "timing", "timing_detail")
    assert [tuple(e[f] for f in fields) for e in data["events"]] == \
        [tuple(getattr(e, f) for f in fields) for e in one.events]
    assert data["sources"][0]["packets"] == one.sources[0].packets
    assert data["sources"][0]["flows"] == one.sources[0].flows == 1100


def test_the_second_halfs_records_handed_over_chunk_by_chunk_read_as_one_read(tmp_path, monkeypatch):
    monkeypatch.setattr(gather, "BATCH", 3)
    monkeypatch.setattr(halves, "STREAM_STEP", 2)  # two kept records a chunk: many chunks
    path = busy(tmp_path / "busy.pcap")
    (_, _), one = read(path, monkeypatch, None, None)
    for cut in boundaries(path)[1::5]:
        (_, _), two = read(path, monkeypatch, None, cut)
        assert facts(two) == facts(one), cut


def test_a_second_half_thread_stopping_midway_is_read_on_from_its_last_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(gather, "BATCH", 3)
    monkeypatch.setattr(halves, "STREAM_STEP", 2)
    path = busy(tmp_path / "busy.pcap")
    (_, _), one = read(path, monkeypatch, None, None)
    hand_over, given = halves.Later._hand_over, []

    def failing(self, sent, end):
        given.append(end)
        if len(given) == 3:
            self._stop.set()  # it ends after this chunk, before the end of the file
        return hand_over(self, sent, end)

    monkeypatch.setattr(halves.Later, "_hand_over", failing)
    cut = boundaries(path)[40]
    (_, _), two = read(path, monkeypatch, None, cut)
    assert len(given) == 3  # three chunks fed, then the rest read from where the third ended
    assert facts(two) == facts(one)


class _GoAfter:
    """A ``go`` event that is set once it has been looked at ``n`` times."""

    def __init__(self, n: int) -> None:
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0


def test_a_second_half_begun_late_from_a_cut_past_the_read_gives_one_reads_result(tmp_path, monkeypatch):
    path = busy(tmp_path / "busy.pcap")
    bpf = f"tcp and {gather.OPENERS_AND_RESETS}"
    one_skim = skim(str(path), bpf, 3)
    cuts = boundaries(path)
    asked: list[int] = []
    taken = 0
    for n in (0, 1, 4, 9):
        for cut in cuts[20::17]:
            def near(_path, around, cut=cut):
                asked.append(around)
                return cut
            monkeypatch.setattr(halves, "cut_near", near)
            got, proved = halves.skim_halves(str(path), bpf, 3, lambda: None, _GoAfter(n))  # type: ignore[arg-type]
            assert got == one_skim, (n, cut)
            assert proved in (cut, None)  # None: the read had passed the cut when the thread would begin
            taken += proved == cut
    assert taken >= 10 and asked and all(a > 0 for a in asked)  # the late halves were read and joined
    never, proved = halves.skim_halves(str(path), bpf, 3, lambda: None, _GoAfter(10**9))  # type: ignore[arg-type]
    assert never == one_skim and proved is None


def test_a_late_second_half_is_cut_in_the_middle_of_what_is_left(tmp_path, monkeypatch):
    path = busy(tmp_path / "busy.pcap")
    monkeypatch.setattr(halves, "MIN_SIZE", 0)
    monkeypatch.setattr(halves.os, "sched_getaffinity", lambda _pid: {0, 1})
    size = path.stat().st_size
    at = size // 3
    cut = halves.cut_near(str(path), (at + size) // 2)
    assert cut in boundaries(path) and (at + size) // 2 <= cut < (at + size) // 2 + 2000
    got, proved = halves.skim_halves(str(path), f"tcp and {gather.OPENERS_AND_RESETS}", 3, lambda: None,
                                     _GoAfter(2))  # type: ignore[arg-type]
    assert proved is not None and proved in boundaries(path)
    assert got == skim(str(path), f"tcp and {gather.OPENERS_AND_RESETS}", 3)
