"""The target of a diagnosis: host and port parsed from host:port, [v6]:port or a URL."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from wizard.model.errors import WizardError

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "ssh": 22,
                 "smtp": 25, "imap": 143, "imaps": 993, "postgres": 5432, "postgresql": 5432,
                 "mysql": 3306, "redis": 6379, "amqp": 5672, "ldap": 389, "ldaps": 636}

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class Target(BaseModel):
    """Where the connection went. ``addresses`` is filled once the name is resolved."""

    host: str
    port: int = Field(ge=1, le=65535)
    addresses: list[str] = Field(default_factory=list)
    scheme: str | None = None
    path: str | None = None

    @property
    def is_address(self) -> bool:
        return is_ip(self.host)

    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_port(text: str) -> int:
    if not text.isdigit():
        raise WizardError("bad port", f"{text!r} is not a port number (1-65535)")
    port = int(text)
    if not 1 <= port <= 65535:
        raise WizardError("bad port", f"{port} is out of range (1-65535)")
    return port


def _check_host(host: str, raw: str) -> str:
    if not host:
        raise WizardError("bad target", f"{raw!r} names no host")
    if is_ip(host):
        return str(ipaddress.ip_address(host))
    name = host.rstrip(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise WizardError("bad target", f"{host!r} is neither an IP address nor a valid host name")
    return name.lower()


def parse_target(raw: str) -> Target:
    """Parse ``host:port``, ``[v6]:port``, ``v6`` with brackets, or a URL with a scheme."""
    text = raw.strip()
    if not text:
        raise WizardError("bad target", "the target is empty; give host:port or a URL")
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        try:
            explicit = parts.port
        except ValueError:
            raise WizardError("bad port", f"the port in {raw!r} is out of range (1-65535)") from None
        host = parts.hostname or ""
        port = explicit or DEFAULT_PORTS.get(scheme)
        if port is None:
            raise WizardError("bad target", f"{raw!r} has no port and {scheme}:// has no default")
        return Target(host=_check_host(host, raw), port=port, scheme=scheme, path=parts.path or "/")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise WizardError("bad target", f"{raw!r} opens '[' but never closes it")
        host, rest = text[1:end], text[end + 1:]
        if not is_ip(host) or ":" not in host:
            raise WizardError("bad target", f"{host!r} in brackets is not an IPv6 address")
        if not rest.startswith(":") or not rest[1:]:
            raise WizardError("bad target", f"{raw!r} has no port: use [{host}]:PORT")
        return Target(host=_check_host(host, raw), port=parse_port(rest[1:]))
    if text.count(":") > 1:
        if is_ip(text):
            raise WizardError("bad target", f"{raw!r} has no port: write IPv6 as [{text}]:PORT")
        raise WizardError("bad target", f"{raw!r} is ambiguous: write IPv6 as [address]:PORT")
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise WizardError("bad target", f"{raw!r} has no port: use host:PORT or a URL")
    return Target(host=_check_host(host, raw), port=parse_port(port_text))
