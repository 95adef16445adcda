"""The fault lab's builder (I/O): client, router and server namespaces, servers, rules, teardown.

A lab is ``client ⇄ router (ip_forward) ⇄ server``, each a network namespace, joined by two
veth pairs that are created inside the namespaces (the root namespace never holds them),
with IPv4 and IPv6 addresses that exist only inside. What ``up`` makes is written to a state
file under the lab directory (``/run/reset-wizard-lab/NAME/state.json`` by default; the
``RESET_WIZARD_LAB_DIR`` environment variable moves it) BEFORE it is made, so ``down`` from
any shell, or the cleanup of an interrupted ``up``, removes exactly that: processes inside
the namespaces, the namespaces (and with them veths, rules, conntrack state and sysctls)
and the lab directory with its logs and certificates.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wizard.lab import dumps, holder, real
from wizard.lab.netns import NETNS_DIR, LabError, delete_netns, run
from wizard.lab.scenarios import Scenario, all_scenarios

READY_TIMEOUT = 10.0
CLIENT_V4, ROUTER_C_V4, ROUTER_S_V4, SERVER_V4 = "10.213.10.2", "10.213.10.1", "10.213.20.1", "10.213.20.2"
CLIENT_V6, ROUTER_C_V6, ROUTER_S_V6, SERVER_V6 = "fd13:10::2", "fd13:10::1", "fd13:20::1", "fd13:20::2"
ROUTER_SERVER_DEV = "rsv"   # the router's link towards the server (its MTU is the path's)


def lab_root() -> Path:
    return Path(os.environ.get("RESET_WIZARD_LAB_DIR") or "/run/reset-wizard-lab")


@dataclass
class LabState:
    """What a lab made; written before each thing is made, read by ``down``."""

    name: str
    scenario: str
    client: str
    router: str
    server: str
    dir: str
    namespaces: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    target: str = ""
    logs: list[str] = field(default_factory=list)
    diagnose: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def path(self) -> Path:
        return Path(self.dir) / "state.json"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> LabState:
        return cls(**json.loads(path.read_text()))


def _short(scenario_id: str) -> str:
    return "".join(ch for ch in scenario_id if ch.isalnum())[:10]


def _ex(ns: str, *argv: str, stdin: str | None = None) -> None:
    run(["ip", "netns", "exec", ns, *argv], stdin=stdin)


class Lab:
    """One running scenario. ``up()`` builds it (and removes all of it if anything fails or
    is interrupted); ``down()`` removes it; ``diagnose_argv`` is the command to run."""

    def __init__(self, scenario: Scenario, tag: str = "rwlab", root: Path | None = None,
                 record: bool = False) -> None:
        self.scenario = scenario
        self.record = record  # the trigger's packets kept at both ends (``trigger_captures``)
        suffix = secrets.token_hex(3)
        name = f"{tag}-{_short(scenario.id)}-{suffix}"
        self.suffix = suffix
        root = root or lab_root()
        self.state = LabState(name=name, scenario=scenario.id, client=f"{name}-c", router=f"{name}-r",
                              server=f"{name}-s", dir=str(root / name))

    # -- addresses -----------------------------------------------------------------------
    @property
    def server_address(self) -> str:
        if self.scenario.via_router:
            return ROUTER_C_V6 if self.scenario.family == 6 else ROUTER_C_V4
        return SERVER_V6 if self.scenario.family == 6 else SERVER_V4

    @property
    def target(self) -> str:
        port = self.scenario.port
        where = f"[{self.server_address}]:{port}" if self.scenario.family == 6 else f"{self.server_address}:{port}"
        return f"{self.scenario.scheme}://{where}/" if self.scenario.scheme else where

    @property
    def log_path(self) -> Path:
        return Path(self.state.dir) / "server.log"

    def diagnose_argv(self, wizard: str = "reset-wizard") -> list[str]:
        s = self.scenario
        logs = [p for log in (self.state.logs or [str(self.log_path)]) for p in ("--log", log)]
        argv = ["ip", "netns", "exec", self.state.client, wizard, "diagnose", self.target,
                "--server", f"netns:{self.state.router if s.via_router else self.state.server}", *logs,
                "--attempts", str(s.attempts), "--timeout", "2", "--allow-tracefs-mount"]
        if s.hold:
            argv += ["--hold", f"{s.hold:g}"]
        if s.payload is not None:
            argv += ["--payload", s.payload]
        if self.state.error:
            argv += ["--error", self.state.error]
        return argv

    # -- building ------------------------------------------------------------------------
    def up(self) -> Lab:
        st = self.state
        try:
            Path(st.dir).mkdir(parents=True, exist_ok=False)
            os.chmod(st.dir, 0o755)
            self.log_path.touch()
            st.logs = [str(self.log_path)]
            st.target = self.target
            st.save()
            self._topology()
            self._configure()
            self._servers()
            self._trigger()
            st.diagnose = self.diagnose_argv()
            st.save()
        except BaseException:
            # Ctrl-C or a failed command: nothing stays behind.
            teardown(st)
            raise
        return self

    def down(self) -> list[str]:
        return teardown(self.state)

    def _netns(self, ns: str) -> None:
        self.state.namespaces.append(ns)
        self.state.save()
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _topology(self) -> None:
        st = self.state
        for ns in (st.client, st.router, st.server):
            self._netns(ns)
        # Each pair is created inside a lab namespace with its peer in the router: the
        # names only have to be unique there.
        run(["ip", "-n", st.client, "link", "add", "eth0", "type", "veth", "peer", "name", "rcl",
             "netns", st.router])
        run(["ip", "-n", st.server, "link", "add", "eth0", "type", "veth", "peer", "name", ROUTER_SERVER_DEV,
             "netns", st.router])
        for ns, dev, v4, v6 in ((st.client, "eth0", CLIENT_V4, CLIENT_V6), (st.router, "rcl", ROUTER_C_V4, ROUTER_C_V6),
                                (st.router, ROUTER_SERVER_DEV, ROUTER_S_V4, ROUTER_S_V6),
                                (st.server, "eth0", SERVER_V4, SERVER_V6)):
            run(["ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev])
            run(["ip", "-n", ns, "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        for ns, v4, v6 in ((st.client, ROUTER_C_V4, ROUTER_C_V6), (st.server, ROUTER_S_V4, ROUTER_S_V6)):
            run(["ip", "-n", ns, "route", "add", "default", "via", v4])
            run(["ip", "-n", ns, "-6", "route", "add", "default", "via", v6])
        _ex(st.router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        self._wait_reachable()

    def _wait_reachable(self, timeout: float = 8.0) -> None:
        deadline = time.monotonic() + timeout
        ping = ["ip", "netns", "exec", self.state.client, "ping", "-c", "1", "-W", "1", self.server_address]
        while time.monotonic() < deadline:
            if run(ping, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise LabError(f"{self.server_address} is not reachable from {self.state.client}")

    def _configure(self) -> None:
        s, st = self.scenario, self.state
        # Rules first: they start conntrack in the namespace, whose sysctls exist only then.
        for ns, rules in ((st.server, s.server_nft), (st.router, s.router_nft)):
            if rules:
                _ex(ns, "nft", "-f", "-", stdin=rules.replace("{port}", str(s.port)))
        for ns, sysctls in ((st.server, s.server_sysctls), (st.router, s.router_sysctls)):
            if sysctls:
                _ex(ns, "sysctl", "-qw", *sysctls)
        if s.router_mtu:
            run(["ip", "-n", st.router, "link", "set", ROUTER_SERVER_DEV, "mtu", str(s.router_mtu)])

    def _servers(self) -> None:
        s = self.scenario
        if s.tls:
            self._certificate()
        if s.upstream is not None:
            self._lab_server(s.upstream, s.port + real.UPSTREAM_OFFSET, "127.0.0.1", "upstream")
        if s.real:
            self._real_server()
        elif s.server is not None:
            self._lab_server(s.server, s.port, s.bind, "server")
        if s.held:
            # an application's pool that has taken the server's slots, from the client namespace
            st = self.state
            holder.start(st.client, self.server_address, s.port, s.held, s.real, Path(st.dir) / "holder.out",
                         {**os.environ, "PYTHONPATH": _source_root()}, self._record)

    def _record(self, pid: int) -> None:
        self.state.pids.append(pid)
        self.state.save()

    def _certificate(self) -> None:
        cert, key = Path(self.state.dir) / "cert.pem", Path(self.state.dir) / "key.pem"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=lab.server.test", "-keyout", str(key), "-out", str(cert)], timeout=30)
        os.chmod(key, 0o644)  # read by servers that drop to their own user

    def _real_server(self) -> None:
        """The scenario's real server, in the foreground, its configuration and logs in the lab
        directory; ready once it listens on the port in the server namespace."""
        s, st = self.scenario, self.state
        why = real.missing(s.real)
        if why:
            raise LabError(why)
        argv, stdout = real.prepare(s.real, s.conf, Path(st.dir), s.port)
        st.logs = [str(p) for p in real.log_paths(s.real, Path(st.dir))]
        st.save()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM")}
        env.update(HOME=st.dir, XDG_DATA_HOME=st.dir, XDG_CONFIG_HOME=st.dir,
                   PATH="/usr/sbin:/usr/bin:/sbin:/bin")
        out_path = stdout or Path(st.dir) / f"{s.real}.out"
        with open(out_path, "a") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", st.server, *argv], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=st.dir, env=env)
        st.pids.append(proc.pid)
        st.save()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            listening = run(["ip", "netns", "exec", st.server, "ss", "-Hltn", f"sport = :{s.port}"], check=False)
            if listening.stdout.strip():
                time.sleep(0.2)  # a master that forks its workers after listen
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise LabError(f"{s.real} did not start: {out_path.read_text()[-1000:]}")

    def _lab_server(self, mode: tuple[str, ...], port: int, bind: str, role: str) -> None:
        s, st = self.scenario, self.state
        argv = [sys.executable, "-m", "wizard.lab.servers", *mode, "--port", str(port),
                "--address", bind, "--log", str(self.log_path)]
        if s.tls and not s.real:
            argv += ["--cert", str(Path(st.dir) / "cert.pem"), "--key", str(Path(st.dir) / "key.pem")]
        out_path = Path(st.dir) / f"{role}.out"
        with open(out_path, "w") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", st.server, *argv], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=st.dir, env={**os.environ, "PYTHONPATH": _source_root()})
        st.pids.append(proc.pid)
        st.save()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if "ready" in out_path.read_text():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise LabError(f"lab {role} {' '.join(mode)} did not start: {out_path.read_text()[-1000:]}")

    @property
    def trigger_captures(self) -> tuple[Path, Path]:
        """Where a recording lab keeps the trigger's packets: tcpdump's pcap files from the
        client's interface and from the server's (the backend's, behind a port forward)."""
        return Path(self.state.dir) / "trigger-client.pcap", Path(self.state.dir) / "trigger-server.pcap"

    def _trigger(self) -> None:
        """One request from the client namespace, as the application's client makes it: the
        fault happens once before anyone diagnoses it, so the server's log holds its lines and
        the error the client met becomes `--error`, as a person would paste it. A recording
        lab captures it at both ends, every TCP packet (the lab's namespaces carry nothing else)."""
        if not self.record:
            self._request()
            return
        near_client, near_server = self.trigger_captures
        with dumps.recording([(self.state.client, near_client, "tcp"), (self.state.server, near_server, "tcp")]):
            self._request()
            time.sleep(0.5)  # a reset that follows the client's last packet reaches both captures

    def _request(self) -> None:
        s, st = self.scenario, self.state
        argv = ["ip", "netns", "exec", st.client, sys.executable, "-m", "wizard.lab.servers", "client",
                "--address", self.server_address, "--port", str(s.port), "--hold", f"{s.hold:g}"]
        if s.client == "pg-killed":  # a pooled session whose backend is killed under it
            argv = ["ip", "netns", "exec", st.client, sys.executable, "-m", "wizard.lab.holder",
                    self.server_address, str(s.port), "1", "postgres-killed"]
        elif s.client == "pg-idle":  # a pooled session that idles past the server's idle timeout
            argv = ["ip", "netns", "exec", st.client, sys.executable, "-m", "wizard.lab.holder",
                    self.server_address, str(s.port), "1", "postgres-idle", f"{s.hold:g}"]
        elif s.tls_payload:
            argv += ["--tls"]
        elif s.payload is not None:
            argv += ["--payload", s.payload]
        done = run(argv, check=False, timeout=s.hold + 15)
        said = done.stdout.strip().splitlines()[-1:] or [""]
        st.error = "" if said[0] == "ok" else said[0][:300]
        st.save()


def _source_root() -> str:
    """Where ``wizard`` is importable from, so that servers run from a checkout as well."""
    here = str(Path(__file__).resolve().parents[2])
    extra = os.environ.get("PYTHONPATH", "")
    return f"{here}:{extra}" if extra else here


def teardown(state: LabState) -> list[str]:
    """Remove everything ``state`` records; returns what was removed, and as ``FAILED: ...``
    what could not be. Safe to call twice."""
    removed: list[str] = []
    for ns in reversed(state.namespaces):
        if not (NETNS_DIR / ns).exists():
            continue
        problem = delete_netns(ns)
        removed.append(f"FAILED: namespace {ns}: {problem}" if problem else f"namespace {ns}")
    for pid in state.pids:
        # A server is inside its namespace and gone with it; the `ip netns exec` wrapper is
        # the same process (exec), so this only catches one that escaped.
        try:
            os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid}")
        except (ProcessLookupError, PermissionError):
            pass
    if Path(state.dir).exists():
        shutil.rmtree(state.dir, ignore_errors=True)
        removed.append(f"directory {state.dir}")
    return removed


def running(root: Path | None = None) -> list[LabState]:
    root = root or lab_root()
    found = []
    for path in sorted(root.glob("*/state.json")) if root.exists() else []:
        try:
            found.append(LabState.load(path))
        except (OSError, ValueError, TypeError):
            continue
    return found


def down(name: str | None = None, root: Path | None = None) -> list[str]:
    """Tear down the named lab, or every lab under the lab directory."""
    removed: list[str] = []
    for state in running(root):
        if name is None or state.name == name or state.scenario == name:
            removed += teardown(state)
    return removed


def scenario(name: str) -> Scenario:
    for s in all_scenarios():
        if s.id == name:
            return s
    raise KeyError(name)
