"""Hyperscan signature matching: the lines found (and the signatures each matches) equal a
line-by-line ``re.search(rx, line, re.I)`` over generated logs with every checklist signature
planted in random case, near misses, non-ASCII and CRLF lines; chunked scans keep line
numbers; patterns Hyperscan rejects still match; without the package the fallback is said."""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from wizard.diag.logs.io import hscache, hsdb, hsmatch
from wizard.diag.logs.io import scan as logscan
from wizard.diag.logs.io.hsmatch import Matcher, matcher
from wizard.diag.logs.io.scan import scan_file
from wizard.engine.discovery import checklist_path
from wizard.hosts.local import LocalHost
from wizard.model import linear, load_checklist

_hs = hsmatch._hs

pytestmark = pytest.mark.skipif(not hsmatch.AVAILABLE, reason="hyperscan is not installed")

SIGS = [(s.id, s.regex) for s in load_checklist(checklist_path()).signatures]

# One real line per signature (each must match its own regex: asserted below).
PLANTS = {
    "generic-econnreset": "worker: read failed [Errno 104] Connection reset by peer",
    "curl-recv-reset": "curl: (56) Recv failure: Connection reset by peer",
    "git-rpc-failed": "error: RPC failed; curl 56 recv failure: connection reset by peer",
    "python-connection-reset": "ConnectionResetError: [Errno 104] Connection reset by peer",
    "java-connection-reset": "java.net.SocketException: Connection reset",
    "go-connection-reset": "read tcp 10.0.0.1:5000->10.0.0.2:80: read: connection reset by peer",
    "node-econnreset": "Error: read ECONNRESET at TCP.onStreamRead errno: -104",
    "nginx-syscall-reset": "recv() failed (104: Connection reset by peer) while reading",
    "openssl-reset": "SSL_read: error:0A000126 reset by peer, read:errno=104",
    "windows-10054": "An existing connection was forcibly closed by the remote host. 10054",
    "dotnet-socket-reset": "SocketException (10054): unable to read data from the transport connection: "
                           "connection reset by peer",
    "ruby-econnreset": "Errno::ECONNRESET: Connection reset by peer",
    "ssh-kex-reset": "kex_exchange_identification: read: Connection reset by peer",
    "haproxy-termination": "fe be/s1 0/0/1/-1/2 502 0 - - SD-- 1/1/0/0/0 0/0 ",
    "http-access-timeout": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 408 0 "-" "curl/7.88"',
    "http-access-client-closed": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 499 0 "-" "-"',
    "nginx-access-444": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 444 0 "-" "-"',
    "http-access-upstream": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 502 157 "-" "-"',
    "http-access-limited": '10.0.0.2 - - [01/Dec/2026:19:00:00 +0000] "GET / HTTP/1.1" 429 12 "-" "-"',
    "nginx-client-timeout": "client timed out (110: Connection timed out) while reading client request headers",
    "nginx-limit": 'limiting connections by zone "perip", client: 10.0.0.2',
    "nginx-access-denied": "access forbidden by rule, client: 10.0.0.2",
    "apache-timeout": "[reqtimeout:info] [pid 9] AH01382: Request header read timeout",
    "apache-max-workers": "AH00484: server reached MaxRequestWorkers setting, consider raising it",
    "apache-denied": "AH01630: client denied by server configuration: /srv/web/x",
    "gunicorn-worker-timeout": "[2026-12-01 19:00:00 +0000] [4121] [CRITICAL] WORKER TIMEOUT (pid:4125)",
    "gunicorn-worker-boot": "[2026-12-01 19:00:01 +0000] [4130] [INFO] Booting worker with pid: 4130",
    "uvicorn-child-died": "Child process [4131] died",
    "node-uncaught": "      throw er; // Unhandled 'error' event",
    "redis-client-limit": "Error accepting a client connection: max number of clients reached",
    "redis-idle-client": "Closing idle client id=7 addr=10.0.0.2:5000",
    "postgres-idle-timeout": "FATAL:  terminating connection due to idle-session timeout",
    "postgres-backend-died": "LOG:  all server processes terminated; reinitializing",
    "postgres-too-many": "FATAL:  sorry, too many clients already",
    "postgres-hba-reject": 'FATAL:  pg_hba.conf rejects connection for host "10.0.0.2"',
    "envoy-upstream-reset": "upstream connect error or disconnect/reset before headers response_flags=UC",
    "nginx-upstream-premature": "upstream prematurely closed connection while reading response header",
    "nginx-upstream-reset": "(104: Connection reset by peer) while reading response header from upstream",
    "curl-empty-reply": "curl: (52) Empty reply from server",
    "python-remote-disconnected": "http.client.RemoteDisconnected: Remote end closed connection without response",
    "node-socket-hang-up": "Error: socket hang up",
    "go-server-closed-idle": "http: server closed idle connection; unexpected EOF",
    "java-eof": "java.io.IOException: Unexpected end of file from server",
    "libpq-server-closed": "server closed the connection unexpectedly",
    "libpq-reset": "could not receive data from server: Connection reset by peer",
    "openssl-unexpected-eof": "error:0A000126:SSL routines::unexpected eof while reading",
    "python-broken-pipe": "BrokenPipeError: [Errno 32] Broken pipe",
    "ruby-eof": "EOFError: end of file reached",
    "mysql-lost": "ERROR 2013 (HY000): Lost connection to MySQL server during query",
    "broken-pipe": "write: broken pipe",
    "git-hung-up": "fatal: the remote end hung up unexpectedly",
    "refused": "connect() failed (111: Connection refused)",
    "timeout": "upstream timed out (110: Connection timed out)",
    "tls-wrong-version": "SSL routines::wrong version number",
    "python-traceback": "Traceback (most recent call last):",
    "segfault": "app[1234]: segfault at 0 ip 0000 sp 0000 error 4",
    "oom-kill": "Out of memory: Killed process 4321 (java)",
    "systemd-killed": "app.service: Main process exited, code=killed, status=9/KILL",
    "supervisor-restart": "exited: web (exit status 1; not expected)",
    "too-many-open-files": "accept4() failed (24: Too many open files)",
    "tcp-memory": "TCP: out of memory -- consider tuning tcp_mem",
    "nf-conntrack-full": "nf_conntrack: table full, dropping packet",
    "syn-flood": "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
}
NEAR = ["connection reset by pee", "unexpected EOF while reading", "errno=1040", "ECONNRESETS",
        "10054x", "Traceback (most recent call last)", "curl: (57) Recv failure", "SD-- 1/1/0/0",
        "read tcp nowhere: read: connection reset", "broken pip", "panic", "timed ou",
        "x Traceback (most recent call last):", "java.net.SocketException: connection resetx"]
