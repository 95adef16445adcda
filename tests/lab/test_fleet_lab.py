"""The fleet playbook (ansible/) for real: three client hosts in namespaces, each with its own
sshd, probe one server whose firewall resets one of them. ansible-playbook runs from a
controller namespace, installs reset-wizard on every host (offline: this checkout's wheel
and the wheelhouse .ci/setup made), runs `diagnose`, collects every session and merges them.
The merged verdict must name the host that differs, and a second run must change nothing on
the hosts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.lab.conftest import _require_lab
from tests.lab.test_ssh_lab import require_ssh_lab, start_sshd
from wizard.lab.fleet import FleetLab

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "ansible" / "playbooks" / "fleet.yml"
BIN = Path(sys.executable).parent
WHEELHOUSE = BIN.parent / "wheelhouse"
PORT = 8080
PLAY_TIMEOUT = 900


def _wire(lab: FleetLab, ns: str) -> int:
    """curl's exit status from ``ns`` to the server: 0 answered, 7 refused by a reset to the SYN."""
    done = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sS", "-m", "5", "-o", "/dev/null",
                           f"http://{lab.server.v4}:{PORT}/"], capture_output=True, text=True, timeout=20)
    return done.returncode


def _wheel(tmp: Path) -> Path:
    """This checkout's wheel, built offline."""
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "-w", str(out), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("reset_wizard-*.whl")
    return wheel


def _inventory(lab: FleetLab, tmp: Path) -> Path:
    hosts = {}
    for host in lab.hosts:
        keys = tmp / "keys" / host.name
        hosts[host.name] = {
            "ansible_host": host.v4, "ansible_ssh_private_key_file": str(keys / "user_key"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={keys / 'known_hosts'} -o StrictHostKeyChecking=yes "
                                       "-o IdentitiesOnly=yes"}
    inventory = {"rw_hosts": {"hosts": hosts, "vars": {
        "ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_remote_tmp": str(tmp / "remote-tmp")}}}
    path = tmp / "inventory.json"  # YAML inventory, written as JSON
    path.write_text(json.dumps(inventory))
    return path


def _play(lab: FleetLab, tmp: Path, inventory: Path, extra: dict, *flags: str) -> subprocess.CompletedProcess[str]:
    (tmp / "home").mkdir(exist_ok=True)
    env = {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
           "ANSIBLE_LOCAL_TEMP": str(tmp / "local-tmp"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "3",
           "ANSIBLE_PIPELINING": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_HOST_KEY_CHECKING": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    (tmp / "extra.json").write_text(json.dumps(extra))
    return subprocess.run(["ip", "netns", "exec", lab.controller.ns, str(BIN / "ansible-playbook"), "-i", str(inventory),
                           str(PLAYBOOK), "-e", f"@{tmp / 'extra.json'}", *flags], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=PLAY_TIMEOUT, stdin=subprocess.DEVNULL)


def _changed(output: str) -> dict[str, int]:
    """changed= of each host in the PLAY RECAP."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)}


def test_the_playbook_collects_every_session_and_merge_names_the_host_that_differs(tmp_path: Path) -> None:
    _require_lab()
    require_ssh_lab()
    assert (BIN / "ansible-playbook").exists(), "ansible-core is a test dependency: pip install -e '.[test]'"
    assert WHEELHOUSE.is_dir(), f"no wheelhouse at {WHEELHOUSE}: run .ci/setup"
    wheel = _wheel(tmp_path)
    lab = FleetLab(clients=3)
    sshds: list[subprocess.Popen[str]] = []
    try:
        lab.up()
        lab.serve("listen", PORT)
        refused = lab.hosts[1]
        lab.exec(lab.server.ns, ["nft", "-f", "-"], stdin=(
            "table inet rwfl_acl {\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
            f"    ip saddr {refused.v4} tcp dport {PORT} counter reject with tcp reset\n  }}\n}}\n"))
        # On the wire first: the refused host's connections are reset, the others answered.
        assert {h.name: _wire(lab, h.ns) for h in lab.hosts} == {"app1": 0, "app2": 7, "app3": 0}
        for host in lab.hosts:
            keys = tmp_path / "keys" / host.name
            keys.mkdir(parents=True)
            proc, _known, _log = start_sshd(host.ns, [host.v4], keys)
            sshds.append(proc)
        inventory = _inventory(lab, tmp_path)
        sessions = tmp_path / "sessions"
        extra = {"rw_target": f"{lab.server.v4}:{PORT}", "rw_package": str(wheel),
                 "rw_pip_args": f"--no-index --find-links {WHEELHOUSE}",
                 "rw_venv": str(tmp_path / "hosts" / "{{ inventory_hostname }}" / "venv"),
                 "rw_python": "/usr/bin/python3", "rw_collect_dir": str(sessions),
                 "rw_args": ["--attempts", "3", "--timeout", "2"],
                 "rw_controller_command": str(BIN / "reset-wizard")}
        # Check mode installs nothing, runs nothing and collects nothing.
        dry = _play(lab, tmp_path, inventory, extra, "--check")
        assert dry.returncode == 0, dry.stdout[-4000:]
        assert not (tmp_path / "hosts").exists() and not list(sessions.glob("*.json"))
        first = _play(lab, tmp_path, inventory, extra)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
        assert sorted(p.name for p in sessions.glob("app*.json")) == ["app1.json", "app2.json", "app3.json"]
        fleet = json.loads((sessions / "fleet.json").read_text())
        assert fleet["pointer"]["kind"] == "some-hosts", fleet["pointer"]
        assert fleet["pointer"]["hosts"] == ["app2"]
        attributes = {d["attribute"]: d for d in fleet["pointer"]["differences"]}
        assert attributes["source address"]["with_resets"] == [refused.v4]
        report = (sessions / "fleet.md").read_text()
        assert report.splitlines()[2].startswith("**Only app2 (1 of 3 hosts) sees resets")
        verdicts = {h["label"]: h["verdict"] for h in fleet["hosts"]}
        assert verdicts["app1"] == verdicts["app3"] == "no-reset-observed", verdicts
        assert verdicts["app2"] != "no-reset-observed"
        assert "What the differences point to" in first.stdout
        # A second run installs nothing and changes nothing on the hosts.
        second = _play(lab, tmp_path, inventory, extra)
        assert second.returncode == 0, second.stdout[-4000:]
        changed = _changed(second.stdout)
        assert {h: changed[h] for h in ("app1", "app2", "app3")} == {"app1": 0, "app2": 0, "app3": 0}, changed
    finally:
        for proc in sshds:
            proc.kill()
            proc.wait(5)
        left = lab.down()
        shutil.rmtree(tmp_path / "hosts", ignore_errors=True)
    assert not left, left
