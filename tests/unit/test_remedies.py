"""Remedies fit the context the run used: a command that needs root is wrapped in one place
(wizard.model.contexts.command_in) where the check writes its fix, and the console, the report
and the JSON print that same command, each runnable as pasted: local as root (as is), local
without root (``sudo``), ``ssh:`` (it runs on the server: ``ssh user@host 'sudo ...'``) and
``netns:`` (``ip netns exec NAME``, for what the namespace has of its own)."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.unit.fakes import FakeHost
from wizard.cli.fixes import fix_lines
from wizard.engine.contract import Tool
from wizard.model import Session, Status
from wizard.model.contexts import command_in
from wizard.report import render_json, render_report

DATA = Path(__file__).parent / "data" / "demo-session.json"
NFT = ["nft", "list", "ruleset"]
MOUNT = "mount -t tracefs nodev /sys/kernel/tracing"

# context, has root there, the nft command (the namespace's own), the mount (the machine's)
CONTEXTS = [
    ("local", True, "nft list ruleset", MOUNT),
    ("local", False, "sudo nft list ruleset", f"sudo {MOUNT}"),
    ("ssh:ops@web1", True, "ssh ops@web1 'sudo nft list ruleset'", f"ssh ops@web1 'sudo {MOUNT}'"),
    ("netns:lab", True, "ip netns exec lab nft list ruleset", MOUNT),
]


@pytest.mark.parametrize("spec, root, nft, mount", CONTEXTS)
def test_a_root_command_is_wrapped_for_where_it_runs(spec: str, root: bool, nft: str, mount: str) -> None:
    assert command_in(spec, NFT, root=root) == nft
    assert command_in(spec, MOUNT.split(), root=root, in_netns=False) == mount


def test_the_wrapping_covers_the_rest_of_each_kind() -> None:
    assert command_in("netns:lab", NFT, root=False) == "sudo ip netns exec lab nft list ruleset"
    assert command_in("ssh:web1:2222", NFT) == "ssh -p 2222 web1 'sudo nft list ruleset'"
    assert command_in("ssh:root@web1", NFT) == "ssh root@web1 'nft list ruleset'"  # root's login: no sudo
    assert command_in("ssh:ops@web1", ["sysctl", "-w", "a.b=0 1"]) == "ssh ops@web1 'sudo sysctl -w '\"'\"'a.b=0 1'\"'\"''"
    # a missing tool is installed where it is missing, as the machine's
    assert Tool("nft", package="nftables").fix("netns:lab", False) == "sudo apt install nftables"
    assert Tool("tcpdump").fix("ssh:ops@web1", True) == "ssh ops@web1 'sudo apt install tcpdump'"


class _NoTracefs(FakeHost):
    async def stat(self, path: str):  # type: ignore[override]
        from wizard.hosts.base import HostError

        raise HostError(f"cannot read {path}: No such file or directory")


def _session_skipped_by_tracefs(spec: str, root: bool) -> Session:
    """The demo's session, run in ``spec``: kernel.resets skipped with the fix the tracer writes
    for a machine where tracefs is not mounted."""
    from wizard.diag.kernel.io.tracing import KernelTrace, TraceUnavailable

    session = Session.from_json(DATA.read_text(encoding="utf-8"))
    session.context.server = spec
    with pytest.raises(TraceUnavailable) as raised:
        asyncio.run(KernelTrace(_NoTracefs(spec, privileged=root), ports=(1,)).start())
    for step in session.steps:
        for i, check in enumerate(step.checks):
            if check.id == "kernel.resets":
                step.checks[i] = check.skipped(raised.value.reason, raised.value.fix, check_id=check.id)
                step.checks[i].title = check.title
    return session


def _pasteable(command: str) -> None:
    argv = shlex.split(command)
    assert argv[0] in ("mount", "sudo", "ssh", "ip", "reset-wizard"), command
    assert not re.search(r"\(or |let the wizard|, or ", command), command


@pytest.mark.parametrize("spec, root, nft, mount", CONTEXTS)
def test_the_console_report_and_json_give_the_same_command_for_the_context(
        spec: str, root: bool, nft: str, mount: str) -> None:
    session = _session_skipped_by_tracefs(spec, root)
    rerun = session.rerun_argv()
    again = shlex.join(["reset-wizard", *rerun, "--allow-tracefs-mount"])
    assert ("--server" in rerun) == (spec != "local")
    # the console: each way a line, the command alone before its comment
    fix = next(c.fix for s in session.steps for c in s.checks if c.id == "kernel.resets")
    assert fix is not None
    assert fix_lines(fix, rerun) == [f"fix: {mount}", f"or:  {again}  # let the wizard mount it"]
    # the report: each command its own code span, nothing else in one
    text = render_report(session)
    skipped = text[text.index("\n## Not checked\n"):text.index("\n## ", text.index("\n## Not checked\n") + 1)]
    assert f"fix: `{mount}`; or let the wizard mount it: `{again}`" in skipped
    for span in re.findall(r"`([^`]+)`", skipped):
        if " " in span:
            _pasteable(span)
    # the JSON: the fix as the check wrote it, the same command in it
    (recorded,) = [c for s in json.loads(render_json(session))["steps"] for c in s["checks"]
                   if c["id"] == "kernel.resets"]
    assert recorded["status"] == Status.SKIP and recorded["fix"].startswith(f"{mount} (or ")
    # a run without ssh is never told about sudo over ssh
    assert ("ssh " in text.split("## Evidence by step")[0]) == spec.startswith("ssh:")
