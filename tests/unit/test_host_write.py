"""Host.write: local files, and per-namespace /proc/sys written inside the namespace (root only)."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from wizard.hosts.base import HostError
from wizard.hosts.local import LocalHost, NetnsHost


async def test_local_write_replaces_the_whole_content(tmp_path: Path) -> None:
    path = tmp_path / "control"
    path.write_bytes(b"a much longer old value\n")
    await LocalHost().write(str(path), b"mono")
    assert path.read_bytes() == b"mono"


async def test_local_write_failure_is_one_line_host_error(tmp_path: Path) -> None:
    with pytest.raises(HostError) as info:
        await LocalHost().write(str(tmp_path / "no-such-dir" / "f"), b"1")
    assert "No such file" in info.value.message and "\n" not in info.value.message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a network namespace")
async def test_netns_write_of_a_per_namespace_sysctl_stays_inside_the_namespace() -> None:
    name = f"rwrv-{secrets.token_hex(3)}"
    sysctl = "/proc/sys/net/ipv4/tcp_fin_timeout"
    outside = Path(sysctl).read_text()
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        host = NetnsHost(name)
        wanted = "17" if outside.strip() != "17" else "19"
        await host.write(sysctl, wanted.encode())
        assert (await host.read_text(sysctl)).strip() == wanted
        assert Path(sysctl).read_text() == outside  # the wizard's own namespace is untouched
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a network namespace")
async def test_netns_write_of_an_ordinary_file_writes_the_hosts_file(tmp_path: Path) -> None:
    name = f"rwrv-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        await NetnsHost(name).write(str(tmp_path / "f"), b"x y\n")
        assert (tmp_path / "f").read_bytes() == b"x y\n"
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10)
