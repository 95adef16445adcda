"""Step 2 checks through the fakes: DNS facts, a handshake to every address, ICMP echo."""

from __future__ import annotations

from tests.unit.fakes import FakeDns, FakeHost, FakeProbes, FakeTcp, make_ctx, output
from wizard.diag.net.checks.connectivity import (
    DnsResolveCheck,
    IcmpPingCheck,
    NoParams,
    PingParams,
    TcpConnectCheck,
    parse_ping,
)
from wizard.diag.net.io.dns import DnsRecord, Resolution
from wizard.model import Status


def ids(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.id for s in result.signals]


# ---- dns.resolve ----------------------------------------------------------------------------


async def test_literal_address_is_reported_as_literal_and_ok() -> None:
    result = await DnsResolveCheck().run(make_ctx("[::1]:8080"), NoParams())
    assert result.status is Status.PASS
    assert ids(result) == []  # resolving weighs for no cause: a fact, not a signal
    assert "is an address" in result.summary
    fam = next(e for e in result.evidence if "ipv6" in e.data)
    assert fam.data == {"ipv4": [], "ipv6": ["::1"]}


async def test_dns_records_with_ttls_and_both_families_are_facts() -> None:
    ctx = make_ctx("api.example.test:443", probes=FakeProbes(dns=FakeDns({"api.example.test": ["192.0.2.7"]})))
    ctx.resolution = Resolution("api.example.test", ["192.0.2.7", "2001:db8::7"], "dns", [
        DnsRecord("CNAME", "edge.example.test", 300), DnsRecord("A", "192.0.2.7", 60),
        DnsRecord("AAAA", "2001:db8::7", 60)], nameserver="127.0.0.53", ms=4.2)
    result = await DnsResolveCheck().run(ctx, NoParams())
    assert result.status is Status.PASS
    records = next(e for e in result.evidence if "records" in e.data)
    assert {"type": "CNAME", "value": "edge.example.test", "ttl": 300} in records.data["records"]
    assert "@127.0.0.53" in records.source
    assert "IPv4 and IPv6" in result.summary


async def test_resolver_and_dns_disagreeing_is_a_fact() -> None:
    ctx = make_ctx("127.0.0.1:80")
    ctx.resolution = Resolution("svc.test", ["192.0.2.1"], "dns", [DnsRecord("A", "192.0.2.99", 30)])
    result = await DnsResolveCheck().run(ctx, NoParams())
    assert any("disagree" in e.title for e in result.evidence)


async def test_unresolvable_name_fails_naming_the_resolver_error() -> None:
    ctx = make_ctx("127.0.0.1:80")
    ctx.resolution = Resolution("nope.test", [], "none", error="nope.test does not exist in DNS (NXDOMAIN)")
    result = await DnsResolveCheck().run(ctx, NoParams())
    assert result.status is Status.FAIL
    assert "NXDOMAIN" in result.summary


async def test_resolution_is_made_through_the_probe_only_when_missing() -> None:
    ctx = make_ctx("svc.test:80", probes=FakeProbes(dns=FakeDns({"svc.test": ["10.0.0.5"]})))
    ctx.resolution = None
    result = await DnsResolveCheck().run(ctx, NoParams())
    assert result.status is Status.PASS
    assert any("10.0.0.5" in e.title for e in result.evidence)


# ---- tcp.connect ----------------------------------------------------------------------------


def dual_ctx(tcp: FakeTcp):  # type: ignore[no-untyped-def]
    ctx = make_ctx("svc.test:443", probes=FakeProbes(tcp=tcp, dns=FakeDns({"svc.test": ["192.0.2.1", "2001:db8::1"]})))
    return ctx


async def test_every_address_is_connected_and_all_ok_passes() -> None:
    tcp = FakeTcp()
    result = await TcpConnectCheck().run(dual_ctx(tcp), NoParams())
    assert sorted(c[1] for c in tcp.calls) == ["192.0.2.1", "2001:db8::1"]
    assert result.status is Status.PASS
    assert ids(result) == ["connect.ok"]
    assert all("ms" in e.data for e in result.evidence)


async def test_refused_on_every_address_fails_and_explains_rst_to_syn() -> None:
    result = await TcpConnectCheck().run(dual_ctx(FakeTcp(connects={"*": "refused"})), NoParams())
    assert result.status is Status.FAIL
    assert ids(result) == ["connect.refused"]
    assert result.signals[0].strength == 1.0
    assert any("RST answered the SYN" in e.title for e in result.evidence)


async def test_broken_ipv6_is_partial_with_fractional_strength() -> None:
    result = await TcpConnectCheck().run(dual_ctx(FakeTcp(connects={"2001:db8::1": "timeout"})), NoParams())
    assert result.status is Status.WARN
    assert set(ids(result)) == {"connect.timeout", "connect.partial"}
    assert all(s.strength == 0.5 for s in result.signals)
    assert "connect.ok" not in ids(result)
    assert any("only IPv6 fails" in e.title for e in result.evidence)


