"""SshHost without an SSH server: spec parsing, argv quoting, the sudo decision, failures."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import time

import pytest

from wizard.hosts.base import HostError
from wizard.hosts.commands import CommandOutput
from wizard.hosts.contexts import host_for
from wizard.hosts.ssh import SshHost
from wizard.hosts.sshargs import SshTarget, needs_root, parse_ssh_spec, remote_command
from wizard.model import WizardError

HOSTILE = [
    "$(touch /tmp/rwsh-pwned)", "`id`", "; rm -rf /tmp/nothing", "a'b\"c", "back\\slash",
    "*", "-n", "--", "", "new\nline", "tab\there", "$HOME", "!!", "&& echo x", "| cat", "ünïcode",
]


@pytest.mark.parametrize("rest, expected", [
    ("db1", SshTarget("db1")),
    ("ops@db1", SshTarget("db1", "ops")),
    ("ops@db1.example.net:2222", SshTarget("db1.example.net", "ops", 2222)),
    ("10.0.0.5:22", SshTarget("10.0.0.5", "", 22)),
    ("fd00::5", SshTarget("fd00::5")),
    ("root@[fd00::5]:2200", SshTarget("fd00::5", "root", 2200)),
    ("[::1]", SshTarget("::1")),
])
def test_ssh_specs_parse_user_host_and_port(rest: str, expected: SshTarget) -> None:
    assert parse_ssh_spec(rest) == expected


@pytest.mark.parametrize("rest", [
    "", "ops@", "-oProxyCommand=sh", "host:0", "host:65536", "host:ssh", "host:", "[fd00::1",
    "[fd00::1]x", "a b", "host;id", "$(id)", "bad user@host", "-x@host",
])
def test_bad_ssh_specs_are_refused_with_the_expected_form(rest: str) -> None:
    with pytest.raises(WizardError) as info:
        parse_ssh_spec(rest)
    assert "ssh:[user@]host[:port]" in info.value.message


def test_host_for_routes_ssh_specs_to_an_unconnected_ssh_host() -> None:
    host = host_for("ssh:ops@[fd00::7]:2222")
    assert isinstance(host, SshHost)
    assert host.spec == "ssh:ops@[fd00::7]:2222"
    assert host.connects == 0  # lazily: nothing happens before the first use


def test_remote_command_is_parsed_back_to_exactly_the_argv_by_a_posix_shell(tmp_path) -> None:
    # sshd hands the command string to the user's shell with -c: do the same locally.
    argv = ["printf", "%s\\0", *HOSTILE]
    done = subprocess.run(["sh", "-c", remote_command(argv)], capture_output=True, timeout=5,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split("\0")[:-1] == HOSTILE
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was created


def test_remote_command_keeps_a_leading_dash_program_an_argument_not_an_option() -> None:
    done = subprocess.run(["sh", "-c", remote_command(["-c", "echo injected"])],
                          capture_output=True, timeout=5)
    assert b"injected" not in done.stdout
    assert done.returncode == 127


def test_remote_command_reports_a_missing_program_as_exit_127() -> None:
    done = subprocess.run(["sh", "-c", remote_command(["rwsh-no-such-tool", "x"])],
                          capture_output=True, timeout=5)
    assert done.returncode == 127
    assert b"not found" in done.stderr


def test_sudo_prefix_is_non_interactive_and_ends_options() -> None:
    cmd = remote_command(["nft", "list", "ruleset"], sudo=True)
    assert cmd.startswith("sudo -n -- sh -c ")
    assert cmd.endswith(" sh nft list ruleset")


@pytest.mark.parametrize("argv, expected", [
    (["nft", "-j", "list", "ruleset"], True),
    (["/usr/sbin/iptables-save"], True),
    (["conntrack", "-L"], True),
    (["ss", "-Hltnp"], True),
    (["ss", "--processes", "-t"], True),
    (["ss", "-Hltn"], False),
    (["cat", "/proc/net/snmp"], False),
    (["ip", "-j", "addr"], False),
])
def test_only_commands_that_need_root_go_through_sudo(argv: list[str], expected: bool) -> None:
    assert needs_root(argv) is expected


class ScriptedSsh(SshHost):
    """An SshHost whose remote commands are answered from a script (no connection)."""

    def __init__(self, uid: int, sudo_ok: bool, sudo_mode: str = "auto") -> None:
        super().__init__(SshTarget("srv", "ops"), sudo=sudo_mode)
        self.uid, self.sudo_ok = uid, sudo_ok
        self.sent: list[tuple[tuple[str, ...], bool]] = []

        self.stdin: dict[tuple[str, ...], bytes] = {}

    async def _sftp_client(self):  # type: ignore[no-untyped-def]
        raise HostError("srv: no SFTP subsystem")  # commands only, like a server without sftp-server

    async def _exec(self, argv, timeout, max_bytes, *, sudo=False, script="", stdin=b""):  # type: ignore[override]
        argv = tuple(argv)
        self.sent.append((argv, sudo))
        if stdin:
            self.stdin[argv] = stdin
        if argv == ("id", "-u"):
            return CommandOutput(argv, 0, f"{self.uid}\n".encode(), b"", 1)
        if argv == ("sudo", "-n", "true"):
            rc, err = (0, b"") if self.sudo_ok else (1, b"sudo: a password is required\n")
            return CommandOutput(argv, rc, b"", err, 1)
        return CommandOutput(argv, 0, b"ok", b"", 1)


async def test_root_login_runs_root_commands_directly_without_sudo() -> None:
    host = ScriptedSsh(uid=0, sudo_ok=False)
    assert await host.is_privileged()
    await host.run(["nft", "list", "ruleset"])
    assert host.sent[-1] == (("nft", "list", "ruleset"), False)
    assert (("sudo", "-n", "true"), False) not in host.sent


async def test_ordinary_user_with_passwordless_sudo_runs_only_root_commands_through_sudo() -> None:
    host = ScriptedSsh(uid=1000, sudo_ok=True)
    assert await host.is_privileged()
    await host.run(["nft", "list", "ruleset"])
    await host.run(["ss", "-Hltn"])
    assert host.sent[-2] == (("nft", "list", "ruleset"), True)
    assert host.sent[-1] == (("ss", "-Hltn"), False)


async def test_ordinary_user_whose_sudo_wants_a_password_is_not_privileged_and_never_prompts() -> None:
    host = ScriptedSsh(uid=1000, sudo_ok=False)
    assert not await host.is_privileged()
    await host.run(["nft", "list", "ruleset"])
    assert host.sent[-1] == (("nft", "list", "ruleset"), False)
    # The answer is remembered: sudo is asked once per run.
    assert sum(1 for argv, _ in host.sent if argv[0] == "sudo") == 1


async def test_sudo_never_mode_does_not_even_try_sudo() -> None:
    host = ScriptedSsh(uid=1000, sudo_ok=True, sudo_mode="never")
    assert not await host.is_privileged()
    assert all(argv[0] != "sudo" for argv, _ in host.sent)


async def test_root_file_write_by_an_ordinary_user_goes_through_sudo_tee_with_the_data_on_stdin() -> None:
    host = ScriptedSsh(uid=1000, sudo_ok=True)
    path = "/sys/kernel/tracing/instances/x y/$(id)"
    await host.write(path, b"reason == 3 || reason == 5", root=True)
    assert host.sent[-1] == (("tee", "--", path), True)
    assert host.stdin[("tee", "--", path)] == b"reason == 3 || reason == 5"


async def test_root_login_writes_root_files_without_sudo() -> None:
    host = ScriptedSsh(uid=0, sudo_ok=True)
    await host.write("/proc/sys/net/ipv4/tcp_fin_timeout", b"30", root=True)
    assert host.sent[-1] == (("tee", "--", "/proc/sys/net/ipv4/tcp_fin_timeout"), False)
    assert all(argv[0] != "sudo" for argv, _ in host.sent)


async def test_root_commands_of_an_ordinary_user_without_sudo_run_plainly_and_fail_there() -> None:
    host = ScriptedSsh(uid=1000, sudo_ok=False)
    await host.run_as_root(["mkdir", "/sys/kernel/tracing/instances/rw-1-ab"])
    await host.write("/home/ops/note", b"x", root=True)
    assert host.sent[-2] == (("mkdir", "/sys/kernel/tracing/instances/rw-1-ab"), False)
    assert host.sent[-1] == (("tee", "--", "/home/ops/note"), False)


async def test_run_as_root_uses_sudo_for_any_program_not_only_the_known_root_ones() -> None:
    host = ScriptedSsh(uid=1000, sudo_ok=True)
    await host.run(["rmdir", "/tmp/d"])
    await host.run_as_root(["rmdir", "/tmp/d"])
    assert [sent for sent in host.sent if sent[0][0] == "rmdir"] == \
        [(("rmdir", "/tmp/d"), False), (("rmdir", "/tmp/d"), True)]


async def test_which_asks_the_server_once_per_tool_and_run() -> None:
    host = ScriptedSsh(uid=0, sudo_ok=False)  # answers "ok": not a path, so not installed
    assert await host.which("nft") is None and await host.which("nft") is None
    await host.which("ss")
    assert [argv for argv, _ in host.sent] == [("command", "-v", "nft"), ("command", "-v", "ss")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_refused_connection_is_one_line_host_error_and_is_not_retried() -> None:
    host = SshHost(SshTarget("127.0.0.1", "nobody", _free_port()), known_hosts=[], connect_timeout=2)
    with pytest.raises(HostError) as first:
        await host.run(["true"])
    assert "connection refused" in first.value.message and "\n" not in first.value.message
    started = time.monotonic()
    for call in (host.run(["true"]), host.read("/etc/hostname"), host.stat("/etc"), host.glob("/*"),
                 host.which("ss")):
        with pytest.raises(HostError):
            await call
    assert time.monotonic() - started < 0.5
    assert host.connects == 1
    assert host.unavailable() == first.value.message
    assert not await host.is_privileged()  # no exception: prepare() must go on


async def test_server_that_never_speaks_ssh_times_out_within_the_connect_timeout() -> None:
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        host = SshHost(SshTarget("127.0.0.1", "", port), known_hosts=[], connect_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(HostError) as info:
            await host.run(["true"])
        assert time.monotonic() - started < 1.5
        assert "no answer" in info.value.message
    finally:
        silent.close()


async def test_server_resetting_the_connection_is_named_as_a_reset() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        host = SshHost(SshTarget("127.0.0.1", "", port), known_hosts=[], connect_timeout=2)
        with pytest.raises(HostError) as info:
            await host.read("/etc/hostname")
        assert "reset" in info.value.message or "closed" in info.value.message
    finally:
        server.close()


async def test_disabled_host_key_checking_in_ssh_config_is_refused(tmp_path) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n  UserKnownHostsFile none\n")
    host = SshHost(SshTarget("127.0.0.1", "", _free_port()), config=[str(config)], connect_timeout=1)
    with pytest.raises(HostError) as info:
        await host.run(["true"])
    assert "host key checking is disabled" in info.value.message


def test_limited_remote_command_is_killed_by_the_server_itself_and_keeps_argv_intact() -> None:
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", remote_command(["sleep", "30"], limit=1)],
                          capture_output=True, timeout=10)
    assert time.monotonic() - started < 5
    assert done.returncode == 137  # timeout -s KILL
    done = subprocess.run(["sh", "-c", remote_command(["printf", "%s\\0", *HOSTILE], limit=5)],
                          capture_output=True, timeout=10)
    assert done.stdout.decode().split("\0")[:-1] == HOSTILE
    missing = subprocess.run(["sh", "-c", remote_command(["rwsh-no-such-tool"], limit=5)],
                             capture_output=True, timeout=10)
    assert missing.returncode == 127


def test_a_remote_stream_is_stopped_by_the_server_when_its_stdin_closes_and_ends_when_its_command_does() -> None:
    """sshd may ignore a signal request: a stream (journalctl -f) is killed on the server when
    its channel's stdin closes; a command that ends by itself ends the stream (stdout's EOF)."""
    import os
    import subprocess
    import time

    from wizard.hosts.sshargs import remote_stream_command

    mark = f"sleep 41.{os.getpid() % 1000}"
    cmd = remote_stream_command(["sh", "-c", f"echo one; exec {mark}"])
    proc = subprocess.Popen(["sh", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == b"one\n"
    proc.stdin.close()
    proc.wait(5)
    deadline = time.monotonic() + 3
    while subprocess.run(["pgrep", "-f", mark], capture_output=True).stdout:
        assert time.monotonic() < deadline, "the streamed command outlived its channel's stdin"
        time.sleep(0.05)
    # its stdin left open, as a live channel's is: the command's own end is the stream's end
    done = subprocess.Popen(["sh", "-c", remote_stream_command(["echo", "bye"])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert done.stdout is not None and done.stdin is not None
    assert done.stdout.read() == b"bye\n"
    assert done.wait(5) == 0
    done.stdin.close()
