"""Which server a process is, and which configuration its command line makes it read (pure).

The input is what /proc says of the process: its command name (``comm``), its argv (the
NUL-separated /proc/PID/cmdline, which nginx and Redis overwrite with a title) and its
working directory. The answer names the server and the configuration it really uses: a
file given on the command line, else the one the program reads by default, relative paths
resolved against the process's own working directory.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Launch:
    """How a server process was started, as far as its command line tells."""

    server: str  # nginx, haproxy, apache, caddy, gunicorn, uvicorn, node, redis, postgresql
    config: tuple[str, ...] = ()  # configuration files (or directories) it reads, absolute
    how: str = ""  # where the path came from: "-c on the command line", "the default", ...
    args: dict[str, str] = field(default_factory=dict)  # settings given as arguments
    script: str = ""  # node: the script it runs; gunicorn/uvicorn: the app
    role: str = ""  # "master", "worker" or "" (as the process title says)


def split_cmdline(raw: bytes) -> list[str]:
    """argv from /proc/PID/cmdline; a rewritten title (one string with spaces) is split as a
    shell would, so ``nginx: master process nginx -c /x.conf`` keeps its arguments."""
    parts = [p.decode("utf-8", "replace") for p in raw.rstrip(b"\0").split(b"\0")]
    if len(parts) == 1 and " " in parts[0]:
        try:
            return shlex.split(parts[0])
        except ValueError:
            return parts[0].split()
    return [p for p in parts if p != ""] if parts != [""] else []


def _abs(path: str, cwd: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(cwd or "/", path))


def _opt(argv: list[str], *names: str) -> list[str]:
    """Values of ``-x VALUE``, ``-xVALUE``, ``--name VALUE`` and ``--name=VALUE``."""
    out: list[str] = []
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                out.append(argv[i + 1])
            elif n.startswith("--") and a.startswith(n + "="):
                out.append(a[len(n) + 1:])
            elif not n.startswith("--") and len(n) == 2 and a.startswith(n) and len(a) > 2 and not a.startswith("--"):
                out.append(a[2:])
    return out


def _base(word: str) -> str:
    return posixpath.basename(word.rstrip(":"))


def identify(comm: str, argv: list[str]) -> str:
    """The server a process is ("" when none known). Interpreters count by the program they run."""
    words = [_base(a) for a in argv[:4]]
    names = {comm, *words}
    if "nginx" in names or (argv and argv[0].startswith("nginx:")):
        return "nginx"
    if names & {"haproxy"}:
        return "haproxy"
    if names & {"apache2", "httpd", "apachectl"}:
        return "apache"
    if "caddy" in names:
        return "caddy"
    if comm.startswith("redis-server") or "redis-server" in words:
        return "redis"
    if comm in ("postgres", "postmaster") or names & {"postgres", "postmaster"}:
        return "postgresql"
    if "gunicorn" in names or comm.startswith("gunicorn"):
        return "gunicorn"
    if "uvicorn" in names or _module(argv) == "uvicorn":
        return "uvicorn"
    if comm in ("node", "nodejs") or words[:1] in (["node"], ["nodejs"]):
        return "node"
    return ""


def _module(argv: list[str]) -> str:
    return argv[argv.index("-m") + 1] if "-m" in argv[:3] and argv.index("-m") + 1 < len(argv) else ""


def _role(argv: list[str]) -> str:
    head = " ".join(argv[:3])
    if "master" in head:
        return "master"
    if "worker" in head:
        return "worker"
    return ""


def launch(server: str, argv: list[str], cwd: str) -> Launch:
    """What ``argv`` says of the configuration ``server`` reads (paths made absolute)."""
    role = _role(argv)
    if server == "nginx":
        conf = _opt(argv, "-c")
        prefix = _opt(argv, "-p")
        base = prefix[-1] if prefix else cwd
        if conf:
            return Launch(server, (_abs(conf[-1], base),), "-c on the command line", role=role)
        return Launch(server, ("/etc/nginx/nginx.conf",), "the default (no -c)", role=role)
    if server == "haproxy":
        files = _opt(argv, "-f")
        if "--" in argv:
            files += argv[argv.index("--") + 1:]
        return Launch(server, tuple(_abs(f, cwd) for f in files), "-f on the command line", role=role)
    if server == "apache":
        root = _opt(argv, "-d")
        conf = _opt(argv, "-f")
        if conf:
            base = root[-1] if root else "/etc/apache2"
            return Launch(server, (_abs(conf[-1], base),), "-f on the command line",
                          args={"ServerRoot": root[-1]} if root else {}, role=role)
        return Launch(server, ("/etc/apache2/apache2.conf",), "the default (no -f)", role=role)
    if server == "caddy":
        conf = _opt(argv, "--config", "-c")
        adapter = _opt(argv, "--adapter")
        if conf:
            return Launch(server, (_abs(conf[-1], cwd),), "--config on the command line",
                          args={"adapter": adapter[-1]} if adapter else {})
        return Launch(server, (_abs("Caddyfile", cwd),), "the Caddyfile in its working directory")
    if server == "redis":
        return _redis(argv, cwd)
    if server == "postgresql":
        return _postgres(argv, cwd)
    if server == "gunicorn":
        return _gunicorn(argv, cwd, role)
    if server == "uvicorn":
        return _uvicorn(argv)
    if server == "node":
        script = next((a for a in argv[1:] if not a.startswith("-")), "")
        return Launch(server, (), "", script=_abs(script, cwd) if script else "")
    return Launch(server)


def _long_args(argv: list[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` pairs (flags without a value are "true")."""
    out: dict[str, str] = {}
    for i, a in enumerate(argv):
        if not a.startswith("--") or a == "--":
            continue
        if "=" in a:
            k, v = a[2:].split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            k, v = a[2:], argv[i + 1]
        else:
            k, v = a[2:], "true"
        out[k] = v
    return out


