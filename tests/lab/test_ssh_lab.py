"""SshHost against a real OpenSSH server that the test starts in a namespace of its own.

The server namespace is joined to this (root) namespace by one veth pair with addresses the
test picks at random in 10.0.0.0/8 and fd00::/8; sshd gets a throwaway host key, the test a
throwaway user key and a known_hosts file; everything is removed in ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wizard.hosts.base import HostError
from wizard.hosts.local import NetnsHost
from wizard.hosts.ssh import SshHost, SshTarget

SSHD = "/usr/sbin/sshd"


def _run(argv: list[str], check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def _unavailable() -> str:
    if os.geteuid() != 0:
        return "the SSH lab needs root (network namespaces, veths)"
    for tool in (SSHD, "ssh-keygen", "ip", "nft"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            return f"{tool} is not installed (apt install openssh-server openssh-client iproute2 nftables)"
    return ""


def require_ssh_lab() -> None:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SSH lab tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)


@dataclass
class SshLab:
    ns: str
    v4: str
    v6: str
    dir: Path
    user_key: Path
    known_hosts: Path
    log: Path
    sshd: subprocess.Popen[str] | None = None

    def host(self, address: str | None = None, **kw: object) -> SshHost:
        kw.setdefault("known_hosts", str(self.known_hosts))
        kw.setdefault("client_keys", [str(self.user_key)])
        kw.setdefault("config", [])
        kw.setdefault("connect_timeout", 3)
        return SshHost(SshTarget(address or self.v4, "root", 0), **kw)  # type: ignore[arg-type]

    def accepted(self) -> int:
        return len(re.findall(r"Accepted publickey", self.log.read_text(errors="replace")))

    def established(self) -> int:
        out = _run(["ip", "netns", "exec", self.ns, "ss", "-Htn", "state", "established",
                    "( sport = :22 )"]).stdout
        return len([line for line in out.splitlines() if line.strip()])

    def ns_bytes(self) -> int:
        """Bytes sent by the server namespace's veth end (what SSH transferred to us)."""
        out = _run(["ip", "netns", "exec", self.ns, "cat", f"/sys/class/net/{self.ns[:15]}/statistics/tx_bytes"])
        return int(out.stdout)


