"""Clip measurements: clipping, EBU R128 loudness and its normalisation, voicing, accompaniment.

Loudness is ITU-R BS.1770-4 / EBU R128 *integrated* loudness (pyloudnorm): K-weighted mean
square over 400 ms gating blocks (75 % overlap) with the absolute (-70 LUFS) and relative
(-10 LU) gates.  A clip needs at least one full 400 ms block to be measured, which the 2 s
minimum clip length guarantees; shorter input reads as silent (``-inf``).
"""

from __future__ import annotations

import math

import numpy as np

from aisinger.dsp.frames import FRAME_RATE
from aisinger.dsp.loudness import LOUDNESS_BLOCK_S, integrated_lufs  # noqa: F401 (re-export)
from aisinger.features.pitch import f0_to_midi, f0_to_note_name

ACCOMPANIMENT_WINDOW_S = 0.5
"""Window of the accompaniment/mixture energy ratio (auto separation)."""
ACCOMPANIMENT_ACTIVE_DB = 30.0
"""Windows more than this many dB below the loudest window are ignored by the ratio."""
RATIO_FLOOR_DB = -100.0
"""Ratio reported for a window whose accompaniment is exactly zero."""


def clipped_fraction(audio: np.ndarray, level: float) -> float:
    """Share of sample instants where any channel reaches ``|x| >= level``.

    Args:
        audio: ``(samples,)`` or ``(channels, samples)`` input samples (before processing).
        level: clipping level, e.g. 0.999.
    """
    x = np.asarray(audio)
    if x.ndim == 2:
        hit = (np.abs(x) >= level).any(axis=0)
    else:
        hit = np.abs(x) >= level
    return float(hit.mean()) if hit.size else 0.0


def normalise_loudness(x: np.ndarray, sr: int, target_lufs: float,
                       peak_ceiling_dbfs: float) -> tuple[np.ndarray, float, float]:
    """Scale mono ``x`` to ``target_lufs`` integrated loudness.

    The gain is lowered if the peak would exceed ``peak_ceiling_dbfs`` (then the clip ends up
    quieter than the target; rare for voice at -23 LUFS, whose peaks sit 8–15 dB higher).

    Returns:
        ``(y, gain_db, loudness_after_lufs)``; ``y`` float32 like ``x``.
    """
    before = integrated_lufs(x, sr)
    if not math.isfinite(before):
        return np.asarray(x, dtype=np.float32), 0.0, before
    gain_db = target_lufs - before
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        gain_db = min(gain_db, peak_ceiling_dbfs - 20.0 * math.log10(peak))
    y = (np.asarray(x, dtype=np.float64) * 10 ** (gain_db / 20)).astype(np.float32)
    return y, float(gain_db), before + gain_db


def voiced_share(f0: np.ndarray, levels: np.ndarray, threshold_db: float) -> float:
    """Share of the non-silent frames (``levels >= threshold_db``) that have an F0 (> 0).

    Both arrays are on the shared frame grid; the shorter length is used.  0 when no frame is
    non-silent.
    """
    n = min(f0.shape[0], levels.shape[0])
    active = levels[:n] >= threshold_db
    if not active.any():
        return 0.0
    return float((f0[:n][active] > 0).mean())


def accompaniment_level_db(mixture: np.ndarray, vocals: np.ndarray, sr: int) -> float:
    """How loud the separated accompaniment is relative to the mixture (dB).

    The median over :data:`ACCOMPANIMENT_WINDOW_S` windows (those within
    :data:`ACCOMPANIMENT_ACTIVE_DB` of the loudest) of ``10 log10(E[mix - vocals] / E[mix])``.
    The median ignores the odd sustained note a separator hands to the accompaniment (on dry
    lab vocals the whole-signal ratio reached -10 dB for 2 of 16 phrases; the median stayed
    below -20 dB).

    Args:
        mixture, vocals: ``(channels, samples)`` or ``(samples,)``, same shape.
        sr: sample rate in Hz.
    Returns:
        dB (about 0 = all accompaniment, very negative = dry); ``-inf`` for a silent mixture.
    """
    mix = np.atleast_2d(np.asarray(mixture, dtype=np.float64))
    acc = mix - np.atleast_2d(np.asarray(vocals, dtype=np.float64))
    w = max(1, int(round(ACCOMPANIMENT_WINDOW_S * sr)))
    n = mix.shape[1] // w
    if n == 0:
        n, w = 1, mix.shape[1]
    e_mix = np.square(mix[:, :n * w]).reshape(mix.shape[0], n, w).sum(axis=(0, 2))
    e_acc = np.square(acc[:, :n * w]).reshape(acc.shape[0], n, w).sum(axis=(0, 2))
    if e_mix.max() <= 0:
        return float("-inf")
    active = e_mix >= e_mix.max() * 10 ** (-ACCOMPANIMENT_ACTIVE_DB / 10)
    ratio = e_acc[active] / e_mix[active]
    db = 10 * np.log10(np.maximum(ratio, 10 ** (RATIO_FLOOR_DB / 10)))
    return float(np.median(db))


MIDI_LOW = 24
"""Lowest histogram bin (C1, 32.7 Hz)."""
MIDI_HIGH = 108
"""Highest histogram bin (C8, 4186 Hz)."""


def f0_histogram(f0: np.ndarray) -> np.ndarray:
    """Voiced frames per semitone, bins MIDI :data:`MIDI_LOW` … :data:`MIDI_HIGH` (rounded).

    Returns ``(MIDI_HIGH - MIDI_LOW + 1,)`` int64 counts (frames of 1 / FRAME_RATE s).
    """
    midi = f0_to_midi(f0[f0 > 0])
    idx = np.clip(np.round(midi).astype(np.int64) - MIDI_LOW, 0, MIDI_HIGH - MIDI_LOW)
    return np.bincount(idx, minlength=MIDI_HIGH - MIDI_LOW + 1).astype(np.int64)


def f0_stats(f0: np.ndarray) -> dict:
    """Summary of a clip's F0 ``(T,)`` Hz (0 = unvoiced): voiced seconds, median, 5th/95th
    percentile in Hz and as note names (empty strings when nothing is voiced)."""
    v = f0[f0 > 0].astype(np.float64)
    if v.size == 0:
        return {"voiced_s": 0.0, "median_hz": 0.0, "p5_hz": 0.0, "p95_hz": 0.0,
                "median_note": "", "p5_note": "", "p95_note": ""}
    med, p5, p95 = (float(np.percentile(v, q)) for q in (50, 5, 95))
    return {"voiced_s": round(v.size / FRAME_RATE, 2), "median_hz": round(med, 2),
            "p5_hz": round(p5, 2), "p95_hz": round(p95, 2), "median_note": f0_to_note_name(med),
            "p5_note": f0_to_note_name(p5), "p95_note": f0_to_note_name(p95)}
