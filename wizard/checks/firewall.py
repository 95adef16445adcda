"""Checks of the firewall area (being written)."""