def _redis(argv: list[str], cwd: str) -> Launch:
    conf = next((a for a in argv[1:3] if a.endswith(".conf") or (a.startswith("/") and ":" not in a)), "")
    args = _long_args(argv)
    if conf:
        return Launch("redis", (_abs(conf, cwd),), "the file on the command line", args=args)
    return Launch("redis", (), "no file on the command line (Redis shows its own title)", args=args)


def _postgres(argv: list[str], cwd: str) -> Launch:
    data = _opt(argv, "-D")
    args: dict[str, str] = {}
    for v in _opt(argv, "-c"):
        if "=" in v:
            k, val = v.split("=", 1)
            args[k.strip().replace("-", "_")] = val.strip()
    for k, v in _long_args(argv).items():
        args[k.replace("-", "_")] = v
    datadir = _abs(data[-1], cwd) if data else ""
    if datadir:
        args["data_directory"] = datadir
    conf = args.get("config_file") or (posixpath.join(datadir, "postgresql.conf") if datadir else "")
    how = "config_file on the command line" if "config_file" in args else "-D's postgresql.conf"
    return Launch("postgresql", (_abs(conf, cwd),) if conf else (), how if conf else "", args=args)


_GUNICORN_FLAGS = {"-t": "timeout", "-w": "workers", "-k": "worker_class", "-b": "bind"}
# Long options whose setting has another name (``--keep-alive`` sets ``keepalive``).
_GUNICORN_LONG = {"keep_alive": "keepalive"}


def _gunicorn(argv: list[str], cwd: str, role: str) -> Launch:
    args: dict[str, str] = {}
    for short, name in _GUNICORN_FLAGS.items():
        vals = _opt(argv, short)
        if vals:
            args[name] = vals[-1]
    for k, v in _long_args(argv).items():
        key = k.replace("-", "_")
        args[_GUNICORN_LONG.get(key, key)] = v
    conf = _opt(argv, "-c", "--config")
    app = next((a for a in reversed(argv) if ":" in a and not a.startswith("-") and "/" not in a), "")
    files = (_abs(conf[-1].removeprefix("python:"), cwd),) if conf else ()
    if not conf and "gunicorn.conf.py" not in argv:
        files = (_abs("gunicorn.conf.py", cwd),)  # gunicorn reads ./gunicorn.conf.py if present
    return Launch("gunicorn", files, "-c on the command line" if conf else "./gunicorn.conf.py if it exists",
                  args=args, script=app, role=role)


def _uvicorn(argv: list[str]) -> Launch:
    args = {k.replace("-", "_"): v for k, v in _long_args(argv).items()}
    app = next((a for a in argv[1:] if ":" in a and not a.startswith("-")), "")
    return Launch("uvicorn", (), "the command line", args=args, script=app)
