"""The files a person names in step 1 (I/O): logs and payload checked before a run, outputs
checked and written atomically, never over an existing file unless told."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from wizard.hosts.base import Host, HostError
from wizard.hosts.local import LocalHost
from wizard.model import WizardError
from wizard.model.cancel import within
from wizard.model.inputs import parse_logs, parse_payload
from wizard.model.payload import escape_bytes

#: how long a look at the output directory may take (a hung network mount must not hang us)
CHECK_TIMEOUT = 3.0

_T = TypeVar("_T")


async def _bounded(func: Callable[[], _T], path: Path, what: str, timeout: float) -> _T:
    try:
        return await within(asyncio.to_thread(func), timeout)
    except TimeoutError:
        raise WizardError(f"bad {what} path", f"{path}: no answer from the file system "
                                              f"within {timeout:g} s") from None


def output_problem(path: Path, what: str, force: bool) -> WizardError | None:
    """Why ``path`` cannot take the ``what`` output (report, json), or None when it can.

    A symbolic link is judged by what it points to (the file is written there, the link
    kept); a dangling one is refused now rather than after the run.
    """
    bad = f"bad {what} path"
    # What the name opens, judged first: a /proc or /dev/fd link to a pipe or a terminal
    # resolves to no path (realpath gives 'pipe:[N]'), but stat() follows it.
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        return WizardError(bad, f"{path} is not a regular file (- writes to standard output)")
    if os.path.islink(path):
        if not os.path.exists(path):
            return WizardError(bad, f"{path} is a symbolic link to {os.readlink(path)}, which does not "
                                    "exist (or loops)")
        path = Path(os.path.realpath(path))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return WizardError(bad, f"{path}: directory {parent} does not exist")
    if path.is_dir():
        return WizardError(bad, f"{path} is a directory")
    if path.exists() and not path.is_file():
        return WizardError(bad, f"{path} is not a regular file (- writes to standard output)")
    if path.exists() and not force:
        return WizardError(f"{what} exists", f"{path}: not overwritten without --force")
    if not os.access(parent, os.W_OK):
        return WizardError(bad, f"{parent} is not writable")
    return None


async def check_output(path_text: str | Path | None, what: str, force: bool,
                       timeout: float = CHECK_TIMEOUT) -> Path | None:
    """The path for an output once it may be written there; None when none was asked for."""
    if path_text is None or not str(path_text):
        return None
    path = Path(path_text)
    problem = await _bounded(lambda: output_problem(path, what, force), path, what, timeout)
    if problem is not None:
        raise problem
    return path


async def existing(paths: list[Path], timeout: float = CHECK_TIMEOUT) -> list[Path]:
    """Those of ``paths`` that exist already (a file, or anything else by that name)."""
    if not paths:
        return []
    return await _bounded(lambda: [p for p in paths if os.path.lexists(p)], paths[0], "output", timeout)


def write_atomic(path: Path, text: str | Iterable[str], force: bool) -> None:
    """Write via a temp file in the same directory; link (no overwrite) or replace (--force).
    Through a symbolic link, the file it points to is written and the link kept. ``text``
    may come in parts (a watch's session JSON, its events one at a time)."""
    if os.path.islink(path) and os.path.exists(path):
        path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for part in [text] if isinstance(text, str) else text:
                fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise WizardError("output exists", f"{path}: appeared during the run; not overwritten") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


async def check_logs(patterns: list[str], server: Host) -> list[str]:
    """Every --log path or glob must name readable files in a local or netns context."""
    parse_logs(patterns)
    if not server.spec.startswith(("local", "netns:")):
        return patterns  # read over ssh later; an unreadable file is then a finding
    for pattern in patterns:
        paths = await server.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
        if not paths:
            raise WizardError("unreadable log", f"{pattern}: no file matches")
        for path in paths:
            try:
                info = await server.stat(path)
                if info.is_file:
                    await server.read(path, max_bytes=1)
            except HostError as exc:
                reason = str(exc).removeprefix(f"cannot read {path}: ")
                raise WizardError("unreadable log", f"{path}: {reason}") from None
            if not info.is_file:
                raise WizardError("unreadable log", f"{path}: not a regular file")
    return patterns


async def read_payload(text: str | None) -> str | None:
    """The payload for Answers: as typed, or @FILE (read here, 1 MiB at most) as escapes."""
    text = parse_payload(text)
    if text is None:
        return None
    # The session keeps the payload as typed (escapes and all, JSON-safe); the probe turns
    # it into exact bytes (payload_bytes), so \xff is the byte FF, not two UTF-8 bytes.
    if not text.startswith("@"):
        return text
    path = text[1:]
    try:
        data = await LocalHost().read(path, max_bytes=1 << 20)
    except HostError as exc:
        raise WizardError("unreadable payload", f"{path}: {str(exc).removeprefix(f'cannot read {path}: ')}") from None
    return escape_bytes(data)
