"""Step 6 check: what the port really speaks (a banner, TLS, HTTP) against what the probe's
payload assumed; plain sockets, no root."""

from __future__ import annotations

import re

from pydantic import Field

from wizard.diag.net.io.protocol import ProtocolProbe, refuses_plain_http
from wizard.engine.contract import Check, CheckContext, CheckParams, Findings, payload_for, probe_address, register
from wizard.model import CheckResult, Status


class ProtocolParams(CheckParams):
    timeout_s: float | None = Field(default=None, gt=0, le=30)


def assumed_protocol(payload: bytes, kind: str) -> str:
    if kind in ("tls", "http"):
        return kind
    if payload[:2] == b"\x16\x03":
        return "tls"
    if re.match(rb"^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT) \S+ HTTP/", payload):
        return "http"
    return "other" if payload else "none"


@register
class TcpProtocolCheck(Check[ProtocolParams]):
    id = "tcp.protocol"
    title = "What the port really speaks"
    step = "handshake"
    Params = ProtocolParams
    emits = ("protocol.mismatch", "protocol.matches")
    description = ("Listens for a banner, tries a TLS handshake and a plain HTTP request, and "
                   "compares what the port answers with what the probe's payload assumed.")

    async def run(self, ctx: CheckContext, params: ProtocolParams) -> CheckResult:
        f = Findings()
        addr, port = probe_address(ctx), ctx.target.port
        payload, kind = payload_for(ctx)
        assumed = assumed_protocol(payload, kind)
        probe = ctx.probes.protocol or ProtocolProbe()
        async with ctx.traffic.shared():  # beside the burst's wait for its answers, not its retry
            facts = await probe.identify(addr, port, ctx.target.host, params.timeout_s or ctx.answers.timeout_s)
        source = f"connections to {addr}:{port}"
        for name, att in (("banner", facts.banner), ("TLS handshake", facts.tls), ("plain HTTP", facts.http)):
            f.add(f"{name}: {'yes' if att.ok else 'no'} ({att.detail})", source=source,
                  data={"ok": att.ok, "outcome": att.outcome, "detail": att.detail})
        speaks = facts.speaks
        # A TLS port that answers plain HTTP in-band with an error (nginx's 400 "The plain HTTP
        # request was sent to HTTPS port", then a FIN) does not speak HTTP either.
        refused = facts.http.ok and refuses_plain_http(facts.http.detail)
        if assumed == "http" and facts.tls.ok and (not facts.http.ok or refused):
            got = f"{facts.http.detail}, an in-band refusal" if refused else facts.http.detail
            f.signal("protocol.mismatch", f"plain HTTP was assumed but the port speaks TLS ({facts.tls.detail}); "
                     f"plain HTTP got: {got}")
            return f.result(Status.FAIL, "plain HTTP to a TLS port: use https://")
        if assumed == "tls" and not facts.tls.ok and (facts.http.ok or facts.banner.ok):
            f.signal("protocol.mismatch", f"TLS was assumed but the port speaks {speaks} "
                     f"({facts.http.detail if facts.http.ok else facts.banner.detail})")
            return f.result(Status.FAIL, f"TLS to a plain {speaks} port: use http:// or the TLS port")
        if speaks == "unknown":
            return f.result(Status.WARN, "the port answered neither TLS, HTTP nor a banner")
        if assumed in (speaks, "none", "other") or (assumed == "http" and facts.http.ok):
            f.signal("protocol.matches", f"the port speaks {speaks}; the probe assumed {assumed}")
            return f.result(Status.PASS, f"the port speaks {speaks}")
        return f.result(Status.WARN, f"the port speaks {speaks}; the probe assumed {assumed}")
