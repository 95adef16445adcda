"""The target of a diagnosis: host and port parsed from host:port, [v6]:port or a URL."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from wizard.model.errors import WizardError
from wizard.model.factories import new_list

#: the schemes the probe speaks: an HTTP GET, or a TLS ClientHello (wizard.model.payload)
PROBED_SCHEMES = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: schemes of one TCP connection to a well-known port: the probes work on it as on any port.
#: ftp is not one: its transfers use other connections, on ports the URL does not name.
DEFAULT_PORTS = {**PROBED_SCHEMES, "ssh": 22, "smtp": 25, "submission": 587, "imap": 143,
                 "imaps": 993, "pop3": 110, "pop3s": 995, "postgres": 5432, "postgresql": 5432,
                 "mysql": 3306, "redis": 6379, "amqp": 5672, "amqps": 5671,
                 "ldap": 389, "ldaps": 636, "mqtt": 1883, "mqtts": 8883}
_NOT_PROBED = {"ftp": "its transfers use other connections, on ports the URL does not name",
               "ftps": "its transfers use other connections, on ports the URL does not name",
               "sftp": "it is SSH: give ssh://HOST or HOST:22",
               "file": "it names no network connection"}

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class Target(BaseModel):
    """Where the connection went. ``addresses`` is filled once the name is resolved."""

    host: str
    port: int = Field(ge=1, le=65535)
    addresses: list[str] = Field(default_factory=new_list)
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
    """A port of ASCII digits, 1-65535 (other digits, like Arabic-Indic ones, are not taken)."""
    if not (text.isascii() and text.isdigit()):
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
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise WizardError("bad target", f"{host!r} is neither an IP address nor a valid host name")
    # No name ends in a label of digits alone (RFC 3696 2), and the resolver would read
    # "127.1", "010.0.0.1" or "2130706433" as some address by inet_aton's old rules: said
    # here, before any lookup, instead of a guessed address or a query for a typo.
    if all(label.isdigit() for label in labels):
        raise WizardError("bad target", f"{host!r} is not an IPv4 address: four numbers 0-255 "
                                        "without leading zeros, e.g. 10.0.0.5")
    if labels[-1].isdigit():
        raise WizardError("bad target", f"{host!r} is not a host name: a name's last label is not all digits")
    return name.lower()


def _parse_url(text: str, raw: str) -> Target:
    """A URL whose scheme the wizard knows (DEFAULT_PORTS); its port, or the scheme's."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    # The URL is not echoed: it may carry a password.
    if not scheme:
        raise WizardError("bad target", "a URL needs a scheme (https://HOST), or give host:PORT")
    if scheme in _NOT_PROBED:
        raise WizardError("bad target", f"{scheme}:// is not probed ({_NOT_PROBED[scheme]}); "
                                        "give host:PORT of the connection that was reset")
    if scheme not in DEFAULT_PORTS:
        raise WizardError("bad target", f"{scheme}:// is not a scheme the wizard knows (http, https, ws, "
                                        "wss, ssh, postgres, ...: docs/cli.md); give host:PORT")
    # The port as written: urlsplit's .port takes 0 for no port and calls other digits out of range.
    port_text = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    port = parse_port(port_text) if port_text else DEFAULT_PORTS[scheme]
    return Target(host=_check_host(parts.hostname or "", raw), port=port, scheme=scheme, path=parts.path or "/")


def parse_target(raw: str) -> Target:
    """Parse ``host:port``, ``[v6]:port``, ``v6`` with brackets, or a URL with a scheme."""
    text = raw.strip()
    if not text:
        raise WizardError("bad target", "the target is empty; give host:port or a URL")
    if "://" in text:
        return _parse_url(text, raw)
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
