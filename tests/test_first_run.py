"""A newcomer always sees what is happening (issue #15 item 14): weight downloads say so,
`speak` reports its stages, and no third-party chatter (matplotlib's "generated new
fontManager") interrupts the progress.  The set-up's pip output: tests/test_setup_scripts.py;
the demo's stage lines: tests/pipelines/test_demo_rerun.py; speak's stages:
tests/pipelines/test_cover.py."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys

import numpy as np

from aisinger import assets


def test_asset_download_prints_a_line(tmp_path, tmp_cache, monkeypatch, caplog):
    payload = b"weights" * 1000
    src = tmp_path / "w.bin"
    src.write_bytes(payload)
    a = assets.Asset("test-dl", "a test file", "MIT", "tests",
                     (assets.AssetFile("w.bin", hashlib.sha256(payload).hexdigest(),
                                       len(payload), urls=(src.as_uri(),)),), offline=False)
    monkeypatch.setitem(assets.REGISTRY, a.name, a)
    with caplog.at_level(logging.INFO, logger="aisinger"):
        assets.fetch(a.name)
    said = [m for m in caplog.messages if "test-dl" in m]
    assert any(m.startswith("downloading test-dl: w.bin") for m in said), caplog.messages
    assert any(m.startswith("downloaded test-dl") for m in said), caplog.messages
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="aisinger"):
        assets.fetch(a.name)                       # cached: nothing to say
    assert not [m for m in caplog.messages if "test-dl" in m]


def test_cli_hides_matplotlib_font_cache_chatter(tmp_path):
    """A fresh matplotlib (no font cache yet) used by a command: no 'generated new
    fontManager' line between aisinger's own output."""
    import soundfile as sf

    t = np.arange(44100) / 44100
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
             44100)
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "AISINGER_PROGRESS": "0"}
    p = subprocess.run([sys.executable, "-m", "aisinger", "features", str(tmp_path / "tone.wav"),
                        "-o", str(tmp_path / "f.npz"), "--f0", "dsp", "--plot",
                        str(tmp_path / "p.png")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "p.png").is_file() and (tmp_path / "mpl").is_dir()
    assert "fontManager" not in p.stdout + p.stderr, p.stderr
