"""Bad input across every option and command: one line on stderr, exit 2, nothing probed,
nothing written (no file, nothing on stdout)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.unit.fakes import FakeDns, FakeProbes, FakeTcp
from wizard.cli.main import main
from wizard.lab.pcapgen import Ends, conversation, write_pcap

T = "127.0.0.1:80"  # a good target, for the cases about another option


@dataclass
class RecordingDns(FakeDns):
    asked: list[str] = field(default_factory=list)

    async def resolve(self, name: str, timeout: float = 3.0):  # type: ignore[override]
        self.asked.append(name)
        return await super().resolve(name, timeout)


def files(tmp: Path) -> dict[str, Path]:
    """What the cases point at: a directory, a file that exists, dangling links, junk."""
    made = {"dir": tmp / "adir", "existing": tmp / "existing.md", "dangling": tmp / "dangling.md",
            "dangling_json": tmp / "dangling.json", "notjson": tmp / "notjson.json",
            "empty_session": tmp / "empty.json"}
    made["dir"].mkdir()
    made["existing"].write_text("my notes\n")
    made["dangling"].symlink_to(tmp / "nowhere" / "r.md")
    made["dangling_json"].symlink_to(tmp / "gone.json")
    made["notjson"].write_text("this is not json\n")
    made["empty_session"].write_text('{"schema": 1}\n')
    made["pcap"] = tmp / "good.pcap"
    write_pcap(str(made["pcap"]), conversation(Ends(), 40000, 1.7e9, "server-app"))
    return made


Case = tuple[str, Callable[[dict[str, Path]], list[str]], str]


def d(*args: str) -> Callable[[dict[str, Path]], list[str]]:
    """A diagnose case; the run would write s.json and r.md in the test's directory."""
    return lambda f: ["diagnose", *args]


def raw(*args: str) -> Callable[[dict[str, Path]], list[str]]:
    return lambda f: list(args)


