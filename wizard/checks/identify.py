"""Checks of the identify area (being written)."""
