"""Step 4 check: which firewall rules on the server answer this port, and whose counter moves."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import Field

from wizard.diag.firewall.io.rulesets import Collected, backends_of, collect, collect_fronts
from wizard.diag.firewall.parse.rules import Ruleset
from wizard.diag.firewall.parse.walk import Flow, Hit, matches_port, walk
from wizard.engine.bracket import shared_bracket
from wizard.engine.contract import Check, CheckContext, CheckParams, Findings, register
from wizard.model import CheckResult, Status
from wizard.model.wording import plural


class FirewallRulesParams(CheckParams):
    probe: bool = Field(default=True, description="read counters around one payload probe")


def _family(addr: str) -> str:
    try:
        return "ipv4" if ipaddress.ip_address(addr).version == 4 else "ipv6"
    except ValueError:
        return ""


def _kind(hit: Hit) -> str:
    """What a hit means for the connection: reject, icmp-reject, drop, rate-limit, ct-invalid, or ''."""
    rule = hit.rule
    if rule is None:
        return "drop" if hit.chain.policy == "drop" else ""
    if rule.verdict not in ("reject", "drop"):
        return ""
    if rule.limits:
        # A global ``ct count over N`` caps the tracked connections: past N it behaves like a
        # full conntrack table; a per-key count (meter, connlimit) is a per-client limit.
        if all(lim.startswith("ct count") for lim in rule.limits):
            return "ct-count"
        return "rate-limit"
    states = rule.ct_states
    if states and states <= {"invalid"}:
        return "ct-invalid"
    if rule.verdict == "drop":
        return "drop"
    return "reject" if rule.resets or rule.reject_with == "?" else "icmp-reject"


_SIGNAL = {"reject": "fw.reject", "drop": "fw.drop", "rate-limit": "fw.rate_limit",
           "ct-invalid": "fw.ct_invalid", "icmp-reject": "fw.reject_icmp", "ct-count": "fw.ct_count"}
_SAYS = {"reject": "rejects with a TCP reset", "icmp-reject": "rejects with ICMP (not a reset)",
         "drop": "drops", "rate-limit": "rate-limits and then rejects or drops",
         "ct-invalid": "drops or rejects packets conntrack calls INVALID",
         "ct-count": "caps the number of tracked connections (ct count over N) and then drops or rejects"}


def _counter(rs: Ruleset, counters: dict[Any, int], hit: Hit) -> int | None:
    if hit.rule is not None:
        return counters.get(hit.rule.key)
    chain = rs.chains.get(hit.chain.key)
    return chain.packets if chain else None


@register
class FirewallRulesCheck(Check[FirewallRulesParams]):
    id = "firewall.rules"
    title = "Firewall rules for the port"
    step = "firewall"
    Params = FirewallRulesParams
    needs_root = "server"
    reads_server = True
    emits = ("target.forwarded", "fw.reject_rule", "fw.reject_moved", "fw.drop_rule", "fw.drop_moved",
             "fw.rate_limit_rule", "fw.rate_limit_moved", "fw.ct_invalid_rule", "fw.ct_invalid_moved",
             "fw.reject_icmp_rule", "fw.reject_icmp_moved", "fw.ct_count_rule", "fw.ct_count_moved",
             "fw.no_rule", "fw.reject_only_limited")
    description = ("Reads nftables and iptables rules in the server context, lists every rule a "
                   "connection to the port may meet (following jumps, ending with the policy), "
                   "and reads their counters before and after one probe.")

    @classmethod
    def opens_bracket(cls, params: Any) -> bool:
        return isinstance(params, FirewallRulesParams) and params.probe  # run() asks at once

    @staticmethod
    async def read_state(ctx: CheckContext) -> Collected:
        """The rules with their counters (the part of the shared bracket this check reads).
        The first reading asks for the tools' backends beside its look at what is loaded."""
        backends = ctx.once("fw.backends", lambda: backends_of(ctx.server))
        return await collect(ctx.server, backends)

    async def run(self, ctx: CheckContext, params: FirewallRulesParams) -> CheckResult:
        f = Findings()
        port = ctx.target.port

        if params.probe:
            br = await shared_bracket(ctx, self.id)
            before, after, probe = br.before, br.after, br.probe
            f.add(f"probe between the two readings: {probe.kind} at {probe.stage}", data={
                "kind": probe.kind, "stage": probe.stage, "address": probe.address, "port": probe.port})
        else:
            before = after = await self.read_state(ctx)
            probe = None
        fronts, front_notes = await collect_fronts(ctx.server)
        for note in (*after.notes, *front_notes):
            f.add(note)
        for cmd, fe in fronts:
            for problem in fe.problems:
                f.add(f"not understood: {problem}")
            lines = fe.for_port(port)
            f.add(f"{fe.tool} ({fe.state or 'state unknown'}; defaults: {fe.defaults or 'not listed'}): "
                  f"{plural(len(lines), 'rule')} that may concern port {port}; they act through the nft/iptables "
                  "rules below, which decide", kind="rules", source=cmd,
                  text="\n".join(r.text for r, _ in lines),
                  data={"rules": [{"text": r.text, "action": r.action, "match": m, "zone": r.zone}
                                  for r, m in lines]})
        for problem in after.ruleset.problems:
            f.add(f"not understood: {problem}")
        if not after.read:
            return CheckResult.skipped(
                f"no firewall ruleset could be read in {ctx.server.spec}: " + "; ".join(after.notes),
                "apt install nftables (nft) or iptables; run as root in the server context")

        owns = await ctx.server_has_target()
        hooks = ("input",) if owns else ("input", "forward")
        fams = sorted({_family(a) for a in ctx.target.addresses} - {""}) or [""]
        hits: dict[Any, Hit] = {}
        for hook in hooks:
            for fam in fams:
                addrs = tuple(a for a in ctx.target.addresses if not fam or _family(a) == fam)
                for hit in walk(after.ruleset, Flow(port, fam, addrs), hook):
                    # A verdict map gives one hit per entry: same rule, different verdicts.
                    key = (hit.rule.key, hit.rule.verdict_text()) if hit.rule else hit.chain.key
                    if key not in hits or (hits[key].match == "may" and hit.match == "yes"):
                        hits[key] = hit
        if "forward" in hooks:
            f.add("the server context does not own the target address (or it is not known): "
                  "forward chains are walked too, as on a router")
        _forwards(f, ctx, before, after, probe is not None, port, fams)
        return self._judge(f, ctx, list(hits.values()), before, after, probe is not None, port)

    def _judge(self, f: Findings, ctx: CheckContext, hits: list[Hit], before: Collected,
               after: Collected, probed: bool, port: int) -> CheckResult:
        rows, notable, worst_sure, moved_any = [], [], False, []
        may_accept = {h.chain.key for h in hits if h.rule is not None and h.rule.verdict == "accept"}
        # Once per reading, not once per hit: a kube-proxy ruleset has thousands of rules.
        counted = (before.ruleset.counters(), after.ruleset.counters())
        for i, hit in enumerate(hits):
            kind = _kind(hit)
            b, a = _counter(before.ruleset, counted[0], hit), _counter(after.ruleset, counted[1], hit)
            delta = a - b if a is not None and b is not None and probed else None
            rule = hit.rule
            row = _row(hit, kind, b, a, delta)
            rows.append(row)
            if not kind:
                continue
            notable.append(i)
            strength = 1.0 if hit.match == "yes" else 0.5
            if rule is None and hit.chain.key in may_accept:
                strength = 0.5  # an earlier rule might accept the port first
            row["strength"] = strength
            sure = strength == 1.0
            worst_sure |= sure and kind in ("reject", "drop")
            what = f"{hit.chain.label} {_SAYS[kind]}" if rule else f"{hit.chain.label} policy drop"
            moved = bool(delta)
            title = f"{'matches' if hit.match == 'yes' else 'may match'} port {port}: {hit.describe()}"
            if moved:
                title += f" (counter +{delta} during the probe: the strongest evidence there is)"
                moved_any.append(what)
            source = _source(after, hit)
            f.add(title, kind="rules", source=source, text=hit.text, data=row)
            sig = _SIGNAL.get(kind)
            if sig:
                f.signal(f"{sig}_rule", f"{what} for port {port}: {hit.text}", strength)
                if moved:
                    f.signal(f"{sig}_moved", f"{what}: counter moved by {delta} during the probe "
                             f"({hit.text})")
        if hits:
            f.add(f"rules a connection to port {port} may meet, in order", kind="rules",
                  source=", ".join(after.read), text="\n".join(h.text for h in hits),
                  highlight=notable, data={"rules": rows})
        for cmd, text in after.whole:
            f.add("whole ruleset", kind="rules", source=cmd, text=text)
        kinds = {_kind(h) for h in hits} - {""}
        if not kinds - {"ct-invalid"}:
            f.signal("fw.no_rule", f"rulesets read ({', '.join(after.read)}): nothing rejects or drops "
                     f"port {port} and the policies on the way accept")
            return f.result(Status.PASS, f"no firewall rule rejects or drops port {port}")
        _only_limited(f, rows, kinds, port)
        rank = ("reject", "drop", "rate-limit", "ct-count", "icmp-reject", "ct-invalid")
        lead = min((rows[i] for i in notable), key=lambda r: (not r["delta"], -r["strength"],
                                                               rank.index(r["kind"])))
        summary = f"{lead['path']} ({lead['match']} match)"
        if moved_any:
            summary = f"counter moved during the probe: {summary}"
        status = Status.FAIL if moved_any or worst_sure else Status.WARN
        return f.result(status, summary)


