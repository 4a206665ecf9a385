"""Make a test song from stems: a lab vocal over a lab accompaniment at a chosen level ratio.

:func:`mix` returns the mixture together with the exact scaled vocal and accompaniment parts
(``mix == vocal_part + acc_part`` sample for sample), the ground truth for separation, dataset
and cover tests.

Not the cover's remix.  :mod:`aisinger.remix` puts a *converted* vocal back over a real song's
accompaniment and copies what the song already had: the original vocal's pan, its loudness
relative to the accompaniment (EBU R128) and its timing; it never chooses a balance.  This
module *invents* the balance of a song that does not exist yet: the vocal-to-accompaniment
ratio is a test parameter (active RMS, rests ignored), the mixture is set to a fixed level and
kept below a sample peak.  The two share only the channel layout helper
(:func:`aisinger.dsp.peak.as_channels`).
"""

from __future__ import annotations

import numpy as np

from aisinger.dsp.peak import as_channels
from aisinger.errors import AisingerError

ACTIVE_FLOOR_DB = 40.0
"""Blocks more than this many dB below the loudest block are ignored when measuring level."""

LEVEL_BLOCK = 2048
"""Block length in samples for the active-level measurement."""

TARGET_MIX_RMS_DBFS = -16.0
"""Mixture level (active RMS, dBFS) before peak limiting."""

PEAK_LIMIT = 0.98
"""The mixture is scaled down if its peak would exceed this."""

DEFAULT_VOCAL_TO_ACC_DB = 3.0
"""Default vocal level above the accompaniment (active RMS ratio in dB)."""


def active_rms(x: np.ndarray, block: int = LEVEL_BLOCK) -> float:
    """RMS of ``x`` ``(samples,)`` or ``(C, samples)`` over its non-silent blocks (ignores rests)."""
    x = np.asarray(x, dtype=np.float64)
    power = x ** 2 if x.ndim == 1 else (x ** 2).mean(axis=0)  # mean power over channels
    n = max(len(power) // block, 1)
    blocks = power[: n * block].reshape(n, block) if len(power) >= block else power[None, :]
    energy = blocks.mean(axis=1)
    if energy.max() <= 0:
        return 0.0
    keep = energy > energy.max() * 10 ** (-ACTIVE_FLOOR_DB / 10)
    return float(np.sqrt(energy[keep].mean()))


def _as_channels(x: np.ndarray, name: str) -> np.ndarray:
    """:func:`~aisinger.dsp.peak.as_channels`, checked: a 2-D, non-empty, finite stem."""
    x = as_channels(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise AisingerError(f"mix: {name} must be (samples,) or (channels, samples), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AisingerError(f"mix: {name} contains NaN or infinite samples")
    return x


def mix(vocal: np.ndarray, accompaniment: np.ndarray,
        vocal_to_acc_db: float = DEFAULT_VOCAL_TO_ACC_DB,
        target_rms_dbfs: float = TARGET_MIX_RMS_DBFS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mix ``vocal`` over ``accompaniment`` at a given level ratio.

    Args:
        vocal: ``(samples,)`` or ``(C, samples)``; mono is copied to every channel.
        accompaniment: ``(C, samples)`` or ``(samples,)``.
        vocal_to_acc_db: active-RMS level of the vocal relative to the accompaniment, in dB.
        target_rms_dbfs: active-RMS level of the mixture (lowered if it would clip).
    Returns:
        ``(mix, vocal_part, acc_part)``, each float32 ``(C, samples)`` with
        ``C = max(channels)`` and ``samples = max(lengths)`` (the shorter is zero-padded), and
        ``mix == vocal_part + acc_part`` exactly.
    """
    v = _as_channels(vocal, "vocal")
    a = _as_channels(accompaniment, "accompaniment")
    channels = max(v.shape[0], a.shape[0])
    if v.shape[0] not in (1, channels) or a.shape[0] not in (1, channels):
        raise AisingerError(f"mix: channel counts {v.shape[0]} and {a.shape[0]} do not match")
    n = max(v.shape[1], a.shape[1])
    v = np.broadcast_to(np.pad(v, ((0, 0), (0, n - v.shape[1]))), (channels, n))
    a = np.broadcast_to(np.pad(a, ((0, 0), (0, n - a.shape[1]))), (channels, n))
    rv, ra = active_rms(v), active_rms(a)
    if rv <= 0 or ra <= 0:
        raise AisingerError("mix: vocal or accompaniment is silent")
    v_gain = 10 ** (vocal_to_acc_db / 20) * ra / rv
    vocal_part = (v * v_gain).astype(np.float32)
    acc_part = a.astype(np.float32)
    level = active_rms(vocal_part + acc_part)
    gain = 10 ** (target_rms_dbfs / 20) / level
    peak = float(np.abs(vocal_part + acc_part).max()) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    vocal_part = (vocal_part * np.float32(gain)).astype(np.float32)
    acc_part = (acc_part * np.float32(gain)).astype(np.float32)
    return vocal_part + acc_part, vocal_part, acc_part
