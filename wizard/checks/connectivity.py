"""Checks of the connectivity area (being written)."""
