"""What real servers' log lines mean for a reset (pure): HAProxy's termination states.

HAProxy ends every log line of a session with a termination state: two letters (four in
HTTP logs, the last two about cookies), the first saying who or what ended the session, the
second at which stage. Case matters: ``cD`` is the client's timeout, ``CD`` the client's
abort. The signature that finds these lines is case-insensitive (as all are); this module
reads the state case-sensitively and gives its meaning and the signal it raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wizard.model.signals import signal_for

# the state, then actconn/feconn/beconn/srv_conn/retries
_STATE = re.compile(r"\s([A-Za-z-]{2})([A-Za-z-]{2})?\s+\d+/\d+/\d+/\d+/\+?\d+\s")
# the status code of an HTTP log line: after the five timers
_STATUS = re.compile(r"\s-?\d+/-?\d+/-?\d+/-?\d+/\+?\d+\s(-?\d{3})\s")

WHO = {"C": "the client aborted", "S": "the server aborted or refused",
       "P": "HAProxy ended it by its own rules (deny, reject, tarpit, or an invalid request)",
       "L": "HAProxy answered it locally", "R": "a resource of HAProxy ran out (maxconn, memory, sockets)",
       "I": "an internal error of HAProxy", "D": "the server was down", "U": "the server was unusable",
       "K": "an administrator killed it", "c": "the client-side timeout expired (timeout client / http-request)",
       "s": "the server-side timeout expired (timeout server / connect)"}
STAGE = {"R": "waiting for the request", "Q": "in the queue", "C": "connecting to the server",
         "H": "waiting for the server's headers", "D": "in the data phase", "L": "sending the last data",
         "T": "tarpitted", "-": "after the session ended normally"}
SIGNALS = {"C": "log.client_abort", "S": "log.proxy_upstream", "D": "log.proxy_upstream",
           "U": "log.proxy_upstream", "s": "log.proxy_upstream", "P": "log.proxy_reject",
           "R": "log.rate_limit", "c": "log.client_timeout", "I": "log.resource"}


@dataclass(frozen=True)
class Termination:
    state: str  # e.g. "cD", "PR", "SH"
    meaning: str
    signal: str | None  # the signal the state raises (None: nothing about resets)


def haproxy_termination(line: str) -> Termination | None:
    """The termination state of an HAProxy log line (None: none, or a normal end)."""
    m = _STATE.search(line)
    if not m:
        return None
    state = m.group(1)
    if state == "--" or state[0] not in WHO:
        return None
    who, stage = state[0], state[1]
    signal = SIGNALS.get(who)
    status = _STATUS.search(line)
    if who == "P" and status and status.group(1) == "400":
        signal = "log.protocol"  # the request could not be parsed: a protocol error, not an ACL
    meaning = f"{state}: {WHO[who]}, {STAGE.get(stage, 'at stage ' + stage)}"
    return Termination(state, meaning, signal)


def line_signal(sig_id: str, cls: str, text: str) -> tuple[str | None, str]:
    """The signal a matched server log line raises, and what the line means where this
    module reads more into it than its signature (HAProxy's termination state)."""
    if sig_id == "haproxy-termination":
        term = haproxy_termination(text)
        return (term.signal, term.meaning) if term else (None, "")
    return signal_for(sig_id, cls, "log"), ""
