"""docs/causes.md, generated from the checklist: every cause with its weights, in the
project's own words (the checklist's titles, summaries, remedies and reasons).

Regenerate with ``.venv/bin/python -m wizard.report.causes > docs/causes.md``; a unit test
fails when the file is not what the shipped checklist gives.
"""

from __future__ import annotations

from wizard.model import Checklist
from wizard.model.checklist import CauseRule, Weight

REGENERATE = ".venv/bin/python -m wizard.report.causes > docs/causes.md"


def _weights(weights: list[Weight], emitters: dict[str, list[str]]) -> list[str]:
    out = ["| signal | weight | raised by | why |", "|---|---:|---|---|"]
    for w in sorted(weights, key=lambda w: (-w.weight, w.signal)):
        group = f" (group `{w.group}`)" if w.group else ""
        by = ", ".join(f"`{c}`" for c in emitters.get(w.signal, [])) or "—"
        out.append(f"| `{w.signal}`{group} | {w.weight:g} | {by} | {w.why.replace('|', '/')} |")
    return out


def _cause(cause: CauseRule, emitters: dict[str, list[str]]) -> list[str]:
    out = [f'<a id="{cause.id}"></a>', "", f"## `{cause.id}`: {cause.title}", "", cause.summary.strip(), "",
           f"Remedy: {cause.remedy.strip()}", "", f"Prior log-odds: {cause.prior:g}.", ""]
    if cause.supports:
        out += ["Supported by:", "", *_weights(cause.supports, emitters), ""]
    if cause.contradicts:
        out += ["Contradicted by:", "", *_weights(cause.contradicts, emitters), ""]
    if cause.separate_from:
        out += ["Told apart from:", ""]
        out += [f"- `{other}`: {how}" for other, how in sorted(cause.separate_from.items())]
        out.append("")
    return out


def causes_markdown(checklist: Checklist, emitters: dict[str, list[str]]) -> str:
    """The document for ``checklist``; ``emitters`` maps each signal to the checks that raise it."""
    out = ["# Causes", "",
           f"<!-- generated from checklists/{checklist.id}.yaml: edit the checklist, then run {REGENERATE} -->", "",
           f"The causes the `{checklist.id}` checklist (version {checklist.version}) weighs, in its order. "
           "Each cause starts from its prior log-odds; each signal observed adds (or, when it "
           "contradicts the cause, subtracts) its weight times its strength, and signals of one "
           "group count once, with the strongest. The confidence is the logistic of the sum.", "",
           f"A cause at or above {checklist.threshold:.0%} is *diagnosed*; the analysis decides that "
           "once, on each finding, and the verdict is the diagnosed cause with the highest "
           "confidence. `no-reset-observed` is never diagnosed and never leads a ranking in which "
           f"a cause is. Two diagnosed causes less than {checklist.close_call:.0%} apart are a close call.", "",
           "A verdict that none of these signals backs says that no reset was observed during the run: "
           + ", ".join(f"`{s}`" for s in checklist.observed_reset) + ".", "",
           "In the summaries and remedies, `{target}` stands for the target of the run and "
           "`{server}` for its server context.", "",
           "| cause | title |", "|---|---|"]
    out += [f"| [`{c.id}`](#{c.id}) | {c.title} |" for c in checklist.causes]
    out.append("")
    for cause in checklist.causes:
        out += _cause(cause, emitters)
    return "\n".join(out).rstrip("\n") + "\n"


def shipped() -> str:
    """The document for the shipped checklist and the registered checks."""
    from wizard.engine.discovery import all_checks, load

    emitters: dict[str, list[str]] = {}
    for check_id, cls in sorted(all_checks().items()):
        for signal in cls.emits:
            emitters.setdefault(signal, []).append(check_id)
    return causes_markdown(load(), emitters)


if __name__ == "__main__":
    import sys

    sys.stdout.write(shipped())
