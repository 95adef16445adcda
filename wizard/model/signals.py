"""Which signal a matched signature raises (pure): one table for the client's error text
(step 1, ``error.*``) and the server's log lines (step 3, ``log.*``), so a class means the
same thing in both places."""

from __future__ import annotations

from typing import Literal

Source = Literal["error", "log"]

#: class -> (what the client's error text raises, what a server log line raises); None: nothing
CLASS_SIGNALS: dict[str, tuple[str | None, str | None]] = {
    "rst_certain": ("error.rst_certain", "log.reset"),
    "eof_or_rst": ("error.eof_or_rst", "log.eof"),
    "proxy_state": ("error.eof_or_rst", "log.proxy_upstream"),
    "protocol": ("error.protocol", "log.protocol"),
    "crash": (None, "log.crash"),
    "resource": (None, "log.resource"),
    "kernel_event": (None, None),
    "not_reset": ("error.timeout", None),  # a timeout or a refusal: not a reset at all
}

#: signatures that raise a signal of their own, whatever their class
ID_SIGNALS: dict[str, tuple[str | None, str | None]] = {
    "refused": ("error.refused", None),
    "timeout": ("error.timeout", None),
    "nf-conntrack-full": (None, "log.conntrack_full"),
    "syn-flood": (None, "log.syn_flood"),
    # real servers' lines that say what the server itself did (its timeout, a rule, a limit)
    "http-access-timeout": (None, "log.client_timeout"),
    "nginx-client-timeout": (None, "log.client_timeout"),
    "apache-timeout": (None, "log.client_timeout"),
    "redis-idle-client": (None, "log.client_timeout"),
    "postgres-idle-timeout": (None, "log.client_timeout"),
    "http-access-client-closed": (None, "log.client_abort"),
    "nginx-access-444": (None, "log.proxy_reject"),
    "nginx-access-denied": (None, "log.proxy_reject"),
    "apache-denied": (None, "log.proxy_reject"),
    "postgres-hba-reject": (None, "log.proxy_reject"),
    "http-access-limited": (None, "log.rate_limit"),
    "nginx-limit": (None, "log.rate_limit"),
    "apache-max-workers": (None, "log.rate_limit"),
    "redis-client-limit": (None, "log.rate_limit"),
    "postgres-too-many": (None, "log.rate_limit"),
    "http-access-upstream": (None, "log.proxy_upstream"),
    "gunicorn-worker-timeout": (None, "log.worker_killed"),
    "gunicorn-worker-boot": (None, "log.worker_boot"),
}


def signal_for(signature_id: str, cls: str, source: Source) -> str | None:
    """The signal a match of signature ``signature_id`` (of class ``cls``) raises in ``source``."""
    side = 0 if source == "error" else 1
    own = ID_SIGNALS.get(signature_id, (None, None))[side]
    return own or CLASS_SIGNALS.get(cls, (None, None))[side]
