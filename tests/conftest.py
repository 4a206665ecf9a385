"""Shared fixtures.  Tests use real audio they make themselves (tones, TTS, WORLD, fluidsynth)
or the example song fetched from its pinned wheel; pretrained assets come from the normal user
cache (downloaded once, SHA-256 verified)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("AISINGER_PROGRESS", "0")

SR = 44100


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """A sine tone, float32 ``(samples,)``."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty, private aisinger cache (for tests of caching/downloading)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("AISINGER_CACHE_DIR", str(d))
    monkeypatch.delenv("AISINGER_MODELS_DIR", raising=False)
    return d
