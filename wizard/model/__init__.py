"""Pydantic models: checklist, check results, session and diagnosis. A leaf: imports nothing of wizard."""

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
