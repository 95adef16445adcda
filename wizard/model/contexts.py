"""The kinds of server context (pure): one registry entry per kind says how its value parses,
how it reads to a person, what in it names a machine, and which Host class opens it.

``local`` is this machine, ``netns:NAME`` a network namespace on it, ``ssh:[user@]host[:port]``
another machine. A new kind (``pid:``, ``docker:``) is one entry here and one Host class with
a ``from_spec(rest)`` constructor; nothing else switches on the kind's string.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wizard.model.errors import WizardError

_NETNS = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The ssh: shape, as wizard.hosts.sshargs.parse_ssh_spec reads it (a test keeps them equal).
_SSH_HOST = re.compile(r"[A-Za-z0-9_.%:-]{1,253}")
_SSH_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}")
_SUDO_LOCALLY = "run as root: sudo reset-wizard ..."


@dataclass(frozen=True)
class ContextKind:
    """One kind of server context."""

    name: str
    syntax: str  # how it is written, for help lines and errors
    #: checks the part after ``name:`` (raises WizardError); None: the kind takes no value
    check: Callable[[str], None] | None
    #: the machine names in the part after ``name:`` (redacted with the addresses)
    hostnames: Callable[[str], list[str]]
    #: what gives root there, for a check skipped for want of it
    root_fix: str
    #: a command as a person pastes it to run it there: (rest, argv, root, in_netns) -> line
    command: Callable[[str, list[str], bool, bool], str]
    #: ``module:Class`` of its Host, built by ``Class.from_spec(rest)`` (wizard.hosts.contexts)
    host: str


def split_ssh_spec(rest: str) -> tuple[str, str, int]:
    """The user, host and port of ``ssh:[user@]host[:port]`` (after ``ssh:``); "" and 0 when
    not given (then ~/.ssh/config decides). IPv6 literals may be bare or ``[addr]:port``."""
    def bad(why: str) -> WizardError:
        return WizardError("unknown context", f"ssh:{rest}: {why} (use ssh:[user@]host[:port])")

    user, at, hostport = rest.rpartition("@")
    if at and not _SSH_USER.fullmatch(user):
        raise bad("not a valid user name")
    port_text = ""
    if hostport.startswith("["):
        host, close, tail = hostport[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise bad("unbalanced brackets")
        port_text = tail[1:]
        if tail and not port_text:
            raise bad("empty port")
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
        if not port_text:
            raise bad("empty port")
    else:
        host = hostport
    if not host or host.startswith("-") or not _SSH_HOST.fullmatch(host):
        raise bad("not a valid host")
    if port_text and (not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536):
        raise bad(f"port {port_text!r} is not 1-65535")
    return (user if at else ""), host, int(port_text or 0)


def _check_netns(rest: str) -> None:
    if not rest:
        raise WizardError("unknown context", "netns: needs a namespace name (netns:NAME)")
    if not _NETNS.fullmatch(rest):
        raise WizardError("unknown context", f"netns:{rest} is not a valid namespace name")


def _check_ssh(rest: str) -> None:
    if not rest:
        raise WizardError("unknown context", "ssh: needs a host (ssh:[user@]host[:port])")
    split_ssh_spec(rest)


def _ssh_hostnames(rest: str) -> list[str]:
    return [split_ssh_spec(rest)[1]]


def _none(rest: str) -> list[str]:
    return []


def _sudo(argv: list[str], root: bool) -> list[str]:
    return argv if root else ["sudo", *argv]


def _local_command(rest: str, argv: list[str], root: bool, in_netns: bool) -> str:
    return shlex.join(_sudo(argv, root))


def _netns_command(rest: str, argv: list[str], root: bool, in_netns: bool) -> str:
    # what the kernel keeps once for the machine (tracefs, packages) is not the namespace's
    return shlex.join(_sudo(["ip", "netns", "exec", rest, *argv] if in_netns else argv, root))


def _ssh_command(rest: str, argv: list[str], root: bool, in_netns: bool) -> str:
    # it runs on the server: through ssh, under sudo there unless the login is root's
    user, host, port = split_ssh_spec(rest)
    login = [*(["-p", str(port)] if port else []), f"{user}@{host}" if user else host]
    return shlex.join(["ssh", *login, shlex.join(argv if user == "root" else ["sudo", *argv])])


KINDS: dict[str, ContextKind] = {kind.name: kind for kind in (
    ContextKind("local", "local", None, _none, _SUDO_LOCALLY, _local_command, "wizard.hosts.local:LocalHost"),
    ContextKind("netns", "netns:NAME", _check_netns, _none, _SUDO_LOCALLY, _netns_command,
                "wizard.hosts.local:NetnsHost"),
    ContextKind("ssh", "ssh:[user@]host[:port]", _check_ssh, _ssh_hostnames,
                "allow passwordless sudo (sudo -n) for the ssh user on that host, or connect as root",
                _ssh_command, "wizard.hosts.ssh:SshHost"),
)}


def context_syntax() -> str:
    """How a context may be written: ``local, netns:NAME or ssh:[user@]host[:port]``."""
    forms = [k.syntax for k in KINDS.values()]
    return ", ".join(forms[:-1]) + " or " + forms[-1]


def split_context(spec: str) -> tuple[ContextKind, str]:
    """The kind of a parsed context and the part after ``kind:``."""
    name, _, rest = spec.partition(":")
    return KINDS[name], rest


def parse_context(text: str | None) -> str:
    """A --server value by its shape (blank is ``local``), checked by its kind's rule.

    Whether the namespace exists or the host answers is the probes' question.
    """
    raw = (text or "").strip() or "local"
    name, colon, rest = raw.partition(":")
    kind = KINDS.get(name)
    if kind is None or (kind.check is None and colon):
        raise WizardError("unknown context", f"{raw!r}: use {context_syntax()}")
    if kind.check is not None:
        kind.check(rest)
    return raw


def context_hostnames(spec: str) -> list[str]:
    """The machine names a context's value holds (``ssh:ops@web1:22`` holds ``web1``);
    none for a value that does not parse (a session file written by hand)."""
    try:
        kind, rest = split_context(parse_context(spec))
    except (WizardError, KeyError):
        return []
    return kind.hostnames(rest)


def root_fix(spec: str) -> str:
    """What gives root in this context, for a check skipped for want of it."""
    try:
        kind, _ = split_context(spec)
    except KeyError:
        return _SUDO_LOCALLY
    return kind.root_fix


def command_in(spec: str, argv: Sequence[str], *, root: bool = True, in_netns: bool = True) -> str:
    """A command that needs root, as a person pastes it to run it in that context: the one
    place a fix's command is wrapped for where it runs. ``root``: whether this run has root
    there (else ``sudo`` comes first); ``in_netns``: whether the command acts on the network
    namespace (nft, ss, sysctl net.*) rather than on the machine (mount tracefs, apt).

    local: ``[sudo] CMD``; netns:NAME: ``[sudo] ip netns exec NAME CMD``; ssh:[user@]host:
    ``ssh [-p PORT] user@host 'sudo CMD'`` (it runs on the server, sudo there)."""
    try:
        kind, rest = split_context(parse_context(spec))
    except (WizardError, KeyError):
        kind, rest = KINDS["local"], ""
    return kind.command(rest, list(argv), root, in_netns)
