"""True peak (ITU-R BS.1770-4 style, 4x oversampled) and a look-ahead true-peak limiter.

Used by the remix (the finished cover is limited to ``-1 dBTP``) and by whatever writes a
file that must stay under a ceiling.  Arrays are float32 ``(channels, samples)`` or
``(samples,)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["true_peak_dbtp", "limit_true_peak", "as_channels", "TRUE_PEAK_CEILING_DBTP"]

TRUE_PEAK_CEILING_DBTP = -1.0
"""Output ceiling (dB true peak): EBU R128 / streaming delivery practice."""
OVERSAMPLE = 4
"""True-peak oversampling factor (ITU-R BS.1770-4 Annex 2 uses 4x at 48 kHz)."""
LIMITER_HOLD_S = 0.010
"""Look-ahead/hold of the limiter: the gain is at its lowest this long around each peak."""
LIMITER_RAMP_S = 0.010
"""Length of the limiter's gain ramps (attack and release), no hard gain steps."""
BLOCK_SAMPLES = 1 << 18
"""Samples per processing block (bounds memory on 20-minute songs)."""
PAD = 64  # samples of context each side of a block for the oversampling filter
SAFETY_DB = 0.05
"""Extra margin below the ceiling that the limiter aims for (oversampling is an estimate)."""


def as_channels(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 ``(channels, samples)`` (a mono ``(samples,)`` becomes one channel)."""
    x = np.asarray(x, dtype=np.float32)
    return x[None, :] if x.ndim == 1 else x


def _sample_true_peak(x: np.ndarray) -> np.ndarray:
    """Per-sample true-peak magnitude ``(samples,)`` of ``(C, samples)``: the largest
    |value| over the channels and the oversampled points in that sample's interval."""
    from scipy.signal import resample_poly

    c, n = x.shape
    out = np.empty(n, np.float32)
    for a in range(0, n, BLOCK_SAMPLES):
        b = min(n, a + BLOCK_SAMPLES)
        lo, hi = max(0, a - PAD), min(n, b + PAD)
        up = resample_poly(x[:, lo:hi], OVERSAMPLE, 1, axis=1)
        up = np.abs(up).max(axis=0)[(a - lo) * OVERSAMPLE:(b - lo) * OVERSAMPLE]
        out[a:b] = np.maximum(up.reshape(b - a, OVERSAMPLE).max(axis=1),
                              np.abs(x[:, a:b]).max(axis=0))
    return out


def _max_true_peak(x: np.ndarray) -> float:
    """Largest true-peak magnitude of ``(C, samples)``, block by block."""
    return max((float(_sample_true_peak(x[:, a:a + BLOCK_SAMPLES]).max())
                for a in range(0, x.shape[1], BLOCK_SAMPLES)), default=0.0)


def true_peak_dbtp(x: np.ndarray, sr: int | None = None) -> float:
    """True peak of ``x`` in dBTP (4x oversampled); ``-inf`` for silence.  ``sr`` is unused
    (oversampling is relative) and accepted for symmetry with the other measures."""
    x = as_channels(x)
    if x.shape[1] == 0:
        return float("-inf")
    peak = _max_true_peak(x)
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def limit_true_peak(x: np.ndarray, sr: int, ceiling_dbtp: float = TRUE_PEAK_CEILING_DBTP,
                    inplace: bool = False) -> tuple[np.ndarray, float]:
    """Limit ``x`` to ``ceiling_dbtp`` true peak with a smooth look-ahead gain.

    The required gain ``min(1, ceiling / peak)`` per sample is held over ±``LIMITER_HOLD_S``
    (a running minimum) and then smoothed by a moving average of ``LIMITER_RAMP_S``, which can
    only lower it where it was already held low, so every peak is reduced enough and no gain
    jumps.  A final check scales the whole signal by what oversampling still finds above the
    ceiling (normally nothing).  Works block by block (``BLOCK_SAMPLES`` plus the filters'
    reach on each side), so memory does not grow with the length; ``inplace`` limits a float32
    ``(C, samples)`` array in place instead of a copy.

    Returns:
        (limited audio in the input's layout, largest gain reduction in dB (>= 0)).
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    mono = np.asarray(x).ndim == 1
    y = as_channels(x)  # float32; a view of x when x already is float32
    if not inplace:
        y = y.copy()
    if y.shape[1] == 0:
        return (y[0] if mono else y), 0.0
    thr = 10 ** ((ceiling_dbtp - SAFETY_DB) / 20)
    hold = max(1, int(round(LIMITER_HOLD_S * sr)))
    ramp = max(1, min(int(round(LIMITER_RAMP_S * sr)), hold))
    reach = hold + ramp + 1
    n = y.shape[1]
    gains = []
    lowest = 1.0
    for a in range(0, n, BLOCK_SAMPLES):  # gains from the unlimited signal, then applied
        b = min(n, a + BLOCK_SAMPLES)
        lo, hi = max(0, a - reach), min(n, b + reach)
        peak = _sample_true_peak(y[:, lo:hi])
        if peak.max() <= thr:
            gains.append(None)
            continue
        need = np.minimum(1.0, thr / np.maximum(peak, 1e-12)).astype(np.float32)
        gain = minimum_filter1d(need, size=2 * hold + 1, mode="nearest")
        gain = np.minimum(uniform_filter1d(gain, size=ramp, mode="nearest"), need)
        gains.append(gain[a - lo:b - lo])
        lowest = min(lowest, float(gains[-1].min()))
    for i, a in enumerate(range(0, n, BLOCK_SAMPLES)):
        if gains[i] is not None:
            y[:, a:a + gains[i].shape[0]] *= gains[i][None, :]
    reduction = -20.0 * math.log10(lowest)
    after = _max_true_peak(y)
    ceiling = 10 ** (ceiling_dbtp / 20)
    if after > ceiling:  # oversampling of the gained signal found a little more
        y *= ceiling / after * 10 ** (-SAFETY_DB / 20)
        reduction += 20.0 * math.log10(after / ceiling) + SAFETY_DB
    return (y[0] if mono else y), reduction
