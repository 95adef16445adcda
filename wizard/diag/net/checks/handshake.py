"""Checks of step 6 (handshake) at socket level: a staggered burst of connections, and one
payload exchange with an optional idle hold, each classified by how and when it ended."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from wizard.diag.packets.capturing import captured_exchange, exchange_captured
from wizard.diag.packets.parse.retime import Timed, retime
from wizard.engine.contract import (
    Check,
    CheckContext,
    CheckParams,
    Findings,
    payload_for,
    probe_address,
    register,
)
from wizard.engine.probes import ExchangeOutcome, ProbeEvent
from wizard.model import CheckResult, Status, Target
from wizard.model.wording import plural

# Outcomes of one burst attempt that count as passing: the handshake completed and the
# connection was neither reset nor closed on us (a silent server is the exchange's concern).
PASSED = ("ok", "no-answer")
FAILED = ("refused", "reset")


class TcpBurstParams(CheckParams):
    stagger_ms: int = Field(default=25, ge=0, le=1000)
    cooldown_s: float = Field(default=1.0, ge=0, le=30, description=(
        "after a burst whose refusals could be a limiter's, wait this long and try once more: a limiter "
        "lets the slowed client through, a closed port does not (0: no retry)"))


class TcpExchangeParams(CheckParams):
    """The exchange takes no parameters (the payload, hold and timeout are the run's)."""


def payload_name(kind: str, payload: bytes, target: Target) -> str:
    """How the report names what the probe sent."""
    why = f"for {target.scheme}://" if target.scheme else f"default for port {target.port}"
    if kind == "http":
        return f"an HTTP GET ({why})"
    if kind == "tls":
        return f"a TLS ClientHello ({why})"
    if kind == "custom":
        return f"the --payload given ({len(payload)} B)"
    return "nothing: the port has no default, give --payload"


def printable(data: bytes, limit: int = 200) -> str:
    """Bytes as text a report can show: printable ASCII kept, the rest escaped."""
    out = []
    for b in data[:limit]:
        ch = chr(b)
        out.append(ch if (ch.isprintable() and b < 0x7F) or ch in "\r\n\t" else f"\\x{b:02x}")
    return "".join(out) + ("…" if len(data) > limit else "")


def first_line(data: bytes) -> str:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    return printable(line, 80)


def _local_port(local: str) -> int | str:
    port = local.rsplit(":", 1)[-1] if local else ""
    return int(port) if port.isdigit() else ""


# --- the burst ---------------------------------------------------------------------------

def attempt_outcome(out: ExchangeOutcome) -> str:
    """One word for how a burst attempt ended."""
    if out.kind == "timeout":
        return "timeout" if out.stage == "connect" else "no-answer"
    return out.kind


def _span(first: int, last: int) -> str:
    return f"attempt {first}" if first == last else f"attempts {first}-{last}"


def _all(n: int) -> str:
    return "the one attempt" if n == 1 else f"all {n} attempts"


def classify_burst(outcomes: list[str]) -> tuple[str | None, str]:
    """The burst's signal (None: nothing the rules know) and the fact that explains it."""
    n = len(outcomes)
    if all(o in PASSED for o in outcomes):
        silent = outcomes.count("no-answer")
        extra = f" ({silent} of them with no answer to the data)" if silent else ""
        return "burst.all_ok", f"{_all(n)} passed{extra}"
    for kind, signal, said in (("refused", "burst.all_refused", "were refused (RST to the SYN)"),
                               ("reset", "burst.all_reset", "were reset after the handshake"),
                               ("timeout", "burst.all_timeout", "timed out in the handshake (no SYN-ACK)")):
        if all(o == kind for o in outcomes):
            return signal, f"{_all(n)} {said.replace('were', 'was') if n == 1 else said}"
    lead = next(i for i, o in enumerate(outcomes) if o not in PASSED)
    rest = outcomes[lead:]
    failed = [o for o in rest if o in FAILED]
    if lead >= 1 and 2 * len(failed) > len(rest):
        later = _span(lead + 1, n).split(" ", 1)[1]
        kinds = sorted(set(rest))
        if kinds == ["refused"] or kinds == ["reset"]:
            how = "were refused" if kinds == ["refused"] else "were reset"
        else:
            how = "failed (" + ", ".join(f"{rest.count(k)} {k}" for k in kinds) + ")"
        return "burst.later_failed", (f"{_span(1, lead)} passed, {later} {how}: the first "
                                      "connections get through and later ones do not, as a rate "
                                      "limit behaves")
    if len(set(outcomes)) == 1:
        return None, f"{_all(n)} ended the same way: {outcomes[0]}"
    counts = ", ".join(f"{outcomes.count(k)} {k}" for k in sorted(set(outcomes)))
    return "burst.intermittent", (f"the attempts behaved differently ({counts}): "
                                  + " ".join(outcomes))


async def burst(ctx: CheckContext, payload: bytes, stagger: float) -> list[ExchangeOutcome]:
    """The attempts, launched ``stagger`` apart and waited on together. Once every handshake
    completed (a limiter of new connections would have refused some), the step's next stage
    starts beside the wait for their answers if its exchange and capture are the shared
    bracket's, already run: then it sends nothing the burst could disturb but plain probes."""
    address, port, n = probe_address(ctx), ctx.target.port, ctx.answers.attempts
    connected = 0

    def on_connect() -> None:
        nonlocal connected
        connected += 1
        if connected == n:
            ctx.let_next_stage_start()

    extra: dict[str, Any] = {"on_connect": on_connect} if exchange_captured(ctx) else {}
    async def attempt(i: int) -> ExchangeOutcome:
        await asyncio.sleep(i * stagger)
        return await ctx.probes.tcp.exchange(address, port, payload, ctx.answers.timeout_s,
                                             attempt=i + 1, **extra)

    async with ctx.traffic.shared(), asyncio.TaskGroup() as group:
        tasks = [group.create_task(attempt(i)) for i in range(n)]
    return [t.result() for t in tasks]


@register
class TcpBurstCheck(Check[TcpBurstParams]):
    id = "tcp.burst"
    title = "Burst of connections"
    step = "handshake"
    Params = TcpBurstParams
    emits = ("burst.all_ok", "burst.all_refused", "burst.all_reset", "burst.all_timeout",
             "burst.later_failed", "burst.intermittent", "burst.recovers_when_slowed")
    description = ("Opens --attempts connections, each launched a little after the previous one "
                   "(so a rate limiter sees them in order) but waited on together, sends the "
                   "default payload on each and classifies the sequence of outcomes.")

    @staticmethod
    def time_budget(ctx: CheckContext, params: TcpBurstParams) -> float:
        """Seconds the burst may need: the last launch, then one exchange (2 timeouts) and a close,
    the cooldown and the retry (after the next stage's protocol probe when it began early)."""
        return ((ctx.answers.attempts - 1) * params.stagger_ms / 1000 + 2 * ctx.answers.timeout_s + 1.5
                + params.cooldown_s + 3 * ctx.answers.timeout_s)

    async def run(self, ctx: CheckContext, params: TcpBurstParams) -> CheckResult:
        payload, kind = payload_for(ctx)
        address, port = probe_address(ctx), ctx.target.port
        n = ctx.answers.attempts
        outs = await burst(ctx, payload, params.stagger_ms / 1000)
        labels = [attempt_outcome(o) for o in outs]
        signal, fact = classify_burst(labels)

        f = Findings()
        where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        source = (f"socket probe: {plural(n, 'connection')} to {where}, {params.stagger_ms} ms apart, "
                  f"each sending {payload_name(kind, payload, ctx.target)}")
        f.add(fact, source=source)
        f.add(f"{plural(n, 'attempt')} to {where}", kind="table", source=source, data={
            "columns": ["attempt", "outcome", "stage", "ms", "local port"],
            "rows": [[o.attempt, label, o.stage, o.ms, _local_port(o.local)]
                     for o, label in zip(outs, labels, strict=False)]})
        if signal:
            f.signal(signal, fact)
        # Limiters mostly refuse; a server that resets every request would only cost the wait.
        if params.cooldown_s and signal in ("burst.all_refused", "burst.later_failed"):
            # A rate limiter refills while the client waits; a closed port or a plain reject
            # rule answers the same however slowly it is asked.
            await asyncio.sleep(params.cooldown_s)
            async with ctx.traffic.alone():  # after the next stage's probes, if they began
                again = await ctx.probes.tcp.exchange(address, port, payload, ctx.answers.timeout_s,
                                                      attempt=n + 1)
            label = attempt_outcome(again)
            passed = label in ("ok", "eof", "no-answer")  # the handshake completed
            said = (f"after a {params.cooldown_s:g}s pause, one more attempt: {label}"
                    + (" (the failures stop when the client slows down: a rate limit)"
                       if passed else " (as in the burst)"))
            f.add(said, source=source)
            if passed:
                f.signal("burst.recovers_when_slowed", said)
        if signal == "burst.all_ok":
            return f.result(Status.PASS, fact)
        bad = any(label in FAILED or label == "timeout" for label in labels) or signal is None
        return f.result(Status.FAIL if bad else Status.WARN, fact)


# --- the exchange --------------------------------------------------------------------------

_ARROW = {  # event -> (from, to, label)
    "syn": ("client", "server", "SYN"),
    "connected": ("server", "client", "SYN-ACK"),
    "refused": ("server", "client", "RST (to SYN)"),
    "eof": ("server", "client", "FIN"),
    "reset": ("server", "client", "RST"),
    "timeout": ("client", "client", "timeout"),
    "closed": ("client", "server", "FIN"),
}


_SAID_BY_LABEL = ("connection reset by peer", "connection refused")


def ladder(events: list[ProbeEvent], timed: list[Timed] | None = None) -> dict[str, Any]:
    """The exchange as a sequence diagram: lanes and arrows, as the report and the TUI draw it.

    ``timed`` (from a capture of this very connection) gives each event the time of its
    packet; without it the times are the socket's, and the SYN-ACK says it was inferred."""
    rows: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        if e.what == "sent":
            src, dst, label = "client", "server", f"data {e.size} B"
        elif e.what == "received":
            src, dst, label = "server", "client", f"data {e.size} B"
        elif e.what == "idle":
            src, dst, label = "client", "client", f"idle {e.detail}"
        elif e.what in _ARROW:
            src, dst, label = _ARROW[e.what]
        else:
            continue  # a local error is no packet; the facts say what it was
        wire = timed[i] if timed is not None and i < len(timed) else None
        row: dict[str, Any] = {"ms": wire.ms if wire else e.ms, "src": src, "dst": dst, "label": label}
        if wire is None and e.what == "connected":
            row["note"] = "inferred: when connect() returned (no capture)"
        elif wire is not None and not wire.on_wire and src != dst:
            row["note"] = "inferred: not seen in the capture"
        elif e.detail and e.what != "idle" and e.detail not in _SAID_BY_LABEL:
            row["note"] = e.detail
        rows.append(row)
    return {"lanes": ["client", "server"], "events": rows}


def _ms_of(out: ExchangeOutcome, what: str, last: bool = True) -> float | None:
    hits = [e.ms for e in out.events if e.what == what]
    return (hits[-1] if last else hits[0]) if hits else None


def _since_send(out: ExchangeOutcome) -> str:
    sent = _ms_of(out, "sent")
    if sent is None:
        return ""
    return f" {out.ms - sent:.1f} ms after the send"


def classify_exchange(out: ExchangeOutcome, hold: float, timeout: float) -> tuple[str | None, Status, str]:
    """The exchange's signal, status and a one-line timing fact."""
    kind, stage, got = out.kind, out.stage, out.received
    if stage == "connect":
        if kind == "refused":
            return "probe.refused", Status.FAIL, (f"reset to the SYN after {out.ms:.1f} ms: connection "
                                                  "refused, the handshake never completed")
        if kind == "timeout":
            return "probe.timeout", Status.FAIL, (f"timeout with no SYN-ACK within {timeout:g}s: the "
                                                  "handshake was not answered (dropped, not reset)")
        return None, Status.FAIL, f"the handshake failed: {out.message or kind}"
    if stage == "hold":
        if kind == "eof" and out.sent == 0:
            # Nothing was asked on it: no kept-alive connection ended, the server gave up
            # waiting for a first request (its own timeout for a quiet client); what it sent
            # unasked is a banner or its timeout's answer (HAProxy's 408).
            said = out.first_bytes.split(b"\r\n", 1)[0].decode("latin-1")[:60] if got else ""
            return "probe.closed_before_request", Status.FAIL, (
                f"{out.message}, before any request was sent on it"
                + (f" (it sent {got} B unasked first: {said!r})" if got else "")
                + ": the server gave up waiting for one (its own timeout for a quiet client is "
                "shorter than the hold)")
        if kind == "eof":
            return "probe.closed_during_hold", Status.FAIL, (
                f"{out.message}: a client reusing the idle connection meets this keep-alive race "
                "(the server's idle timeout is shorter than the hold)")
        return "probe.reset_after_hold", Status.FAIL, f"reset only after the idle hold: {out.message}"
    after = stage == "after-hold"
    when = f"after the {hold:g}s idle hold" if after else "after the first data"
    if kind == "ok":
        if after:
            return "probe.ok", Status.PASS, (f"answered on the fresh connection and again after the "
                                             f"{hold:g}s idle hold ({got} B in all)")
        if out.sent == 0 and got == 0:
            return "probe.ok", Status.PASS, ("the handshake completed and the connection stayed open; "
                                             "nothing was sent, so nothing was answered")
        note = "" if "closed" not in out.message else f"; {out.message}"
        return "probe.ok", Status.PASS, f"answered with {got} B{_since_send(out)}{note}"
    if kind == "reset":
        signal = "probe.reset_after_hold" if after else "probe.reset_after_data"
        if after:
            return signal, Status.FAIL, (f"the fresh exchange was answered; reset only after the "
                                         f"{hold:g}s idle hold,{_since_send(out)}")
        if got:
            return signal, Status.FAIL, f"reset after {got} B received,{_since_send(out)}"
        if out.sent == 0:
            return signal, Status.FAIL, f"reset {out.ms:.1f} ms into the connection, with nothing sent"
        return signal, Status.FAIL, f"reset right after the first data,{_since_send(out)}, before any answer"
    if kind == "eof":
        if out.sent == 0:
            return "probe.eof_after_data", Status.FAIL, "the server closed (FIN) right after the handshake"
        return "probe.eof_after_data", Status.FAIL, (f"EOF (FIN) instead of an answer {when},"
                                                     f"{_since_send(out)}")
    if kind == "timeout":
        return "probe.no_answer", Status.WARN, (f"no answer before the timeout ({timeout:g}s) {when}: "
                                                "the data was sent and the connection stayed open")
    return None, Status.FAIL, f"the exchange failed {when}: {out.message or kind}"


_SUMMARY = {
    "probe.ok": "the exchange was answered",
    "probe.refused": "connection refused: the SYN was answered with a reset",
    "probe.timeout": "the handshake timed out",
    "probe.reset_after_data": "reset after the first data",
    "probe.reset_after_hold": "reset only after the idle hold",
    "probe.closed_during_hold": "the server closed the idle connection during the hold",
    "probe.closed_before_request": "the server closed the quiet connection before any request",
    "probe.eof_after_data": "the server closed without answering",
    "probe.no_answer": "no answer to the data",
}


async def _exchange(ctx: CheckContext, address: str, port: int,
                    payload: bytes) -> tuple[ExchangeOutcome, list[Timed] | None, str]:
    """The exchange, run inside the run's packet capture when there is one (its events then
    timed by their packets), else on its own; and why the capture failed, if it did."""
    problem = ""
    try:
        got = await captured_exchange(ctx)
    except Exception as exc:  # the capture is a bonus: the socket probe still answers
        got, problem = None, f"{type(exc).__name__}: {exc}"
    if got is not None and isinstance(got[0].result, ExchangeOutcome):
        cap, flow = got
        return cap.result, retime(cap.result.events, flow), problem
    out = await ctx.probes.tcp.exchange(address, port, payload, ctx.answers.timeout_s, hold=ctx.answers.hold_s)
    return out, None, problem


@register
class TcpExchangeCheck(Check[TcpExchangeParams]):
    id = "tcp.exchange"
    title = "Payload exchange"
    step = "handshake"
    Params = TcpExchangeParams
    emits = tuple(_SUMMARY)
    description = ("One connection that sends the payload (--payload, or a default chosen by port), "
                   "reads the answer, idles --hold seconds watching for a FIN or RST and sends "
                   "again; says in which stage and how long after the send it ended.")

    @staticmethod
    def time_budget(ctx: CheckContext, params: TcpExchangeParams) -> float:
        """Seconds the exchange may need: 2 timeouts, the hold, the close and RST waits, and
        the packet capture's start and settle when it runs inside one."""
        return 2 * ctx.answers.timeout_s + ctx.answers.hold_s + 2.5 + 5

    async def run(self, ctx: CheckContext, params: TcpExchangeParams) -> CheckResult:
        payload, kind = payload_for(ctx)
        address, port = probe_address(ctx), ctx.target.port
        hold, timeout = ctx.answers.hold_s, ctx.answers.timeout_s
        out, timed, problem = await _exchange(ctx, address, port, payload)
        signal, status, fact = classify_exchange(out, hold, timeout)

        f = Findings()
        where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        source = f"socket probe: connect/send/recv to {where}" + (f", hold {hold:g}s" if hold else "")
        name = payload_name(kind, payload, ctx.target)
        f.add(f"sent {name}", source=source,
              text=printable(payload) if payload and kind != "tls" else "",
              data={"bytes": len(payload), "payload": kind})
        f.add(fact, source=source, data={"kind": out.kind, "stage": out.stage, "ms": out.ms,
                                         "sent": out.sent, "received": out.received,
                                         "local": out.local})
        if out.first_bytes:
            f.add(f"the answer began with: {first_line(out.first_bytes)}", source=source,
                  text=printable(out.first_bytes))
        if problem:
            f.add(f"the capture failed ({problem}): the ladder's times are the socket's", source=source)
        times = "times from the packet capture" if timed is not None else "times inferred from the socket: no capture"
        f.add(f"the exchange with {where} ({times})", kind="ladder", source=source, data=ladder(out.events, timed))
        if signal:
            f.signal(signal, fact)
        summary = _SUMMARY.get(signal or "", fact)
        if out.sent == 0 and signal == "probe.reset_after_data":
            summary = "reset with nothing sent"  # the signal's name says data; none was sent
        return f.result(status, f"{summary} ({name.split(' (')[0]})" if payload else summary)