FILLER = ["{t} [info] *{n} client 127.0.0.1 closed keepalive connection",
          "{t} [warn] *{n} an upstream response is buffered to a temporary file",
          "{t} [notice] signal process started", "    at com.example.Worker.run(Worker.java:{n})",
          "{t} café «{n}» naïve résumé", "{t} \u017focket ſtatus K {n}"]


def _case(text: str, rnd: random.Random) -> str:
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in text)


def make_log(lines: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    out: list[str] = []
    plants = list(PLANTS.values())
    for n in range(lines):
        t = f"2026/11/22 03:{n // 60 % 60:02d}:{n % 60:02d}"
        r = rnd.random()
        if r < 0.05:
            line = f"{t} [error] {_case(rnd.choice(plants), rnd)}"
        elif r < 0.08:
            line = f"{t} {_case(rnd.choice(NEAR), rnd)} tail"
        elif r < 0.09:
            line = _case(rnd.choice(plants), rnd)  # at the start of the line (^Traceback)
        else:
            line = rnd.choice(FILLER).format(t=t, n=n)
        if rnd.random() < 0.05:
            line += "\r"
        if rnd.random() < 0.01:
            line += " é" if rnd.random() < 0.5 else " \xff".encode("latin-1").decode("utf-8", "replace")
        out.append(line)
    data = "\n".join(out).encode()
    return data if seed % 2 else data + b"\n"  # with and without a final newline


def reference(data: bytes, regexes: list[str]) -> list[tuple[int, tuple[int, ...]]]:
    """(line start, matching regex indices) by Python's re, line by line."""
    compiled = [re.compile(rx, re.I) for rx in regexes]
    out, off = [], 0
    for raw in data.split(b"\n"):
        text = raw.rstrip(b"\r").decode("utf-8", "replace")
        ids = tuple(i for i, rx in enumerate(compiled) if rx.search(text))
        if ids:
            out.append((off, ids))
        off += len(raw) + 1
    return out


def test_every_planted_line_matches_its_own_signature() -> None:
    assert set(PLANTS) == {sid for sid, _ in SIGS}
    for sid, rx in SIGS:
        assert re.search(rx, PLANTS[sid], re.I), sid


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hyperscan_lines_equal_python_re_over_every_line(seed: int) -> None:
    regexes = [rx for _, rx in SIGS]
    data = make_log(20_000, seed)
    want = reference(data, regexes)
    found = {i for _, ids in want for i in ids}
    assert len(found) == len(SIGS)  # every signature really occurs
    got = [(h.start, h.ids) for h in matcher(regexes).lines(data)]
    assert got == want


def dense_log(lines: int, seed: int) -> bytes:
    """Half the lines a timeout (a literal-driven signature), a quarter a HAProxy
    termination state (one without a literal), some of both in one line, CRLF and non-ASCII."""
    rnd = random.Random(seed)
    out = []
    for n in range(lines):
        t = f"2026/11/22 03:{n // 60 % 60:02d}:{n % 60:02d}"
        line = [f"{t} [info] *{n} client closed keepalive connection"]
        if n % 2 == 0:
            line.append(_case(PLANTS["timeout"], rnd))
        if n % 4 == 1 or rnd.random() < 0.05:
            line.append(f" fe be/web{n % 8} 0/0/1/{n % 90}/{n % 90 + 1} 502 0 - - {rnd.choice(['SD--', 'cD--'])}"
                        f" {n % 50}/1/0/0/0 0/0 ")
        if rnd.random() < 0.03:
            line.append(rnd.choice(NEAR))
        text = " ".join(line) + ("\r" if rnd.random() < 0.02 else "") + (" é" if rnd.random() < 0.01 else "")
        out.append(text)
    return "\n".join(out).encode() + b"\n"


@pytest.mark.parametrize("piece", [1 << 12, 4 << 20])
def test_dense_lines_with_the_literal_less_database_apart_equal_python_re(
        monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    # the literal-less regexes are scanned in a database of their own, in another thread,
    # slice by slice (small slices: many of them); lines and counts are re's all the same
    monkeypatch.setattr(hsmatch, "SLICE", piece)
    regexes = [rx for _, rx in SIGS]
    m = matcher(regexes)
    ids = {sid: k for k, (sid, _) in enumerate(SIGS)}
    assert ids["haproxy-termination"] in m.nfa and ids["timeout"] not in m.nfa and "nfa" in m.dbs
    data = dense_log(30_000, 7)
    want = reference(data, regexes)
    assert len(want) > 20_000
    assert [(h.start, h.ids) for h in m.lines(data)] == want
    got = m.count(data)
    assert got.lines == len(want)
    assert got.counts == dict(Counter(i for _, found in want for i in found))


def test_a_signature_hyperscan_rejects_is_still_matched_exactly() -> None:
    m = Matcher([r"unexpected EOF\b(?! while reading)", r"(\w+) again \1"])
    assert m.approx or m.python  # neither is compiled as it is
    assert not m.exact
    data = (b"x unexpected eof\nunexpected EOF while reading\nUNEXPECTED EOF, said\n"
            b"foo again foo\nfoo again bar\n")
    assert [(h.start, h.ids) for h in m.lines(data)] == reference(data, m.regexes)
    assert len(m.lines(data)) == 3


def test_python_only_syntax_is_not_given_to_hyperscan() -> None:
    # "$" after a trailing "\r" and "{,2}" mean other things to Hyperscan than to Python:
    # the first is left to re, the second given to Hyperscan as Python reads it ({0,2})
    m = Matcher([r"closed$", r"ab{,2}c"])
    assert m.python == [0] and m.exact == [1]
    data = b"conn closed\r\nclosed later\nabbc\nab{,2}c\n"
    assert [(h.start, h.ids) for h in m.lines(data)] == reference(data, m.regexes) != []


def test_limit_leaves_out_the_partial_line_at_a_chunk_end() -> None:
    m = matcher([r"reset by peer"])
    data = b"a reset by peer\nb reset by pe"
    assert [h.start for h in m.lines(data, limit=16)] == [0]
    assert [h.start for h in m.lines(data)] == [0]


def test_matcher_is_compiled_once_per_pattern_set() -> None:
    assert matcher(["reset by peer", "ECONNRESET"]) is matcher(("reset by peer", "ECONNRESET"))


async def test_chunked_scan_equals_a_brute_force_count_with_line_numbers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logscan, "HS_CHUNK", 64 << 10)  # many chunk edges in a small file
    data = make_log(12_000, 5)
    path = tmp_path / "rwhy.log"
    path.write_bytes(data)
    res = await scan_file(LocalHost(), str(path), SIGS)
    assert res.method == "hyperscan" and not res.error and not res.unfiltered
    want: dict[str, int] = {}
    lines: list[tuple[int, str, list[str]]] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        text = raw.rstrip(b"\r").decode("utf-8", "replace")
        ids = [sid for sid, rx in SIGS if re.search(rx, text, re.I)]
        for sid in ids:
            want[sid] = want.get(sid, 0) + 1
        if ids:
            lines.append((number, text, ids))
    assert res.counts == want and len(want) == len(SIGS)
    assert res.lines == lines


async def test_a_line_longer_than_a_chunk_is_skipped_and_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logscan, "HS_CHUNK", 1 << 10)
    path = tmp_path / "rwhy-long.log"
    path.write_bytes(b"reset by peer 1\n" + b"x" * 5000 + b" reset by peer\nreset by peer 3\n")
    res = await scan_file(LocalHost(), str(path), [("r", "reset by peer")])
    assert res.truncated and res.counts == {"r": 2}
    assert [n for n, _, _ in res.lines] == [1, 3]


