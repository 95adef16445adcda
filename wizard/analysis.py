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
from wizard.model.checklist import Weight

NO_RESET = "no-reset-observed"


class _Safe(dict):
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


def diagnose(checklist: Checklist, session: Session) -> tuple[list[Finding], CloseCall | None]:
    # The strongest occurrence of each signal, with every fact that raised it.
    strength: dict[str, float] = defaultdict(float)
    facts: dict[str, list[str]] = defaultdict(list)
    for check_id, signal in session.signals():
        strength[signal.id] = max(strength[signal.id], signal.strength)
        line = f"{check_id}: {signal.fact}"
        if line not in facts[signal.id]:
            facts[signal.id].append(line)

    fill = _Safe(target=session.target.display(), host=session.target.host,
                 port=str(session.target.port), server=session.context.server)
    findings: list[Finding] = []
    for cause in checklist.causes:
        support = [(w, strength[w.signal]) for w in cause.supports if strength.get(w.signal)]
        if not support and cause.id != NO_RESET:
            continue
        against = [(w, strength[w.signal]) for w in cause.contradicts if strength.get(w.signal)]
        score = cause.prior + _total(support) - _total(against)
        # One fact can raise several signals (a path RST is also a TTL mismatch): cite it once.
        evidence = list(dict.fromkeys(
            f for w, _ in sorted(support, key=lambda p: -p[0].weight * p[1]) for f in facts[w.signal]))
        against_lines = list(dict.fromkeys(f for w, _ in against for f in facts[w.signal]))
        findings.append(Finding(
            cause=cause.id, title=cause.title, confidence=round(_sigmoid(score), 3),
            summary=cause.summary.format_map(fill).strip(), evidence=evidence, against=against_lines,
            remedy=cause.remedy.format_map(fill).strip()))

    # Ranked by confidence; with no diagnosed cause no-reset-observed usually leads by its
    # own support (every probe fine). A reset that was seen but not explained keeps the
    # leads first, because no-reset-observed is contradicted by the reset itself.
    findings.sort(key=lambda f: (-f.confidence, f.cause))
    diagnosed = [f for f in findings if f.confidence >= checklist.threshold and f.cause != NO_RESET]
    if diagnosed:
        findings = [f for f in findings if f.cause != NO_RESET or f.confidence >= checklist.threshold]

    close = None
    if len(diagnosed) >= 2 and diagnosed[0].confidence - diagnosed[1].confidence < checklist.close_call:
        first, second = diagnosed[0].cause, diagnosed[1].cause
        rule_a, rule_b = checklist.cause(first), checklist.cause(second)
        how = (rule_a.separate_from.get(second) if rule_a else None) or \
              (rule_b.separate_from.get(first) if rule_b else None) or \
              "rerun at the time the resets happen, with more --attempts and a --hold"
        close = CloseCall(causes=(first, second), separate_with=how)
    return findings, close


def diagnosed_causes(session: Session, checklist: Checklist) -> list[Finding]:
    """The findings that count as diagnosed (confidence at or above the threshold)."""
    return [f for f in session.diagnosis if f.cause != NO_RESET and f.confidence >= checklist.threshold]
