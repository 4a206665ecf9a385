"""Whisper-base (CTranslate2) model loading and Whisper's log-mel front end.

The front end is written from the published Whisper description (Radford et al.
2022, "Robust Speech Recognition via Large-Scale Weak Supervision", section 2.2):
audio at 16 kHz, 25 ms Hann windows (n_fft 400) with a 10 ms hop (160 samples),
80 mel channels (Slaney mel scale and area normalisation, 0–8 kHz), power
spectrum, ``log10`` clamped at 1e-10, dynamic range limited to 8 decades below
the maximum, then scaled as ``(x + 4) / 4``. The encoder sees exactly 30 s
(3000 mel frames) and returns 1500 frames (50 frames/s, 20 ms).

Public API
----------
- :func:`load_whisper` — the CTranslate2 ``Whisper`` model (cached per process).
- :func:`model_dir`, :func:`tokenizer_path` — paths inside the asset.
- :func:`mel_filterbank` — the (80, 201) Slaney mel matrix.
- :func:`log_mel_spectrogram` — (80, frames) normalised log-mel of 16 kHz audio.
- :func:`pad_or_trim` — pad (with the value of silence) or cut to 3000 frames.
- :func:`encode` — run the encoder on a batch of (80, 3000) windows.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aisinger import assets
from aisinger.errors import AisingerError

__all__ = [
    "ASSET_NAME",
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "N_MELS",
    "CHUNK_SECONDS",
    "N_SAMPLES",
    "N_FRAMES",
    "ENCODER_FRAME_RATE",
    "ENCODER_FRAMES",
    "ENCODER_DIM",
    "WhisperConfig",
    "model_dir",
    "tokenizer_path",
    "load_whisper",
    "mel_filterbank",
    "mel_power",
    "log_mel_spectrogram",
    "pad_or_trim",
    "silence_level",
    "encode",
]

ASSET_NAME = "whisper-base-ct2"
SAMPLE_RATE = 16000  # Hz, Whisper's input rate
N_FFT = 400  # samples = 25 ms analysis window
HOP_LENGTH = 160  # samples = 10 ms hop -> 100 mel frames/s
N_MELS = 80  # mel channels of Whisper base
CHUNK_SECONDS = 30  # the encoder's fixed context
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480000 samples per window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames per window
ENCODER_STRIDE = 2  # the encoder's second conv has stride 2
ENCODER_FRAME_RATE = SAMPLE_RATE // (HOP_LENGTH * ENCODER_STRIDE)  # 50 frames/s
ENCODER_FRAMES = N_FRAMES // ENCODER_STRIDE  # 1500 encoder frames per window
ENCODER_DIM = 512  # d_model of Whisper base

LOG_CLAMP = 1e-10  # floor of the mel power before log10
DYNAMIC_RANGE_DECADES = 8.0  # keep 8 decades (80 dB) below the maximum
LOG_OFFSET = 4.0  # (log10 + 4) / 4 puts typical speech in about [-1, 1]
LOG_SCALE = 4.0

# Slaney mel scale (Auditory Toolbox): linear below 1 kHz, logarithmic above.
_SLANEY_F_SP = 200.0 / 3.0  # Hz per mel in the linear part
_SLANEY_MIN_LOG_HZ = 1000.0  # start of the log part
_SLANEY_LOGSTEP = np.log(6.4) / 27.0  # ln(Hz ratio) per mel in the log part


@dataclass(frozen=True)
class WhisperConfig:
    """How the Whisper encoder is run.

    compute_type: CTranslate2 compute type ("int8", "float32", "int8_float32", ...).
    device: CTranslate2 device ("cpu").
    threads: intra-op threads; 0 = all cores this process may use.
    """

    compute_type: str = "int8"
    device: str = "cpu"
    threads: int = 0


def model_dir() -> Path:
    """Directory of the Whisper-base CTranslate2 asset (model.bin, config.json,
    tokenizer.json, vocabulary.json)."""
    return Path(assets.fetch(ASSET_NAME))


def tokenizer_path() -> Path:
    """Path of Whisper's ``tokenizer.json`` (HF ``tokenizers`` format)."""
    return model_dir() / "tokenizer.json"


