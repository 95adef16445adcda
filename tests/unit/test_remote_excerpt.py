"""The server-side window search (python3 -c HELPER through Host.run): the same excerpt as
the local search, a small fraction of the bytes, and ranged reads when python3 is missing."""

from __future__ import annotations

from pathlib import Path

from tests.unit.fakes import output
from tests.unit.test_logs import AT, SIG_RX, UTC, CountingHost, mixed_log
from wizard.diag.logs.io.excerpt import excerpt_window
from wizard.diag.logs.io.reader import LogReader
from wizard.hosts.local import LocalHost


class RemoteLikeHost(CountingHost):
    """A LocalHost that says reads cost transfer, counting what comes back from commands too."""

    remote_search = True

    def __init__(self, python: bool = True) -> None:
        super().__init__()
        self.python = python
        self.commands: list[str] = []

    async def run(self, argv, timeout=5.0, max_bytes=1 << 20):  # type: ignore[override]
        self.commands.append(argv[0])
        if argv[0] == "python3" and not self.python:
            return output(argv, returncode=127, missing=True)
        out = await super().run(argv, timeout, max_bytes)
        self.bytes_read += len(out.stdout)
        return out


def rows(win) -> list[tuple]:
    return [(ln.offset, ln.text, ln.ts, ln.stamped, ln.in_window) for ln in win.lines]


async def test_server_side_search_gives_the_local_excerpt_for_a_fraction_of_the_bytes(tmp_path: Path) -> None:
    for fmt in ("iso8601", "nginx-error"):
        path = tmp_path / f"{fmt}.log"
        mixed_log(path, fmt, lines=60_000)
        for t0, t1, margin in ((AT.timestamp() - 600, AT.timestamp() + 600, 2),
                               (AT.timestamp() - 90.5, AT.timestamp() - 3, 3),
                               (AT.timestamp() - 4000, AT.timestamp() - 3000, 0)):
            local, n_local = await excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), t0, t1, SIG_RX, margin)
            host = RemoteLikeHost()
            remote, n_remote = await excerpt_window(LogReader(host, tz=UTC), str(path), t0, t1, SIG_RX, margin)
            assert remote.method == "bisect+remote" and "python3" in host.commands
            assert n_remote == n_local and rows(remote) == rows(local) and len(local.lines) > 3
            assert all(a.number in (None, b.number) or b.number is None for a, b in zip(local.lines, remote.lines, strict=False))
            want = [ln.number for ln in local.lines if ln.number is not None]
            if want:
                assert [ln.number for ln in remote.lines] == want
            # The edges' small probes plus what was quoted, not the window's bytes; the probes
            # of a search step travel together, so round trips are few.
            quoted = sum(len(ln.text) + 40 for ln in remote.lines)
            assert host.bytes_read < (64 << 10) + quoted < path.stat().st_size / 20, host.bytes_read
            assert host.reads < 30, host.reads  # one probe a request took 40 to 52


async def test_without_python3_the_window_is_read_by_ranges_with_the_same_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    mixed_log(path, "iso8601", lines=60_000, seed=4)
    t0, t1 = AT.timestamp() - 300, AT.timestamp() + 300
    local, n_local = await excerpt_window(LogReader(LocalHost(), tz=UTC), str(path), t0, t1, SIG_RX, 2)
    host = RemoteLikeHost(python=False)
    remote, n_remote = await excerpt_window(LogReader(host, tz=UTC), str(path), t0, t1, SIG_RX, 2)
    assert remote.method == "bisect" and any("no python3" in n for n in remote.notes)
    assert n_remote == n_local and rows(remote) == rows(local)
