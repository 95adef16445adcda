"""The shared bracket: the checks that read server state around a probe (rules, conntrack,
counters) share one probe per pass, all their readings taken before and after it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.fakes import FakeProbes, make_ctx
from wizard.diag.firewall.checks.conntrack import ConntrackStateCheck
from wizard.diag.firewall.checks.rules import FirewallRulesCheck
from wizard.diag.kernel.checks.counters import KernelCountersCheck
from wizard.engine.bracket import shared_bracket
from wizard.engine.contract import CheckContext
from wizard.engine.runner import Runner
from wizard.hosts.base import HostError
from wizard.model import Session
from wizard.model.session import Context, ToolInfo

PARTS = (FirewallRulesCheck, ConntrackStateCheck, KernelCountersCheck)


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each part's reading replaced by one that logs itself and the exchanges seen so far."""
    events: list[str] = []

    def reader(name: str):  # type: ignore[no-untyped-def]
        async def read(ctx: CheckContext) -> tuple[str, int]:
            seen = sum(1 for c in ctx.probes.tcp.calls if c[0] == "exchange")
            events.append(f"{name}@{seen}")
            return name, seen
        return staticmethod(read)

    for cls in PARTS:
        monkeypatch.setattr(cls, "read_state", reader(cls.id))
        monkeypatch.setattr(cls, "read_before", reader(cls.id))
    return events


def exchanges(ctx: CheckContext) -> int:
    return sum(1 for c in ctx.probes.tcp.calls if c[0] == "exchange")


async def test_one_probe_is_read_around_by_every_check_of_the_pass(journal: list[str]) -> None:
    ctx = make_ctx(probes=FakeProbes())
    got = {cls.id: await shared_bracket(ctx, cls.id) for cls in PARTS}
    assert exchanges(ctx) == 1
    for cls in PARTS:
        b = got[cls.id]
        assert b.before == (cls.id, 0) and b.after == (cls.id, 1)
        assert b.probe is got[PARTS[0].id].probe
    # all readings before the probe, then all after: each reading is taken once
    assert sorted(journal) == sorted([f"{c.id}@0" for c in PARTS] + [f"{c.id}@1" for c in PARTS])


async def test_a_new_pass_probes_again(journal: list[str]) -> None:
    ctx = make_ctx(probes=FakeProbes())
    first = await shared_bracket(ctx, KernelCountersCheck.id)
    ctx.generation += 1
    second = await shared_bracket(ctx, KernelCountersCheck.id)
    assert exchanges(ctx) == 2
    assert (first.before, first.after) == (("kernel.counters", 0), ("kernel.counters", 1))
    assert (second.before, second.after) == (("kernel.counters", 1), ("kernel.counters", 2))


async def test_a_failing_reading_fails_only_its_own_check(monkeypatch: pytest.MonkeyPatch,
                                                          journal: list[str]) -> None:
    async def broken(ctx: CheckContext) -> None:
        raise HostError("cannot read /proc/net/stat/nf_conntrack: permission denied")

    monkeypatch.setattr(ConntrackStateCheck, "read_state", staticmethod(broken))
    monkeypatch.setattr(ConntrackStateCheck, "read_before", staticmethod(broken))
    ctx = make_ctx(probes=FakeProbes())
    with pytest.raises(HostError, match="nf_conntrack"):
        await shared_bracket(ctx, ConntrackStateCheck.id)
    b = await shared_bracket(ctx, FirewallRulesCheck.id)
    assert (b.before, b.after) == (("firewall.rules", 0), ("firewall.rules", 1))
    assert exchanges(ctx) == 1


async def test_root_only_readings_are_left_out_without_root(journal: list[str]) -> None:
    ctx = make_ctx(probes=FakeProbes(), root=False)
    await shared_bracket(ctx, KernelCountersCheck.id)
    assert not any(e.startswith("firewall.rules") for e in journal)  # it needs root to read rules
    assert "kernel.counters@0" in journal and "kernel.counters@1" in journal


async def test_runner_starts_a_new_pass_when_a_step_runs_again() -> None:
    ctx = make_ctx(probes=FakeProbes())
    runner = Runner(ctx)
    session = Session(tool=ToolInfo(version="t"), started_at=datetime(2026, 1, 1, tzinfo=UTC),
                      target=ctx.target, context=Context(client="c", server="local"))
    await runner.run_step(session, "identify")
    await runner.run_step(session, "connectivity")
    assert ctx.generation == 0
    await runner.run_step(session, "identify")
    assert ctx.generation == 1
    await runner.run_step(session, "connectivity")
    assert ctx.generation == 1  # the second pass goes on
    await runner.run_step(session, "connectivity", only=0)
    assert ctx.generation == 2


