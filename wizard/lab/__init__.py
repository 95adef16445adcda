"""The lab: built-in scenarios (the loopback demo) and network-namespace helpers for tests."""
