"""The README's main job on the embedded default: separate the real example song.

Ground truth for a real song: Whisper base transcribes the example's vocal line as
"It always seems like time stands still when I'm with you." (see ../shared/ASSETS.md).  The
separated vocal stem must keep those words; the accompaniment stem must have lost them.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from aisinger.io import audio
from aisinger.eval.intelligibility import error_rates, transcribe

LYRICS = "It always seems like time stands still when I'm with you."


def test_separate_example_song_cli(tmp_path):
    out = tmp_path / "stems"
    proc = subprocess.run([sys.executable, "-m", "aisinger", "separate", "--example", "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "vocals:" in proc.stdout and "accompaniment:" in proc.stdout
    voc, sr = audio.load(out / "vocals.wav")
    acc, sr2 = audio.load(out / "accompaniment.wav")
    assert sr == sr2 == 44100 and voc.shape == acc.shape and voc.shape[0] == 2
    assert abs(voc.shape[1] / sr - 10.9) < 0.2

    def cer(x):
        mono16 = audio.resample(audio.to_mono(x), sr, 16000)
        return error_rates(LYRICS, transcribe(mono16, 16000, "en"), "en")["cer"]

    assert cer(voc) < 0.1
    assert cer(acc) > 0.6
    # the stems are not trivial: each carries real energy
    assert np.sqrt(np.mean(voc ** 2)) > 0.01 and np.sqrt(np.mean(acc ** 2)) > 0.01
