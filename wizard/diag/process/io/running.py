"""The configuration the running server really uses, read in the server context (I/O).

From the listener's pids: each one's master (a worker's parent of the same server), its
command line and working directory (/proc), the configuration file its command line names
(or the program's default), its includes, and the log files its configuration and its open
file descriptors name. Nothing is read for a server that does not own the listener.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from wizard.diag.process.io.procinfo import parse_comm
from wizard.diag.process.parse import apps, haproxy, httpd, nginx
from wizard.diag.process.parse.cmdline import Launch, identify, launch, split_cmdline
from wizard.diag.process.parse.settings import ServerConfig, address_in
from wizard.hosts.base import Host, HostError

CONFIG_CAP = 1 << 20
MAX_FILES = 64
MAX_DEPTH = 4  # how far up a worker's ancestors its master is looked for


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    argv: tuple[str, ...]
    server: str


async def read_proc(host: Host, pid: int) -> Proc | None:
    try:
        stat = (await host.read(f"/proc/{pid}/stat", 0, 4096)).decode("utf-8", "replace")
        raw = await host.read(f"/proc/{pid}/cmdline", 0, 8192)
    except HostError:
        return None
    comm = parse_comm(stat)
    rest = stat[stat.rfind(")") + 2:].split()
    ppid = int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else 0
    argv = split_cmdline(raw)
    return Proc(pid, ppid, comm, tuple(argv), identify(comm, argv))


async def master_of(host: Host, pid: int) -> Proc | None:
    """The top process of ``pid``'s server: parents are followed while they are the same
    server (or while ``pid`` itself names none, as a spawned Python worker)."""
    proc = await read_proc(host, pid)
    if proc is None:
        return None
    for _ in range(MAX_DEPTH):
        if proc.ppid <= 1:
            break
        parent = await read_proc(host, proc.ppid)
        if parent is None or not parent.server or (proc.server and parent.server != proc.server):
            break
        proc = parent
    return proc if proc.server else None


async def readlinks(host: Host, paths: list[str]) -> dict[str, str]:
    """Symlink targets (``readlink`` run in the context: /proc/PID/cwd, fds)."""
    if not paths:
        return {}
    out = await host.run(["readlink", "--", *paths], timeout=3, max_bytes=1 << 20)
    lines = out.text.splitlines() if out.stdout else []
    # readlink prints the targets it could read, in order; missing ones leave no line
    return dict(zip(paths, lines, strict=True)) if len(lines) == len(paths) else {}


async def open_logs(host: Host, pid: int) -> list[str]:
    """Regular files the process holds open for writing logs (by their names)."""
    try:
        fds = await host.glob(f"/proc/{pid}/fd/*")
    except HostError:
        return []
    targets = await readlinks(host, fds[:256])
    return sorted({t for t in targets.values() if t.startswith("/") and not t.startswith(("/dev/", "/proc/"))
                   and (t.endswith((".log", "_log", "log.txt")) or "/log" in t)
                   and " (deleted)" not in t})


async def _text(host: Host, path: str) -> str:
    return (await host.read(path, 0, CONFIG_CAP)).decode("utf-8", "replace")


async def _glob(host: Host, pattern: str) -> list[str]:
    if any(c in pattern for c in "*?["):
        return sorted(await host.glob(pattern))
    return [pattern]


async def server_config(host: Host, proc: Proc, port: int, source: str, target: str) -> ServerConfig:
    """Read what ``proc`` (a server's master) uses; what cannot be read is said in notes."""
    cwd = (await readlinks(host, [f"/proc/{proc.pid}/cwd"])).get(f"/proc/{proc.pid}/cwd", "")
    how = launch(proc.server, list(proc.argv), cwd)
    config = ServerConfig(proc.server, proc.pid)
    if how.how:
        config.notes.append(f"configuration: {', '.join(how.config) or 'none'} ({how.how})")
    try:
        await READERS[proc.server](host, how, port, source, target, config)
    except HostError as exc:
        config.notes.append(exc.message)
    for log in await open_logs(host, proc.pid):
        if log not in config.logs:
            config.logs.append(log)
    return config


def _access(source: str):
    return lambda spec: address_in(source, spec) if source else None


async def _nginx(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    main = how.config[0]
    base = posixpath.dirname(main)
    cache: dict[str, list[nginx.Directive]] = {}

    async def load(path: str) -> list[nginx.Directive]:
        if path not in cache and len(cache) < MAX_FILES:
            cache[path] = nginx.parse(await _text(host, path), path)
            config.files.append(path)
        return cache.get(path, [])

    top = await load(main)
    # read every included file first (pure expansion needs them at hand), breadth first
    todo = list(nginx.includes(top))
    resolved: dict[str, list[str]] = {}
    while todo and len(cache) < MAX_FILES:
        pattern = todo.pop(0)
        if pattern in resolved:
            continue
        full = pattern if pattern.startswith("/") else posixpath.join(base, pattern)
        resolved[pattern] = await _glob(host, full)
        for path in resolved[pattern]:
            try:
                todo += list(nginx.includes(await load(path)))
            except HostError as exc:
                config.notes.append(exc.message)
    tree = nginx.expand(top, lambda pat: [cache[p] for p in resolved.get(pat, []) if p in cache])
    nginx.settings(tree, port, config, _access(source))


async def _haproxy(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    files: list[tuple[str, str]] = []
    for path in how.config:
        try:
            files.append((path, await _text(host, path)))
        except HostError:
            for p in sorted(await host.glob(posixpath.join(path, "*.cfg")))[:MAX_FILES]:
                files.append((p, await _text(host, p)))
    config.files += [p for p, _ in files]
    haproxy.settings(haproxy.parse(files), port, source, config)


async def _apache(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    main = how.config[0]
    lines = httpd.apache_lines(await _text(host, main), main)
    config.files.append(main)
    root = how.args.get("ServerRoot") or next(
        (a[0] for n, a, _, _ in lines if n.lower() == "serverroot" and a), posixpath.dirname(main))
    out: list = []
    todo = [lines]
    while todo and len(config.files) < MAX_FILES:
        cur = todo.pop(0)
        for item in cur:
            out.append(item)
            name, args = item[0], item[1]
            if name.lower() in ("include", "includeoptional") and args:
                pat = args[0] if args[0].startswith("/") else posixpath.join(root, args[0])
                for p in await _glob(host, pat):
                    try:
                        sub = httpd.apache_lines(await _text(host, p), p)
                    except HostError:
                        continue
                    config.files.append(p)
                    todo.append(sub)
    httpd.apache_settings(out, port, config, _access(source))


async def _caddy(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    path = how.config[0]
    httpd.caddy_settings(await _text(host, path), path, config)
    config.files.append(path)


async def _gunicorn(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    text, path = "", ""
    if how.config:
        try:
            text, path = await _text(host, how.config[0]), how.config[0]
            config.files.append(path)
        except HostError:
            if "-c" in how.how:
                raise
            config.notes.append(f"no {how.config[0]}: gunicorn's defaults and its command line")
    apps.gunicorn_settings(text, path, how.args, config)


async def _uvicorn(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    apps.uvicorn_settings(how.args, config)


async def _node(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    exe = (await readlinks(host, [f"/proc/{config.pid}/exe"])).get(f"/proc/{config.pid}/exe", "")
    version = ""
    if exe:
        out = await host.run([exe, "--version"], timeout=3, max_bytes=256)
        version = out.text.strip() if out.ok else ""
    text = ""
    if how.script:
        try:
            text = await _text(host, how.script)
            config.files.append(how.script)
        except HostError as exc:
            config.notes.append(exc.message)
    apps.node_settings(text, how.script, version, config)


# Where a Redis whose title hides its command line may have its file: its working directory
# (its ``dir``) and the packages' place; a file counts only once shown to be the server's.
REDIS_CONF_DIRS = ("{cwd}", "/etc/redis", "/etc")


async def _redis_file(host: Host, pid: int, port: int) -> tuple[str, str, str]:
    """The redis.conf the server with ``pid`` runs with, its text and why it is that one."""
    cwd = (await readlinks(host, [f"/proc/{pid}/cwd"])).get(f"/proc/{pid}/cwd", "")
    seen: set[str] = set()
    for where in REDIS_CONF_DIRS:
        base = where.format(cwd=cwd)
        if not base:
            continue
        for path in (await _glob(host, posixpath.join(base, "*redis*.conf")))[:MAX_FILES]:
            if path in seen:
                continue
            seen.add(path)
            try:
                text = await _text(host, path)
            except HostError:
                continue
            pidfile = apps.redis_identity(text).get("pidfile", "")
            held = ""
            if pidfile.startswith("/"):
                try:
                    held = (await host.read(pidfile, 0, 64)).decode("ascii", "replace")
                except HostError:
                    held = ""
            why = apps.redis_runs_with(text, port, cwd, held, pid)
            if why:
                return path, text, why
    return "", "", ""


async def _redis(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    text, path = "", ""
    if how.config:
        text, path = await _text(host, how.config[0]), how.config[0]
        config.files.append(path)
    else:
        path, text, why = await _redis_file(host, config.pid, port)
        if path:
            config.files.append(path)
            config.notes.append(f"its file is {path}, shown by {why}")
    live: dict[str, str] = {}
    if await host.which("redis-cli"):
        out = await host.run(["redis-cli", "-h", target, "-p", str(port), "CONFIG", "GET", "*"],
                             timeout=3, max_bytes=1 << 20)
        words = out.text.splitlines() if out.ok else []
        if words and not any("NOAUTH" in w or "ERR" in w for w in words[:2]):
            live = dict(zip(words[::2], words[1::2], strict=False))
            config.notes.append("values read from the server itself (redis-cli CONFIG GET)")
        elif any("max number of clients reached" in w for w in words[:2]):
            config.notes.append("redis-cli CONFIG GET was refused: ERR max number of clients reached "
                                "(the server is at its maxclients now)")
            config.refusals.append("it refused redis-cli CONFIG GET from the server context with "
                                   "ERR max number of clients reached: it is at its maxclients now")
        else:
            config.notes.append("redis-cli CONFIG GET did not answer (a password, or another bind)")
    apps.redis_settings(text, path, how.args, live, config)


async def _pg_file(host: Host, path: str, config: ServerConfig, depth: int = 0) -> list:
    """A postgresql.conf's settings in the order PostgreSQL reads them: an ``include``,
    ``include_if_exists`` or ``include_dir`` (its ``*.conf`` files by name) is read in place,
    relative to the including file's directory."""
    lines = apps.pg_lines(await _text(host, path), path)
    config.files.append(path)
    out: list = []
    for item in lines:
        name, value, at, _ = item
        if name not in ("include", "include_if_exists", "include_dir"):
            out.append(item)
            continue
        if depth >= MAX_DEPTH or len(config.files) >= MAX_FILES:
            config.notes.append(f"{at}: {name} '{value}' not followed (too deep or too many files)")
            continue
        inc = value if value.startswith("/") else posixpath.join(posixpath.dirname(at), value)
        paths = sorted(await host.glob(posixpath.join(inc, "*.conf"))) if name == "include_dir" else [inc]
        for sub in paths:
            try:
                out += await _pg_file(host, sub, config, depth + 1)
            except HostError as exc:
                if name != "include_if_exists":
                    config.notes.append(exc.message)
    return out


async def _postgres(host: Host, how: Launch, port: int, source: str, target: str, config: ServerConfig) -> None:
    lines: list = await _pg_file(host, how.config[0], config) if how.config else []
    data = how.args.get("data_directory") or next((v for n, v, _, _ in reversed(lines) if n == "data_directory"), "")
    if data:
        auto = posixpath.join(data, "postgresql.auto.conf")  # ALTER SYSTEM's file, read last
        try:
            lines += apps.pg_lines(await _text(host, auto), auto)
            config.files.append(auto)
        except HostError:
            pass
    apps.pg_settings(lines, {}, how.args, config)
    hba = how.args.get("hba_file") or next((v for n, v, _, _ in reversed(lines) if n == "hba_file"), "") or (
        posixpath.join(data, "pg_hba.conf") if data else "")
    if hba:
        try:
            config.rules += apps.pg_hba_rules(await _text(host, hba), hba, source)
            config.files.append(hba)
        except HostError as exc:
            config.notes.append(exc.message)


READERS = {"nginx": _nginx, "haproxy": _haproxy, "apache": _apache, "caddy": _caddy, "gunicorn": _gunicorn,
           "uvicorn": _uvicorn, "node": _node, "redis": _redis, "postgresql": _postgres}


async def running_configs(host: Host, pids: list[int], port: int, source: str,
                          target: str) -> tuple[list[ServerConfig], list[str]]:
    """The configurations of the servers that own ``pids`` (one per master), and the pids
    that are no server this knows."""
    masters: dict[int, Proc] = {}
    unknown: list[str] = []
    for pid in pids:
        m = await master_of(host, pid)
        if m is None:
            p = await read_proc(host, pid)
            unknown.append(f"pid {pid} ({p.comm if p else 'gone'})")
        elif m.pid not in masters:
            masters[m.pid] = m
    configs = [await server_config(host, m, port, source, target) for m in masters.values()]
    return configs, unknown
