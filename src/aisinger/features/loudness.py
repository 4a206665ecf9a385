"""Frame loudness: short-time RMS level in dBFS on the shared frame grid.

Level convention: dB relative to a full-scale *square* wave, i.e.
``20 log10(RMS)`` with samples in [-1, 1]; a full-scale sine therefore reads
20 log10(1/sqrt(2)) = -3.01 dB, and a sine of amplitude A reads
20 log10(A / sqrt(2)).

Each frame i (centred at t = i / FRAME_RATE s, see :mod:`aisinger.features.frames`)
is the Hann-weighted mean square of the samples in a window of
``window_s`` = 40 ms (4 hops) centred on it. The Hann weights are normalised to
sum to 1, so a stationary signal reads its true RMS; the Hann taper keeps the
ripple of periodic signals small (< 0.001 dB for sines of 50 Hz and up). Its
effective (equivalent-rectangular) length is half the window, 20 ms = 2 hops.
Near the ends of the signal the window is cut to the real samples and its
weights renormalised, so the first and last frames measure the signal itself
(with only half a window there, a 50 Hz sine reads within 0.45 dB in the first
and last frame, a 220 Hz sine within 0.1 dB). Levels are floored at
``floor_db`` (-120 dB) for digital silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from aisinger.features.frames import FRAME_RATE, n_frames

__all__ = ["LoudnessConfig", "loudness_db", "integrated_lufs", "DEFAULT_WINDOW_S", "DEFAULT_FLOOR_DB",
           "LOUDNESS_BLOCK_S"]

DEFAULT_WINDOW_S = 0.04  # Hann window, 4 hops of 10 ms (effective length 20 ms)
DEFAULT_FLOOR_DB = -120.0  # level reported for digital silence
_BLOCK_FRAMES = 1024  # frames gathered at a time (bounds memory on long inputs)
LOUDNESS_BLOCK_S = 0.4
"""BS.1770 gating block (s): the shortest signal whose integrated loudness is defined."""


@dataclass(frozen=True)
class LoudnessConfig:
    """Settings of :func:`loudness_db`.

    window_s: Hann window length in seconds (effective length window_s / 2).
    floor_db: lowest level reported (dBFS).
    """

    window_s: float = DEFAULT_WINDOW_S
    floor_db: float = DEFAULT_FLOOR_DB


def _hann_weights(n: int) -> np.ndarray:
    """Symmetric Hann window of n samples (n >= 1), normalised to sum 1, float64."""
    if n < 3:
        return np.full(n, 1.0 / n)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(1, n + 1) / (n + 1))  # no zero end taps
    return w / w.sum()


def loudness_db(audio: np.ndarray, sr: int, config: LoudnessConfig = LoudnessConfig()) -> np.ndarray:
    """Short-time RMS level in dBFS.

    Parameters
    ----------
    audio : np.ndarray, shape (samples,)
        Mono audio, full scale 1.0.
    sr : int
        Sample rate in Hz.
    config : LoudnessConfig

    Returns
    -------
    np.ndarray, float32, shape (n_frames(len(audio), sr),)
        Level in dB of frame i, centred on sample round(i * sr / FRAME_RATE);
        at least ``config.floor_db``.
    """
    from aisinger.errors import AisingerError

    x = np.asarray(audio)
    if x.ndim != 1:
        raise AisingerError(f"loudness needs mono audio (samples,), got shape {x.shape}")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AisingerError(f"loudness: invalid sample rate {sr!r}")
    if x.shape[0] == 0:
        raise AisingerError("loudness: empty audio")
    if not np.all(np.isfinite(x)):
        raise AisingerError("loudness: audio contains NaN or infinite samples")
    if not config.window_s > 0:
        raise AisingerError(f"loudness: window_s must be > 0, got {config.window_s}")

    n_win = max(1, int(round(config.window_s * sr)))
    half = n_win // 2
    weights = _hann_weights(n_win)
    squared = np.pad(x.astype(np.float64) ** 2, (half, n_win - half))
    inside = np.pad(np.ones(x.shape[0]), (half, n_win - half))  # 1 on real samples

    n_out = n_frames(x.shape[0], int(sr))
    centres = np.round(np.arange(n_out) * (sr / FRAME_RATE)).astype(np.int64)
    centres = np.minimum(centres, x.shape[0] - 1)
    power = np.empty(n_out, dtype=np.float64)
    offsets = np.arange(n_win)
    for start in range(0, n_out, _BLOCK_FRAMES):
        c = centres[start : start + _BLOCK_FRAMES]
        # squared[c + k] is sample c - half + k of the signal (0 outside it);
        # dividing by the weight that fell on real samples renormalises the
        # window where it is cut by the ends of the signal.
        idx = c[:, None] + offsets[None, :]
        power[start : start + c.shape[0]] = (squared[idx] @ weights) / (inside[idx] @ weights)

    floor_power = 10.0 ** (config.floor_db / 10.0)
    return (10.0 * np.log10(np.maximum(power, floor_power))).astype(np.float32)


def integrated_lufs(x: np.ndarray, sr: int) -> float:
    """EBU R128 / ITU-R BS.1770-4 integrated loudness (LUFS) of ``(samples,)`` or
    ``(channels, samples)`` (channel powers summed, as BS.1770 does for stereo); ``-inf``
    when silent or shorter than one 400 ms block."""
    import warnings

    import pyloudnorm

    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] < int(math.ceil(LOUDNESS_BLOCK_S * sr)):
        return float("-inf")
    meter = pyloudnorm.Meter(int(sr), block_size=LOUDNESS_BLOCK_S)
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore")  # pyloudnorm warns about possible clipping
        return float(meter.integrated_loudness(x if x.ndim == 1 else x.T))
