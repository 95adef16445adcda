"""Step 1 checks: error classification against real client texts, local sockets, server context."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.unit.fakes import FakeHost, FakeProbes, make_ctx
from wizard.diag.identify.checks import (
    ClientSocketsCheck,
    ErrorClassifyCheck,
    NoParams,
    ServerContextCheck,
    classify,
)
from wizard.diag.process.io.processes import ProcessSockets, SocketHolder
from wizard.hosts.base import HostError
from wizard.model import Answers, Status

# (text as printed by the client, expected ecosystem, expected class); from rst-domain.md §2 and §4.3.
SAMPLES = [
    ("curl: (56) Recv failure: Connection reset by peer", "curl", "rst_certain"),
    ("curl: (56) OpenSSL SSL_read: Connection reset by peer, errno 104", "curl", "rst_certain"),
    ("curl: (55) Send failure: Connection reset by peer", "curl", "rst_certain"),
    ("curl: (35) Recv failure: Connection reset by peer", "curl", "rst_certain"),
    ("curl: (35) OpenSSL SSL_connect: Connection reset by peer in connection to api.example.com:443",
     "curl", "rst_certain"),
    ("curl: (52) Empty reply from server", "curl", "eof_or_rst"),
    ("curl: (7) Failed to connect to localhost port 8080 after 0 ms: Connection refused", "curl", "not_reset"),
    ("curl: (28) Failed to connect to 10.0.0.2 port 443 after 3001 ms: Connection timed out",
     "curl", "not_reset"),
    ("error: RPC failed; curl 56 Recv failure: Connection reset by peer", "git", "rst_certain"),
    ("fatal: the remote end hung up unexpectedly", "git", "eof_or_rst"),
    ("fatal: unable to access 'https://git.example.com/r.git/': Recv failure: Connection reset by peer",
     "git", "rst_certain"),
    ("ConnectionResetError: [Errno 104] Connection reset by peer", "python", "rst_certain"),
    ("http.client.RemoteDisconnected: Remote end closed connection without response", "python", "eof_or_rst"),
    ("BrokenPipeError: [Errno 32] Broken pipe", "python", "eof_or_rst"),
    ("requests.exceptions.ConnectionError: ('Connection aborted.', "
     "ConnectionResetError(104, 'Connection reset by peer'))", "python", "rst_certain"),
    ("requests.exceptions.ConnectionError: ('Connection aborted.', "
     "RemoteDisconnected('Remote end closed connection without response'))", "python", "eof_or_rst"),
    ("ConnectionResetError: [WinError 10054] An existing connection was forcibly closed by the remote host",
     "python", "rst_certain"),
    ("java.net.SocketException: Connection reset", "java", "rst_certain"),
    ("javax.net.ssl.SSLException: Connection reset", "java", "rst_certain"),
    ("java.net.SocketException: Unexpected end of file from server", "java", "eof_or_rst"),
    ("java.io.IOException: HTTP/1.1 header parser received no bytes", "java", "eof_or_rst"),
    ("read tcp 10.0.0.1:51234->10.0.0.2:443: read: connection reset by peer", "go", "rst_certain"),
    ("read tcp 10.0.0.1:5000->10.0.0.2:443: wsarecv: An existing connection was forcibly closed "
     "by the remote host.", "go", "rst_certain"),
    ('Get "http://api:8080/": http: server closed idle connection', "go", "eof_or_rst"),
    ("Error: read ECONNRESET | code=ECONNRESET errno=-104 syscall=read", "node", "rst_certain"),
    ("Error: socket hang up | code=ECONNRESET", "node", "eof_or_rst"),
    ("2026/11/22 03:48:08 [error] 812#812: *4711 recv() failed (104: Connection reset by peer) while "
     "reading response header from upstream, client: 10.0.0.5, server: api, request: \"GET / HTTP/1.1\"",
     "nginx", "rst_certain"),
    ("2026/11/22 03:48:08 [error] 812#812: *12 upstream prematurely closed connection while reading "
     "response header from upstream, client: 10.0.0.5", "nginx", "proxy_state"),
    ("write:errno=104", "openssl", "rst_certain"),
    ("error:0A00010B:SSL routines::wrong version number", "openssl", "protocol"),
    ("WSAECONNRESET (10054): An existing connection was forcibly closed by the remote host.",
     "windows", "rst_certain"),
    ("System.Net.Sockets.SocketException (104): Connection reset by peer", "dotnet", "rst_certain"),
    ("System.IO.IOException: Unable to read data from the transport connection: Connection reset by peer.",
     "dotnet", "rst_certain"),
    ("Errno::ECONNRESET: Connection reset by peer - SSL_connect", "ruby", "rst_certain"),
    ("psql: error: server closed the connection unexpectedly\n\tThis probably means the server "
     "terminated abnormally\n\tbefore or while processing the request.", "postgresql", "eof_or_rst"),
    ("could not receive data from server: Connection reset by peer", "postgresql", "rst_certain"),
    ("ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial communication packet', "
     "system error: 104", "mysql", "rst_certain"),
    ("ERROR 2013 (HY000): Lost connection to MySQL server during query", "mysql", "eof_or_rst"),
    ("kex_exchange_identification: read: Connection reset by peer", "ssh", "rst_certain"),
    ("Read error (Connection reset by peer) in headers.", "errno", "rst_certain"),
    ("dial tcp 127.0.0.1:8080: connect: connection refused", "go", "not_reset"),
    ("client_loop: send disconnect: Broken pipe", "ssh", "eof_or_rst"),
    ("Connection reset by peer (os error 104)", "rust", "rst_certain"),
    ("Error: write EPIPE", "node", "eof_or_rst"),
]


@pytest.mark.parametrize(("text", "ecosystem", "cls"), SAMPLES, ids=[s[0][:40] for s in SAMPLES])
def test_real_error_texts_are_classified_by_ecosystem_and_class(text: str, ecosystem: str, cls: str) -> None:
    ctx = make_ctx()
    found = classify(text, ctx.checklist.signatures)
    assert (found.ecosystem, found.cls) == (ecosystem, cls), [m.id for m in found.matches]


async def run_classify(text: str | None):  # type: ignore[no-untyped-def]
    ctx = make_ctx(answers=Answers(error=text))
    return await ErrorClassifyCheck().run(ctx, NoParams())


def signal_ids(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.id for s in result.signals]


async def test_rst_to_syn_is_reported_as_refused_not_reset() -> None:
    result = await run_classify("curl: (7) Failed to connect to localhost port 8080 after 0 ms: "
                                "Connection refused")
    assert signal_ids(result) == ["error.refused"]
    assert "refusal" in result.summary and "not a reset" in result.summary
    assert any("RST answered the SYN" in e.title for e in result.evidence)


async def test_curl_56_raises_rst_certain_with_exit_code_and_errno() -> None:
    result = await run_classify("curl: (56) OpenSSL SSL_read: Connection reset by peer, errno 104")
    assert signal_ids(result) == ["error.rst_certain"]
    verdict = next(e for e in result.evidence if "signature" in e.data and "class" in e.data
                   and "curl_exit_code" in e.data)
    assert verdict.data["curl_exit_code"] == 56
    assert verdict.data["errno"] == [104]
    assert verdict.data["ecosystem"] == "curl"


async def test_every_matching_signature_is_reported() -> None:
    result = await run_classify("curl: (56) OpenSSL SSL_read: Connection reset by peer, errno 104")
    matched = {e.data["signature"] for e in result.evidence if "matched" in e.data}
    assert {"curl-recv-reset", "openssl-reset", "generic-econnreset"} <= matched


async def test_node_socket_hang_up_is_ambiguous_not_a_certain_reset() -> None:
    result = await run_classify("Error: socket hang up\n    at connResetException (node:_http_client:...)"
                                "\n  code: 'ECONNRESET'")
    assert signal_ids(result) == ["error.eof_or_rst"]
    assert any("FIN" in e.title for e in result.evidence)


async def test_go_addresses_are_extracted_ipv4_and_ipv6() -> None:
    found = classify("read tcp [fd00::1]:51234->[fd00::2]:443: read: connection reset by peer",
                     make_ctx().checklist.signatures)
    assert (found.go_local, found.go_remote) == ("[fd00::1]:51234", "[fd00::2]:443")
    found = classify("write tcp 10.0.0.1:51234->10.0.0.2:443: write: connection reset by peer",
                     make_ctx().checklist.signatures)
    assert (found.go_local, found.go_remote) == ("10.0.0.1:51234", "10.0.0.2:443")


async def test_nginx_phase_is_extracted() -> None:
    found = classify("recv() failed (104: Connection reset by peer) while reading response header "
                     "from upstream, client: 10.0.0.5", make_ctx().checklist.signatures)
    assert found.phase == "reading response header from upstream"
    assert 104 in found.errnos


async def test_timeout_text_raises_timeout_signal() -> None:
    result = await run_classify("curl: (28) Operation timed out after 3000 milliseconds with 0 bytes received")
    assert signal_ids(result) == ["error.timeout"]


async def test_proxy_upstream_close_counts_as_ambiguous_close() -> None:
    result = await run_classify("upstream prematurely closed connection while reading response header "
                                "from upstream, client: 10.0.0.5")
    assert signal_ids(result) == ["error.eof_or_rst"]


async def test_tls_version_mismatch_raises_protocol_signal() -> None:
    result = await run_classify("curl: (35) error:0A00010B:SSL routines::wrong version number")
    assert signal_ids(result) == ["error.protocol"]


async def test_no_error_text_is_skipped_with_the_flag_that_fixes_it() -> None:
    result = await run_classify(None)
    assert result.status is Status.SKIP
    assert result.reason == "no error text was given"
    assert result.fix == "--error 'the message you saw'"


async def test_unknown_text_gets_generic_advice_and_no_signal() -> None:
    result = await run_classify("the app just said: something went wrong")
    assert result.status is Status.WARN
    assert "not a known reset message" in result.summary
    assert result.signals == []


# ---- client.sockets -------------------------------------------------------------------------


@dataclass
class FakeProcesses:
    """Answers connections_to from a fixed table and records what it was asked."""

    answer: ProcessSockets
    asked: list[tuple[tuple[str, ...], int]] = field(default_factory=list)

    async def connections_to(self, addresses: list[str], port: int, timeout: float = 5.0) -> ProcessSockets:
        self.asked.append((tuple(addresses), port))
        return self.answer


def holder(pid: int | None, state: str, lport: int, name: str = "python3") -> SocketHolder:
    return SocketHolder(pid, name, f"{name} client.py", "app", 1_700_000_000.0, state,
                        f"127.0.0.1:{lport}", "127.0.0.1:8080")


async def test_client_sockets_lists_holders_and_flags_close_wait_pileup() -> None:
    sockets = [holder(4242, "CLOSE_WAIT", 40000 + i) for i in range(6)] + [holder(77, "ESTABLISHED", 41000, "curl")]
    states = {"CLOSE_WAIT": 6, "ESTABLISHED": 1}
    probe = FakeProcesses(ProcessSockets(tuple(sockets), True, 0, states=states))
    ctx = make_ctx(probes=FakeProbes(processes=probe))
    result = await ClientSocketsCheck().run(ctx, NoParams())
    assert probe.asked == [(("127.0.0.1",), 8080)]
    assert result.status is Status.WARN
    table = next(e for e in result.evidence if e.kind == "table")
    assert len(table.data["rows"]) == 7
    assert {r["pid"] for r in table.data["rows"]} == {4242, 77}
    assert any("CLOSE_WAIT pile-up" in e.title and "4242" in e.title for e in result.evidence)


async def test_client_sockets_without_root_says_other_users_are_hidden() -> None:
    probe = FakeProcesses(ProcessSockets((holder(None, "ESTABLISHED", 40001),), False, 1,
                                         states={"ESTABLISHED": 1}))
    result = await ClientSocketsCheck().run(make_ctx(probes=FakeProbes(processes=probe)), NoParams())
    assert result.status is Status.PASS
    assert any("without root" in e.title for e in result.evidence)


async def test_client_sockets_with_nothing_open_passes_and_says_so() -> None:
    probe = FakeProcesses(ProcessSockets())
    result = await ClientSocketsCheck().run(make_ctx(probes=FakeProbes(processes=probe)), NoParams())
    assert result.status is Status.PASS
    assert "no local process" in result.summary


async def test_client_sockets_timeout_of_probe_is_a_warning_not_an_exception() -> None:
    probe = FakeProcesses(ProcessSockets(error="psutil did not answer within 5s"))
    result = await ClientSocketsCheck().run(make_ctx(probes=FakeProbes(processes=probe)), NoParams())
    assert result.status is Status.WARN
    assert "did not answer" in result.summary


# ---- server.context -------------------------------------------------------------------------


async def test_server_context_that_does_not_own_the_target_warns_with_the_fix() -> None:
    server = FakeHost("netns:rwid-other", addresses=["10.9.9.9"], tools={"ss", "nft"})
    ctx = make_ctx("10.1.2.3:443", server=server)
    result = await ServerContextCheck().run(ctx, NoParams())
    assert result.status is Status.WARN
    assert [s.id for s in result.signals] == ["context.not_target"]
    assert any("--server ssh:HOST" in e.data.get("fix", "") for e in result.evidence)
    tools = next(e for e in result.evidence if "tools" in e.data).data["tools"]
    assert tools["ss"] and tools["conntrack"] is None
    assert "conntrack" in result.summary


async def test_server_context_that_owns_the_target_passes() -> None:
    server = FakeHost("netns:rwid-srv", addresses=["10.1.2.3", "fd00::3"])
    ctx = make_ctx("[fd00::3]:443", server=server)
    ctx.server_root = False
    result = await ServerContextCheck().run(ctx, NoParams())
    assert result.status is Status.PASS
    assert result.signals == []
    assert any("not privileged" in e.title for e in result.evidence)


class _Unreachable(FakeHost):
    """A server context whose connection failed (as SshHost reports an SSH failure)."""

    def __init__(self, spec: str, why: str, known: bool) -> None:
        super().__init__(spec)
        self.why, self.known = why, known

    def unavailable(self) -> str:
        return self.why if self.known else ""

    async def which(self, tool: str) -> str | None:
        self.known = True  # the first use is what finds out
        raise HostError(self.why)


@pytest.mark.parametrize("known_before", [True, False])
async def test_unreachable_server_context_fails_with_the_reason_and_the_fix(known_before: bool) -> None:
    why = "ssh:ops@db1: connection refused (no SSH server listening on that port)"
    ctx = make_ctx("10.1.2.3:443", server=_Unreachable("ssh:ops@db1", why, known_before))
    result = await ServerContextCheck().run(ctx, NoParams())
    assert result.status is Status.FAIL
    assert result.summary == f"ssh:ops@db1 cannot be reached: {why}"
    assert result.reason == why and "ssh -v" in (result.fix or "")
    assert result.signals == []  # not a cause of the reset: a limit of this run
