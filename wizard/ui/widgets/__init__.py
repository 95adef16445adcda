"""Widgets of the wizard: the stepper, check results and the evidence views."""
