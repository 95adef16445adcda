"""The command line (I/O): `reset-wizard`, whose entry point is wizard.cli.main:entry."""

from wizard.cli.main import main

__all__ = ["main"]
