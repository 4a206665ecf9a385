"""The one input check of the analysis functions: mono, a real sample rate, finite samples."""

from __future__ import annotations

import numpy as np

from aisinger.errors import AisingerError

__all__ = ["check_mono"]


def check_mono(audio: np.ndarray, sr: int, what: str) -> np.ndarray:
    """``audio`` as float32 ``(samples,)`` after checking it; ``what`` names the caller in the
    one-line :class:`AisingerError` (wrong shape, empty, bad sample rate, NaN/inf)."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise AisingerError(f"{what}: expected mono audio of shape (samples,), got shape "
                            f"{x.shape}")
    if x.shape[0] == 0:
        raise AisingerError(f"{what}: the audio is empty")
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise AisingerError(f"{what}: invalid sample rate {sr!r}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise AisingerError(f"{what}: the audio contains NaN or infinite samples")
    return x
