"""The one frame-rate convention shared by every feature.

All frame-level features (content, F0, loudness, …) are delivered at :data:`FRAME_RATE`
frames per second (hop 10 ms).  Frame ``i`` is centred at ``t = i / FRAME_RATE`` seconds and a
signal of ``n_samples`` at ``sr`` Hz has ``n_frames(n_samples, sr)`` frames (the first centred
on sample 0, like ``librosa`` with ``center=True``).  Extractors that run at another native rate
(Whisper: 50 frames/s) are brought onto this grid with :func:`resample_frames` /
:func:`resample_f0`.
"""

from __future__ import annotations

import numpy as np

FRAME_RATE = 100
"""Feature frames per second (10 ms hop)."""


def n_frames(n_samples: int, sr: int, rate: float = FRAME_RATE) -> int:
    """Number of frames covering ``n_samples`` samples at ``sr`` Hz (frame 0 at t = 0)."""
    return int(n_samples * rate // sr) + 1


def frame_times(n: int, rate: float = FRAME_RATE) -> np.ndarray:
    """Centre times in seconds, shape ``(n,)``, of ``n`` frames at ``rate`` frames/s."""
    return np.arange(n, dtype=np.float64) / rate


def resample_frames(x: np.ndarray, n_out: int, rate_in: float | None = None,
                    rate_out: float = FRAME_RATE) -> np.ndarray:
    """Linearly interpolate a frame sequence onto another grid of the same time axis.

    Args:
        x: ``(T,)`` or ``(T, D)`` array, frame ``i`` at time ``i / rate_in``.
        n_out: number of output frames; output frame ``j`` is at time ``j / rate_out``.
        rate_in: input frame rate; ``None`` means the input spans the same duration as the
            output (``rate_in = rate_out * (T - 1) / (n_out - 1)``), useful when only lengths
            are known.
    Returns:
        ``(n_out,)`` or ``(n_out, D)`` float32 array.  Times beyond the input's last frame
        repeat the last frame.
    """
    x = np.asarray(x)
    t_in_n = x.shape[0]
    if t_in_n == 0:
        raise ValueError("resample_frames: empty input")
    if rate_in is None:
        rate_in = rate_out * (t_in_n - 1) / max(n_out - 1, 1) if t_in_n > 1 else rate_out
    pos = frame_times(n_out, rate_out) * rate_in  # fractional input index of each output frame
    pos = np.clip(pos, 0, t_in_n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t_in_n - 1)
    w = (pos - lo).astype(np.float32)
    if x.ndim > 1:
        w = w.reshape(-1, *([1] * (x.ndim - 1)))
    out = x[lo].astype(np.float32) * (1 - w) + x[hi].astype(np.float32) * w
    return out.astype(np.float32)


def resample_f0(f0: np.ndarray, n_out: int, rate_in: float | None = None,
                rate_out: float = FRAME_RATE) -> np.ndarray:
    """Resample an F0 track (Hz, 0 = unvoiced) onto ``n_out`` frames.

    Interpolates in log-frequency between voiced neighbours only; an output frame is voiced
    when the nearest input frame is voiced.  Returns ``(n_out,)`` float32 Hz.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = f0 > 0
    t_in = f0.shape[0]
    if rate_in is None:
        rate_in = rate_out * (t_in - 1) / max(n_out - 1, 1) if t_in > 1 else rate_out
    pos = np.clip(frame_times(n_out, rate_out) * rate_in, 0, t_in - 1)
    nearest = np.rint(pos).astype(np.int64)
    out = np.zeros(n_out, dtype=np.float32)
    if not voiced.any():
        return out
    idx = np.flatnonzero(voiced)
    log_f0 = np.interp(pos, idx, np.log(f0[idx]))
    mask = voiced[nearest]
    out[mask] = np.exp(log_f0[mask]).astype(np.float32)
    return out
