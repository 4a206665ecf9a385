"""Per-file feature cache.

An entry is identified by

* the *kind* of feature ("content", "f0", "loudness", ...),
* the audio's identity (:func:`audio_key`: SHA-256 of the file's bytes, or of a
  float32 array's bytes + shape + sample rate),
* the extractor's configuration (a dataclass or dict, as canonical JSON: sorted
  keys, no whitespace), and
* a code version string (:data:`CODE_VERSION`, bumped whenever an extractor's
  output changes for the same input and config).

Entries are ``.npz`` files (one array ``data`` + the JSON of the key fields in
``meta``) under ``aisinger.paths.cache_dir() / "features" / <kind> / <key[:2]>``.
Writes go to a temp file in the same folder and are renamed into place
(``os.replace``), so concurrent writers and crashes never leave a half entry. A
missing, truncated or corrupt entry, or one whose ``meta`` does not match, is
recomputed and rewritten; reading never raises because of the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aisinger.errors import AisingerError
from aisinger.io.fileio import atomic_path, sha256_file
from aisinger.paths import cache_dir

__all__ = ["CODE_VERSION", "audio_key", "config_json", "entry_key", "entry_path",
           "cached", "lookup", "clear", "features_cache_dir"]

CODE_VERSION = "features-1"
"""Version of the feature extractors' output; part of every cache key."""

_FILE_KEYS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> digest
_FILE_KEYS_LOCK = threading.Lock()


def features_cache_dir(root: str | Path | None = None) -> Path:
    """Folder of the feature cache: ``root`` if given, else
    ``aisinger.paths.cache_dir() / "features"``."""
    if root is not None:
        return Path(root)

    return cache_dir() / "features"


def audio_key(source: str | Path | np.ndarray, sr: int | None = None) -> str:
    """Identity of an audio input, a hex string.

    * a path: ``"file-" + sha256(file bytes)`` (memoised per process by path,
      size and mtime; the file is only read);
    * an array: ``"array-" + sha256(float32 C-order bytes, shape, sr)``; ``sr``
      is required.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            st = path.stat()
        except OSError as exc:
            raise AisingerError(f"{path}: cannot read file ({exc.strerror})") from None
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        with _FILE_KEYS_LOCK:
            digest = _FILE_KEYS.get(memo)
        if digest is None:
            digest = sha256_file(path)
            with _FILE_KEYS_LOCK:
                _FILE_KEYS[memo] = digest
        return "file-" + digest
    if sr is None:
        raise AisingerError("audio_key: a sample rate is needed for an array")
    arr = np.ascontiguousarray(np.asarray(source, dtype=np.float32))
    h = hashlib.sha256()
    h.update(json.dumps({"shape": list(arr.shape), "sr": int(sr)}).encode())
    h.update(memoryview(arr).cast("B"))
    return "array-" + h.hexdigest()


def _jsonable(obj: Any) -> Any:
    """Plain JSON-able form of configs: dataclasses, dicts, tuples, Paths, numpy scalars."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__,
                **{f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot put {type(obj).__name__} into a cache key")


def config_json(config: Any) -> str:
    """Canonical JSON of an extractor config (sorted keys, no spaces)."""
    return json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))


def entry_key(kind: str, audio: str, config: Any, version: str = CODE_VERSION) -> tuple[str, str]:
    """(hex key, meta JSON) of a cache entry."""
    meta = json.dumps({"kind": kind, "audio": audio, "config": json.loads(config_json(config)),
                       "version": version}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(meta.encode()).hexdigest(), meta


def entry_path(kind: str, key: str, root: str | Path | None = None) -> Path:
    """Where the entry ``key`` of ``kind`` is stored."""
    if not kind or not all(c.isalnum() or c in "-_" for c in kind):
        raise ValueError(f"invalid cache kind {kind!r}")
    return features_cache_dir(root) / kind / key[:2] / f"{key}.npz"


def _read(path: Path, meta: str) -> np.ndarray | None:
    """The cached array, or None when missing/corrupt/mismatched."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["meta"]) != meta:
                return None
            return np.array(z["data"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _write(path: Path, data: np.ndarray, meta: str) -> None:
    """Atomically write an entry (temp file in the same folder + os.replace)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, data=data, meta=np.array(meta))


def lookup(kind: str, audio: str, config: Any, *, root: str | Path | None = None,
           version: str = CODE_VERSION) -> np.ndarray | None:
    """The cached array for (kind, audio key, config, version), or None (nothing computed)."""
    key, meta = entry_key(kind, audio, config, version)
    return _read(entry_path(kind, key, root), meta)


def cached(
    kind: str,
    audio: str,
    config: Any,
    compute: Callable[[], np.ndarray],
    *,
    root: str | Path | None = None,
    version: str = CODE_VERSION,
    enabled: bool = True,
) -> np.ndarray:
    """Return the cached array for (kind, audio key, config, version), or compute
    it with ``compute()``, store it and return it.

    ``audio`` is an :func:`audio_key`; ``config`` a dataclass/dict/None. A cache
    that cannot be written (read-only folder, full disk) only costs the
    recomputation next time. ``enabled=False`` just calls ``compute()``.
    """
    if not enabled:
        return compute()
    key, meta = entry_key(kind, audio, config, version)
    path = entry_path(kind, key, root)
    hit = _read(path, meta)
    if hit is not None:
        return hit
    data = np.asarray(compute())
    try:
        _write(path, data, meta)
    except OSError:
        pass
    return data


def clear(kind: str | None = None, root: str | Path | None = None) -> int:
    """Delete cached entries (of one kind, or all); returns the number removed."""
    base = features_cache_dir(root)
    folder = base / kind if kind else base
    removed = 0
    if folder.is_dir():
        for p in folder.rglob("*.npz"):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed
