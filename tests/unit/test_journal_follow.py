"""watch's journal follower: a unit followed with journalctl -f through the Host, a journal
file polled by cursor while it is appended to (a real journal file, built with
systemd-journal-remote, read by the real journalctl), each reset with the entries of its
second, redacted; a source that cannot be followed is skipped with its reason and fix."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.unit.fakes import FakeHost, output
from wizard.diag.logs.io.journalfollow import JournalFollower, unit_of_cgroup, units_of_port
from wizard.engine.watch import WatchPlan, WatchState, _journal
from wizard.hosts.local import LocalHost
from wizard.hosts.streams import LineStream
from wizard.model.target import Target

REMOTE = "/lib/systemd/systemd-journal-remote"
def REDACT(text: str) -> str:
    return text.replace("hunter2", "[redacted]")


def record(message: str, ts: float = 0.0, cursor: str = "c1", unit: str = "app.service") -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(int(ts * 1e6)), "_SYSTEMD_UNIT": unit, "_PID": "42",
                       "SYSLOG_IDENTIFIER": "app", "MESSAGE": message, "__CURSOR": cursor})


class Lines:
    """A command's stdout as a LineStream reads it: chunks handed in by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def read(self, n: int) -> bytes:
        return await self.queue.get()


class StreamingHost(FakeHost):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.streams: list[tuple[list[str], float]] = []
        self.out = Lines()
        self.stopped = 0

    async def stream(self, argv: list[str]) -> LineStream:
        self.streams.append(argv)

        async def stop() -> None:
            self.stopped += 1
            self.out.queue.put_nowait(b"")

        return LineStream(" ".join(argv), self.out, None, stop)


def test_a_unit_is_followed_with_journalctl_f_and_a_reset_gets_its_seconds_entries_redacted():
    now = time.time()

    async def go() -> tuple[StreamingHost, JournalFollower, list[str], list[str]]:
        host = StreamingHost(files={"/run/systemd/journal": b""})
        follower = JournalFollower(host, REDACT)
        await follower.start(["app.service"], [])
        # a record split across reads, one that is not JSON, one without a time
        split = record("split across reads", now + 0.5)
        host.out.queue.put_nowait((record("worker aborted, password=hunter2", now) + "\n" + split[:20]).encode())
        host.out.queue.put_nowait((split[20:] + "\nnot json\n" + json.dumps({"MESSAGE": "no time"}) + "\n"
                                   ).encode())
        host.out.queue.put_nowait((record("an hour later", now + 3600) + "\n").encode())
        await asyncio.sleep(0.05)
        await follower.poll()
        near, later = follower.near(now), follower.near(now + 3600)
        await follower.close()
        return host, follower, near, later

    host, follower, near, later = asyncio.run(go())
    assert host.streams == [["journalctl", "-o", "json", "-f", "-n", "0", "-u", "app.service", "--no-pager"]]
    assert len(near) == 2 and all(line.startswith("journal app.service: ") for line in near)
    assert near[0].endswith("app[42]: worker aborted, password=[redacted]")
    assert near[1].endswith("app[42]: split across reads")
    assert len(later) == 1 and later[0].endswith("app[42]: an hour later")
    assert follower.unusable == 2 and follower.lines == 3
    assert host.stopped == 1


def test_a_journal_file_is_polled_after_its_cursor_and_a_cut_record_waits_for_the_next_poll():
    now = time.time()
    first, second = record("one", now, "c2"), record("two", now, "c3")
    host = FakeHost(commands={
        ("journalctl", "--file", "/srv/app.journal", "-o", "json", "-n", "0", "--show-cursor"):
            output([], "-- cursor: c1\n"),
        ("journalctl", "--file", "/srv/app.journal", "-o", "json", "--no-pager", "--after-cursor", "c1"):
            output([], first + "\n" + second[:30], truncated=True),
        ("journalctl", "--file", "/srv/app.journal", "-o", "json", "--no-pager", "--after-cursor", "c2"):
            output([], second + "\n"),
    })

    async def go() -> JournalFollower:
        follower = JournalFollower(host)
        await follower.start([], ["/srv/app.journal"])
        await follower.poll()
        await follower.poll()
        return follower

    follower = asyncio.run(go())
    assert [line.rsplit(": ", 1)[1] for line in follower.near(now)] == ["one", "two"]
    assert follower.files[0].cursor == "c3" and follower.unusable == 0


def test_without_journald_and_without_a_file_the_journal_is_a_skipped_source_with_its_fix():
    plan = WatchPlan(target=Target(host="127.0.0.1", port=8080), server=FakeHost())
    state = WatchState()
    assert asyncio.run(_journal(plan, state)) is None
    [note] = state.observation.logs
    assert note.startswith("skipped: no journal followed: journald is not running in local")
    assert "fix: --journal FILE.journal" in note
    # a unit named, and still no journald: that unit is skipped, said so, with the same fix
    plan.journal = ["nginx.service"]
    state = WatchState()
    assert asyncio.run(_journal(plan, state)) is None
    assert state.observation.logs[0].startswith("skipped: journal of nginx.service not followed: journald is not")


def test_the_listeners_unit_is_found_from_its_cgroup_and_followed_when_none_is_named():
    ss = "LISTEN 0 511 0.0.0.0:8080 0.0.0.0:* users:((\"nginx\",pid=311,fd=6),(\"nginx\",pid=312,fd=6))\n"
    host = StreamingHost(commands={("ss",): output([], ss)}, files={
        "/run/systemd/journal": b"", "/proc/311/cgroup": b"0::/system.slice/nginx.service\n",
        "/proc/312/cgroup": b"12:pids:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n"})
    assert asyncio.run(units_of_port(host, 8080)) == ["nginx.service"]
    assert unit_of_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n") is None

    async def go() -> list[str]:
        plan = WatchPlan(target=Target(host="127.0.0.1", port=8080), server=host,
                         server_units=lambda: units_of_port(host, 8080))
        state = WatchState()
        follower = await _journal(plan, state)
        assert follower is not None
        await follower.close()
        return state.observation.logs

    notes = asyncio.run(go())
    assert notes[0] == "the unit of the process owning port 8080: nginx.service"
    assert "nginx.service (journalctl -f)" in notes[1]
    assert host.streams[0][-3:] == ["-u", "nginx.service", "--no-pager"]


def export(message: str, ts: float) -> bytes:
    """One entry in the journal export format (what systemd-journal-remote reads on stdin)."""
    us = int(ts * 1e6)
    return (f"__REALTIME_TIMESTAMP={us}\n__MONOTONIC_TIMESTAMP={us}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"
            f"_SYSTEMD_UNIT=app.service\n_PID=77\nSYSLOG_IDENTIFIER=app\nPRIORITY=3\nMESSAGE={message}\n\n").encode()


async def append(journal: Path, *messages: str) -> None:
    proc = await asyncio.create_subprocess_exec(REMOTE, f"--output={journal}", "-", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(b"".join(export(m, time.time()) for m in messages))
    assert proc.returncode == 0, err


@pytest.mark.skipif(not (Path(REMOTE).exists() and shutil.which("journalctl")),
                    reason="needs systemd-journal-remote and journalctl (apt install systemd-journal-remote)")
def test_a_real_journal_file_appended_to_while_it_is_followed_gives_only_the_new_entries(tmp_path):
    journal = tmp_path / "app.journal"

    async def go() -> tuple[list[str], list[str], JournalFollower]:
        await append(journal, "before the watch")
        follower = JournalFollower(LocalHost(), REDACT)
        await follower.start([], [str(journal)])
        await follower.poll()
        quiet = list(follower.ring)
        await append(journal, "worker 3 aborted the request (token hunter2)")
        await follower.poll()
        await append(journal, "worker 4 aborted the request", "worker 5 aborted the request")
        await follower.poll()
        await follower.poll()
        return [t for _, _, t in quiet], follower.near(time.time()), follower

    quiet, near, follower = asyncio.run(go())
    assert quiet == []  # followed from its end: what was there before is not read
    assert [line.rsplit(": ", 1)[1] for line in near] == [
        "worker 3 aborted the request (token [redacted])", "worker 4 aborted the request",
        "worker 5 aborted the request"]
    assert all(line.startswith(f"journal {journal}: ") and " app[77]: " in line for line in near)
    assert follower.notes == [] and follower.unusable == 0


def test_a_local_stream_gives_its_lines_as_they_come_and_close_stops_and_reaps_the_command(tmp_path):
    import os

    marker = tmp_path / "pid"

    async def go() -> tuple[list[bytes], list[bytes], bool]:
        stream = await LocalHost().stream(["sh", "-c", f"echo $$ > {marker}; echo one; echo two; exec sleep 60"])
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(stream.lines) == 2:
                break
        got = stream.take()
        again = stream.take()
        await stream.close()
        return got, again, stream.ended

    got, again, ended = asyncio.run(go())
    assert got == [b"one", b"two"] and again == [] and ended
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped: nothing left behind


def test_a_netns_stream_runs_inside_the_namespace():
    from wizard.hosts.local import NetnsHost

    assert NetnsHost("rw-x")._command(["journalctl", "-f"]) == ["ip", "netns", "exec", "rw-x", "journalctl", "-f"]
