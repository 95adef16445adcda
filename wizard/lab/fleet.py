"""A fleet in network namespaces (I/O): a hub bridge joining a controller, one server and N
client hosts, each host with its own sshd, for the Ansible playbook in ansible/.

Names are ``<tag>-<random>-<role>``; addresses are a random /24 of 10.0.0.0/8 and a /64 of
fd00::/8 that live only inside these namespaces. `down` removes everything, also after a
failed `up`.
"""

from __future__ import annotations

import secrets
import select
import subprocess
import sys
from dataclasses import dataclass, field

from wizard.lab.netns import READY_TIMEOUT, LabError, delete_netns, run


@dataclass
class FleetHost:
    name: str  # the inventory name
    ns: str
    v4: str
    v6: str


@dataclass
class FleetLab:
    clients: int = 3
    tag: str = "rwfl"
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    net: tuple[int, int] = field(default_factory=lambda: (secrets.randbelow(200) + 20, secrets.randbelow(250) + 1))
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    def _ns(self, role: str) -> str:
        return f"{self.tag}-{self.suffix}-{role}"

    def _host(self, name: str, role: str, last: int) -> FleetHost:
        a, b = self.net
        return FleetHost(name, self._ns(role), f"10.{a}.{b}.{last}", f"fd5f:{a:x}:{b:x}::{last:x}")

    @property
    def hub(self) -> str:
        return self._ns("hub")

    @property
    def controller(self) -> FleetHost:
        return self._host("controller", "ctl", 1)

    @property
    def server(self) -> FleetHost:
        return self._host("server", "srv", 2)

    @property
    def hosts(self) -> list[FleetHost]:
        return [self._host(f"app{i + 1}", f"c{i + 1}", 11 + i) for i in range(self.clients)]

    def up(self) -> FleetLab:
        try:
            for ns in (self.hub, self.controller.ns, self.server.ns, *(h.ns for h in self.hosts)):
                run(["ip", "netns", "add", ns])
                self.made.append(ns)
                run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
            run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
            for i, host in enumerate([self.controller, self.server, *self.hosts]):
                port = f"p{i}"
                run(["ip", "-n", host.ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                     "netns", self.hub])
                run(["ip", "-n", self.hub, "link", "set", port, "master", "br0", "up"])
                run(["ip", "-n", host.ns, "addr", "add", f"{host.v4}/24", "dev", "eth0"])
                run(["ip", "-n", host.ns, "-6", "addr", "add", f"{host.v6}/64", "dev", "eth0", "nodad"])
                run(["ip", "-n", host.ns, "link", "set", "eth0", "up"])
        except BaseException:
            self.down()
            raise
        return self

    def exec(self, ns: str, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *argv], stdin=stdin)

    def serve(self, mode: str, port: int) -> None:
        """A lab server (wizard.lab.netns serve) on the server host, both families."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.server.ns, sys.executable, "-m", "wizard.lab.netns", "serve", mode, "::",
             str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        if not (ready and proc.stdout.readline().startswith("ready")):
            raise LabError(f"the fleet's server ({mode}) did not start")

    def down(self) -> list[str]:
        """Stop what was started and delete the namespaces; returns what could not be removed."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
        self.processes.clear()
        failed = [f"namespace {ns}: {problem}" for ns in reversed(self.made) if (problem := delete_netns(ns))]
        self.made.clear()
        return failed
