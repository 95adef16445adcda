"""`python -m wizard`: the same program as `reset-wizard`."""

from wizard.entry import run

run()
