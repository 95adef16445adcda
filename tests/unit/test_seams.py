"""The seams hold: one registry of server-context kinds, one signature-class -> signal table,
one place for a step's check order, one conclude()."""

from __future__ import annotations

import importlib
from typing import get_args

import pytest

from wizard.engine.runner import conclude, record_result
from wizard.model import CheckResult, Status, WizardError, load_checklist
from wizard.model.checklist import SignatureClass
from wizard.model.contexts import KINDS, context_hostnames, context_syntax, parse_context, root_fix
from wizard.model.signals import CLASS_SIGNALS, signal_for


def test_every_context_kind_names_a_host_class_that_builds_from_its_spec() -> None:
    for kind in KINDS.values():
        module, _, name = kind.host.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert callable(cls.from_spec), kind.name
        assert kind.syntax.split(":")[0] == kind.name


def test_the_syntax_line_lists_every_kind() -> None:
    assert context_syntax() == "local, netns:NAME or ssh:[user@]host[:port]"


@pytest.mark.parametrize("spec, names", [
    ("ssh:ops@web1:2222", ["web1"]), ("ssh:[fd00::7]:22", ["fd00::7"]), ("ssh:web1", ["web1"]),
    ("netns:lab", []), ("local", []), ("ssh:bad host", [])])
def test_the_machine_names_a_context_holds_come_from_its_kind(spec: str, names: list[str]) -> None:
    assert context_hostnames(spec) == names


@pytest.mark.parametrize("spec", ["local:x", "pid:1", "LOCAL", "netns", "ssh"])
def test_a_value_of_no_kind_or_a_bad_value_is_refused(spec: str) -> None:
    with pytest.raises(WizardError):
        parse_context(spec)


def test_the_root_fix_follows_the_kind() -> None:
    assert "sudo -n" in root_fix("ssh:ops@web1")
    assert root_fix("netns:lab") == root_fix("local") == "run as root: sudo reset-wizard ..."


def test_every_signature_class_has_its_signals_and_they_are_declared_by_the_checks() -> None:
    from wizard.engine.discovery import all_checks

    assert set(CLASS_SIGNALS) == set(get_args(SignatureClass))
    emitted = {s for c in all_checks().values() for s in c.emits}
    raised = {s for pair in CLASS_SIGNALS.values() for s in pair if s}
    assert raised <= emitted, raised - emitted


def test_a_signature_of_its_own_wins_over_its_class() -> None:
    assert signal_for("refused", "not_reset", "error") == "error.refused"
    assert signal_for("refused", "not_reset", "log") is None
    assert signal_for("syn-flood", "kernel_event", "log") == "log.syn_flood"
    assert signal_for("x", "eof_or_rst", "log") == "log.eof"
    assert signal_for("x", "proxy_state", "error") == "error.eof_or_rst"


def test_results_keep_the_checklist_order_whatever_order_they_finish_in() -> None:
    from wizard.engine.discovery import checklist_path
    from wizard.model import StepResult

    checklist = load_checklist(checklist_path())
    spec = checklist.steps[1]
    ids = [c.check for c in spec.checks]
    step = StepResult(id=spec.id)
    for check_id in reversed(ids):
        record_result(step, spec, CheckResult(id=check_id, status=Status.PASS, summary="ok"))
    record_result(step, spec, CheckResult(id=ids[0], status=Status.FAIL, summary="again"))
    assert [c.id for c in step.checks] == ids
    assert step.checks[0].summary == "again"


def test_conclude_fills_the_diagnosis_and_the_end() -> None:
    from datetime import UTC, datetime

    from tests.unit.fakes import make_ctx
    from wizard.model import Context, Session, ToolInfo

    ctx = make_ctx()
    session = Session(tool=ToolInfo(version="t"), started_at=datetime(2026, 1, 1, tzinfo=UTC),
                      target=ctx.target, context=Context(client="c", server="local"), answers=ctx.answers)
    end = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    conclude(ctx.checklist, session, end)
    assert session.finished_at == end
    assert session.diagnosis  # no-reset-observed at least


def test_every_declared_signal_is_weighed_by_a_cause() -> None:
    from wizard.engine.discovery import all_checks, load

    checklist = load()
    weighed = {w.signal for c in checklist.causes for w in [*c.supports, *c.contradicts]}
    # the wizard's own checks (tests register fakes of their own)
    declared = {s for cls in all_checks().values() if cls.__module__.startswith("wizard.") for s in cls.emits}
    assert not declared - weighed, f"weigh these in a cause or stop emitting them: {declared - weighed}"