def _only_limited(f: Findings, rows: list[dict[str, Any]], kinds: set[str], port: int) -> None:
    """When every rule that can reset or drop the port does so only over a limit, a reset
    netfilter sent came from a limit: no plain reject rule is there to send it."""
    if kinds & {"reject", "drop"} or "rate-limit" not in kinds:
        return
    limited = [r["text"] for r in rows if r["kind"] in ("rate-limit", "ct-count")]
    f.signal("fw.reject_only_limited", f"no rule rejects or drops port {port} outright; the rules "
             f"that can do so act only over a limit: {'; '.join(limited)}")


def _row(hit: Hit, kind: str, before: int | None, after: int | None, delta: int | None) -> dict[str, Any]:
    """One rule on the way, as the evidence's table row."""
    rule = hit.rule
    return {"path": hit.describe(), "match": hit.match, "verdict": hit.verdict, "kind": kind,
            "text": hit.text, "family": hit.chain.family, "table": hit.chain.table,
            "chain": rule.chain if rule else hit.chain.name,
            "handle": rule.handle if rule else None, "counter_before": before, "counter_after": after,
            "delta": delta, "limits": list(rule.limits) if rule else [],
            "nft_text": rule.alt_text if rule else ""}


_DNAT_TO = re.compile(r"--to-destination\s+(\S+)|\bto:(\S+)")


