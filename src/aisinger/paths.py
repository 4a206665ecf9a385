"""Where aisinger keeps downloaded models and cached features.

* ``AISINGER_CACHE_DIR`` overrides the cache root (default: the platform's user cache dir,
  e.g. ``~/.cache/aisinger`` on Linux).
* ``AISINGER_MODELS_DIR`` names an extra *read-only* local folder searched for assets first
  (``<dir>/<asset-name>/<file>``), for machines with no network at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "aisinger"


def cache_dir() -> Path:
    """Root of aisinger's cache (created on demand)."""
    env = os.environ.get("AISINGER_CACHE_DIR")
    root = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP_NAME))
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_cache_dir() -> Path:
    """Folder holding verified pretrained assets, one sub-folder per asset."""
    d = cache_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def local_models_dir() -> Path | None:
    """The user's own read-only asset folder (``AISINGER_MODELS_DIR``), if set."""
    env = os.environ.get("AISINGER_MODELS_DIR")
    return Path(env).expanduser() if env else None
