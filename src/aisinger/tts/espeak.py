"""espeak-ng speech for languages without an intelligible neural voice yet (Cantonese)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from aisinger.errors import AisingerError

TIMEOUT_S = 60


def synthesize(text: str, voice: str, pitch: int | None = None, speed: int | None = None
               ) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng voice ``voice``; ``(float32 mono, 22050)``."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AisingerError("espeak-ng not found on PATH; install it (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="aisinger-espeak-") as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [exe, "-v", voice, "-w", str(out)]
        if pitch is not None:
            cmd += ["-p", str(pitch)]
        if speed is not None:
            cmd += ["-s", str(speed)]
        try:
            proc = subprocess.run(cmd + ["--", text], capture_output=True, timeout=TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise AisingerError(f"espeak-ng timed out speaking {text[:60]!r}") from None
        if proc.returncode != 0 or not out.exists():
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise AisingerError(f"espeak-ng failed speaking {text[:60]!r}: "
                                f"{msg[-1] if msg else 'no output'}")
        audio, sr = sf.read(out, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.mean(axis=1)), int(sr)
