"""Signal-processing attacks used to test the watermark's robustness (tests and bench).

Every function takes and returns float32 audio ``(samples,)`` or ``(channels, samples)``;
codec attacks round-trip through the ``ffmpeg`` binary (libmp3lame, native AAC).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from aisinger.errors import AisingerError
from aisinger.io.audio import resample

CODEC_ARGS = {
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
    "aac": (".m4a", ["-c:a", "aac", "-b:a", "128k"]),
}
"""Lossy codecs at 128 kbit/s: file suffix and ffmpeg arguments."""


def _as2d(x: np.ndarray) -> np.ndarray:
    return x[None, :] if x.ndim == 1 else x


def codec(audio: np.ndarray, sr: int, name: str = "mp3") -> np.ndarray:
    """Encode with ``name`` ("mp3" or "aac", 128 kbit/s) and decode back (same length)."""
    suffix, args = CODEC_ARGS[name]
    x = _as2d(np.asarray(audio, dtype=np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        src, enc = Path(tmp) / "in.wav", Path(tmp) / f"enc{suffix}"
        sf.write(src, np.clip(x, -1, 1).T, sr, subtype="FLOAT")
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(enc)]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            raise AisingerError(f"ffmpeg {name} encode failed: "
                                f"{proc.stderr.decode(errors='replace')[-200:]}")
        proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(enc), "-f", "f32le",
                               "-ac", str(x.shape[0]), "-ar", str(sr), "-"], capture_output=True)
        if proc.returncode != 0:
            raise AisingerError(f"ffmpeg {name} decode failed")
    y = np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, x.shape[0]).T
    y = y[:, : x.shape[1]]
    y = np.pad(y, ((0, 0), (0, x.shape[1] - y.shape[1])))
    return y[0].copy() if np.ndim(audio) == 1 else y.copy()


def resample_roundtrip(audio: np.ndarray, sr: int, sr_mid: int) -> np.ndarray:
    """Resample to ``sr_mid`` and back to ``sr`` (soxr)."""
    y = resample(resample(audio, sr, sr_mid), sr_mid, sr)
    n = np.shape(audio)[-1]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, max(0, n - y.shape[-1]))]
    return np.pad(y[..., :n], pad)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels (no clipping: float audio)."""
    return (np.asarray(audio, dtype=np.float32) * 10 ** (db / 20)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise ``snr_db`` below the signal's mean power."""
    x = np.asarray(audio, dtype=np.float32)
    power = float(np.mean(x.astype(np.float64) ** 2))
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), x.shape)
    return (x + noise).astype(np.float32)


def crop(audio: np.ndarray, sr: int, start_s: float, seconds: float) -> np.ndarray:
    """``seconds`` of audio from ``start_s``."""
    a, b = int(round(start_s * sr)), int(round((start_s + seconds) * sr))
    return np.asarray(audio)[..., a:b].copy()


ATTACKS = ("none", "mp3", "aac", "resample16k", "resample22k", "resample48k",
           "gain+6", "gain-6", "noise20", "chain")
"""Names accepted by :func:`apply`."""


def apply(name: str, audio: np.ndarray, sr: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """Apply the attack ``name`` (see :data:`ATTACKS`); returns ``(audio, sr)``.

    ``resample48k`` returns the audio *at* 48 kHz (the detector must cope with any rate);
    ``chain`` is resample 22.05 kHz → −6 dB → noise 20 dB → MP3 128k → AAC 128k.
    """
    if name == "none":
        return audio, sr
    if name in ("mp3", "aac"):
        return codec(audio, sr, name), sr
    if name == "resample16k":
        return resample_roundtrip(audio, sr, 16_000), sr
    if name == "resample22k":
        return resample_roundtrip(audio, sr, 22_050), sr
    if name == "resample48k":
        return resample(audio, sr, 48_000), 48_000
    if name in ("gain+6", "gain-6"):
        return gain(audio, 6.0 if name == "gain+6" else -6.0), sr
    if name == "noise20":
        return add_noise(audio, 20.0, seed), sr
    if name == "chain":
        y = resample_roundtrip(audio, sr, 22_050)
        y = add_noise(gain(y, -6.0), 20.0, seed)
        return codec(codec(y, sr, "mp3"), sr, "aac"), sr
    raise AisingerError(f"unknown attack {name!r}; use one of {', '.join(ATTACKS)}")
