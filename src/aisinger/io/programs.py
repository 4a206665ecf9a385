"""Running the external programs the lab uses (flite, espeak-ng, fluidsynth)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from aisinger.errors import AisingerError


def run_to_wav(command_for: Callable[[Path], list[str]], *, timeout_s: float,
               what: str) -> tuple[np.ndarray, int]:
    """Run a program that writes a WAV file and read that file back.

    Args:
        command_for: builds the command line given the WAV path the program must write.
        timeout_s: seconds before the program is killed.
        what: phrase for error messages, e.g. ``"speaking 'la' with voice 'slt'"``.
    Returns:
        ``(audio, sr)``: float32 ``(channels, samples)`` and the file's sample rate in Hz.
    Raises:
        AisingerError: the program timed out, failed or wrote no file (one line, with the
        program's last stderr line).
    """
    with tempfile.TemporaryDirectory(prefix="aisinger-tool-") as tmp:
        out = Path(tmp) / "out.wav"
        cmd = command_for(out)
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise AisingerError(f"{cmd[0]} timed out {what}") from None
        if proc.returncode != 0 or not out.exists():
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise AisingerError(f"{cmd[0]} failed {what}: {msg[-1] if msg else 'no output'}")
        audio, sr = sf.read(out, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T), int(sr)
