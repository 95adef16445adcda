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



async def test_the_window_closes_as_the_readings_after_end_and_the_capture_keeps_only_its_flows(
        journal: list[str]) -> None:
    # A capture waits a while for late packets after its probe's connection is over: neither
    # the readings after the probe nor the bracket's window wait for that (the next step's
    # burst may start), and the flows that begin after the probe was over are not the capture's.
    import asyncio

    from tests.unit.test_packets_probe import FakePackets, ev
    from wizard.diag.packets.capturing import captured_exchange, exchange_captured
    from wizard.engine.probes import Capture

    class Settling(FakePackets):
        async def capture(self, address, port, action, **kw) -> Capture:  # type: ignore[no-untyped-def]
            started = asyncio.get_running_loop().time()

            def now() -> float:
                return (asyncio.get_running_loop().time() - started) * 1000

            result = await action()
            own = [ev(now(), True, "S", cport=40000), ev(now(), False, "R", cport=40000)]
            kw["over"]()  # the probe's connection is over
            await asyncio.sleep(0.02)
            late = [ev(now(), True, "A", cport=40000), ev(now(), True, "S", cport=40001)]
            await asyncio.sleep(0.03)  # the rest of the grace for late packets
            journal.append("capture settled")
            return Capture(own + late, result, "lo", f"tcp and host {address} and port {port}", 0.0)

    ctx = make_ctx(probes=FakeProbes(packets=Settling()))
    b = await shared_bracket(ctx, KernelCountersCheck.id)
    assert (b.before, b.after) == (("kernel.counters", 0), ("kernel.counters", 1))
    assert exchanges(ctx) == 1  # the captured exchange was the bracket's probe
    assert "capture settled" not in journal  # the window closed before the capture's grace ended
    assert not ctx.traffic.busy
    assert exchange_captured(ctx)  # the handshake's exchange check sends nothing of its own
    got = await captured_exchange(ctx)
    assert got is not None and "capture settled" in journal
    cap, _ = got
    assert [(e.client_port, e.flags) for e in cap.events] == [(40000, "S"), (40000, "R"), (40000, "A")]


async def test_the_capture_starts_beside_the_readings_before_and_its_probe_waits_for_them(
        journal: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The sniffer's start is no traffic: it overlaps the readings before the probe, and the
    # probe still goes out only after the last of them; the action's start on the capture's
    # clock is when it went, not when the capture called it.
    import asyncio

    from tests.unit.test_packets_probe import FakePackets
    from wizard.diag.packets.capturing import captured_exchange
    from wizard.engine.probes import Capture

    class Sniffing(FakePackets):
        async def capture(self, address, port, action, **kw) -> Capture:  # type: ignore[no-untyped-def]
            journal.append("sniffing")
            result = await action()
            kw["over"]()
            return Capture(self.events, result, "lo", f"tcp and host {address} and port {port}", 5.0)

    async def slow(ctx: CheckContext) -> tuple[str, int]:
        await asyncio.sleep(0.1)
        journal.append("slow reading")
        return "firewall.rules", 0

    monkeypatch.setattr(FirewallRulesCheck, "read_before", staticmethod(slow))
    ctx = make_ctx(probes=FakeProbes(packets=Sniffing()))
    await shared_bracket(ctx, KernelCountersCheck.id)
    assert journal.index("sniffing") < journal.index("slow reading")
    assert exchanges(ctx) == 1 and "firewall.rules@1" in journal  # one probe, after the readings before
    got = await captured_exchange(ctx)
    assert got is not None and got[0].action_ms >= 5.0 + 90  # it waited ~0.1 s for the readings


async def test_a_bracket_cancelled_before_its_probe_leaves_no_capture_waiting(
        journal: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from tests.unit.test_packets_probe import FakePackets
    from wizard.engine.probes import Capture

    class Sniffing(FakePackets):
        async def capture(self, address, port, action, **kw) -> Capture:  # type: ignore[no-untyped-def]
            try:
                result = await action()
            finally:
                journal.append("sniffer closed")
            return Capture(self.events, result, "lo", "", 0.0)

    async def stalled(ctx: CheckContext) -> tuple[str, int]:
        await asyncio.sleep(10)
        return "firewall.rules", 0

    monkeypatch.setattr(FirewallRulesCheck, "read_before", staticmethod(stalled))
    ctx = make_ctx(probes=FakeProbes(packets=Sniffing()))
    bracket = asyncio.ensure_future(shared_bracket(ctx, KernelCountersCheck.id))
    await asyncio.sleep(0.05)
    shared = [f for k, f in ctx._cache.items() if k.startswith("bracket:")]
    shared[0].cancel()  # the run is cancelled while the readings before the probe go on
    await asyncio.wait([bracket])
    await asyncio.sleep(0.01)
    assert "sniffer closed" in journal and exchanges(ctx) == 0
    assert all(f.done() for k, f in ctx._cache.items() if k.startswith("packets.capture:") and ":over" not in k)
