"""Checks of the app area (being written)."""
