"""Log excerpts over SSH cost kilobytes: a 200 MiB log on a real OpenSSH server (in a
namespace of the test's own), a 10-minute and a 5 s window with a handful of reset lines;
the excerpt equals the one read in the namespace directly, and the bytes the server sent
over SSH are counted at its veth."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.lab.test_ssh_lab import SshLab, _big_log, sshlab  # noqa: F401 - the fixture
from wizard.diag.logs.io.excerpt import excerpt_window
from wizard.diag.logs.io.reader import LogReader
from wizard.hosts.local import NetnsHost

SIGS = [r"connection reset by peer", r"\berrno[ =:]+(104|54)\b"]
LINE = len("2024-05-01T00:00:00.000Z worker-3 GET /api/items/000000 200 12ms\n")  # _big_log's, fixed


def plant(path: Path, middle: float, offsets_s: list[float]) -> list[str]:
    """Overwrite the lines at ``middle + s`` with reset lines of the same length."""
    base = 1714521600.0
    texts = []
    fd = os.open(path, os.O_WRONLY)
    try:
        for s in offsets_s:
            i = round((middle + s - base) * 100)
            t = base + i / 100
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
            text = f"{stamp} worker-3 recv: Connection reset by peer".ljust(LINE - 1)
            os.pwrite(fd, (text + "\n").encode(), i * LINE)
            texts.append(text)
    finally:
        os.close(fd)
    return texts


def rows(win) -> list[tuple]:
    return [(ln.offset, ln.text, ln.ts, ln.in_window) for ln in win.lines]


async def test_excerpts_of_a_200mb_remote_log_transfer_kilobytes(sshlab: SshLab) -> None:  # noqa: F811
    log = sshlab.dir / "big.log"
    start, end = _big_log(log, 200 << 20)
    middle = start
    planted = plant(log, middle, [-250.0, -100.0, 1.0, 3.0, 200.0])
    ssh = sshlab.host()
    results = []
    try:
        await ssh.run(["true"])  # connect first: the login is not part of the excerpt's cost
        requests = {"n": 0}
        def counting(f):  # type: ignore[no-untyped-def]
            def counted(*a, **k):  # type: ignore[no-untyped-def]
                requests["n"] += 1
                return f(*a, **k)
            return counted

        for name_ in ("read", "read_many", "run", "stat"):  # each one round trip (or a few)
            setattr(ssh, name_, counting(getattr(ssh, name_)))
        for name, t0, t1, want in (("10-min", middle - 300, middle + 300, planted),
                                   ("5 s", start, end, planted[2:4])):
            before, requests["n"] = sshlab.ns_bytes(), 0
            win, inside = await excerpt_window(LogReader(ssh), str(log), t0, t1, SIGS, 2)
            sent = sshlab.ns_bytes() - before
            asked = requests["n"]
            direct, inside_direct = await excerpt_window(LogReader(NetnsHost(sshlab.ns)), str(log), t0, t1, SIGS, 2)
            assert not win.error and win.method == "bisect+remote", (win.error, win.method)
            assert inside == inside_direct and rows(win) == rows(direct)
            hits = [ln.text for ln in win.lines if "reset by peer" in ln.text]
            assert hits == want
            results.append((name, inside, len(win.lines), win.bytes_read, sent, asked))
            # The search's probes go 7 to a request: ~20 requests where one probe a request
            # took ~50; the probes and the protocol's overhead stay under 96 KiB.
            assert sent < 96 << 10, (name, sent)
            assert asked <= 24, (name, asked)
    finally:
        await ssh.close()
    size = log.stat().st_size
    for name, inside, quoted, got, sent, asked in results:
        print(f"\n200 MiB remote log, {name} window: {inside} lines in it, {quoted} quoted, "
              f"{got} bytes of answers in {asked} requests, {sent} bytes sent by the server over SSH "
              f"({sent / size:.5%} of the file)")
