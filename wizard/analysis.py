"""Signals to a ranked diagnosis (pure): every cause weighed against all the evidence.

Each cause of the checklist starts from a prior log-odds; every signal that supports it
adds its weight and every signal that contradicts it subtracts its weight (both scaled by
the signal's strength). Confidence is the logistic of the sum, so a cause confirmed by one
fact and contradicted by another loses confidence. Only causes with at least one
supporting signal are candidates. Weights and wording come from the checklist.
"""

from __future__ import annotations

import math
from collections import defaultdict

from wizard.model import Checklist, CloseCall, Finding, Session
from wizard.model.checklist import CauseRule, Weight
from wizard.model.session import INTERRUPTED, NO_RESET, Verdict

__all__ = ["NO_RESET", "conclude", "decide", "diagnose", "rank"]


class _Safe(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _total(weights: list[tuple[Weight, float]]) -> float:
    """Sum of weight x strength, where each group contributes only its strongest member."""
    best: dict[str, float] = {}
    total = 0.0
    for w, strength in weights:
        value = w.weight * strength
        if w.group:
            best[w.group] = max(best.get(w.group, 0.0), value)
        else:
            total += value
    return total + sum(best.values())


def _observed(session: Session) -> tuple[dict[str, float], dict[str, list[str]]]:
    """The strongest occurrence of each signal, with every fact ("check: fact") that raised it."""
    strength: dict[str, float] = defaultdict(float)
    facts: dict[str, list[str]] = defaultdict(list)
    for check_id, signal in session.signals():
        strength[signal.id] = max(strength[signal.id], signal.strength)
        line = f"{check_id}: {signal.fact}"
        if line not in facts[signal.id]:
            facts[signal.id].append(line)
    return strength, facts


def _lines(weights: list[tuple[Weight, float]], facts: dict[str, list[str]]) -> dict[str, float]:
    """Each fact behind ``weights``, strongest first, with the most it weighs through one signal."""
    out: dict[str, float] = {}
    for w, strength in sorted(weights, key=lambda p: -p[0].weight * p[1]):
        for line in facts[w.signal]:
            out[line] = max(out.get(line, 0.0), w.weight * strength)
    return out


def _finding(cause: CauseRule, strength: dict[str, float], facts: dict[str, list[str]],
             fill: _Safe) -> Finding | None:
    support = [(w, strength[w.signal]) for w in cause.supports if strength.get(w.signal)]
    if not support and cause.id != NO_RESET:
        return None
    against = [(w, strength[w.signal]) for w in cause.contradicts if strength.get(w.signal)]
    score = cause.prior + _total(support) - _total(against)
    # One fact can raise several signals (a path RST is also a TTL mismatch): cite it once,
    # and a fact that raised signals on both sides of one cause on the side it weighs more,
    # so that no finding is contradicted by the very evidence it rests on.
    pro, con = _lines(support, facts), _lines(against, facts)
    evidence = [line for line, weight in pro.items() if weight >= con.get(line, 0.0)]
    against_lines = [line for line in con if line not in evidence]
    return Finding(cause=cause.id, title=cause.title, confidence=round(_sigmoid(score), 3),
                   summary=cause.summary.format_map(fill).strip(), evidence=evidence,
                   against=against_lines, remedy=cause.remedy.format_map(fill).strip())


def _close_call(checklist: Checklist, diagnosed: list[Finding]) -> CloseCall | None:
    if len(diagnosed) < 2 or diagnosed[0].confidence - diagnosed[1].confidence >= checklist.close_call:
        return None
    first, second = diagnosed[0].cause, diagnosed[1].cause
    rule_a, rule_b = checklist.cause(first), checklist.cause(second)
    how = (rule_a.separate_from.get(second) if rule_a else None) or \
          (rule_b.separate_from.get(first) if rule_b else None) or \
          "rerun at the time the resets happen, with more --attempts and a --hold"
    return CloseCall(causes=(first, second), separate_with=how)


def diagnose(checklist: Checklist, session: Session) -> tuple[list[Finding], CloseCall | None]:
    """Every supported cause weighed, ranked by :func:`rank`, and the close call if any."""
    strength, facts = _observed(session)
    fill = _Safe(target=session.target.display(), host=session.target.host,
                 port=str(session.target.port), server=session.context.server)
    weighed = [_finding(cause, strength, facts, fill) for cause in checklist.causes]
    findings = rank([f for f in weighed if f is not None], checklist.threshold)
    return findings, _close_call(checklist, [f for f in findings if f.diagnosed])


def rank(findings: list[Finding], threshold: float) -> list[Finding]:
    """Marks each finding diagnosed or not, once, and orders them: the diagnosed causes by
    confidence first (the first of them is the verdict), then the rest by confidence.

    no-reset-observed is never diagnosed and never leads a ranking in which a cause is: a
    diagnosed cause drops it unless it too passed the threshold (then it follows the causes).
    With nothing diagnosed the order is by confidence, so no-reset-observed leads only when
    every probe behaved; a reset seen but not explained keeps the leads first.
    """
    marked = [f.model_copy(update={"diagnosed": f.cause != NO_RESET and f.confidence >= threshold})
              for f in findings]
    marked.sort(key=lambda f: (not f.diagnosed, -f.confidence, f.cause))
    if marked and marked[0].diagnosed:
        marked = [f for f in marked if f.cause != NO_RESET or f.confidence >= threshold]
    return marked


def conclude(checklist: Checklist, session: Session) -> None:
    """The analysis of ``session``, written into it: the ranking, the close call, the verdict."""
    session.diagnosis, session.close_call = diagnose(checklist, session)
    session.verdict = decide(checklist, session)


def decide(checklist: Checklist, session: Session) -> Verdict:
    """The verdict of an analysed session: what ``diagnosis[0]`` is, in one sentence."""
    seen = {s.id for _, s in session.signals()}
    # A checklist that names no reset signals cannot tell whether one was seen.
    observed = bool(seen & set(checklist.observed_reset)) if checklist.observed_reset else None
    first = session.diagnosis[0] if session.diagnosis else None
    common = {"threshold": checklist.threshold, "reset_observed": observed}
    if first is not None and first.diagnosed:
        return Verdict(kind="cause", cause=first.cause, confidence=first.confidence,
                       statement=_cause_statement(first, observed), **common)
    if session.interrupted:
        return Verdict(kind="interrupted", statement=INTERRUPTED, **common)
    if first is not None and first.cause == NO_RESET and first.confidence >= checklist.threshold:
        doubt = (f" (against it: {first.against[0]}" + (f", and {len(first.against) - 1} more)"
                 if len(first.against) > 1 else ")")) if first.against else ""
        return Verdict(kind="no-reset", cause=NO_RESET, confidence=first.confidence,
                       statement=f"no cause of resets found: {first.summary}{doubt}", **common)
    lead = next((f for f in session.diagnosis if f.cause != NO_RESET), None)
    why = (f"the strongest lead, {lead.cause}, reached {lead.confidence:.0%}, below the "
           f"{checklist.threshold:.0%} needed to call it" if lead else "no check raised a signal")
    return Verdict(kind="no-cause", statement=f"no cause of resets found: {why}", **common)


def _cause_statement(finding: Finding, observed: bool | None) -> str:
    line = f"{finding.cause} ({finding.confidence:.0%}): {finding.summary}"
    if observed is not False or not finding.evidence:
        return line
    return (f"{line} No reset was observed during this run: the verdict rests on "
            f"{finding.evidence[0]}, not on a reset the wizard saw.")


def diagnosed_causes(session: Session, checklist: Checklist | None = None) -> list[Finding]:
    """The findings the analysis marked diagnosed, the verdict first. ``checklist`` is not
    read: "diagnosed" was decided on each finding when the session was analysed."""
    return session.diagnosed()
