"""reset-wizard: find out why a TCP connection was reset, with evidence."""

__version__ = "0.1.0"