async def test_without_hyperscan_the_scan_falls_back_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hsmatch, "AVAILABLE", False)
    assert matcher(["reset by peer"]) is None
    path = tmp_path / "rwhy-fb.log"
    path.write_bytes(b"a Connection reset by peer\nb fine\n")
    res = await scan_file(LocalHost(), str(path), [("r", "reset by peer")])
    assert res.method != "hyperscan" and res.counts == {"r": 1}
    assert hsmatch.NO_ENGINE_NOTE in res.notes


LIT_REGEXES = [r"reset by (peer|host)", r"\bECONNRESET\b", r"connection reset", r"[a-z]{3}\d{4}x",
               r"wrong version number$", r"(?:SSL_read|SSL_write): .*unexpected eof"]


def _literal_log(seed: int) -> bytes:
    rnd = random.Random(seed)
    parts = ["reset by peer", "reset by host", "reset by", "peer", "econnreset", "xeconnresetx",
             "connection reset", "connection  reset", "abc1234x", "ab1234x", "wrong version number",
             "SSL_read: x unexpected eof", "SSL_write unexpected eof", "fill", "é", "\r"]
    lines = [" ".join(_case(rnd.choice(parts), rnd) for _ in range(rnd.randint(0, 4)))
             for _ in range(3000)]
    return "\n".join(lines).encode()


