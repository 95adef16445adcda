"""`python -m wizard`: the same program as `reset-wizard`."""

from wizard.cli import main

raise SystemExit(main())
