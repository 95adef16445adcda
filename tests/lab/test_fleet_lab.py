"""The fleet playbook (ansible/) for real: three client hosts in namespaces, each with its own
sshd, probe one server whose firewall resets one of them; the server, over its own sshd, runs
the same diagnosis with --server local (the other end of the same probes). ansible-playbook
runs from a controller namespace, installs reset-wizard on every host (offline: this
checkout's wheel and the wheelhouse .ci/setup made), runs `diagnose`, collects every session
and merges them. Check mode must touch nothing; the merged verdict must name the host that
differs and the server's rule that singles it out, every output must say that one verdict,
and a second run must change nothing on the hosts.
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


PROBE_ARGS = ["--attempts", "3", "--timeout", "2"]


def _inventory(lab: FleetLab, tmp: Path) -> Path:
    hosts: dict[str, dict[str, object]] = {}
    for host in [*lab.hosts, lab.server]:
        keys = tmp / "keys" / host.name
        hosts[host.name] = {
            "ansible_host": host.v4, "ansible_ssh_private_key_file": str(keys / "user_key"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={keys / 'known_hosts'} -o StrictHostKeyChecking=yes "
                                       "-o IdentitiesOnly=yes"}
    # The server end runs the same probes, reading its own listener, firewall and counters.
    hosts[lab.server.name]["rw_args"] = [*PROBE_ARGS, "--server", "local"]
    inventory = {"rw_hosts": {"hosts": hosts, "vars": {
        "ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_remote_tmp": str(tmp / "remote-tmp"), "rw_args": PROBE_ARGS}}}
    path = tmp / "inventory.json"  # YAML inventory, written as JSON
    path.write_text(json.dumps(inventory))
    return path


def _play(lab: FleetLab, tmp: Path, inventory: Path, extra: dict, *flags: str) -> subprocess.CompletedProcess[str]:
    (tmp / "home").mkdir(exist_ok=True)
    env = {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
           "ANSIBLE_LOCAL_TEMP": str(tmp / "local-tmp"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "4",
           "ANSIBLE_PIPELINING": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_HOST_KEY_CHECKING": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    (tmp / "extra.json").write_text(json.dumps(extra))
    return subprocess.run(["ip", "netns", "exec", lab.controller.ns, str(BIN / "ansible-playbook"), "-i", str(inventory),
                           str(PLAYBOOK), "-e", f"@{tmp / 'extra.json'}", *flags], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=PLAY_TIMEOUT, stdin=subprocess.DEVNULL)


def _recap(output: str) -> dict[str, dict[str, int]]:
    """Each host's counts in the PLAY RECAP (ok, changed, unreachable, failed, skipped, ...)."""
    recap = output[output.rindex("PLAY RECAP"):]
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+: (ok=.*)$", recap, re.M)}


def _changed(output: str) -> dict[str, int]:
    """changed= of each host in the PLAY RECAP."""
    return {host: counts["changed"] for host, counts in _recap(output).items()}