async def test_reset_and_unreachable_outcomes_raise_their_signals() -> None:
    tcp = FakeTcp(connects={"192.0.2.1": "reset", "2001:db8::1": "unreachable"})
    result = await TcpConnectCheck().run(dual_ctx(tcp), NoParams())
    assert result.status is Status.FAIL
    assert set(ids(result)) == {"connect.reset", "connect.unreachable"}


# ---- icmp.ping ------------------------------------------------------------------------------

PING_OK = """PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.
64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.177 ms

--- 127.0.0.1 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 405ms
rtt min/avg/max/mdev = 0.039/0.108/0.177/0.069 ms
"""
PING_LOST = """PING 192.0.2.1 (192.0.2.1) 56(84) bytes of data.

--- 192.0.2.1 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2045ms
"""


def test_ping_statistics_are_parsed() -> None:
    stats = parse_ping(PING_OK)
    assert stats is not None
    assert (stats.transmitted, stats.received, stats.loss_pct) == (3, 3, 0.0)
    assert (stats.rtt_min, stats.rtt_avg, stats.rtt_max) == (0.039, 0.108, 0.177)
    lost = parse_ping("3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2ms")
    assert lost is not None and lost.received == 0 and lost.loss_pct == 100.0
    assert parse_ping("ping: unknown host") is None


async def test_one_address_is_pinged_at_once_not_after_the_other_checks_first_steps() -> None:
    # The ping's length is fixed (count x interval) and counts from its start: a run's other
    # checks, started beside it, must not delay that start by their first steps.
    import asyncio

    order: list[str] = []

    class Client(FakeHost):
        async def run(self, argv, timeout=5.0, max_bytes=1 << 20):  # type: ignore[no-untyped-def,override]
            order.append(argv[0])
            return await super().run(argv, timeout, max_bytes)

    async def neighbour() -> None:  # another check's first step, started just after the ping's
        order.append("neighbour")

    ctx = make_ctx("127.0.0.1:80", client=Client(commands={("ping",): PING_OK}))
    ping = asyncio.ensure_future(IcmpPingCheck().run(ctx, PingParams()))
    other = asyncio.ensure_future(neighbour())
    result, _ = await asyncio.gather(ping, other)
    assert order == ["ping", "neighbour"] and result.status == Status.PASS


async def test_ping_answered_passes_and_uses_the_params() -> None:
    client = FakeHost(commands={("ping",): PING_OK})
    ctx = make_ctx("127.0.0.1:80", client=client)
    result = await IcmpPingCheck().run(ctx, PingParams(count=3, interval_s=0.2))
    assert result.status is Status.PASS and result.summary == "the host answers ICMP echo"
    assert client.calls == [("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1")]
    assert result.evidence[0].data["rtt_avg"] == 0.108


async def test_ping_to_ipv6_uses_dash_6() -> None:
    client = FakeHost(commands={("ping",): PING_OK})
    await IcmpPingCheck().run(make_ctx("[::1]:80", client=client), PingParams(count=1))
    assert client.calls[0][:2] == ("ping", "-6") and client.calls[0][-1] == "::1"


async def test_total_loss_warns_that_icmp_is_often_filtered() -> None:
    client = FakeHost(commands={("ping",): output(["ping"], PING_LOST, returncode=1)})
    result = await IcmpPingCheck().run(make_ctx("192.0.2.1:80", client=client), PingParams())
    assert result.status is Status.WARN
    assert ids(result) == ["icmp.lost"]
    assert any("says nothing about TCP" in e.title or "say nothing about TCP" in e.title
               for e in result.evidence)


async def test_ping_without_privilege_is_skipped_with_the_sysctl_fix() -> None:
    client = FakeHost(commands={("ping",): output(["ping"], "", returncode=2,
                                                  stderr="ping: socket: Operation not permitted")})
    result = await IcmpPingCheck().run(make_ctx("127.0.0.1:80", client=client), PingParams())
    assert result.status is Status.SKIP
    assert "Operation not permitted" in (result.reason or "")
    assert "ping_group_range" in (result.fix or "") and "sudo" in (result.fix or "")


async def test_ping_params_are_bounded() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        PingParams(count=11)
    with pytest.raises(pydantic.ValidationError):
        PingParams(interval_s=0.1)
    with pytest.raises(pydantic.ValidationError):
        PingParams(bogus=1)  # type: ignore[call-arg]


def test_checklist_params_of_step_two_validate() -> None:
    ctx = make_ctx()
    spec = next(c for c in ctx.checklist.step("connectivity").checks if c.check == "icmp.ping")
    assert PingParams.model_validate(spec.params).count == 3


async def test_an_unresolved_name_is_never_handed_to_a_socket_or_ping() -> None:
    tcp = FakeTcp()
    client = FakeHost(commands={("ping",): PING_OK})
    ctx = make_ctx("nothing.test:80", client=client, probes=FakeProbes(tcp=tcp))
    assert ctx.target.addresses == []
    connect = await TcpConnectCheck().run(ctx, NoParams())
    ping = await IcmpPingCheck().run(ctx, PingParams())
    assert connect.status is Status.SKIP and ping.status is Status.SKIP
    assert tcp.calls == [] and client.calls == []
