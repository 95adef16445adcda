"""Server contexts (I/O): a ``--server`` value to its Host, by the kind's entry in
``wizard.model.contexts`` (which says how each kind parses, reads and is built)."""

from __future__ import annotations

import importlib

from wizard.hosts.base import Host
from wizard.model.contexts import parse_context, split_context


def local_hostname() -> str:
    """The name of the machine the wizard runs on (the client side of the session)."""
    import socket

    return socket.gethostname()


def host_for(spec: str) -> Host:
    """The Host for a ``--server`` value; raises WizardError for an unknown context.

    The value's shape is checked by the input rules the CLI and the TUI share; what only
    the system can tell (does the namespace exist) is checked by the Host's ``from_spec``.
    Each kind's module is imported only when asked for (asyncssh loads only for ssh:).
    """
    kind, rest = split_context(parse_context(spec))
    module, _, name = kind.host.partition(":")
    cls = getattr(importlib.import_module(module), name)
    host: Host = cls.from_spec(rest)
    return host
