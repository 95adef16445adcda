"""Name resolution (I/O): literal addresses, /etc/hosts, the system resolver and DNS.

What an application sees comes from the system resolver (getaddrinfo); what DNS itself
says (records, TTLs, which server answered) comes from dnspython. Names found in
/etc/hosts are not sent to DNS at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Literal

from wizard.engine.probes import DnsRecord, Resolution
from wizard.model.cancel import within

HOSTS_FILE = "/etc/hosts"


def _read_text(path: str, limit: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read(limit)


def hosts_lookup(name: str, text: str) -> list[str]:
    """Addresses /etc/hosts gives ``name`` (in file order)."""
    found: list[str] = []
    wanted = name.lower().rstrip(".")
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and wanted in (f.lower() for f in fields[1:]):
            try:
                addr = str(ipaddress.ip_address(fields[0].split("%")[0]))
            except ValueError:
                continue
            if addr not in found:
                found.append(addr)
    return found


class DnsProbe:
    def __init__(self, hosts_file: str = HOSTS_FILE) -> None:
        self.hosts_file = hosts_file

    async def resolve(self, name: str, timeout: float = 3.0) -> Resolution:
        started = time.monotonic()
        try:
            return Resolution(name, [str(ipaddress.ip_address(name))], "literal")
        except ValueError:
            pass
        try:
            from_hosts = hosts_lookup(name, await within(
                asyncio.to_thread(_read_text, self.hosts_file, 1 << 20), timeout))
        except (OSError, TimeoutError):
            from_hosts = []
        if from_hosts:
            return Resolution(name, from_hosts, "hosts", ms=_ms(started))
        system, dns = await asyncio.gather(self._system(name, timeout), self._dns(name, timeout))
        addresses, error = system
        records, nameserver, dns_error = dns
        if not addresses:
            addresses = [r.value for r in records if r.rtype in ("A", "AAAA")]
        source: Literal["dns", "system", "none"] = "dns" if records else "system" if addresses else "none"
        return Resolution(name, addresses, source, records, nameserver, _ms(started),
                          error or dns_error if not addresses else dns_error)

    async def _system(self, name: str, timeout: float) -> tuple[list[str], str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await within(
                loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), timeout)
        except TimeoutError:
            return [], f"the system resolver did not answer within {timeout:g}s"
        except socket.gaierror as exc:
            return [], f"the system resolver says: {exc.strerror}"
        out: list[str] = []
        for info in infos:
            addr = str(info[4][0]).split("%")[0]
            if addr not in out:
                out.append(addr)
        return out, ""

    async def _dns(self, name: str, timeout: float) -> tuple[list[DnsRecord], str, str]:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        try:
            resolver = dns.asyncresolver.Resolver()
        except (dns.resolver.NoResolverConfiguration, OSError):
            return [], "", "no DNS resolver is configured"
        resolver.lifetime = timeout
        nameserver = str(resolver.nameservers[0]) if resolver.nameservers else ""
        records: list[DnsRecord] = []
        errors: list[str] = []

        async def query(rtype: str) -> None:
            try:
                answer = await resolver.resolve(name, rtype, search=True)
            except dns.resolver.NXDOMAIN:
                errors.append(f"{name} does not exist in DNS (NXDOMAIN)")
                return
            except dns.resolver.NoAnswer:
                return
            except dns.exception.Timeout:
                errors.append(f"DNS did not answer {rtype} within {timeout:g}s")
                return
            except dns.exception.DNSException as exc:
                errors.append(f"DNS {rtype} query failed: {exc}")
                return
            ttl = answer.rrset.ttl if answer.rrset is not None else 0
            if answer.canonical_name and str(answer.canonical_name).rstrip(".") != name.rstrip("."):
                records.append(DnsRecord("CNAME", str(answer.canonical_name).rstrip("."), ttl))
            for item in answer:
                records.append(DnsRecord(rtype, item.to_text(), ttl))

        await asyncio.gather(query("A"), query("AAAA"))
        return records, nameserver, "; ".join(dict.fromkeys(errors))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