def _available_cores() -> int:
    """Number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


_MODELS: dict[tuple, object] = {}
_MODELS_LOCK = threading.Lock()


def load_whisper(config: WhisperConfig = WhisperConfig()):
    """Load the CTranslate2 Whisper-base model (cached per process).

    Returns a ``ctranslate2.models.Whisper``. The cache key is (asset path,
    device, compute type, threads).
    """
    import ctranslate2

    path = model_dir()
    threads = config.threads if config.threads > 0 else _available_cores()
    key = (str(path), config.device, config.compute_type, threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            # CTranslate2 sets the process-wide OpenMP thread count from intra_threads, which
            # silently changes torch's thread count too (and with it torch's determinism):
            # restore torch's setting if torch is loaded.
            torch = sys.modules.get("torch")
            torch_threads = torch.get_num_threads() if torch is not None else None
            try:
                model = ctranslate2.models.Whisper(
                    str(path),
                    device=config.device,
                    compute_type=config.compute_type,
                    intra_threads=threads,
                )
            except (RuntimeError, ValueError) as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise AisingerError(f"{path}: cannot load Whisper model ({msg})") from exc
            finally:
                if torch_threads is not None and torch.get_num_threads() != torch_threads:
                    torch.set_num_threads(torch_threads)
            _MODELS[key] = model
    return model


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel of frequencies in Hz."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _SLANEY_F_SP
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    safe = np.maximum(hz, _SLANEY_MIN_LOG_HZ)
    log = min_log_mel + np.log(safe / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(hz >= _SLANEY_MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz of Slaney mels (inverse of :func:`_hz_to_mel`)."""
    mel = np.asarray(mel, dtype=np.float64)
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    linear = mel * _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log, linear)


