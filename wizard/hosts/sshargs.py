"""What the wizard says to sshd: the ``ssh:`` spec, remote command quoting, root needs, failure lines.

Pure: no I/O. Every remote command is a constant ``sh -c`` script with argv as positional
parameters, so no piece of an argument is ever parsed by the remote user's shell.
"""

from __future__ import annotations

import asyncio
import math
import posixpath
import shlex
from dataclasses import dataclass

from wizard.model.contexts import split_ssh_spec

# sbin is added because a non-login SSH session of an ordinary user on Debian has no
# /usr/sbin in PATH (nft, conntrack, ss -p).
_PATH = 'PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin"'
# Runs argv without the remote user's shell parsing any of it: the script is constant and
# every argument arrives as a positional parameter.
_EXEC = f'{_PATH} LC_ALL=C exec "$@"'
# The same, with a kill deadline on the server ($1 seconds): OpenSSH ignores signal requests
# for root logins, so closing our side alone would leave a silent command running there.
_EXEC_LIMITED = (f'{_PATH}; export LC_ALL=C; '
                 'limit=$1; shift; if command -v timeout >/dev/null 2>&1; '
                 'then exec timeout -s KILL "$limit" "$@"; else exec "$@"; fi')
_WHICH = f'{_PATH}; command -v -- "$1"'
# A command that runs until told to stop (journalctl -f): it is stopped on the server when
# the channel's stdin closes (our side closed the stream, or the connection went: sshd ends
# the session), since sshd may ignore the signal request. Its own stdin is /dev/null; a
# watcher holding only the channel's stdin kills it then. Its exit ends the session. (No
# `timeout` between: killing timeout can leave its child running, orphaned.)
_FOLLOW = (f'{_PATH}; export LC_ALL=C; exec 3<&0; "$@" 3<&- & '
           'pid=$!; (cat <&3 >/dev/null 2>&1; kill "$pid" 2>/dev/null) >/dev/null 2>&1 & '
           'exec 3<&-; wait "$pid"')

#: programs that read what only root may read on the server (rules, conntrack, raw sockets)
ROOT_PROGRAMS = frozenset({
    "nft", "iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-legacy-save",
    "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save", "conntrack", "tcpdump",
})




@dataclass(frozen=True)
class SshTarget:
    """Where ``ssh:[user@]host[:port]`` points; empty user/port mean ~/.ssh/config or defaults."""

    host: str
    user: str = ""
    port: int = 0

    @property
    def spec(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and self.port else self.host
        return "ssh:" + (f"{self.user}@" if self.user else "") + host + (f":{self.port}" if self.port else "")


def parse_ssh_spec(rest: str) -> SshTarget:
    """Parse the part after ``ssh:`` by the input rules the CLI and the TUI share."""
    user, host, port = split_ssh_spec(rest)
    return SshTarget(host, user, port)


def remote_command(argv: list[str] | tuple[str, ...], sudo: bool = False, limit: float = 0) -> str:
    """The command string sent to sshd: argv quoted so no piece is parsed by a shell;
    with ``limit`` (seconds) the server kills the command itself after that long."""
    if not argv:
        raise ValueError("empty argv")
    prefix = ["sudo", "-n", "--"] if sudo else []
    if limit > 0:
        return shlex.join([*prefix, "sh", "-c", _EXEC_LIMITED, "sh", str(math.ceil(limit)), *argv])
    return shlex.join([*prefix, "sh", "-c", _EXEC, "sh", *argv])


def remote_stream_command(argv: list[str] | tuple[str, ...], sudo: bool = False) -> str:
    """The command string of a stream (``journalctl -f``): argv quoted as ``remote_command``
    quotes it, killed on the server when its channel's stdin closes."""
    if not argv:
        raise ValueError("empty argv")
    prefix = ["sudo", "-n", "--"] if sudo else []
    return shlex.join([*prefix, "sh", "-c", _FOLLOW, "sh", *argv])


def needs_root(argv: list[str] | tuple[str, ...]) -> bool:
    """Whether this command shows less (or nothing) without root on the server."""
    prog = posixpath.basename(argv[0]) if argv else ""
    if prog in ROOT_PROGRAMS:
        return True
    # ss shows other users' processes only to root.
    return prog == "ss" and any((a.startswith("-") and not a.startswith("--") and "p" in a)
                                or a == "--processes" for a in argv[1:])


def describe_failure(exc: BaseException, target: SshTarget, timeout: float,
                     key_known: bool | None = None) -> str:
    """One line naming why the SSH connection failed and what would fix it."""
    import asyncssh

    where = target.spec
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if key_known:
            return (f"{where}: the server's host key does not match known_hosts (changed key or "
                    f"a machine in the middle); if the change is expected: ssh-keygen -R "
                    f"{target.host}, then ssh to it once to verify and record the new key")
        return (f"{where}: the server's host key is not in known_hosts, so it cannot be "
                f"verified; ssh to it once to check and record the key, then retry")
    if isinstance(exc, asyncssh.PermissionDenied):
        return (f"{where}: authentication failed (public keys only, no passwords); load a key "
                f"into ssh-agent or set IdentityFile in ~/.ssh/config")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"{where}: no answer from the SSH server within {timeout:g}s (dropped or unreachable)"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused (no SSH server listening on that port)"
    if isinstance(exc, (ConnectionResetError, asyncssh.ConnectionLost)):
        return f"{where}: the SSH server reset or closed the connection during login"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{where}: the SSH server disconnected: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"{where}: cannot connect: {exc.strerror or exc}"
    return f"{where}: cannot connect: {type(exc).__name__}: {exc}"


def which_command(tool: str) -> str:
    """The command string that prints where ``tool`` is on the server (nothing if absent)."""
    return shlex.join(["sh", "-c", _WHICH, "sh", tool])
