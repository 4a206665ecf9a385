"""Frame loudness: short-time RMS level in dBFS on the shared frame grid.

Level convention: dB relative to a full-scale *square* wave, i.e.
``20 log10(RMS)`` with samples in [-1, 1]; a full-scale sine therefore reads
20 log10(1/sqrt(2)) = -3.01 dB, and a sine of amplitude A reads
20 log10(A / sqrt(2)).

Each frame i (centred at t = i / FRAME_RATE s, see :mod:`aisinger.dsp.frames`)
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

import math
from dataclasses import dataclass

import numpy as np

from aisinger.dsp.frames import FRAME_RATE, n_frames
from aisinger.dsp.signal import check_mono
from aisinger.errors import AisingerError

__all__ = ["LoudnessConfig", "loudness_db", "integrated_lufs", "DEFAULT_WINDOW_S", "DEFAULT_FLOOR_DB",
           "LOUDNESS_BLOCK_S", "frame_rms"]

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
    check_mono(audio, sr, "loudness")
    x = np.asarray(audio)  # measured in the input's precision
    if not config.window_s > 0:
        raise AisingerError(f"loudness: window_s must be > 0, got {config.window_s}")

    n_win = max(1, int(round(config.window_s * sr)))
    half = n_win // 2
    weights = _hann_weights(n_win)
    n_out = n_frames(x.shape[0], int(sr))
    centres = np.round(np.arange(n_out) * (sr / FRAME_RATE)).astype(np.int64)
    centres = np.minimum(centres, x.shape[0] - 1)
    power = np.empty(n_out, dtype=np.float64)
    offsets = np.arange(n_win)
    for start in range(0, n_out, _BLOCK_FRAMES):
        c = centres[start : start + _BLOCK_FRAMES]
        # the samples this block of frames reads, zero outside the signal (block-local, so a
        # long input needs no full-length float64 copy); dividing by the weight that fell on
        # real samples renormalises the window where it is cut by the ends of the signal.
        lo, hi = int(c[0]) - half, int(c[-1]) - half + n_win
        seg = np.zeros(hi - lo, dtype=np.float64)
        inside = np.zeros(hi - lo, dtype=np.float64)
        a, b = max(lo, 0), min(hi, x.shape[0])
        seg[a - lo:b - lo] = x[a:b]
        inside[a - lo:b - lo] = 1.0
        idx = (c - half - lo)[:, None] + offsets[None, :]
        power[start : start + c.shape[0]] = ((seg * seg)[idx] @ weights) / (inside[idx] @ weights)

    floor_power = 10.0 ** (config.floor_db / 10.0)
    return (10.0 * np.log10(np.maximum(power, floor_power))).astype(np.float32)


K_SHELF = (1500.0, 4.0, 1 / math.sqrt(2))
"""BS.1770 K-weighting stage 1, a high shelf: corner (Hz), gain (dB), Q (as pyloudnorm)."""
K_HIGHPASS = (38.0, 0.5)
"""BS.1770 K-weighting stage 2, the RLB high-pass: corner (Hz), Q (as pyloudnorm)."""
GATE_ABSOLUTE_LUFS = -70.0
GATE_RELATIVE_LU = -10.0
BLOCK_OVERLAP = 0.75
_CHUNK = 1 << 20  # samples filtered at a time (bounds memory on long inputs)


def frame_rms(audio: np.ndarray, hop: int, n_frames: int) -> np.ndarray:
    """RMS of ``audio`` over a hop-long window centred on each frame j (at sample j·hop)."""
    x = np.pad(np.asarray(audio, np.float64) ** 2, (hop // 2, hop + n_frames * hop))
    c = np.concatenate([[0.0], np.cumsum(x)])
    starts = np.arange(n_frames) * hop
    return np.sqrt(np.maximum((c[starts + hop] - c[starts]) / hop, 0.0)).astype(np.float32)


def _k_weighting(sr: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads (b, a) of the K-weighting filter at ``sr`` (RBJ cookbook forms)."""
    fc, gain_db, q = K_SHELF
    amp = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * fc / sr
    cw, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    shelf = (np.array([amp * ((amp + 1) + (amp - 1) * cw + 2 * math.sqrt(amp) * alpha),
                       -2 * amp * ((amp - 1) + (amp + 1) * cw),
                       amp * ((amp + 1) + (amp - 1) * cw - 2 * math.sqrt(amp) * alpha)]),
             np.array([(amp + 1) - (amp - 1) * cw + 2 * math.sqrt(amp) * alpha,
                       2 * ((amp - 1) - (amp + 1) * cw),
                       (amp + 1) - (amp - 1) * cw - 2 * math.sqrt(amp) * alpha]))
    fc, q = K_HIGHPASS
    w0 = 2 * math.pi * fc / sr
    cw, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    highpass = (np.array([(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]),
                np.array([1 + alpha, -2 * cw, 1 - alpha]))
    return [(b / a[0], a / a[0]) for b, a in (shelf, highpass)]


def integrated_lufs(x: np.ndarray, sr: int) -> float:
    """EBU R128 / ITU-R BS.1770-4 integrated loudness (LUFS) of ``(samples,)`` or
    ``(channels, samples)``; ``-inf`` when silent or shorter than one 400 ms block.

    K-weighting, 400 ms blocks with 75 % overlap, the -70 LUFS absolute and -10 LU relative
    gates, channel powers summed (weights 1 for up to 3 channels, as for L/R/C; surround
    channels of a 5-channel input get 1.41).  The same numbers as pyloudnorm's
    ``Meter.integrated_loudness`` (block bounds included), computed in chunks of
    ``_CHUNK`` samples, so a 20-minute stereo song needs no float64 copy of itself.
    """
    from scipy.signal import lfilter, lfilter_zi

    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    n = x.shape[1]
    if n < int(math.ceil(LOUDNESS_BLOCK_S * sr)):
        return float("-inf")
    step = 1.0 - BLOCK_OVERLAP
    n_blocks = int(np.round((n / sr - LOUDNESS_BLOCK_S) / (LOUDNESS_BLOCK_S * step))) + 1
    j = np.arange(n_blocks)
    # block bounds as pyloudnorm computes them; the last block may reach past the end, where
    # it is cut (and still divided by the full block length, as there)
    lo = np.minimum((LOUDNESS_BLOCK_S * (j * step) * sr).astype(np.int64), n)
    hi = np.minimum((LOUDNESS_BLOCK_S * (j * step + 1) * sr).astype(np.int64), n)
    bounds = np.unique(np.concatenate([lo, hi]))
    filters = _k_weighting(sr)
    cum_at = np.zeros((x.shape[0], bounds.shape[0]))
    for c in range(x.shape[0]):
        states = [lfilter_zi(b, a) * 0.0 for b, a in filters]
        total = 0.0
        for start in range(0, n, _CHUNK):
            y = np.asarray(x[c, start:start + _CHUNK], dtype=np.float64)
            for k, (b, a) in enumerate(filters):
                y, states[k] = lfilter(b, a, y, zi=states[k])
            cum = np.concatenate([[0.0], np.cumsum(y * y)]) + total
            sel = (bounds >= start) & (bounds <= start + y.shape[0])
            cum_at[c, sel] = cum[bounds[sel] - start]
            total = cum[-1]
    pos = {int(v): i for i, v in enumerate(bounds)}
    z = (cum_at[:, [pos[int(v)] for v in hi]] - cum_at[:, [pos[int(v)] for v in lo]]) / (
        LOUDNESS_BLOCK_S * sr)
    weights = np.ones(x.shape[0])
    if x.shape[0] == 5:
        weights[3:] = 1.41
    power = weights @ z
    with np.errstate(divide="ignore"):
        level = -0.691 + 10 * np.log10(power)
        keep = level >= GATE_ABSOLUTE_LUFS
        if not keep.any():
            return float("-inf")
        relative = -0.691 + 10 * np.log10(power[keep].mean()) + GATE_RELATIVE_LU
        keep &= level > relative
        if not keep.any():
            return float("-inf")
        return float(-0.691 + 10 * np.log10(power[keep].mean()))
