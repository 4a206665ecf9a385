"""Small spectral helpers shared by the metrics (librosa-compatible conventions).

``mel_power`` reproduces ``librosa.feature.melspectrogram`` with its defaults (librosa >= 0.10:
centred frames with zero padding of ``n_fft // 2`` on both sides, periodic Hann window of
``n_fft`` samples, power 2, Slaney mel scale and area normalisation from 0 Hz to sr/2), which
is what the Resemblyzer speaker encoder and DNSMOS P.808 were used with.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from aisinger.features.whisper import hann_window, mel_filterbank

POWER_TO_DB_AMIN = 1e-10  # librosa.power_to_db's floor on power values
POWER_TO_DB_TOP_DB = 80.0  # librosa.power_to_db's dynamic range limit in dB


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney mel filterbank (cached, read-only)."""
    basis = mel_filterbank(sr, n_fft, n_mels)
    basis.setflags(write=False)
    return basis


def power_spectrogram(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 of ``audio`` (samples,) with centred, zero-padded frames.

    Returns float32 ``(frames, n_fft // 2 + 1)`` with ``frames = 1 + len // hop`` for even
    ``n_fft`` (frame i is centred on sample ``i * hop``).
    """
    half = n_fft // 2
    padded = np.pad(np.asarray(audio, dtype=np.float32), (half, half))
    if padded.shape[0] < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.shape[0]))
    n_frames = 1 + (padded.shape[0] - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, n_fft), strides=(padded.strides[0] * hop, padded.strides[0]),
        writeable=False)
    spectrum = np.fft.rfft(frames * hann_window(n_fft), axis=-1)
    return (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)


def mel_power(audio: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """Mel power spectrogram (not log), float32 ``(frames, n_mels)``."""
    return power_spectrogram(audio, n_fft, hop) @ _mel_basis(sr, n_fft, n_mels).T


def power_to_db_ref_max(power: np.ndarray) -> np.ndarray:
    """``librosa.power_to_db(power, ref=np.max)``: dB relative to the maximum, floored 80 dB
    below it."""
    db = 10.0 * np.log10(np.maximum(power, POWER_TO_DB_AMIN))
    db -= 10.0 * np.log10(max(float(power.max()), POWER_TO_DB_AMIN))
    return np.maximum(db, db.max() - POWER_TO_DB_TOP_DB)
