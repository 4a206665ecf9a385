"""Atomic file writes: the one way aisinger puts a file in place.

Every output is written to a temp file in the target's own folder (same file system, name
ending in the real suffix so format-by-extension writers work) and then renamed over the target
with :func:`os.replace`.  A crash or error at any point leaves either the old file or the new
one under the real name — never a half-written file — and removes the temp file.

Temp names all start with :data:`TEMP_PREFIX` followed by the writer's process id
(``.aisinger-tmp-<pid>-<random>.<stem><suffix>``), so a temp file left by a killed run (kill -9
skips every ``finally``) is recognisable: :func:`clean_stale` removes those whose owner process
is gone (or whose pid now belongs to a younger process) and is called by the writers of AI
outputs (:func:`aisinger.label.write_labelled`) and by the service worker on start.
:func:`atomic_dir` does the same for a whole folder (``cover --stems``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aisinger.errors import AisingerError


def _default_file_mode() -> int:
    """Mode a plain ``open(path, "w")`` would give: 0o666 minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


COPY_CHUNK = 1 << 20
"""Bytes read at a time when hashing or copying files."""


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in :data:`COPY_CHUNK` blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(COPY_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


TEMP_PREFIX = ".aisinger-tmp-"
"""Start of every temp file/folder name aisinger writes beside an output (then ``<pid>-``)."""
_TEMP_RE = re.compile(r"^\.aisinger-tmp-(\d+)-")
_LEGACY_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]{1,5})?$")
LEGACY_TEMP_AGE_S = 3600.0
"""Temp files of older aisinger versions (``.<stem>.<8 chars>.tmp<suffix>``, no pid) are
removed by :func:`clean_stale` once they are this old."""


def temp_prefix() -> str:
    """The prefix of this process's temp names: ``.aisinger-tmp-<pid>-``."""
    return f"{TEMP_PREFIX}{os.getpid()}-"


def _pid_started(pid: int) -> float | None:
    """Start time (epoch seconds) of process ``pid``; None when it does not exist."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        return os.stat(f"/proc/{pid}").st_ctime
    except OSError:
        return 0.0  # alive, start unknown (no /proc): treat as old enough to own anything


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove aisinger temp files/folders in ``folder`` left by runs that were killed.

    A temp entry is stale when the process named in it is gone, or when that pid now belongs
    to a process started after the entry was last written (pid reuse).  Entries of this
    process and of other live runs are kept.  Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    me, now = os.getpid(), time.time()
    for e in entries:
        m = _TEMP_RE.match(e.name)
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if m:
            pid = int(m.group(1))
            if pid == me:
                continue
            started = _pid_started(pid)
            if started is not None and started <= mtime + 1.0:
                continue  # its owner is still running
        elif not (_LEGACY_TEMP_RE.match(e.name) and now - mtime > LEGACY_TEMP_AGE_S):
            continue
        _remove(Path(e.path))
        removed.append(Path(e.path))
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on normal exit it replaces the folder ``path``.

    The new folder is renamed into place whole, so ``path`` is never seen half-written; an
    existing ``path`` is first renamed to a temp name and removed afterwards (a kill between
    the two renames leaves no ``path`` and a temp folder that :func:`clean_stale` removes).
    On an exception the temp folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(), suffix=f".{path.name[:60]}",
                                dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        old = None
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(), suffix=".old", dir=path.parent))
            os.replace(path, old / "x")  # park the old folder inside a stale-cleanable temp
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on normal exit it replaces ``path`` atomically.

    Parent folders are created.  On an exception the temp file is removed and ``path`` is left
    as it was.  The temp name starts with :func:`temp_prefix` (see :func:`clean_stale`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(), suffix=f".{path.stem[:40]}{path.suffix}",
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; outputs get normal permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Atomically write ``obj`` as UTF-8 JSON (non-ASCII kept readable)."""
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def read_json_object(path: str | Path) -> dict:
    """A JSON file that must hold an object; one-line AisingerError naming the file when it is
    unreadable, not JSON or not an object."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AisingerError(f"{path}: unreadable JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise AisingerError(f"{path}: expected a JSON object")
    return doc