async def test_the_bracket_probe_is_the_captured_exchange_the_handshake_reuses(journal: list[str]) -> None:
    # One connection for the readings, the wire and the exchange check: the bracket's probe
    # runs inside the run's packet capture, which the exchange check then reuses.
    from tests.unit.test_packets_probe import FakePackets
    from wizard.diag.net.checks.handshake import TcpExchangeCheck, TcpExchangeParams

    packets = FakePackets()
    captures = 0
    real_capture = packets.capture

    async def counted(*a, **kw):  # type: ignore[no-untyped-def]
        nonlocal captures
        captures += 1
        return await real_capture(*a, **kw)

    packets.capture = counted  # type: ignore[method-assign]
    ctx = make_ctx(probes=FakeProbes(packets=packets))
    b = await shared_bracket(ctx, KernelCountersCheck.id)
    assert (b.before, b.after) == (("kernel.counters", 0), ("kernel.counters", 1))
    await TcpExchangeCheck().run(ctx, TcpExchangeParams())
    assert exchanges(ctx) == 1 and captures == 1


async def test_with_a_hold_the_bracket_probes_on_its_own(journal: list[str]) -> None:
    from tests.unit.test_packets_probe import FakePackets
    from wizard.model import Answers

    ctx = make_ctx(probes=FakeProbes(packets=FakePackets()), answers=Answers(hold_s=2.0))
    b = await shared_bracket(ctx, KernelCountersCheck.id)
    assert b.probe is not None and exchanges(ctx) == 1
    assert not any(k.startswith("packets.capture") for k in ctx._cache)  # the bracket has no hold


async def test_the_kernel_trace_watches_the_bracket_probe(journal: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The counters and the kernel trace see one connection: the trace starts before the
    # bracket's probe and stops after it, and the trace check judges that probe.
    from wizard.diag.kernel.checks import resets
    from wizard.diag.kernel.io.tracing import TraceCapture

    seen: list[str] = []

    class Trace:
        def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
            pass

        async def start(self) -> None:
            seen.append(f"start@{exchanges(ctx)}")

        async def stop(self) -> TraceCapture:
            seen.append(f"stop@{exchanges(ctx)}")
            return TraceCapture("i", [], {"tcp/tcp_send_reset": ""}, {}, "", 0.0, False, False, ())

        async def close(self) -> None:
            pass

    monkeypatch.setattr(resets, "KernelTrace", Trace)
    monkeypatch.setattr(resets, "SETTLE_S", 0.0)
    ctx = make_ctx(probes=FakeProbes())
    await shared_bracket(ctx, KernelCountersCheck.id)
    result = await resets.KernelResetsCheck().run(ctx, resets.KernelTraceParams())
    assert seen == ["start@0", "stop@1"] and exchanges(ctx) == 1
    assert any(e.title.startswith("traced in tracefs instance i") for e in result.evidence)



async def test_the_readings_after_start_as_the_exchange_ends_and_the_capture_settles_inside(
        journal: list[str]) -> None:
    # A capture waits a while for late packets after its probe's connection is over: the
    # readings after the probe do not wait for that, but the bracket ends only once the
    # capture has, so no later probe can land in it.
    import asyncio

    from tests.unit.test_packets_probe import FakePackets
    from wizard.engine.probes import Capture

    class Settling(FakePackets):
        async def capture(self, address, port, action, **kw) -> Capture:  # type: ignore[no-untyped-def]
            result = await action()
            kw["over"]()  # the probe's connection is over
            await asyncio.sleep(0.05)  # the grace for late packets
            journal.append("capture settled")
            return Capture(self.events, result, "lo", f"tcp and host {address} and port {port}", 0.0)

    ctx = make_ctx(probes=FakeProbes(packets=Settling()))
    b = await shared_bracket(ctx, KernelCountersCheck.id)
    assert (b.before, b.after) == (("kernel.counters", 0), ("kernel.counters", 1))
    assert exchanges(ctx) == 1  # the captured exchange was the bracket's probe
    settled = journal.index("capture settled")  # the bracket returned after it
    assert all(journal.index(f"{c.id}@1") < settled for c in PARTS)
    assert any(ctx.shared_done(k) for k in ctx._cache if k.startswith("packets.capture"))
    assert not ctx.traffic.busy
