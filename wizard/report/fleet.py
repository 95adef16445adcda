"""The merged fleet report (pure): what the differences point to first, then each host, the
attributes that split them, and the timeline of both ends."""

from __future__ import annotations

from wizard.model.fleet import Fleet, HostView
from wizard.redact import Redactor

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
        verdict = h.verdict + (" (interrupted)" if h.interrupted else "")
        rows.append("| " + " | ".join(_cell(x) for x in (
            h.label + (f" ({h.client})" if h.client and h.client != h.label else ""), _NAMES[h.role], verdict,
            f"{h.confidence:.0%}", _resets(h), ", ".join(h.sources) or "?", ", ".join(h.addresses) or "?",
            h.first_hop or "direct")) + " |")
    return rows


def _differences(fleet: Fleet) -> list[str]:
    if not fleet.pointer.differences:
        return []
    out = ["", "## What sets them apart", "", "| attribute | hosts with resets | hosts without |", "|---|---|---|"]
    out += [f"| {d.attribute} | {_cell('; '.join(d.with_resets))} | {_cell('; '.join(d.without_resets))} |"
            for d in fleet.pointer.differences]
    return out


def _verdicts(fleet: Fleet) -> list[str]:
    out = ["", "## Each host's verdict", ""]
    for h in fleet.hosts:
        out.append(f"- **{h.label}**: {h.verdict} ({h.confidence:.0%}). {h.summary or h.title}".rstrip())
        out += [f"  - server side: {fact}" for fact in h.server_said[:4]]
    return out


def _timeline(fleet: Fleet) -> list[str]:
    if not fleet.timeline:
        return []
    out = ["", "## Timeline (UTC, both ends)", "", "| time | host | what | what the other end saw then |",
           "|---|---|---|---|"]
    for e in fleet.timeline[:200]:
        out.append(f"| {e.at:%H:%M:%S.%f}"[:-3] + f" | {e.host} ({_NAMES[e.role]}) | {_cell(e.what)} | "
                   f"{_cell(e.matched) or '-'} |")
    return out


def render_fleet(fleet: Fleet, *, redact: bool = True) -> str:
    lines = ["# Connection resets across a fleet", "",
             f"**{fleet.pointer.headline[:1].upper() + fleet.pointer.headline[1:]}.**", "",
             f"Merged {len(fleet.hosts)} sessions at {fleet.merged_at:%Y-%m-%d %H:%M:%S} UTC "
             "with `reset-wizard merge`; each host's own report has the evidence behind its verdict.", "",
             "## Hosts", "", *_host_rows(fleet), *_differences(fleet), *_verdicts(fleet), *_timeline(fleet), ""]
    text = "\n".join(lines)
    return Redactor().redact(text) if redact else text
