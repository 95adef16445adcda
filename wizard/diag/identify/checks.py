"""Checks of step 1 (identify): what the error text says, who holds sockets, what the server context is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from wizard.engine.contract import Check, CheckContext, Findings, NoParams, register
from wizard.hosts.base import HostError
from wizard.model import CheckResult, Signature, Status, linear
from wizard.model.signals import signal_for
from wizard.model.wording import plural

GENERIC_ECOSYSTEM = "errno"

# What each errno means; numbers differ between Linux, macOS/BSD and Windows.
ERRNO_MEANING = {
    104: "ECONNRESET (Linux): a TCP RST arrived on an open connection",
    54: "ECONNRESET (macOS/BSD): a TCP RST arrived on an open connection",
    10054: "WSAECONNRESET (Windows): a TCP RST arrived on an open connection",
    32: "EPIPE: a write after the peer had closed or reset the connection",
    111: "ECONNREFUSED: an RST answered the SYN (nothing listening, or a reject rule)",
    61: "ECONNREFUSED (macOS/BSD): an RST answered the SYN",
    10061: "WSAECONNREFUSED (Windows): an RST answered the SYN",
    110: "ETIMEDOUT: packets went unanswered; no RST was involved",
    60: "ETIMEDOUT (macOS/BSD): packets went unanswered",
    10060: "WSAETIMEDOUT (Windows): packets went unanswered",
    103: "ECONNABORTED: the local stack aborted the connection",
    10053: "WSAECONNABORTED (Windows): the local stack aborted the connection",
}
RESET_ERRNOS = frozenset({104, 54, 10054})

# Where errno numbers appear in error texts of the common ecosystems.
_ERRNO_PATTERNS = [
    re.compile(r"\[(?:errno|winerror) (\d+)\]", re.I),
    re.compile(r"\(os error (\d+)\)", re.I),
    re.compile(r"\berrno[ =:]+'?-?(\d+)\b", re.I),
    re.compile(r"\bsystem error: (\d+)\b", re.I),
    re.compile(r"SocketException \((\d+)\)", re.I),
    re.compile(r"\b(?:Connection(?:Reset|Refused|Aborted)Error|BrokenPipeError)\((\d+),", re.I),
    re.compile(r"\((\d+): [A-Za-z]"),  # nginx and Apache: (104: Connection reset by peer)
]
_CURL_CODE = re.compile(r"\bcurl:? \(?(\d{1,3})\)?[ :]", re.I)
_GO_ADDRS = re.compile(r"\b(read|write|readfrom|writeto|dial) (tcp[46]?) (\S+)->(\S+?):? ", re.I)
_PHASE = re.compile(r"\bwhile ([a-z ]+?)(?:,|\.|$)", re.I | re.M)

# Used only when no ecosystem-specific signature matched: the text still shows who printed it.
_ECOSYSTEM_HINTS: list[tuple[str, re.Pattern[str]]] = [
    ("git", re.compile(r"^(fatal|error): (unable to access|RPC failed)", re.I | re.M)),
    ("curl", re.compile(r"\bcurl: \(\d+\)", re.I)),
    ("go", _GO_ADDRS),
    ("go", re.compile(r"\bdial tcp[46]? \S+: connect: ", re.I)),
    ("ssh", re.compile(r"^(ssh: connect to host|client_loop: |packet_write_wait: )", re.I | re.M)),
    ("rust", re.compile(r"\(os error \d+\)", re.I)),
    ("python", re.compile(r"\b\w+Error: \[(errno|winerror) \d+\]|^Traceback \(most recent", re.I | re.M)),
    ("java", re.compile(r"\bjava(x)?\.[a-z]+\.\w+", re.I)),
    ("dotnet", re.compile(r"\bSystem\.(Net|IO)\.\w+")),
    ("ruby", re.compile(r"\bErrno::E[A-Z]+")),
    ("node", re.compile(r"\bError: (read|write|connect) E[A-Z]+\b")),
]

CURL_CODES = {
    7: "could not connect (refused or unreachable)", 28: "operation timed out",
    35: "TLS handshake failed", 52: "empty reply: the server closed without answering",
    55: "send failure", 56: "receive failure",
}

GENERIC_ADVICE = ("Paste the exact line the client printed (with the library's prefix, e.g. "
                  "\"curl: (56) ...\" or \"java.net.SocketException: ...\"). Whatever the text, the "
                  "next steps test the connection itself.")


@dataclass(frozen=True)
class SignatureMatch:
    id: str
    ecosystem: str
    cls: str
    meaning: str
    start: int
    text: str


@dataclass(frozen=True)
class Classification:
    matches: tuple[SignatureMatch, ...]
    primary: SignatureMatch | None
    ecosystem: str
    cls: str  # the class that counts, after explicit errno evidence is weighed
    errnos: tuple[int, ...]
    curl_code: int | None
    go_local: str | None
    go_remote: str | None
    phase: str | None


def classify(text: str, signatures: list[Signature]) -> Classification:
    """Match ``text`` against every signature and pick the most specific reading (pure)."""
    matches: list[SignatureMatch] = []
    if any(linear.is_long(ln) for ln in text.split("\n")):
        # A pasted line of 100,000 characters must not cost minutes: each line is read on
        # its head and tail, and the signatures run in their linear form.
        text = "\n".join(linear.shown(ln, linear.MAX_LINE) for ln in text.split("\n"))
    for sig in signatures:
        found = linear.compile_linear(sig.regex, re.I | re.M).search(text)
        if found:
            matches.append(SignatureMatch(sig.id, sig.ecosystem, sig.cls, sig.meaning,
                                          found.start(), found.group(0)))
    errnos = tuple(dict.fromkeys(int(m.group(1)) for p in _ERRNO_PATTERNS for m in p.finditer(text)))
    curl = _CURL_CODE.search(text)
    go = _GO_ADDRS.search(text)
    phase = _PHASE.search(text)
    # A specific ecosystem beats errno text; among those the outermost wrapper (printed
    # first) is the library that saw the error; a certain reset beats an ambiguous one.
    rank = {"rst_certain": 0, "protocol": 1, "not_reset": 2, "eof_or_rst": 3, "proxy_state": 4}
    primary = min(matches, key=lambda m: (m.ecosystem == GENERIC_ECOSYSTEM, m.start,
                                          rank.get(m.cls, 9)), default=None)
    ecosystem = primary.ecosystem if primary else ""
    if ecosystem in ("", GENERIC_ECOSYSTEM):
        hinted = next((name for name, pattern in _ECOSYSTEM_HINTS if pattern.search(text)), None)
        ecosystem = hinted or ecosystem
    cls = primary.cls if primary else ""
    explicit_reset = bool(RESET_ERRNOS & set(errnos)) or bool(
        re.search(r"connection reset by peer|forcibly closed by the remote host", text, re.I))
    if cls in ("eof_or_rst", "proxy_state") and explicit_reset and primary is not None \
            and "socket hang up" not in text.lower():
        # libpq and MySQL wrap both FIN and RST in one message; an explicit errno 104 (or the
        # strerror text) beside it says which one it was.
        cls = "rst_certain"
    return Classification(tuple(sorted(matches, key=lambda m: m.start)), primary, ecosystem, cls,
                          errnos, int(curl.group(1)) if curl else None,
                          go.group(3) if go else None, go.group(4) if go else None,
                          phase.group(1).strip() if phase else None)


def _explain(cls: str, sig_id: str) -> str:
    if cls == "rst_certain":
        return ("This is a reset of an open connection (ECONNRESET): a TCP RST arrived after the "
                "handshake. A refusal would read \"connection refused\" instead.")
    if cls in ("eof_or_rst", "proxy_state"):
        return ("The connection ended early, but this text does not prove a TCP RST: the peer may "
                "have closed with a FIN (libraries print the same words for both). The probes "
                "in the later steps tell them apart.")
    if sig_id == "refused":
        return ("This is a refusal, not a reset of an open connection: an RST answered the SYN "
                "(ECONNREFUSED), so nothing accepted the connection (no listener, or a reject rule).")
    if sig_id == "timeout" or cls == "not_reset":
        return ("This is a timeout, not a reset: packets went unanswered (dropped), so no RST was "
                "involved in this error.")
    if cls == "protocol":
        return ("The two ends spoke different protocols (e.g. plain HTTP to a TLS port); servers "
                "often answer that with a reset right after the first data.")
    return "This text points to the server side (a crash, a limit or a kernel event), not to the client's socket."


@register
class ErrorClassifyCheck(Check[NoParams]):
    id = "error.classify"
    title = "Classify the error text"
    step = "identify"
    Params = NoParams
    emits = ("error.rst_certain", "error.eof_or_rst", "error.refused", "error.timeout",
             "error.protocol")
    description = ("Matches --error against the checklist's signatures: which library printed it, "
                   "and whether it proves a reset, an ambiguous close, a refusal or a timeout.")

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        text = (ctx.answers.error or "").strip()
        if not text:
            return CheckResult.skipped("no error text was given", "--error 'the message you saw'")
        f = Findings()
        found = classify(text, ctx.checklist.signatures)
        f.add("the error text as given", kind="log", source="--error", text=text)
        for m in found.matches:
            f.add(f"matches {m.id} ({m.ecosystem}, {m.cls}): {m.meaning}", source="checklist signatures",
                  data={"signature": m.id, "ecosystem": m.ecosystem, "class": m.cls,
                        "meaning": m.meaning, "matched": m.text})
        extracted: dict[str, object] = {}
        if found.curl_code is not None:
            extracted["curl_exit_code"] = found.curl_code
            f.add(f"curl exit code {found.curl_code}: "
                  f"{CURL_CODES.get(found.curl_code, 'see libcurl-errors(3)')}", source="--error")
        for num in found.errnos:
            cast("list[int]", extracted.setdefault("errno", [])).append(num)
            f.add(f"errno {num}: {ERRNO_MEANING.get(num, 'not a socket error this wizard knows')}",
                  source="--error")
        if found.go_local and found.go_remote:
            extracted.update(local=found.go_local, remote=found.go_remote)
            f.add(f"Go connection {found.go_local} -> {found.go_remote}: the remote end is the peer "
                  "that reset (or the device in front of it)", source="--error")
        if found.phase:
            extracted["phase"] = found.phase
            f.add(f"it happened while {found.phase}", source="--error")
        primary = found.primary
        if primary is None:
            f.add("not a known reset message", data={"advice": GENERIC_ADVICE})
            return f.result(Status.WARN, "not a known reset message; " + GENERIC_ADVICE)
        explanation = _explain(found.cls, primary.id)
        f.add(explanation, data={"ecosystem": found.ecosystem, "class": found.cls,
                                 "signature": primary.id, **extracted})
        if primary.cls != found.cls:
            f.add(f"{primary.id} alone is ambiguous, but the text carries the reset errno or "
                  "\"connection reset by peer\": it was a reset", source="--error")
        signal = signal_for(primary.id, found.cls, "error")
        who = f"{found.ecosystem} " if found.ecosystem else ""
        label = {"rst_certain": "a reset of an open connection",
                 "eof_or_rst": "an early close (FIN or RST)", "proxy_state": "an early close seen by a proxy",
                 "protocol": "a protocol mismatch"}.get(found.cls, "")
        if signal == "error.refused":
            label = "a refusal (RST to the SYN), not a reset"
        elif signal == "error.timeout":
            label = "a timeout, not a reset"
        if signal:
            f.signal(signal, f"the {who}error text is {label} ({primary.id})")
        return f.result(Status.PASS, f"{who}error: {label or primary.meaning}" if label
                        else f"{who}error: {primary.meaning}")


@register
class ClientSocketsCheck(Check[NoParams]):
    id = "client.sockets"
    title = "Local sockets to the target"
    step = "identify"
    Params = NoParams
    before_probes = True  # the run's own connections must not show among these sockets
    description = ("Processes on this machine holding TCP sockets to the target's addresses and "
                   "port, with their states (a CLOSE_WAIT pile-up means the app does not close).")

    CLOSE_WAIT_PILEUP = 5

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        probe = ctx.probes.processes
        if probe is None:
            return CheckResult.skipped("no process probe in this run (psutil unavailable)",
                                       "pip install psutil")
        addresses = ctx.target.addresses or ([ctx.target.host] if ctx.target.is_address else [])
        if not addresses:
            return CheckResult.skipped("the target has no resolved address to look for",
                                       "check the name (dns.resolve) or give an address")
        found = await probe.connections_to(addresses, ctx.target.port, 5.0)
        f = Findings()
        target = ", ".join(addresses)
        if found.error:
            f.add(f"the socket table could not be read: {found.error}", source=found.source)
            return f.result(Status.WARN, f"could not list local sockets: {found.error}")
        rows = [{"pid": h.pid, "process": h.name, "cmdline": h.cmdline, "user": h.username,
                 "state": h.state, "local": h.local, "remote": h.remote,
                 "started": _iso(h.started)} for h in found.holders]
        if rows:
            f.add(f"{plural(len(rows), 'TCP socket')} on this machine to {target} port {ctx.target.port}",
                  kind="table", source=found.source, data={"rows": rows, "states": found.states})
        else:
            f.add(f"no process on this machine holds a TCP socket to {target} port {ctx.target.port}",
                  source=found.source)
        status = Status.PASS
        waits: dict[tuple[int | None, str], int] = {}
        for h in found.holders:
            if h.state == "CLOSE_WAIT":
                waits[(h.pid, h.name)] = waits.get((h.pid, h.name), 0) + 1
        for (pid, name), count in waits.items():
            who = f"{name} (pid {pid})" if pid is not None else "an unidentified process"
            f.add(f"{who} holds {plural(count, 'connection')} in CLOSE_WAIT: the peer closed them, the "
                  "application has not", data={"pid": pid, "close_wait": count})
            if count >= self.CLOSE_WAIT_PILEUP:
                status = Status.WARN
                f.add(f"CLOSE_WAIT pile-up in {who}: it leaks connections the server already closed; "
                      "reusing them gives resets or broken pipes")
        if found.truncated:
            f.add("the list was cut short: there are more matching sockets than shown")
        if not found.privileged or found.hidden:
            f.add(f"without root, processes of other users stay anonymous ({plural(found.hidden, 'socket')} "
                  "without a process)", data={"fix": "sudo reset-wizard ..."})
        summary = (f"{plural(len(rows), 'socket')} to the target; states: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(found.states.items()))
                   if rows else "no local process holds a connection to the target right now")
        return f.result(status, summary)


def _iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else ""


SERVER_TOOLS = ("ss", "nft", "iptables-save", "conntrack", "journalctl")


@register
class ServerContextCheck(Check[NoParams]):
    id = "server.context"
    title = "The server context"
    step = "identify"
    Params = NoParams
    emits = ("context.not_target",)
    description = ("Where server-side evidence is read: whether that context is privileged, "
                   "owns the target's address, and has the tools the later steps use.")

    async def run(self, ctx: CheckContext, params: NoParams) -> CheckResult:
        f = Findings()
        spec = ctx.server.spec
        f.add(f"server-side evidence is read in {spec}", source="--server")
        # The context may be known unreachable already, or fail on its first use (ssh connects
        # lazily): either way the later steps can read nothing there, which is the finding.
        why = ctx.server.unavailable()
        tools: dict[str, str | None] = {}
        if not why:
            try:
                tools = {tool: await ctx.server.which(tool) for tool in SERVER_TOOLS}
            except HostError as exc:
                why = ctx.server.unavailable() or exc.message
        if why:
            fix = (f"make {spec} reachable (for ssh: ssh -v to the host names the problem) and rerun, "
                   "or choose another --server")
            f.add(f"{spec} cannot be reached: {why}", source="--server", data={"fix": fix})
            return f.result(Status.FAIL, f"{spec} cannot be reached: {why}", reason=why, fix=fix)
        if ctx.server_root:
            f.add(f"{spec} is privileged: rules, counters and all processes are readable")
        else:
            f.add(f"{spec} is not privileged: firewall rules, conntrack and other users' processes "
                  "cannot be read there", data={"fix": "run as root (sudo reset-wizard ...)"})
        missing = [t for t, path in tools.items() if path is None]
        f.add(f"tools in {spec}: " + ", ".join(f"{t} {'yes' if p else 'no'}" for t, p in tools.items()),
              source=f"which in {spec}", data={"tools": tools})
        owns = await ctx.server_has_target()
        addresses = ", ".join(ctx.target.addresses) or ctx.target.host
        status = Status.PASS
        if owns is True:
            f.add(f"{spec} owns the target address ({addresses}): its evidence is about the server")
        elif owns is False:
            status = Status.WARN
            fix = "--server ssh:HOST (the machine that owns the address) or --server netns:NAME"
            f.add(f"{spec} does not own {addresses}: its listeners, rules and counters belong to "
                  f"another machine", data={"fix": fix})
            f.signal("context.not_target",
                     f"the server context {spec} does not own the target address {addresses}")
        else:
            f.add(f"could not tell whether {spec} owns {addresses} (its addresses were unreadable)")
        summary = {True: f"{spec} owns the target", False: f"{spec} is not the target's host; "
                   "use --server ssh:HOST or netns:NAME", None: f"{spec}: ownership of the target unknown"}[owns]
        if missing:
            summary += f"; missing there: {', '.join(missing)}"
        return f.result(status, summary)
