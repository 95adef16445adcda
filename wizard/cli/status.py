"""The exit status of every command, each code with its meaning (pure)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What `reset-wizard` exits with. Each member's ``__doc__`` is its meaning: the help
    epilogs and docs/cli.md say the same (a test holds them equal)."""

    def __new__(cls, value: int, doc: str) -> ExitStatus:
        member = int.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member

    OK = 0, "finished: no cause of resets found"
    DIAGNOSED = 1, "finished: at least one cause reached the checklist's threshold"
    BAD_INPUT = 2, "bad input: one line on stderr, nothing probed or written"
    FAILED = 3, ("the run failed, or was interrupted (Ctrl-C, SIGTERM, SIGHUP): what was "
                 "gathered is still written")

    @property
    def meaning(self) -> str:
        return self.__doc__ or ""
