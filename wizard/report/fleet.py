"""The merged fleet report (pure): what the differences point to first, then each host, the
attributes that split them, and the timeline of both ends."""

from __future__ import annotations

from wizard.model.fleet import Fleet, HostView
from wizard.redact import Redactor
from wizard.report.merge import attributes, verdict_words

_NAMES = {"client": "client", "server": "server end"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _resets(h: HostView) -> str:
    if h.attempts:
        return f"{h.resets} of {h.attempts}"
    return "yes" if h.saw_reset else "none"


def _host_rows(fleet: Fleet) -> list[str]:
    rows = ["| host | role | verdict | confidence | resets seen | source | target resolved to | first hop |",
            "|---|---|---|---|---|---|---|---|"]
    for h in fleet.hosts:
        verdict = verdict_words(h) + (" (interrupted)" if h.interrupted and h.kind != "interrupted" else "")
        rows.append("| " + " | ".join(_cell(x) for x in (
            h.label + (f" ({h.client})" if h.client and h.client != h.label else ""), _NAMES[h.role], verdict,
            f"{h.confidence:.0%}", _resets(h), ", ".join(h.sources) or "?", ", ".join(h.addresses) or "?",
            h.first_hop or "direct")) + " |")
    return rows


def _differences(fleet: Fleet) -> list[str]:
    out = []
    if fleet.pointer.differences:
        out += ["", "## What sets them apart", "", "| attribute | hosts with resets | hosts without |", "|---|---|---|"]
        out += [f"| {d.attribute} | {_cell('; '.join(d.with_resets))} | {_cell('; '.join(d.without_resets))} |"
                for d in fleet.pointer.differences]
    shared = _shared(fleet.hosts)
    if shared and len(fleet.hosts) > 1:
        out += ["", "What every host shares: " + "; ".join(f"{k} {_cell(v)}" for k, v in shared.items()) + "."]
    return out


def _shared(hosts: list[HostView]) -> dict[str, str]:
    """The attributes on which all hosts agree: what the resets are not explained by a difference in."""
    if not hosts:
        return {}
    first = attributes(hosts[0])
    # Sources always differ; "local" (the default server context) says nothing about the fleet.
    return {k: v for k, v in first.items() if k not in ("source address", "source subnet")
            and not (k == "server context" and v == "local") and all(attributes(h)[k] == v for h in hosts[1:])}


def _verdict_line(fleet: Fleet) -> str:
    """Which verdict each group of hosts reached, the fleet's verdict first."""
    parts = [f"`{f.cause}` on {', '.join(f.hosts)} ({f.confidence:.0%})" for f in fleet.diagnosis]
    unnamed = [h.label for h in fleet.hosts if not h.verdict]
    if unnamed:
        parts.append(f"no cause found on {', '.join(unnamed)}")
    servers = [h for h in fleet.hosts if h.role == "server"]
    counted = {x for f in fleet.diagnosis for x in f.hosts}
    ends = [f"{h.label} {f'`{h.verdict}` ({h.confidence:.0%})' if h.verdict else verdict_words(h)}"
            for h in servers if h.label not in counted]
    whose = "server ends (their" if len(ends) > 1 else "server end (its"
    tail = f"; {whose} own view): {', '.join(ends)}" if ends else ""
    kinds = {"cause": "a cause", "no-reset": "no reset anywhere", "no-cause": "no cause found",
             "interrupted": "interrupted"}
    return (f"Verdict: {kinds[fleet.verdict.kind]} (exit status {fleet.verdict.exit_status}); "
            + "; ".join(parts) + tail + ".")


def _verdicts(fleet: Fleet) -> list[str]:
    out = ["", "## Each host's verdict", ""]
    for h in fleet.hosts:
        sure = f" ({h.confidence:.0%})" if h.verdict else ""
        out.append(f"- **{h.label}**: {verdict_words(h)}{sure}. {h.summary or h.title}".rstrip())
        out += [f"  - server side: {fact}" for fact in h.server_said[:4]]
    return out


def _timeline(fleet: Fleet) -> list[str]:
    if not fleet.timeline:
        return []
    out = ["", "## Timeline (UTC, both ends)", ""]
    if not any(h.role == "server" for h in fleet.hosts) and not any(e.flow for e in fleet.timeline):
        out += ["No session of the server end was merged, so no reset below is matched to what the server "
                "did: run the role on the server too, with `--server local` in its rw_args.", ""]
    out += ["| time | host | what | what the other end saw then |", "|---|---|---|---|"]
    for e in fleet.timeline[:200]:
        out.append(f"| {e.at:%H:%M:%S.%f}"[:-3] + f" | {e.host} ({_NAMES[e.role]}) | {_cell(e.what)} | "
                   f"{_cell(e.matched) or '-'} |")
    return out


def render_fleet(fleet: Fleet, *, redact: bool = True) -> str:
    lines = ["# Connection resets across a fleet", "",
             f"**{fleet.verdict.statement[:1].upper() + fleet.verdict.statement[1:]}.**", "",
             _verdict_line(fleet), "",
             f"Merged {len(fleet.hosts)} sessions at {fleet.merged_at:%Y-%m-%d %H:%M:%S} UTC "
             "with `reset-wizard merge`; each host's own report has the evidence behind its verdict.", "",
             "## Hosts", "", *_host_rows(fleet), *_differences(fleet), *_verdicts(fleet), *_timeline(fleet), ""]
    text = "\n".join(lines)
    return Redactor().redact(text) if redact else text
