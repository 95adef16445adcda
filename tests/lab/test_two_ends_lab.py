"""analyze's two-ended proof on the lab's own scenarios (root only).

For each scenario a client in the client namespace makes the requests that meet its fault
while tcpdump records them twice: at the client's interface and at the server's. `analyze
CLIENT.pcap SERVER.pcap` must then prove the router's resets injected (seen near the client,
never near the server, whose capture has the flow) and the server's resets sent (seen at
both ends), and name each sender. Everything made here is removed, also on failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.lab.conftest import _require_lab
from wizard.lab import dumps
from wizard.lab.build import Lab
from wizard.lab.scenarios import by_id

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable

CLIENT = textwrap.dedent("""
    import socket, sys, time
    host, port, hold, payload, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    data = payload.encode().decode("unicode_escape").encode("latin-1")
    for _ in range(n):
        s = None
        try:
            s = socket.create_connection((host, port), timeout=5)
            time.sleep(hold)
            s.sendall(data)
            while s.recv(4096):
                pass
        except OSError:
            pass
        finally:
            if s is not None:
                s.close()
        time.sleep(0.3)
""")

# scenario -> (the proof and sender of every RST toward the client, requests made)
EXPECTED = {
    "middlebox-reset": (("injected", "path"), 3),
    "middlebox-reset/v6-keyword": (("injected", "path"), 3),
    "idle-timeout": (("injected", "path"), 1),
    "abortive-close": (("sent", "server-app"), 3),
    # An RST-ACK answering the SYN, no SYN-ACK: proved sent from the server's end, it is
    # weighed at the server's distance, a stateless reply: the server's host (a closed port's
    # answer and a reject rule's are one packet; a capture has no counters to tell them apart).
    "port-closed": (("sent", "server-host"), 3),
    "firewall-reject": (("sent", "server-host"), 3),
}


def captured_at_both_ends(lab: Lab, requests: int, tmp: Path) -> tuple[Path, Path]:
    s, st = lab.scenario, lab.state
    caps = (tmp / "client.pcap", tmp / "server.pcap")
    with dumps.recording([(st.client, caps[0], f"tcp port {s.port}"), (st.server, caps[1], f"tcp port {s.port}")]):
        payload = s.payload if s.payload is not None else "GET / HTTP/1.0\\r\\nHost: lab\\r\\n\\r\\n"
        subprocess.run(["ip", "netns", "exec", st.client, PY, "-c", CLIENT, lab.server_address, str(s.port),
                        f"{s.hold + 1 if s.hold else 0:g}", payload, str(requests)],
                       check=True, timeout=120, stdin=subprocess.DEVNULL)
        time.sleep(1.0)  # the last resets reach both captures
    return caps


@pytest.mark.parametrize("scenario_id", sorted(EXPECTED))
def test_the_two_ended_proof_tells_the_routers_resets_from_the_servers(scenario_id: str, tmp_path: Path):
    _require_lab()
    (proof, sender), requests = EXPECTED[scenario_id]
    lab = Lab(by_id(scenario_id), tag="rwte")
    try:
        lab.up()
        client_cap, server_cap = captured_at_both_ends(lab, requests, tmp_path)
    finally:
        lab.down()
    out = subprocess.run([PY, "-m", "wizard", "analyze", str(client_cap), str(server_cap), "--json", "-"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    events = json.loads(out.stdout)["observation"]["events"]
    toward_client = [(e["proof"], e["sender"]) for e in events if e["toward"] == "client"]
    assert toward_client, out.stderr
    assert set(toward_client) == {(proof, sender)}, out.stderr
    # every request met the fault once: one reset toward the client each
    assert len(toward_client) == requests, out.stderr