def mel_filterbank(
    sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank from 0 Hz to sr/2.

    Returns a float32 array of shape (n_mels, n_fft // 2 + 1); row m is a
    triangle over the FFT-bin frequencies whose area is constant (each triangle
    is scaled by 2 / (upper edge - lower edge) in Hz), as in Slaney's Auditory
    Toolbox and ``librosa.filters.mel(norm="slaney")``.
    """
    bin_hz = np.arange(n_fft // 2 + 1) * (sr / n_fft)  # (n_bins,)
    edges_mel = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2)
    edges_hz = _mel_to_hz(edges_mel)  # (n_mels + 2,)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    weights *= 2.0 / (upper - lower)  # Slaney area normalisation
    return weights.astype(np.float32)


_FILTERBANK_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    key = (sr, n_fft, n_mels)
    if key not in _FILTERBANK_CACHE:
        _FILTERBANK_CACHE[key] = mel_filterbank(sr, n_fft, n_mels)
    return _FILTERBANK_CACHE[key]


STFT_BLOCK_FRAMES = 4096  # frames per FFT block: bounds memory on long inputs (~13 MB)


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window of n samples: 0.5 - 0.5 cos(2 pi k / n), k = 0..n-1."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def mel_power(audio: np.ndarray) -> np.ndarray:
    """Mel power spectrogram (linear scale) of 16 kHz audio.

    audio: (samples,) float32. Returns float32 (80, samples // 160): centred
    frames (reflect padding of N_FFT // 2 on both sides), periodic Hann window,
    |rfft|^2 summed through :func:`mel_filterbank`. Frame i is centred on sample
    i * 160 (t = i / 100 s). The last centred frame is dropped, as in Whisper, so
    30 s give exactly 3000 frames. Computed in blocks of frames to bound memory.
    """
    half = N_FFT // 2
    mode = "reflect" if audio.shape[0] > half else "constant"
    padded = np.pad(np.asarray(audio, dtype=np.float32), (half, half), mode=mode)
    n_frames = (padded.shape[0] - N_FFT) // HOP_LENGTH  # drops the last centred frame
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(n_frames, N_FFT),
        strides=(padded.strides[0] * HOP_LENGTH, padded.strides[0]),
        writeable=False,
    )
    window = hann_window(N_FFT)
    filters = _filterbank(SAMPLE_RATE, N_FFT, N_MELS)  # (80, 201)
    out = np.empty((N_MELS, n_frames), dtype=np.float32)
    for start in range(0, n_frames, STFT_BLOCK_FRAMES):
        block = frames[start : start + STFT_BLOCK_FRAMES] * window
        spectrum = np.fft.rfft(block, n=N_FFT, axis=-1).astype(np.complex64)
        power = spectrum.real**2 + spectrum.imag**2  # (block, 201)
        out[:, start : start + block.shape[0]] = filters @ power.T
    return out


def log_mel_spectrogram(audio16k: np.ndarray, *, padding: int = 0) -> np.ndarray:
    """Whisper's normalised log-mel spectrogram.

    Parameters
    ----------
    audio16k : np.ndarray, shape (samples,)
        Mono audio at 16 kHz, float, full scale = 1.0.
    padding : int
        Zeros (samples) appended before the analysis (Whisper appends 30 s so
        the last window is complete; the clamp then also sees the silence).

    Returns
    -------
    np.ndarray, float32, shape (80, (samples + padding) // 160)
        Column i is centred on sample i * 160 (t = i / 100 s). Values are
        ``(max(log10(max(mel, 1e-10)), peak - 8) + 4) / 4`` where ``peak`` is the
        maximum of the whole spectrogram.
    """
    audio = np.asarray(audio16k, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"log_mel_spectrogram expects (samples,), got shape {audio.shape}")
    if padding > 0:
        audio = np.pad(audio, (0, padding))
    if audio.shape[0] < HOP_LENGTH:
        audio = np.pad(audio, (0, HOP_LENGTH - audio.shape[0]))
    log_mel = np.log10(np.maximum(mel_power(audio), LOG_CLAMP))
    log_mel = np.maximum(log_mel, log_mel.max() - DYNAMIC_RANGE_DECADES)
    return ((log_mel + LOG_OFFSET) / LOG_SCALE).astype(np.float32)


def silence_level(log_mel: np.ndarray) -> float:
    """Normalised log-mel value of digital silence for this spectrogram
    (its clamp floor: (peak - 8 + 4) / 4 in log10 units, but never below the
    value of the 1e-10 clamp)."""
    floor = (np.log10(LOG_CLAMP) + LOG_OFFSET) / LOG_SCALE
    return float(max(floor, float(log_mel.max()) - DYNAMIC_RANGE_DECADES / LOG_SCALE))


def pad_or_trim(mel: np.ndarray, length: int = N_FRAMES, pad_value: float | None = None) -> np.ndarray:
    """Cut or pad a (80, frames) log-mel along time to ``length`` frames.

    Padding uses ``pad_value``; by default the spectrogram's own silence level
    (:func:`silence_level`), which is what Whisper's encoder sees when 30 s of
    zero samples are appended before the analysis.
    """
    n = mel.shape[-1]
    if n >= length:
        return np.ascontiguousarray(mel[..., :length])
    value = silence_level(mel) if pad_value is None else pad_value
    pad = np.full(mel.shape[:-1] + (length - n,), value, dtype=mel.dtype)
    return np.concatenate([mel, pad], axis=-1)


def encode(model, mels: np.ndarray) -> np.ndarray:
    """Run the Whisper encoder on a batch of windows.

    mels: (batch, 80, 3000) float32 normalised log-mel.
    Returns float32 (batch, 1500, 512): frame j of a window is centred at
    j / 50 s from the window start.
    """
    import ctranslate2

    mels = np.ascontiguousarray(mels, dtype=np.float32)
    if mels.ndim != 3 or mels.shape[1:] != (N_MELS, N_FRAMES):
        raise ValueError(f"encode expects (batch, {N_MELS}, {N_FRAMES}), got {mels.shape}")
    out = model.encode(ctranslate2.StorageView.from_array(mels), to_cpu=True)
    return np.array(out, dtype=np.float32, copy=True)