CASES: list[Case] = [
    # the target
    ("port-name", d("127.0.0.1:http"), "bad port"),
    ("port-0", d("127.0.0.1:0"), "bad port"),
    ("port-70000", d("127.0.0.1:70000"), "bad port"),
    ("v6-port-65536", d("[::1]:65536"), "bad port"),
    ("no-port", d("127.0.0.1"), "bad target"),
    ("bad-name", d("no_such..host:80"), "bad target"),
    ("arabic-indic-port", d("127.0.0.1:\u0668\u0660"), "bad port"),
    ("fullwidth-port", d("127.0.0.1:\uff18\uff10"), "bad port"),
    ("v6-arabic-indic-port", d("[::1]:\u0664\u0664\u0663"), "bad port"),
    ("ftp-scheme", d("ftp://127.0.0.1"), "bad target"),
    ("ftp-scheme-with-port", d("ftp://127.0.0.1:2121"), "bad target"),
    ("unknown-scheme", d("gopher://127.0.0.1:70"), "bad target"),
    ("url-arabic-indic-port", d("http://127.0.0.1:\u0668\u0660/"), "bad port"),
    ("url-port-0", d("http://127.0.0.1:0/"), "bad port"),
    ("url-no-scheme", d("://127.0.0.1"), "bad target"),
    ("url-no-host", d("http://:80/"), "bad target"),
    ("open-bracket", d("[::1:443"), "bad target"),
    ("bare-v6", d("::1:443"), "bad target"),
    ("empty-target", d(""), "bad target"),
    ("unresolvable", d("nowhere.example.test:80"), "unresolvable host"),
    ("missing-target", d(), "missing target"),
    # --server
    ("docker-context", d(T, "--server", "docker:web"), "unknown context"),
    ("netns-empty", d(T, "--server", "netns:"), "unknown context"),
    ("netns-slash", d(T, "--server", "netns:a/b"), "unknown context"),
    ("netns-missing", d(T, "--server", "netns:rwbi-does-not-exist"), "unknown context"),
    ("ssh-empty", d(T, "--server", "ssh:"), "unknown context"),
    ("ssh-option-injection", d(T, "--server", "ssh:-oProxyCommand=x"), "unknown context"),
    ("ssh-port-99999", d(T, "--server", "ssh:host:99999"), "unknown context"),
    ("ssh-arabic-indic-port", d(T, "--server", "ssh:host:\u0662\u0662"), "unknown context"),
    # --log and --journal
    ("log-empty", d(T, "--log", ""), "bad log"),
    ("log-missing", d(T, "--log", "/nonexistent/rwbi/app.log"), "unreadable log"),
    ("log-glob-matches-nothing", d(T, "--log", "/nonexistent/rwbi/*.log"), "unreadable log"),
    ("log-directory", d(T, "--log", "/"), "unreadable log"),
    ("journal-empty", d(T, "--journal", ""), "bad journal"),
    ("journal-blank", d(T, "--journal", "  "), "bad journal"),
    ("journal-option", d(T, "--journal", "-x"), "bad journal"),
    ("journal-space", d(T, "--journal", "nginx service"), "bad journal"),
    # --at (with a space before a value that starts with '-', as README writes it)
    ("at-words", d(T, "--at", "yesterday-ish"), "bad time"),
    ("at-minute-99", d(T, "--at", "03:99"), "bad time"),
    ("at-hour-25", d(T, "--at", "25:00"), "bad time"),
    ("at-relative-words", d(T, "--at", "-soon"), "bad time"),
    ("at-relative-zero", d(T, "--at", "-0m"), "bad time"),
    ("at-arabic-indic-relative", d(T, "--at", "-\u0661\u0660m"), "bad time"),
    ("at-arabic-indic-clock", d(T, "--at", "\u0660\u0663:\u0664\u0660"), "bad time"),
    ("at-month-13", d(T, "--at", "2026-13-01 00:00"), "bad time"),
    # --window
    ("window-words", d(T, "--window", "ten minutes"), "bad window"),
    ("window-zero", d(T, "--window", "0m"), "bad window"),
    ("window-negative", d(T, "--window", "-5m"), "bad window"),
    ("window-arabic-indic", d(T, "--window", "\u0661\u0665m"), "bad window"),
    ("window-unit", d(T, "--window", "15 parsecs"), "bad window"),
    # --side
    ("side-both", d(T, "--side", "both"), "bad side"),
    ("side-upper", d(T, "--side", "CLIENT"), "bad side"),
    # --payload
    ("payload-bad-hex", d(T, "--payload", r"\xZZ"), "bad payload"),
    ("payload-short-hex", d(T, "--payload", r"GET /\x4"), "bad payload"),
    ("payload-at-only", d(T, "--payload", "@"), "unreadable payload"),
    ("payload-at-blank", d(T, "--payload", "@  "), "unreadable payload"),
    ("payload-file-missing", d(T, "--payload", "@/nonexistent/rwbi/payload"), "unreadable payload"),
    # --hold, --attempts, --timeout
    ("hold-negative", d(T, "--hold", "-1"), "bad hold"),
    ("hold-words", d(T, "--hold", "soon"), "bad hold"),
    ("hold-inf", d(T, "--hold", "inf"), "bad hold"),
    ("hold-nan", d(T, "--hold", "nan"), "bad hold"),
    ("hold-arabic-indic", d(T, "--hold", "\u0661"), "bad hold"),
    ("attempts-0", d(T, "--attempts", "0"), "bad attempts"),
    ("attempts-1001", d(T, "--attempts", "1001"), "bad attempts"),
    ("attempts-fraction", d(T, "--attempts", "2.5"), "bad attempts"),
    ("attempts-negative", d(T, "--attempts", "-3"), "bad attempts"),
    ("attempts-underscore", d(T, "--attempts", "1_000"), "bad attempts"),
    ("attempts-arabic-indic", d(T, "--attempts", "\u0661\u0660"), "bad attempts"),
    ("timeout-61", d(T, "--timeout", "61"), "bad timeout"),
    ("timeout-0", d(T, "--timeout", "0"), "bad timeout"),
    ("timeout-negative", d(T, "--timeout", "-1"), "bad timeout"),
    ("timeout-nan", d(T, "--timeout", "nan"), "bad timeout"),
    ("timeout-arabic-indic", d(T, "--timeout", "\u0663"), "bad timeout"),
    # outputs
    ("both-to-stdout", raw("diagnose", T, "--json", "-", "--report", "-"), "bad output paths"),
    ("same-file", lambda f: ["diagnose", T, "--json", str(f["dir"] / "x"), "--report", str(f["dir"] / "x")],
     "bad output paths"),
    ("report-is-a-directory", lambda f: ["diagnose", T, "--report", str(f["dir"])], "bad report path"),
    ("report-in-missing-directory", lambda f: ["diagnose", T, "--report", str(f["dir"] / "no" / "r.md")],
     "bad report path"),
    ("report-dangling-symlink", lambda f: ["diagnose", T, "--report", str(f["dangling"])], "bad report path"),
    ("json-dangling-symlink", lambda f: ["diagnose", T, "--json", str(f["dangling_json"])], "bad json path"),
    ("report-exists", lambda f: ["diagnose", T, "--report", str(f["existing"])], "report exists"),
    ("json-not-a-regular-file", raw("diagnose", T, "--json", "/dev/null"), "bad json path"),
    # options themselves
    ("unknown-option", d(T, "--frobnicate"), "bad option"),
    ("flag-with-value", d(T, "--quiet=yes"), "bad option"),
    ("no-capture-with-value", d(T, "--no-capture=1"), "bad option"),
    ("value-missing", d(T, "--at"), "bad option"),
    ("value-is-an-option", d(T, "--window", "--quiet"), "bad option"),
    # the other commands
    ("typo", raw("diagnoze", "127.0.0.1:1"), "unknown command"),
    ("bogus", raw("bogus"), "unknown command"),
    ("lab-typo", raw("lab", "upp", "x"), "unknown command"),
    ("lab-unknown-scenario", raw("lab", "up", "no-such-scenario"), "unknown scenario"),
    ("lab-nothing", raw("lab"), "bad option"),
    ("report-no-session", raw("report"), "bad option"),
    ("report-missing-session", raw("report", "/nonexistent/rwbi/s.json"), "unreadable session"),
    ("report-not-json", lambda f: ["report", str(f["notjson"])], "bad session"),
    ("report-incomplete-session", lambda f: ["report", str(f["empty_session"])], "bad session"),
    ("report-output-exists", lambda f: ["report", str(f["notjson"]), "-o", str(f["existing"])], "report exists"),
    ("report-output-dangling", lambda f: ["report", str(f["notjson"]), "-o", str(f["dangling"])],
     "bad report path"),
    ("merge-no-session", raw("merge"), "bad option"),
    ("merge-one-session", lambda f: ["merge", str(f["notjson"])], "bad input"),
    ("merge-same-session-twice", lambda f: ["merge", str(f["notjson"]), str(f["notjson"])], "bad input"),
    ("merge-missing-session", lambda f: ["merge", "/nonexistent/rwbi/s.json", str(f["notjson"])],
     "unreadable session"),
    ("merge-not-json", lambda f: ["merge", str(f["empty_session"]), str(f["notjson"])], "bad session"),
    ("merge-report-exists", lambda f: ["merge", str(f["notjson"]), str(f["empty_session"]), "--report",
                                       str(f["existing"])], "report exists"),
    ("merge-both-stdout", lambda f: ["merge", str(f["notjson"]), str(f["empty_session"]), "--json", "-",
                                     "--report", "-"], "bad output"),
    ("demo-json-without-headless", raw("demo", "--json", "s.json"), "bad option"),
    ("demo-unknown-option", raw("demo", "--target", "x"), "bad option"),
    ("checks-unknown-option", raw("checks", "--all"), "bad option"),
    ("tui-unknown-option", raw("tui", "--frobnicate"), "bad option"),
    # watch: the target, the durations and the outputs are checked before anything is opened
    ("watch-no-target", raw("watch"), "bad option"),
    ("watch-no-port", raw("watch", "127.0.0.1"), "bad target"),
    ("watch-port-0", raw("watch", "127.0.0.1:0"), "bad port"),
    ("watch-unresolvable", raw("watch", "nowhere.example.test:80"), "unresolvable host"),
    ("watch-for-word", raw("watch", T, "--for", "long"), "bad duration"),
    ("watch-for-0", raw("watch", T, "--for", "0"), "bad duration"),
    ("watch-for-too-long", raw("watch", T, "--for", "8d"), "bad duration"),
    ("watch-probe-every-word", raw("watch", T, "--probe-every", "often"), "bad probe interval"),
    ("watch-probe-every-longer", raw("watch", T, "--for", "10s", "--probe-every", "1m"), "bad probe interval"),
    ("watch-json-exists", lambda f: ["watch", T, "--json", str(f["existing"])], "json exists"),
    ("watch-report-dir", lambda f: ["watch", T, "--report", str(f["dir"])], "bad report path"),
    ("watch-tui-json-stdout", raw("watch", T, "--tui", "--json", "-"), "bad option"),
    ("watch-tui-report-stdout", raw("watch", T, "--tui", "--report", "-"), "bad option"),
    # open: the session is read and checked before the TUI opens
    ("open-no-session", raw("open"), "bad option"),
    ("open-missing-session", raw("open", "/nonexistent/rwbi/s.json"), "unreadable session"),
    ("open-not-json", lambda f: ["open", str(f["notjson"])], "bad session"),
    ("open-incomplete-session", lambda f: ["open", str(f["empty_session"])], "bad session"),
    ("open-a-capture", lambda f: ["open", str(f["pcap"])], "bad session"),
    # analyze: the captures are checked before any is read through
    ("analyze-no-capture", raw("analyze"), "bad option"),
    ("analyze-missing-capture", raw("analyze", "/nonexistent/rwbi/c.pcap"), "no such capture"),
    ("analyze-directory", lambda f: ["analyze", str(f["dir"])], "no such capture"),
    ("analyze-not-a-capture", lambda f: ["analyze", str(f["notjson"])], "not a capture"),
    ("analyze-second-not-a-capture", lambda f: ["analyze", str(f["pcap"]), str(f["existing"])], "not a capture"),
    ("analyze-same-capture-twice", lambda f: ["analyze", str(f["pcap"]), str(f["pcap"])], "same capture twice"),
    ("analyze-port-0", lambda f: ["analyze", str(f["pcap"]), "--port", "0"], "bad port"),
    ("analyze-port-name", lambda f: ["analyze", str(f["pcap"]), "--port", "http"], "bad port"),
    ("analyze-timeout-0", lambda f: ["analyze", str(f["pcap"]), "--timeout", "0"], "bad timeout"),
    ("analyze-timeout-word", lambda f: ["analyze", str(f["pcap"]), "--timeout", "soon"], "bad timeout"),
    ("analyze-json-exists", lambda f: ["analyze", str(f["pcap"]), "--json", str(f["existing"])], "json exists"),
    ("analyze-report-dangling", lambda f: ["analyze", str(f["pcap"]), "--report", str(f["dangling"])],
     "bad report path"),
    ("analyze-both-to-stdout", lambda f: ["analyze", str(f["pcap"]), "--json", "-", "--report", "-"],
     "bad output paths"),
    ("analyze-three-captures", lambda f: ["analyze", str(f["pcap"]), str(f["pcap"]), str(f["pcap"])], "bad option"),
]


