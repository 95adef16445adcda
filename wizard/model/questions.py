"""What step 1 asks, once for both faces: each question's option, form label and help (pure data).

The `diagnose` options take their help from here and the TUI's step-1 form its labels and
hints, so the two cannot drift; the rules that parse each answer are in wizard.model.inputs.
The option names are the command-line contract (docs/cli.md): extend, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """One input of step 1."""

    key: str  # the form field's id: an Answers field (window: window_s), "target" or "server"
    option: str  # the `diagnose` option that answers it; "TARGET" for the positional
    label: str  # the form's short label
    prompt: str  # the question, as a person is asked it
    hint: str  # the forms an answer takes: the form's placeholder, the option's help
    metavar: str = ""
    default: str = ""  # the default as one would type it; "" when there is none

    @property
    def help(self) -> str:
        """The option's --help text: the question and how to answer it."""
        return f"{self.prompt} {self.hint}"


# The form's order; a data table.
QUESTIONS: tuple[Question, ...] = (
    Question("target", "TARGET", "Target", "Where did the connection go?",
             "host:port, [IPv6]:port or a URL (http, https, ws, wss, or a scheme with a known port)",
             metavar="TARGET"),
    Question("error", "--error", "Error text (paste)", "What error did you see? Paste it as it was:",
             "curl, Python, Java, Go, Node, nginx, ... errors are classified.", metavar="TEXT"),
    Question("at", "--at", "When it happened", "When was the reset seen?",
             "RFC 3339, 'YYYY-MM-DD HH:MM[:SS]', HH:MM[:SS] (local time, the last one) or -10m; "
             "empty: just now.", metavar="TIME"),
    Question("window", "--window", "Search logs around it", "How far around that time should logs be searched?",
             "90s, 15m, 2h or seconds.", metavar="DURATION", default="15m"),
    Question("side", "--side", "Seen on", "Did the error appear on the client or on the server?",
             "client, server or unknown.", metavar="SIDE", default="unknown"),
    Question("server", "--server", "Server evidence in", "Where can the server's evidence be read?",
             "local, netns:NAME or ssh:[user@]host[:port].", metavar="CONTEXT", default="local"),
    Question("logs", "--log", "Log files", "Which log files should be searched?",
             "A path or glob in the server context (repeatable; the form takes several, comma "
             "separated); none: the usual logs.", metavar="PATH"),
    Question("journal", "--journal", "Journal units", "Which systemd journals should be searched?",
             "A unit (nginx.service) or a .journal file (repeatable).", metavar="UNIT"),
    Question("payload", "--payload", "Probe payload", "What should the probe send after the handshake?",
             r"Text with \r \n \t \\ \xHH escapes, or @FILE; empty: chosen by port (an HTTP GET, "
             "a TLS ClientHello, or nothing).", metavar="TEXT|@FILE"),
    Question("hold", "--hold", "Hold idle (s)", "How long should the probe idle before sending again?",
             "Seconds; exposes the idle timeouts of NATs, load balancers and keep-alive pools.",
             metavar="SECONDS", default="0"),
    Question("attempts", "--attempts", "Handshake attempts", "How many handshakes should the burst probe make?",
             "1 to 1000; exposes intermittent and rate-limited resets.", metavar="N", default="10"),
    Question("timeout", "--timeout", "Probe timeout (s)", "How long may each probe wait for an answer?",
             "Seconds, more than 0 and at most 60.", metavar="SECONDS", default="3"),
    Question("capture", "--no-capture", "Capture packets", "Should the probe's packets be captured?",
             "They are when the wizard runs as root; this option says no.", metavar=""),
)


def question(name: str) -> Question:
    """The question for a form field id or Answers field (``at``) or an option (``--at``)."""
    for q in QUESTIONS:
        if name in (q.key, q.option):
            return q
    raise KeyError(name)