@pytest.mark.parametrize("seed", [7, 8])
def test_literal_prefilter_finds_exactly_the_lines_python_re_finds(
        seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESET_WIZARD_CACHE_DIR", str(tmp_path))
    m = Matcher(LIT_REGEXES)
    # every regex with a required literal is reachable from the literal database of all
    # (non-ASCII lines); those re decides on every line from the other one
    assert "all" in m.dbs
    owned = {i for owners in m.all_owners for i in owners}
    assert owned == {i for i, lits in enumerate(m.literals) if lits is not None} != set()
    assert {i for owners in m.lit_owners for i in owners} <= set(m.approx + m.python)
    assert m.literals[3] is None and 3 in m.exact  # the literal-less one: decided by Hyperscan
    data = _literal_log(seed)
    want = reference(data, LIT_REGEXES)
    assert {i for _, ids in want for i in ids} == set(range(len(LIT_REGEXES)))
    assert [(h.start, h.ids) for h in m.lines(data)] == want


def test_literal_database_read_back_from_the_cache_finds_the_same_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESET_WIZARD_CACHE_DIR", str(tmp_path))
    first = Matcher(LIT_REGEXES)
    assert list(tmp_path.glob("hs-*.db"))
    again = Matcher(LIT_REGEXES)
    assert again.all_owners == first.all_owners and "all" in again.dbs
    data = _literal_log(9)
    assert [(h.start, h.ids) for h in again.lines(data)] == reference(data, LIT_REGEXES) != []


def test_the_databases_are_kept_inside_the_installation_and_nowhere_in_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("RESET_WIZARD_CACHE_DIR", raising=False)
    here = Path(hscache.cache_dir())
    assert here.name == "__pycache__" and here.parent == Path(hscache.__file__).resolve().parent
    regexes = [r"kept nowhere else \d+ " + tmp_path.name]  # a pattern set of its own
    path = Path(hscache.cache_path(_hs, regexes))
    try:
        Matcher(regexes)
        assert path.parent == here and (path.exists() or sys.dont_write_bytecode)
        assert list(home.rglob("*")) == []
    finally:
        path.unlink(missing_ok=True)


def test_no_database_is_kept_when_asked_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESET_WIZARD_CACHE_DIR", "")
    assert hscache.cache_path(_hs, LIT_REGEXES) == ""
    monkeypatch.chdir(tmp_path)
    data = _literal_log(5)
    assert [(h.start, h.ids) for h in Matcher(LIT_REGEXES).lines(data)] == reference(data, LIT_REGEXES)
    assert list(tmp_path.rglob("*")) == []


def test_a_literal_split_across_two_lines_is_not_a_match() -> None:
    m = matcher([r"reset by peer"])
    data = b"connection reset by\npeer\nRESET BY PEER\n"
    assert [h.start for h in m.lines(data)] == [25]


async def test_the_buffered_local_read_and_the_host_read_give_the_same_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class ReadThroughHost(LocalHost):  # not LocalHost itself: chunks come from Host.read
        pass

    monkeypatch.setattr(logscan, "HS_CHUNK", 48 << 10)
    path = tmp_path / "rwlit-both.log"
    path.write_bytes(make_log(9_000, 6))
    local = await scan_file(LocalHost(), str(path), SIGS)
    other = await scan_file(ReadThroughHost(), str(path), SIGS)
    assert local.counts == other.counts != {} and local.lines == other.lines
    assert local.candidates == other.candidates and not local.error and not other.error


def sparse_terminations(lines: int, every: int, seed: int) -> bytes:
    """nginx-like lines with a HAProxy termination state (a signature without a literal,
    looked for by its tail) on every ``every``-th line only, near misses of its tail (the
    timers' slashes with no state before them) elsewhere: blocks without one, blocks with."""
    rnd = random.Random(seed)
    out = []
    for n in range(lines):
        line = f"2026/11/22 03:{n // 60 % 60:02d}:{n % 60:02d} [info] *{n} GET /api/items/{n} HTTP/1.1"
        if n % every == 0:
            line += f" be/web{n % 8} 0/0/1/{n % 90}/{n % 90 + 1} 502 0 - - {rnd.choice(['SD--', 'cD--', 'sQ'])} 3/3/1/0/0 x"
        elif n % 7 == 0:
            line += f" be/web{n % 8} 0/0/1/{n % 90}/{n % 90 + 1} 200 512 - - ---- 3/3/1/0/0 x"
        if rnd.random() < 0.05:
            line += " " + _case(PLANTS["timeout"], rnd)
        out.append(line)
    return "\n".join(out).encode() + b"\n"


@pytest.mark.parametrize(("block", "every"), [(256, 5), (4096, 300), (128 << 10, 2000), (256, 1)])
def test_a_regex_looked_for_by_its_tail_finds_every_line_re_finds(
        monkeypatch: pytest.MonkeyPatch, block: int, every: int) -> None:
    # haproxy-termination has no literal: its tail (from the first "/" on) is looked for
    # block by block, and only the blocks holding it are scanned for the whole form; blocks
    # small and large, hits rare and on every line, the lines found are re's
    monkeypatch.setattr(hsdb, "BLOCK", block)
    regexes = [rx for _, rx in SIGS]
    m = matcher(regexes)
    ids = {sid: k for k, (sid, _) in enumerate(SIGS)}
    term = ids["haproxy-termination"]
    assert term in m.tailed and term in m.nfa and "pre" in m.dbs and "post" in m.dbs
    data = sparse_terminations(6000, every, 3)
    want = reference(data, regexes)
    assert sum(term in found for _, found in want) >= 6000 // every // 2  # it really occurs
    assert [(h.start, h.ids) for h in m.lines(data)] == want
    got = m.count(data)
    assert got.lines == len(want)
    assert got.counts == dict(Counter(i for _, found in want for i in found))


def _long_special() -> bytes:
    """A line longer than re's bound with a non-ASCII byte (re decides it: clipped)."""
    return ("x" * (linear.MAX_LINE + 10) + " é " + PLANTS["timeout"] + "\n").encode()


@pytest.mark.parametrize("make", [lambda: dense_log(20_000, 11), lambda: sparse_terminations(5000, 3, 5),
                                  lambda: make_log(4000, 9), lambda: make_log(4000, 8) + _long_special()])
def test_found_gives_the_lines_of_lines_as_columns(make: Callable[[], bytes]) -> None:
    # the excerpt takes the matches as two lists (no tuple per line): the same lines, in
    # order, with the same regexes, and clipped as soon as one line is
    regexes = [rx for _, rx in SIGS]
    m = matcher(regexes)
    data = make()
    hits = m.lines(data)
    assert len(hits) > 100
    starts, ids, clipped = m.found(data)
    assert list(zip(starts, ids, strict=True)) == [(h.start, h.ids) for h in hits]
    assert clipped == any(h.clipped for h in hits)
