"""Data-driven fakes for the probes: a script of outcomes, not mocks of internals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wizard.diag.net.io.dns import Resolution
from wizard.engine.contract import CheckContext
from wizard.engine.discovery import checklist_path
from wizard.engine.probes import ConnectOutcome, ExchangeOutcome, ProbeEvent
from wizard.hosts.base import FileInfo, Host, HostError
from wizard.hosts.commands import CommandOutput
from wizard.model import Answers, Target, load_checklist


def output(argv: list[str] | tuple[str, ...], stdout: str | bytes = "", returncode: int = 0,
           stderr: str = "", **kw: Any) -> CommandOutput:
    data = stdout.encode() if isinstance(stdout, str) else stdout
    return CommandOutput(tuple(argv), returncode, data, stderr.encode(), 1, **kw)


class FakeHost(Host):
    """Commands answer from a script keyed by argv prefix; a list answers call by call."""

    def __init__(self, spec: str = "local", commands: dict[tuple[str, ...], Any] | None = None,
                 files: dict[str, bytes | str] | None = None, privileged: bool = True,
                 tools: set[str] | None = None, addresses: list[str] | None = None) -> None:
        self.spec = spec
        self.commands = {tuple(k): v for k, v in (commands or {}).items()}
        self.files = {k: v.encode() if isinstance(v, str) else v for k, v in (files or {}).items()}
        self.privileged = privileged
        self.tools = tools
        self._addresses = addresses if addresses is not None else ["127.0.0.1", "::1"]
        self.calls: list[tuple[str, ...]] = []
        self.writes: list[tuple[str, bytes, bool]] = []
        self._counts: dict[tuple[str, ...], int] = defaultdict(int)

    async def run(self, argv, timeout=5.0, max_bytes=1 << 20) -> CommandOutput:  # type: ignore[override]
        argv = tuple(argv)
        self.calls.append(argv)
        for key in sorted(self.commands, key=len, reverse=True):
            if argv[: len(key)] == key:
                answer = self.commands[key]
                if isinstance(answer, list):
                    n = self._counts[key]
                    self._counts[key] += 1
                    answer = answer[min(n, len(answer) - 1)]
                if callable(answer):
                    answer = answer(argv)
                if isinstance(answer, CommandOutput):
                    return CommandOutput(argv, answer.returncode, answer.stdout, answer.stderr, 1,
                                         answer.timed_out, answer.truncated, answer.missing, self.spec)
                return output(argv, answer)
        return CommandOutput(argv, 127, b"", f"{argv[0]}: not found".encode(), 0, missing=True,
                             where=self.spec)

    async def read(self, path: str, offset: int = 0, max_bytes: int = 1 << 20) -> bytes:
        if path not in self.files:
            raise HostError(f"cannot read {path}: No such file or directory")
        return self.files[path][offset:offset + max_bytes]

    async def write(self, path: str, data: bytes | str, timeout: float = 5.0, *, root: bool = False) -> None:
        self.writes.append((path, data.encode() if isinstance(data, str) else data, root))
        self.files[path] = data.encode() if isinstance(data, str) else data

    async def stat(self, path: str) -> FileInfo:
        if path not in self.files:
            raise HostError(f"cannot read {path}: No such file or directory")
        return FileInfo(path, len(self.files[path]), datetime.now(UTC).timestamp(), True)

    async def glob(self, pattern: str) -> list[str]:
        import fnmatch

        return sorted(p for p in self.files if fnmatch.fnmatch(p, pattern))

    async def which(self, tool: str) -> str | None:
        if self.tools is None or tool in self.tools:
            return f"/usr/bin/{tool}"
        return None

    async def is_privileged(self) -> bool:
        return self.privileged

    async def addresses(self) -> list[str]:
        return list(self._addresses)


@dataclass
class FakeTcp:
    """connect/exchange answer from per-address scripts; a list answers call by call."""

    connects: dict[str, Any] = field(default_factory=dict)
    exchanges: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def _next(self, table: dict[str, Any], address: str) -> Any:
        answer = table.get(address, table.get("*"))
        if isinstance(answer, list):
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer

    async def connect(self, address: str, port: int, timeout: float) -> ConnectOutcome:
        self.calls.append(("connect", address, str(port)))
        kind = self._next(self.connects, address) or "ok"
        if isinstance(kind, ConnectOutcome):
            return kind
        return ConnectOutcome(address, port, kind, 1.5 if kind != "timeout" else timeout * 1000,
                              message=kind)

    async def exchange(self, address: str, port: int, payload: bytes, timeout: float,
                       hold: float = 0.0, attempt: int = 0, read_limit: int = 65536) -> ExchangeOutcome:
        self.calls.append(("exchange", address, str(port), str(hold)))
        answer = self._next(self.exchanges, address) or ("ok", "first-data")
        if isinstance(answer, ExchangeOutcome):
            return answer
        kind, stage = answer
        events = [ProbeEvent(0.0, "syn")]
        if stage == "connect":
            events.append(ProbeEvent(1.0, "refused" if kind == "refused" else kind))
        else:
            events += [ProbeEvent(1.0, "connected"), ProbeEvent(1.2, "sent", size=len(payload))]
            if stage == "after-hold":
                events.append(ProbeEvent(2.0, "idle", f"{hold:g}s"))
            events.append(ProbeEvent(3.0, {"ok": "received", "eof": "eof"}.get(kind, kind)))
        return ExchangeOutcome(address, port, kind, stage, events, len(payload),
                               10 if kind == "ok" else 0, b"HTTP/1.1 200 OK\r\n" if kind == "ok" else b"",
                               "127.0.0.1:40000", attempt, kind)


@dataclass
class FakeDns:
    table: dict[str, list[str]] = field(default_factory=dict)

    async def resolve(self, name: str, timeout: float = 3.0) -> Resolution:
        from wizard.model import is_ip

        if is_ip(name):
            return Resolution(name, [name], "literal")
        addresses = self.table.get(name, [])
        return Resolution(name, addresses, "dns" if addresses else "none",
                          error="" if addresses else f"{name} does not exist in DNS (NXDOMAIN)")


@dataclass
class FakeProbes:
    tcp: Any = field(default_factory=FakeTcp)
    dns: Any = field(default_factory=FakeDns)
    processes: Any = None
    packets: Any = None
    protocol: Any = None


def make_ctx(target: str = "127.0.0.1:8080", *, answers: Answers | None = None,
             server: FakeHost | None = None, client: FakeHost | None = None,
             probes: FakeProbes | None = None, root: bool = True) -> CheckContext:
    from wizard.model import parse_target

    parsed: Target = parse_target(target)
    probes = probes or FakeProbes()
    if not parsed.addresses:
        parsed.addresses = [parsed.host] if parsed.is_address else probes.dns.table.get(parsed.host, [])
    return CheckContext(
        target=parsed, answers=answers or Answers(), checklist=load_checklist(checklist_path()),
        client=client or FakeHost("local"), server=server or FakeHost("local"),
        probes=probes, now=lambda: datetime(2026, 11, 22, 3, 50, tzinfo=UTC),
        client_root=root, server_root=root,
        resolution=Resolution(parsed.host, parsed.addresses, "literal"))
