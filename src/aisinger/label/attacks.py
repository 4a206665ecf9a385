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


def sox(audio: np.ndarray, sr: int, *effects: str) -> np.ndarray:
    """Run ``audio`` through the ``sox`` effects chain ``effects`` (e.g. ``"tempo", "-m",
    "1.1"``); the rate stays ``sr`` (sox adds its own high-quality ``rate`` where needed).
    The length changes with ``speed`` / ``tempo``."""
    x = _as2d(np.asarray(audio, dtype=np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, np.clip(x, -1, 1).T, sr, subtype="FLOAT")
        cmd = ["sox", "-V1", str(src), "-e", "floating-point", "-b", "32", str(dst),
               *effects, "rate", "-v", str(sr)]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            raise AisingerError(f"sox {' '.join(effects)} failed: "
                                f"{proc.stderr.decode(errors='replace')[-200:]}")
        y, _ = sf.read(dst, dtype="float32", always_2d=True)
    y = y.T
    return y[0].copy() if np.ndim(audio) == 1 else y.copy()


def speed(audio: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Resampled playback (sox ``speed``): ``factor`` × faster, pitch × ``factor`` too."""
    return sox(audio, sr, "speed", f"{factor:.6g}")


def tempo(audio: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Time-stretch keeping the pitch (sox ``tempo -m``, WSOLA tuned for music)."""
    return sox(audio, sr, "tempo", "-m", f"{factor:.6g}")


def pitch(audio: np.ndarray, sr: int, cents: float) -> np.ndarray:
    """Pitch shift by ``cents`` keeping the duration (sox ``pitch``)."""
    return sox(audio, sr, "pitch", f"{cents:.6g}")


def reverb(audio: np.ndarray, sr: int, amount: float = 50.0) -> np.ndarray:
    """Room reverb (sox ``reverb``, reverberance ``amount`` %), wet + dry, same length."""
    x = np.asarray(audio, dtype=np.float32)
    y = sox(x, sr, "reverb", f"{amount:.6g}")
    n = x.shape[-1]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, max(0, n - y.shape[-1]))]
    return np.pad(y[..., :n], pad)


def bandlimit(audio: np.ndarray, sr: int, rate: int = 16_000) -> np.ndarray:
    """Band-limit to a ``rate`` Hz channel (resample there and back): nothing above
    ``rate / 2`` survives."""
    return resample_roundtrip(audio, sr, rate)


def mix_under(audio: np.ndarray, other: np.ndarray, db: float = -6.0) -> np.ndarray:
    """Mix ``audio`` ``db`` below ``other`` (RMS over the overlap; ``other`` is looped or cut
    to the length of ``audio``).  ``other`` must have the same rate and channel count rules
    (mono is broadcast)."""
    x = np.asarray(audio, dtype=np.float32)
    o = np.asarray(other, dtype=np.float32)
    o = np.resize(o, o.shape[:-1] + (x.shape[-1],)) if o.ndim == 2 else \
        np.resize(o, x.shape[-1])
    rms_x = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    rms_o = float(np.sqrt(np.mean(o.astype(np.float64) ** 2)))
    if rms_x <= 0 or rms_o <= 0:
        return x.copy()
    g = rms_o / rms_x * 10 ** (db / 20)
    y = x * g + (o if o.ndim == x.ndim else (o.mean(axis=0) if o.ndim > x.ndim else o[None]))
    peak = float(np.abs(y).max())
    return (y / peak if peak > 1.0 else y).astype(np.float32)


ATTACKS = ("none", "mp3", "aac", "resample16k", "resample22k", "resample48k",
           "gain+6", "gain-6", "noise20", "chain")
"""Names accepted by :func:`apply` (the v2 attack set; see :data:`SCALE_ATTACKS`)."""

SCALE_ATTACKS = ("speed0.8", "speed0.9", "speed1.03", "speed1.1", "speed1.25",
                 "tempo0.85", "tempo0.95", "tempo1.05", "tempo1.15",
                 "pitch-200", "pitch-100", "pitch+30", "pitch+100", "pitch+200")
"""Single speed / tempo / pitch edits: ``speedF`` (resampled playback), ``tempoF``
(time-stretch), ``pitch±C`` (cents, duration kept)."""

CHAINS = ("speed0.8+mp3", "speed1.25+aac", "tempo0.85+mp3", "tempo1.15+aac",
          "pitch-200+mp3", "pitch+200+aac", "slowed+reverb+mp3", "nightcore+band16k",
          "speed1.1+noise20", "pitch+100+speech-6", "tempo0.9+song-6", "speed0.9+band16k+aac")
"""Chains (``+``-joined steps, applied left to right): ``slowed`` = speed 0.85, ``nightcore``
= speed 1.25, ``reverb`` = sox reverb 50 %, ``band16k`` = 16 kHz channel, ``speech-6`` /
``song-6`` = mixed 6 dB under speech / another song (the ``others`` given to
:func:`apply`)."""


def apply(name: str, audio: np.ndarray, sr: int, seed: int = 0,
          others: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """Apply the attack ``name`` (see :data:`ATTACKS`, :data:`SCALE_ATTACKS`,
    :data:`CHAINS`); returns ``(audio, sr)``.

    ``resample48k`` returns the audio *at* 48 kHz (the detector must cope with any rate);
    ``chain`` is resample 22.05 kHz → −6 dB → noise 20 dB → MP3 128k → AAC 128k.
    ``others`` holds the interfering ``"speech"`` / ``"song"`` at ``sr`` for the mix steps.
    """
    steps = _steps(name)
    if len(steps) > 1:
        y = audio
        for step in steps:
            y, sr = apply(step, y, sr, seed, others)
        return y, sr
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
    if name.startswith("speed"):
        return speed(audio, sr, float(name[5:])), sr
    if name.startswith("tempo"):
        return tempo(audio, sr, float(name[5:])), sr
    if name.startswith("pitch"):
        return pitch(audio, sr, float(name[5:])), sr
    if name == "slowed":
        return speed(audio, sr, 0.85), sr
    if name == "nightcore":
        return speed(audio, sr, 1.25), sr
    if name == "reverb":
        return reverb(audio, sr), sr
    if name == "band16k":
        return bandlimit(audio, sr, 16_000), sr
    if name in ("speech-6", "song-6"):
        kind = name[:-2]
        if not others or kind not in others:
            raise AisingerError(f"attack {name!r} needs others[{kind!r}]")
        return mix_under(audio, others[kind], -6.0), sr
    raise AisingerError(f"unknown attack {name!r}; use one of "
                        f"{', '.join(ATTACKS + SCALE_ATTACKS + CHAINS)}")


def _steps(name: str) -> list[str]:
    """Split a chain name at ``+`` while keeping ``pitch+C`` and ``gain+6`` steps whole."""
    parts, out = name.split("+"), []
    i = 0
    while i < len(parts):
        p = parts[i]
        if p in ("pitch", "gain") and i + 1 < len(parts):
            out.append(p + "+" + parts[i + 1])
            i += 2
        else:
            out.append(p)
            i += 1
    return out
