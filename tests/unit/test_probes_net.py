"""Real probes on loopback only: processes holding sockets, TCP connect outcomes, DNS without DNS.

Every socket here is opened by the test itself on 127.0.0.1 or ::1; no DNS query is sent
(literals and a temporary hosts file only).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.diag.net.io.dns import DnsProbe, hosts_lookup
from wizard.diag.net.io.tcp import TcpProbe
from wizard.diag.process.io.processes import ProcessProbe, normalize_address


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


FAMILIES = [pytest.param((socket.AF_INET, "127.0.0.1"), id="ipv4"),
            pytest.param((socket.AF_INET6, "::1"), id="ipv6",
                         marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1 here"))]


@pytest.fixture
def connected_pair(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, socket.socket]]:
    family, address = request.param
    server = socket.socket(family, socket.SOCK_STREAM)
    client = socket.socket(family, socket.SOCK_STREAM)
    accepted = None
    try:
        server.bind((address, 0))
        server.listen(1)
        port = server.getsockname()[1]
        client.connect((address, port))
        accepted, _ = server.accept()
        yield address, port, client
    finally:
        for s in (client, accepted, server):
            if s is not None:
                s.close()


@pytest.mark.parametrize("connected_pair", FAMILIES, indirect=True)
async def test_process_probe_finds_the_connection_this_test_opened(connected_pair) -> None:  # type: ignore[no-untyped-def]
    address, port, client = connected_pair
    found = await ProcessProbe().connections_to([address], port, timeout=10)
    assert found.error == ""
    mine = [h for h in found.holders if h.pid == os.getpid()]
    local_port = client.getsockname()[1]
    assert any(h.local.endswith(f":{local_port}") and h.state == "ESTABLISHED" for h in mine), found
    holder = mine[0]
    assert holder.remote == (f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
    assert holder.name and holder.started is not None
    assert len(holder.cmdline) <= 200
    # The accepted (server) end has the target as its local address, not its remote: not listed.
    assert all(h.remote.endswith(f":{port}") for h in found.holders)


async def test_process_probe_ignores_other_ports() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        found = await ProcessProbe().connections_to(["127.0.0.1"], port, timeout=10)
    assert found.holders == ()


def test_ipv4_mapped_addresses_are_normalized() -> None:
    assert normalize_address("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalize_address("0:0:0:0:0:0:0:1") == "::1"


@pytest.fixture
def listening_port() -> Iterator[tuple[str, int]]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield "127.0.0.1", server.getsockname()[1]


async def test_tcp_connect_to_a_listening_loopback_port_is_ok(listening_port) -> None:  # type: ignore[no-untyped-def]
    address, port = listening_port
    outcome = await TcpProbe().connect(address, port, 2.0)
    assert outcome.kind == "ok"
    assert outcome.ms < 2000
    assert outcome.local.startswith("127.0.0.1:")


@pytest.mark.parametrize("family_address", FAMILIES)
async def test_tcp_connect_to_a_closed_loopback_port_is_refused(family_address: tuple[int, str]) -> None:
    family, address = family_address
    # Bound but not listening: the port stays ours (no other test takes it) and a SYN gets an RST.
    with socket.socket(family, socket.SOCK_STREAM) as holder:
        holder.bind((address, 0))
        outcome = await TcpProbe().connect(address, holder.getsockname()[1], 2.0)
    assert outcome.kind == "refused"
    assert outcome.family == ("IPv6" if family == socket.AF_INET6 else "IPv4")


# ---- DNS without DNS ------------------------------------------------------------------------


async def test_literal_addresses_resolve_to_themselves() -> None:
    probe = DnsProbe(hosts_file="/nonexistent")
    res = await probe.resolve("::1")
    assert (res.source, res.addresses) == ("literal", ["::1"])
    res = await probe.resolve("127.0.0.1")
    assert (res.source, res.addresses) == ("literal", ["127.0.0.1"])


async def test_names_in_the_hosts_file_are_not_sent_to_dns(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.9 rwid-svc.test rwid-alias  # lab\n"
                     "::1 rwid-svc.test\n")
    res = await DnsProbe(hosts_file=str(hosts)).resolve("RWID-ALIAS", timeout=1)
    assert (res.source, res.addresses) == ("hosts", ["127.0.0.9"])
    res = await DnsProbe(hosts_file=str(hosts)).resolve("rwid-svc.test.", timeout=1)
    assert (res.source, res.addresses, res.records) == ("hosts", ["127.0.0.9", "::1"], [])


def test_hosts_lookup_skips_comments_bad_addresses_and_duplicates() -> None:
    text = ("# 10.0.0.1 svc\n"
            "not-an-ip svc\n"
            "10.0.0.2\tsvc   other\n"
            "10.0.0.2 svc\n"
            "fe80::1%eth0 svc\n"
            "10.0.0.3 notsvc # svc\n")
    assert hosts_lookup("svc", text) == ["10.0.0.2", "fe80::1"]
    assert hosts_lookup("absent", text) == []


async def test_process_probe_is_bounded_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import wizard.diag.process.io.processes as processes

    def slow_scan(wanted, port):  # type: ignore[no-untyped-def]
        time.sleep(0.6)
        return processes.ProcessSockets(error="a late answer that must be dropped")

    monkeypatch.setattr(processes, "_scan", slow_scan)
    started = time.monotonic()
    found = await ProcessProbe().connections_to(["127.0.0.1"], 1, timeout=0.1)
    assert time.monotonic() - started < 0.5
    assert "did not answer within 0.1s" in found.error and "late" not in found.error
    assert found.holders == ()
