"""Project-made singing for the voice-model tests: flite voices sung to seeded melodies, and
a two-clip dataset folder (one train clip, one validation clip) with a self-consent record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aisinger.consent import save_consent, self_consent
from aisinger.io.audio import save
from aisinger.lab import VOICES, make_melody, render
from aisinger.lab.lyrics import make_lyrics

SR = 44100


def sing(voice: str, seed: int, n_notes: int) -> np.ndarray:
    """``voice`` (a lab voice name) singing ``n_notes`` seeded notes of English syllables."""
    notes = make_melody(n_notes, seed=seed)
    syl = list(make_lyrics("en", len(notes), np.random.default_rng(seed)).syllables)
    return render(syl, notes, VOICES[voice], sr=SR, seed=seed).audio


def make_dataset(root: Path, n_notes: int) -> Path:
    """A dataset folder at ``root``: clips/c0.wav (train) and c1.wav (validation), sung by
    flite-slt, + dataset.json + consent.json."""
    clips = []
    for i, split in enumerate(["train", "validation"]):
        save(root / "clips" / f"c{i}.wav", sing("flite-slt", seed=i, n_notes=n_notes), SR)
        clips.append({"id": f"c{i}", "file": f"clips/c{i}.wav", "split": split})
    (root / "dataset.json").write_text(json.dumps({"name": "slt", "clips": clips}))
    save_consent(self_consent("Lab SLT"), root / "consent.json")
    return root


def kill_after_checkpoint(code: str, checkpoint: Path, timeout_s: float = 300) -> None:
    """Run ``python -c code`` (a training call), SIGKILL it about a second after
    ``checkpoint`` first appears, and wait for it to die."""
    proc = subprocess.Popen([sys.executable, "-c", code],
                            env={**os.environ, "AISINGER_PROGRESS": "0"})
    deadline = time.monotonic() + timeout_s
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
