"""Checks: one small class per diagnostic; they ask probes for facts and return CheckResults."""

from wizard.checks.base import Check, CheckContext, CheckParams, Findings, Tool
from wizard.checks.registry import all_checks, checklist_path, get_check, load, register

__all__ = ["Check", "CheckContext", "CheckParams", "Findings", "Tool", "all_checks",
           "checklist_path", "get_check", "load", "register"]
