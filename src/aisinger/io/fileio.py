"""Atomic file writes: the one way aisinger puts a file in place.

Every output is written to a temp file in the target's own folder (same file system, name
ending in the real suffix so format-by-extension writers work) and then renamed over the target
with :func:`os.replace`.  A crash or error at any point leaves either the old file or the new
one under the real name — never a half-written file — and removes the temp file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on normal exit it replaces ``path`` atomically.

    Parent folders are created.  On an exception the temp file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f".tmp{path.suffix}",
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
