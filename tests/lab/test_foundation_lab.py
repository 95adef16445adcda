"""Real scenarios in network namespaces: a real server, real nftables rules, real packets, and
`reset-wizard diagnose --server netns:NAME` run from the client namespace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wizard.lab.netns import LabNet

PORT = 8080  # an HTTP port, so the payload probe sends a request by default
WIZARD = str(Path(sys.executable).with_name("reset-wizard"))
RUN_TIMEOUT = 90


def diagnose(net: LabNet, target: str, tmp_path: Path, *extra: str) -> tuple[dict, str, subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        ["ip", "netns", "exec", net.client, WIZARD, "diagnose", target, "--server", f"netns:{net.server}",
         "--attempts", "5", "--timeout", "2", "--json", str(tmp_path / "s.json"),
         "--report", str(tmp_path / "r.md"), *extra],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    session = json.loads((tmp_path / "s.json").read_text())
    return session, (tmp_path / "r.md").read_text(), done


def top(session: dict) -> str:
    return session["diagnosis"][0]["cause"]


def test_nothing_listening_is_diagnosed_as_port_closed(labnet: LabNet, tmp_path: Path) -> None:
    session, report, done = diagnose(labnet, f"{labnet.server_v4}:{PORT}", tmp_path)
    assert top(session) == "port-closed", session["diagnosis"]
    assert done.returncode == 1
    assert "port-closed" in report
    assert "refused" in report.lower()


def test_nothing_listening_over_ipv6_is_diagnosed_as_port_closed(labnet: LabNet, tmp_path: Path) -> None:
    session, report, done = diagnose(labnet, f"[{labnet.server_v6}]:{PORT}", tmp_path)
    assert top(session) == "port-closed", session["diagnosis"]
    assert session["target"]["addresses"] == [labnet.server_v6]
    assert done.returncode == 1


def test_reject_rule_on_the_server_is_diagnosed_as_firewall_reject(labnet: LabNet, tmp_path: Path) -> None:
    labnet.serve("listen", "::", PORT)
    labnet.nft(labnet.server, (
        "table inet rwcl_filter {\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    tcp dport {PORT} counter reject with tcp reset\n"
        "  }\n"
        "}\n"))
    session, report, done = diagnose(labnet, f"{labnet.server_v4}:{PORT}", tmp_path)
    assert top(session) == "firewall-reject", session["diagnosis"]
    assert done.returncode == 1
    # The decisive evidence is the rule itself, quoted in the report.
    assert "reject with tcp reset" in report


def test_server_that_aborts_after_the_request_is_diagnosed_as_abortive_close(
        labnet: LabNet, tmp_path: Path) -> None:
    labnet.serve("linger0", "::", PORT)
    session, report, done = diagnose(labnet, f"{labnet.server_v4}:{PORT}", tmp_path)
    assert top(session) == "abortive-close", session["diagnosis"]
    assert done.returncode == 1
    assert "TCPAbortOnData" in report


def test_lab_teardown_removes_its_namespaces(tmp_path: Path) -> None:
    from tests.lab.conftest import _require_lab

    _require_lab()
    with LabNet("teardown") as net:
        names = (net.client, net.server)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        assert all(n in listed for n in names)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert not any(n in listed for n in names)

