"""Pydantic models: checklist, check results, session and diagnosis. A leaf: imports nothing of wizard.

The names below load with their submodule on first use (PEP 562), not with the package:
every ``wizard.model.X`` import runs this file, and the ones that need no model (errors,
questions, inputs' helpers) are on the paths to the TUI's first frame and to ``--help``,
which would otherwise wait for pydantic and the checklist's models."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizard.model.checklist import (
                                      CauseRule,
                                      Checklist,
                                      CheckSpec,
                                      Signature,
                                      Step,
                                      load_checklist,
    )
    from wizard.model.errors import WizardError
    from wizard.model.results import (
                                      STEP_IDS,
                                      CheckResult,
                                      Evidence,
                                      Signal,
                                      Status,
                                      StepId,
                                      StepResult,
                                      worst,
    )
    from wizard.model.session import (
                                      NO_RESET,
                                      SCHEMA_VERSION,
                                      Answers,
                                      CloseCall,
                                      Context,
                                      Finding,
                                      Session,
                                      ToolInfo,
                                      Verdict,
    )
    from wizard.model.target import Target, is_ip, parse_port, parse_target

#: each name of the package -> the submodule that defines it
_WHERE = {
    **dict.fromkeys(("CauseRule", "Checklist", "CheckSpec", "Signature", "Step", "load_checklist"), "checklist"),
    "WizardError": "errors",
    **dict.fromkeys(("STEP_IDS", "CheckResult", "Evidence", "Signal", "Status", "StepId", "StepResult", "worst"),
                    "results"),
    **dict.fromkeys(("NO_RESET", "SCHEMA_VERSION", "Answers", "CloseCall", "Context", "Finding", "Session",
                     "ToolInfo", "Verdict"), "session"),
    **dict.fromkeys(("Target", "is_ip", "parse_port", "parse_target"), "target"),
}

__all__ = [
                                  "NO_RESET",
                                  "SCHEMA_VERSION",
                                  "STEP_IDS",
                                  "Answers",
                                  "CauseRule",
                                  "CheckResult",
                                  "CheckSpec",
                                  "Checklist",
                                  "CloseCall",
                                  "Context",
                                  "Evidence",
                                  "Finding",
                                  "Session",
                                  "Signal",
                                  "Signature",
                                  "Status",
                                  "Step",
                                  "StepId",
                                  "StepResult",
                                  "Target",
                                  "ToolInfo",
                                  "Verdict",
                                  "WizardError",
                                  "is_ip",
                                  "load_checklist",
                                  "parse_port",
                                  "parse_target",
                                  "worst",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value  # once: later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