def snapshot(root: Path) -> dict[str, tuple[bool, str]]:
    return {str(p.relative_to(root)): (p.is_symlink(), p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def test_the_list_covers_every_option_of_diagnose_and_every_command() -> None:
    from wizard.cli.parser import build_parser, names

    options = {s for a in build_parser().commands["diagnose"]._actions for s in a.option_strings}
    # flags that cannot be wrong, and the free text of --error
    harmless = {"-h", "--help", "--json-schema", "--force", "--no-redact", "--redact-addresses",
                "--allow-tracefs-mount", "--error"}
    fake = dict.fromkeys(("dir", "existing", "dangling", "dangling_json", "notjson", "empty_session", "pcap"),
                         Path("/x"))
    argvs = [build(fake) for _, build, _ in CASES]
    tried = {token.split("=")[0] for argv in argvs for token in argv}
    assert options - harmless <= tried, sorted(options - harmless - tried)
    assert set(names()) <= {argv[0] for argv in argvs}
    assert len(CASES) >= 70, len(CASES)


@pytest.mark.parametrize("name, build, title", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_nothing_probed_nothing_written(
        name: str, build: Callable[[dict[str, Path]], list[str]], title: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    made = files(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = build(made)
    if argv[0] == "diagnose" and "--json" not in argv and "--report" not in argv:
        argv += ["--json", str(work / "s.json"), "--report", str(work / "r.md")]
    before = snapshot(tmp_path)
    dns, tcp = RecordingDns({"app.example.test": ["127.0.0.1"]}), FakeTcp()

    def no_tui(*args: object, **kw: object) -> int:
        raise AssertionError("a bad input opened the TUI")

    monkeypatch.setattr("wizard.ui.app.run_tui", no_tui)
    code = main(argv, probes=FakeProbes(tcp=tcp, dns=dns))
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"reset-wizard: {title}"), lines[0]
    assert out == ""
    assert snapshot(tmp_path) == before
    assert tcp.calls == []
    assert dns.asked == ([] if title != "unresolvable host" else ["nowhere.example.test"])
    assert not any(p.name.startswith(".") and p.name.endswith(".tmp") for p in tmp_path.rglob("*"))
    assert os.getcwd() == str(work)