def _forwards(f: Findings, ctx: CheckContext, before: Collected, after: Collected, probed: bool,
              port: int, fams: list[str]) -> None:
    """DNAT / redirect rules that send the target's port elsewhere (a port forward, a load
    balancer's address): the connection then ends beyond the target, and that is where the
    server context should point next. The rule is quoted, with its counter during the probe."""
    counted = before.ruleset.counters()
    for rule in after.ruleset.all_rules():
        where = rule.target if rule.target.startswith(("dnat to", "redirect to")) else ""
        if not where and rule.target.upper() == "DNAT":
            m = _DNAT_TO.search(rule.text)
            where = f"dnat to {m.group(1) or m.group(2)}" if m else "dnat"
        if not where or not any(matches_port(rule, port, flow=Flow(port, fam, tuple(ctx.target.addresses)),
                                             sets=after.ruleset.sets) != "no" for fam in fams):
            continue
        text = rule.text or rule.alt_text or where
        b, a = counted.get(rule.key), rule.packets
        delta = a - b if probed and a is not None and b is not None else None
        moved = f", counter +{delta} during the probe" if delta else ""
        f.add(f"port {port} is forwarded: {rule.family} {rule.table} {rule.chain}: {text}{moved}",
              kind="rules", source=", ".join(after.read), text=text)
        f.signal("target.forwarded",
                 f"{ctx.server.spec} forwards port {port} ({where}; rule {rule.family} {rule.table} "
                 f"{rule.chain}: {text}{moved}): the connection ends beyond the target, at that backend, not "
                 "in this context; diagnose the backend next (--server for its host)",
                 1.0 if delta or delta is None else 0.6)


def _source(got: Collected, hit: Hit) -> str:
    """The command whose output the quoted line comes from."""
    rule = hit.rule
    key = f"merged:{rule.family}" if rule is not None and rule.alt_text else rule.source if rule else hit.chain.source
    return got.source_cmd.get(key, "") or got.read[0]