def _tasks(output: str, host: str) -> dict[str, str]:
    """What each task did on ``host`` (ok, changed, skipping, failed), by task name."""
    done, task = {}, ""
    for line in output.splitlines():
        head = re.match(r"TASK \[(?:[^:\]]+ : )?(.+?)\] \*", line)
        if head:
            task = head.group(1)
        state = re.match(rf"(ok|changed|skipping|failed|fatal): \[{re.escape(host)}\]", line)
        if state and task:
            done[task] = state.group(1)
    return done


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
        for host in [*lab.hosts, lab.server]:
            keys = tmp_path / "keys" / host.name
            keys.mkdir(parents=True)
            proc, _known, _log = start_sshd(host.ns, [host.v4], keys)
            sshds.append(proc)
        names = [h.name for h in lab.hosts] + [lab.server.name]
        inventory = _inventory(lab, tmp_path)
        sessions = tmp_path / "sessions"
        extra = {"rw_target": f"{lab.server.v4}:{PORT}", "rw_package": str(wheel),
                 "rw_pip_args": f"--no-index --find-links {WHEELHOUSE}",
                 "rw_venv": str(tmp_path / "hosts" / "{{ inventory_hostname }}" / "venv"),
                 "rw_python": "/usr/bin/python3", "rw_collect_dir": str(sessions),
                 "rw_controller_command": str(BIN / "reset-wizard")}
        # Check mode installs nothing, runs nothing and collects nothing; it says what it would install.
        dry = _play(lab, tmp_path, inventory, extra, "--check")
        assert dry.returncode == 0, dry.stdout[-4000:]
        assert not (tmp_path / "hosts").exists() and not sessions.exists()
        for name in names:
            tasks = _tasks(dry.stdout, name)
            assert tasks["Install reset-wizard into its virtualenv"] == "changed", tasks
            assert tasks[f"Run reset-wizard diagnose towards {lab.server.v4}:{PORT}"] == "skipping", tasks

        first = _play(lab, tmp_path, inventory, extra)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
        recap = _recap(first.stdout)
        assert all(recap[n]["changed"] >= 1 and recap[n]["failed"] == 0 for n in names), recap  # it did install
        assert sorted(p.name for p in sessions.glob("*.json")) == sorted([*(f"{n}.json" for n in names), "fleet.json"])
        fleet = json.loads((sessions / "fleet.json").read_text())
        roles = {h["label"]: h["role"] for h in fleet["hosts"]}
        assert roles == {"app1": "client", "app2": "client", "app3": "client", "server": "server"}, roles
        assert fleet["pointer"]["kind"] == "some-hosts", fleet["pointer"]
        assert fleet["pointer"]["hosts"] == ["app2"]
        attributes = {d["attribute"]: d for d in fleet["pointer"]["differences"]}
        assert attributes["source address"]["with_resets"] == [refused.v4]
        # The server's own session found the rule, and the merge says it is the one naming app2 alone.
        (rule,) = fleet["pointer"]["rules"]
        assert rule.startswith("server: ") and f"ip saddr {refused.v4} " in rule, rule
        verdicts = {h["label"]: h["verdict"] for h in fleet["hosts"]}
        assert verdicts["app1"] == verdicts["app3"] == "no-reset-observed", verdicts
        assert verdicts["app2"] != "no-reset-observed"
        # The server's rule counter moves during its own probe only when app2 probed at that
        # moment too (the runs are concurrent): then its own verdict is the reject, else clean.
        (server,) = [h for h in fleet["hosts"] if h["label"] == "server"]
        moved = [f for f in server["server_said"] if "counter moved" in f and f"ip saddr {refused.v4} " in f]
        assert verdicts["server"] == ("firewall-reject" if moved else "no-reset-observed"), (verdicts, server)
        # One verdict: the JSON's verdict and diagnosis[0], the report's lead, the console, the exit status.
        verdict = fleet["verdict"]
        assert (verdict["kind"], verdict["cause"], verdict["hosts"]) == ("cause", verdicts["app2"], ["app2"]), verdict
        assert fleet["diagnosis"][0]["cause"] == verdict["cause"] and fleet["diagnosis"][0]["hosts"] == ["app2"]
        report = (sessions / "fleet.md").read_text()
        lead = report.splitlines()[2]
        assert lead.startswith("**Only app2 (1 of 3 hosts) sees resets") and lead.strip("*.") == \
            verdict["statement"][:1].upper() + verdict["statement"][1:].rstrip(".")
        assert "has the rule that names app2's source alone: " in lead and f"ip saddr {refused.v4} " in lead
        again = subprocess.run([str(BIN / "reset-wizard"), "merge", *(str(sessions / f"{n}.json") for n in names),
                                "--json", str(tmp_path / "again.json")], capture_output=True, text=True, timeout=120)
        assert again.returncode == verdict["exit_status"] == 1, again.stderr
        assert again.stdout == verdict["statement"] + "\n"
        assert "What the differences point to" in first.stdout and verdict["statement"] in first.stdout
        # Both ends of the same probes on one timeline: app2's resets beside what the server recorded then.
        resets = [e for e in fleet["timeline"] if e["host"] == "app2"]
        assert resets, fleet["timeline"]
        for e in resets:
            if e["matched"].startswith("server: "):  # the server recorded something within seconds of it
                # its rule counter moved then (app2 probed during the server's own probe), or what
                # it recorded names no client (the runs overlap) and its rule naming app2 is said beside
                counter = moved and "counter moved" in e["matched"] and f"ip saddr {refused.v4} " in e["matched"]
                assert counter or "server's firewall has a rule that names app2's source" in e["matched"], e
            else:
                assert e["matched"].startswith("server ran then and ") and "names app2's source" in e["matched"], e
        assert not [e for e in fleet["timeline"] if e["host"] in ("app1", "app3")]

        # A second run installs nothing and changes nothing on the hosts.
        second = _play(lab, tmp_path, inventory, extra)
        assert second.returncode == 0, second.stdout[-4000:]
        changed = _changed(second.stdout)
        assert {h: changed[h] for h in names} == dict.fromkeys(names, 0), changed
        for name in names:
            assert _tasks(second.stdout, name)["Install reset-wizard into its virtualenv"] == "skipping"
    finally:
        for proc in sshds:
            proc.kill()
            proc.wait(5)
        left = lab.down()
        shutil.rmtree(tmp_path / "hosts", ignore_errors=True)
    assert not left, left
    # Passed: nothing of the run stays (keys, the wheel, Ansible's temp files, the sessions).
    for path in tmp_path.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
