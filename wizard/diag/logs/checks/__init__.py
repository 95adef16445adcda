"""Step 3's checks: the server's logs around the reset (``excerpt``), and again after the
probes; ``matching`` holds the pure matching they share."""

from wizard.diag.logs.checks.excerpt import LogExcerptCheck, LogExcerptParams, LogsDuringProbesCheck
from wizard.diag.logs.checks.matching import excerpt, histogram

__all__ = ["LogExcerptCheck", "LogExcerptParams", "LogsDuringProbesCheck", "excerpt", "histogram"]
