"""Checks of the handshake area (being written)."""
