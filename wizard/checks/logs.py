"""Checks of the logs area (being written)."""