def start_sshd(ns: str, addresses: list[str], tmp_path: Path
               ) -> tuple[subprocess.Popen[str], Path, Path]:
    """sshd inside ``ns`` on port 22 of ``addresses``: throwaway host and user keys
    (``tmp_path/user_key``), no passwords; returns the process, a known_hosts file, its log."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_key")])
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "user_key")])
    (tmp_path / "authorized_keys").write_text((tmp_path / "user_key.pub").read_text())
    host_pub = (tmp_path / "host_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"{','.join(addresses)} {' '.join(host_pub)}\n")
    log = tmp_path / "sshd.log"
    config = tmp_path / "sshd_config"
    listen = "".join(f"ListenAddress [{a}]:22\n" if ":" in a else f"ListenAddress {a}:22\n"
                     for a in addresses)
    config.write_text(
        f"{listen}HostKey {tmp_path / 'host_key'}\nPidFile {tmp_path / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
        "Subsystem sftp internal-sftp\nMaxStartups 100\n"
        # bash sources ~/.bashrc for SSH commands only when SHLVL < 2: keep this
        # machine's own root startup files (slow pyenv hooks) out of the test.
        "SetEnv SHLVL=1\n")
    _run([SSHD, "-t", "-f", str(config)])
    proc = subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-f", str(config),
                             "-E", str(log)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 10
    while "Server listening on " + addresses[0] not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"sshd did not start: {log.read_text() if log.exists() else ''}")
        time.sleep(0.05)
    return proc, known, log


@pytest.fixture
def sshlab(tmp_path: Path) -> Iterator[SshLab]:
    require_ssh_lab()
    tag = secrets.token_hex(3)
    ns, outer, inner = f"rwsh-s-{tag}", f"rwsh-h-{tag}", f"rwsh-s-{tag}"
    a, b = secrets.randbelow(200) + 20, secrets.randbelow(250) + 1
    v4_root, v4_ns = f"10.{a}.{b}.1", f"10.{a}.{b}.2"
    v6_root, v6_ns = f"fd5e:{a:x}:{b:x}::1", f"fd5e:{a:x}:{b:x}::2"
    made_ns = made_link = False
    proc: subprocess.Popen[str] | None = None
    try:
        _run(["ip", "netns", "add", ns])
        made_ns = True
        _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns])
        made_link = True
        _run(["ip", "addr", "add", f"{v4_root}/30", "dev", outer])
        _run(["ip", "addr", "add", f"{v6_root}/64", "dev", outer, "nodad"])
        _run(["ip", "link", "set", outer, "up"])
        for argv in (["ip", "addr", "add", f"{v4_ns}/30", "dev", inner],
                     ["ip", "addr", "add", f"{v6_ns}/64", "dev", inner, "nodad"],
                     ["ip", "link", "set", inner, "up"], ["ip", "link", "set", "lo", "up"]):
            _run(["ip", "netns", "exec", ns, *argv])
        proc, known, log = start_sshd(ns, [v4_ns, v6_ns], tmp_path)
        yield SshLab(ns, v4_ns, v6_ns, tmp_path, tmp_path / "user_key", known, log, proc)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(5)
        if made_ns:
            # sshd's session children live in the namespace: kill them before deleting it.
            pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        if made_link:
            _run(["ip", "link", "del", outer], check=False)
        if made_ns:
            _run(["ip", "netns", "delete", ns], check=False)


async def test_commands_and_reads_over_ssh_match_the_namespace_seen_directly(sshlab: SshLab) -> None:
    log = sshlab.dir / "app.log"
    log.write_bytes(b"".join(f"2024-05-01T10:00:{i % 60:02d}Z line {i}\n".encode() for i in range(5000)))
    ssh, direct = sshlab.host(), NetnsHost(sshlab.ns)
    try:
        over_ssh, seen = await ssh.run(["ss", "-Hltn"]), await direct.run(["ss", "-Hltn"])
        assert over_ssh.ok and over_ssh.where == ssh.spec
        assert sorted(over_ssh.text.split()) == sorted(seen.text.split())
        assert f"{sshlab.v4}:22" in over_ssh.text
        snmp_ssh = (await ssh.read("/proc/net/snmp")).decode().splitlines()
        snmp_ns = (await direct.read("/proc/net/snmp")).decode().splitlines()
        # Header lines are identical; values move with the SSH traffic itself.
        assert snmp_ssh[0::2] == snmp_ns[0::2] and len(snmp_ssh) == len(snmp_ns)
        # The namespace's own counters, not the root namespace's.
        assert await ssh.read_text("/proc/sys/net/ipv4/ip_forward") == \
            await direct.read_text("/proc/sys/net/ipv4/ip_forward")
        assert await ssh.read(str(log), 70_000, 4096) == await direct.read(str(log), 70_000, 4096)
        assert await ssh.read(str(log), log.stat().st_size - 10, 4096) == log.read_bytes()[-10:]
        info_ssh, info_ns = await ssh.stat(str(log)), await direct.stat(str(log))
        assert (info_ssh.size, int(info_ssh.mtime), info_ssh.is_file) == \
            (info_ns.size, int(info_ns.mtime), info_ns.is_file)
        assert await ssh.glob(str(sshlab.dir / "*.log")) == await direct.glob(str(sshlab.dir / "*.log"))
        assert await ssh.which("nft") == "/usr/sbin/nft"
        assert await ssh.which("rwsh-no-such-tool") is None
        assert sorted(await ssh.addresses()) == sorted(await direct.addresses())
        missing = await ssh.run(["rwsh-no-such-tool"])
        assert missing.missing and not missing.ok
        with pytest.raises(HostError):
            await ssh.read(str(sshlab.dir / "absent.log"))
        assert await ssh.is_privileged()
    finally:
        await ssh.close()


async def test_ipv6_address_reaches_the_same_server(sshlab: SshLab) -> None:
    ssh = sshlab.host(sshlab.v6)
    try:
        assert (await ssh.run(["id", "-u"])).text.strip() == "0"
    finally:
        await ssh.close()


async def test_hostile_arguments_patterns_and_tool_names_run_nothing(sshlab: SshLab) -> None:
    marker = sshlab.dir / "pwned"
    hostile = [f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker}", "a'b\"c", "*",
               "-n", "", "x\ny", "$HOME"]
    ssh = sshlab.host()
    try:
        out = await ssh.run(["printf", "%s\\0", *hostile])
        assert out.stdout.decode().split("\0")[:-1] == hostile
        assert await ssh.glob(f"{sshlab.dir}/$(touch {marker})*") == []
        assert await ssh.which(f"nft; touch {marker}") is None
        with pytest.raises(HostError):
            await ssh.read(f"{sshlab.dir}/x; touch {marker}")
        assert not marker.exists()
    finally:
        await ssh.close()


async def test_one_connection_serves_every_command_read_and_glob_of_a_run(sshlab: SshLab) -> None:
    ssh = sshlab.host()
    try:
        await asyncio.gather(*(ssh.run(["echo", str(i)]) for i in range(25)),
                             *(ssh.read("/proc/net/snmp") for _ in range(5)),
                             *(ssh.stat("/etc/hostname") for _ in range(5)),
                             ssh.glob("/etc/host*"), ssh.is_privileged())
        assert sshlab.established() == 1
        assert ssh.connects == 1
        await asyncio.sleep(0.2)
        assert sshlab.accepted() == 1
    finally:
        await ssh.close()


async def test_output_cap_stops_reading_and_kills_the_remote_command(sshlab: SshLab) -> None:
    ssh = sshlab.host()
    word = f"rwsh-{secrets.token_hex(4)}"
    try:
        started = time.monotonic()
        out = await ssh.run(["yes", word], timeout=10, max_bytes=100_000)
        assert out.truncated and len(out.stdout) == 100_000 and out.ok
        assert time.monotonic() - started < 5
        timed = await ssh.run(["sleep", "31.5"], timeout=1)
        assert timed.timed_out and timed.returncode is None and not timed.ok
        # Nothing is left running on the server: the channel close ends `yes` (SIGPIPE), the
        # server-side deadline (timeout + 1 s) ends the silent sleep.
        deadline = time.monotonic() + 4
        while (left := _run(["pgrep", "-f", f"yes {word}|sleep 31.5"], check=False).stdout.split()):
            assert time.monotonic() < deadline, f"still running on the server: {left}"
            await asyncio.sleep(0.2)
        # The connection is still good after killing channels.
        assert (await ssh.run(["echo", "alive"])).text == "alive\n"
    finally:
        await ssh.close()


async def test_a_stream_over_ssh_gives_its_lines_as_they_come_and_close_stops_it_on_the_server(
        sshlab: SshLab) -> None:
    """watch follows a journal with `journalctl -f` through the Host: over SSH, a session of
    its own read while it runs; closing it leaves nothing running on the server."""
    ssh = sshlab.host()
    word = f"rwsh-{secrets.token_hex(4)}"
    try:
        stream = await ssh.stream(["sh", "-c", f"echo one; echo two; exec sleep 41.{len(word)}", word])
        deadline = time.monotonic() + 10
        while len(stream.lines) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert stream.take() == [b"one", b"two"] and not stream.ended
        await stream.close()
        deadline = time.monotonic() + 4
        while (left := _run(["pgrep", "-f", f"sleep 41.{len(word)}"], check=False).stdout.split()):
            assert time.monotonic() < deadline, f"still running on the server: {left}"
            await asyncio.sleep(0.2)
        assert (await ssh.run(["echo", "alive"])).text == "alive\n"  # the connection is still good
    finally:
        await ssh.close()


async def test_changed_host_key_is_refused_with_the_fix(sshlab: SshLab) -> None:
    other = sshlab.dir / "other_key"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
    wrong = sshlab.dir / "wrong_known_hosts"
    wrong.write_text(f"{sshlab.v4} {' '.join((other.with_suffix('.pub')).read_text().split()[:2])}\n")
    ssh = sshlab.host(known_hosts=str(wrong))
    with pytest.raises(HostError) as info:
        await ssh.run(["id"])
    assert "does not match known_hosts" in info.value.message
    assert "ssh-keygen -R" in info.value.message
    with pytest.raises(HostError):
        await ssh.read("/etc/hostname")
    assert ssh.connects == 1 and sshlab.accepted() == 0


async def test_unknown_host_key_is_refused_not_accepted(sshlab: SshLab) -> None:
    empty = sshlab.dir / "empty_known_hosts"
    empty.write_text("")
    ssh = sshlab.host(known_hosts=str(empty))
    with pytest.raises(HostError) as info:
        await ssh.which("ss")
    assert "not in known_hosts" in info.value.message
    assert sshlab.accepted() == 0


async def test_wrong_user_key_is_an_auth_failure_not_a_prompt(sshlab: SshLab) -> None:
    stranger = sshlab.dir / "stranger"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)])
    ssh = sshlab.host(client_keys=[str(stranger)])
    started = time.monotonic()
    with pytest.raises(HostError) as info:
        await ssh.run(["id"])
    assert "authentication failed" in info.value.message
    assert time.monotonic() - started < 5


async def test_port_nobody_listens_on_is_refused_quickly(sshlab: SshLab) -> None:
    ssh = SshHost(SshTarget(sshlab.v4, "root", 2222), known_hosts=str(sshlab.known_hosts),
                  client_keys=[str(sshlab.user_key)], config=[], connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(HostError) as info:
        await ssh.run(["id"])
    assert "connection refused" in info.value.message
    assert time.monotonic() - started < 2


async def test_ssh_server_dropping_syns_does_not_hang_the_run(sshlab: SshLab) -> None:
    subprocess.run(["ip", "netns", "exec", sshlab.ns, "nft", "-f", "-"], text=True, check=True,
                   timeout=10, input="table inet rwsh { chain input { type filter hook input "
                   "priority 0; tcp dport 22 drop; }; }\n")
    ssh = sshlab.host(connect_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(HostError) as info:
        await ssh.run(["id"])
    assert "no answer" in info.value.message
    first = time.monotonic() - started
    assert first < 1.5 * 2 + 1
    started = time.monotonic()
    with pytest.raises(HostError):
        await ssh.stat("/etc/hostname")
    assert time.monotonic() - started < 0.1  # remembered, not retried
    assert not await ssh.is_privileged()


def _big_log(path: Path, size: int) -> tuple[float, float]:
    """A log of ``size`` bytes, one line per 10 ms from 2024-05-01 00:00 UTC; a 5 s window
    in its middle (as epoch seconds). Lines are written in big blocks to stay fast."""
    base = 1714521600.0
    line_len = len("2024-05-01T00:00:00.000Z worker-3 GET /api/items/000000 200 12ms\n")
    count = size // line_len
    with path.open("wb") as out:
        for start in range(0, count, 100_000):
            rows = []
            for i in range(start, min(count, start + 100_000)):
                t = base + i / 100
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
                rows.append(f"{stamp} worker-3 GET /api/items/{i % 1_000_000:06d} 200 12ms\n")
            out.write("".join(rows).encode())
    middle = base + count / 200
    return middle, middle + 5


async def test_time_window_of_a_200mb_remote_log_transfers_kilobytes(sshlab: SshLab) -> None:
    from wizard.diag.logs.io.reader import LogReader

    log = sshlab.dir / "big.log"
    start, end = _big_log(log, 200 << 20)
    ssh = sshlab.host()
    try:
        await ssh.run(["true"])  # connect first: the login is not part of the excerpt's cost
        before = sshlab.ns_bytes()
        win = await LogReader(ssh).window(str(log), start, end)
        sent = sshlab.ns_bytes() - before
        direct = await LogReader(NetnsHost(sshlab.ns)).window(str(log), start, end)
    finally:
        await ssh.close()
    assert not win.error and win.method == "bisect"
    assert [ln.text for ln in win.lines] == [ln.text for ln in direct.lines]
    assert sum(ln.in_window for ln in win.lines) >= 500  # 5 s at 100 lines per second
    print(f"\n200 MiB remote log, 5 s window: {len(win.lines)} lines, {win.bytes_read} bytes read, "
          f"{sent} bytes sent by the server over SSH ({sent / log.stat().st_size:.5%} of the file)")
    # SSH adds a few percent to what the reader asked for, and never reads ahead of it.
    assert sent <= win.bytes_read * 1.05 + 32_768
    assert sent < 2 << 20  # a small fraction of the 200 MiB file


def _diagnose(net: object, server: str, home: Path, out: Path) -> dict:
    """`reset-wizard diagnose` from the client namespace with ``--server`` as given."""
    import json

    from tests.lab.test_foundation_lab import PORT, RUN_TIMEOUT, WIZARD

    out.mkdir()
    done = subprocess.run(
        ["ip", "netns", "exec", net.client, "env", "-u", "SSH_AUTH_SOCK", f"HOME={home}",  # type: ignore[attr-defined]
         WIZARD, "diagnose", f"{net.server_v4}:{PORT}", "--server", server,  # type: ignore[attr-defined]
         "--attempts", "5", "--timeout", "2", "--json", str(out / "s.json"),
         "--report", str(out / "r.md")],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    session = json.loads((out / "s.json").read_text())
    session["_report"] = (out / "r.md").read_text()
    return session


def _server_side(session: dict) -> dict[str, str]:
    """Status of every check that read the server context, by check id."""
    return {c["id"]: c["status"] for step in session["steps"] for c in step["checks"]
            if c["id"].startswith(("listen.", "kernel.", "firewall.", "logs."))}


@pytest.mark.parametrize("scenario", ["firewall-reject", "abortive-close"])
def test_lab_scenario_over_ssh_gets_the_same_verdict_and_evidence_as_over_netns(
        labnet: object, tmp_path: Path, scenario: str) -> None:
    require_ssh_lab()
    from tests.lab.test_foundation_lab import PORT

    net = labnet
    if scenario == "firewall-reject":
        net.serve("listen", "::", PORT)  # type: ignore[attr-defined]
        net.nft(net.server, (  # type: ignore[attr-defined]
            "table inet rwsh_filter {\n  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    tcp dport {PORT} counter reject with tcp reset\n  }}\n}}\n"))
        decisive = "reject with tcp reset"
    else:
        net.serve("linger0", "::", PORT)  # type: ignore[attr-defined]
        decisive = "TCPAbortOnData"
    keys = tmp_path / "keys"
    keys.mkdir()
    proc, known, _log = start_sshd(net.server, [net.server_v4], keys)  # type: ignore[attr-defined]
    try:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(known.read_text())
        shutil.copy(keys / "user_key", home / ".ssh" / "lab_key")
        # A Host alias from ~/.ssh/config: host name, user and key all come from there.
        (home / ".ssh" / "config").write_text(
            f"Host rwsh-lab-server\n  HostName {net.server_v4}\n  User root\n"  # type: ignore[attr-defined]
            "  IdentityFile ~/.ssh/lab_key\n")
        over_netns = _diagnose(net, f"netns:{net.server}", home, tmp_path / "netns")  # type: ignore[attr-defined]
        over_ssh = _diagnose(net, "ssh:rwsh-lab-server", home, tmp_path / "ssh")
    finally:
        proc.kill()
        proc.wait(5)
    assert over_ssh["context"]["server"] == "ssh:rwsh-lab-server"
    assert over_netns["diagnosis"][0]["cause"] == scenario, over_netns["diagnosis"]
    assert over_ssh["diagnosis"][0]["cause"] == scenario, over_ssh["diagnosis"]
    assert _server_side(over_ssh) == _server_side(over_netns)
    # The server's side was really read over SSH, not skipped on both sides alike.
    assert any(status not in ("skip", "error") for status in _server_side(over_ssh).values())
    print(f"\n{scenario}: server-side checks over ssh: {_server_side(over_ssh)}")
    assert decisive in over_ssh["_report"]
