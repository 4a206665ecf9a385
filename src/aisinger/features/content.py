"""Content (phonetic) features from the Whisper-base encoder.

``content_features(audio, sr)`` returns the Whisper-base encoder output, shape
(T50, 512) at Whisper's native 50 frames/s: frame j is centred at t = j / 50 s
and ``T50 = n_samples * 50 // sr + 1`` (the same rule as
:func:`aisinger.dsp.frames.n_frames`, at 50 frames/s).

How the audio reaches the encoder
---------------------------------
* The audio is resampled to 16 kHz and its log-mel spectrogram is computed once
  for the whole input (30 s of zeros appended, like Whisper's own transcription
  loop, so the 8-decade dynamic-range clamp is global to the input).
* Inputs of up to 1500 encoder frames (just under 30 s) are one window: the
  padded 3000-frame log-mel goes through the encoder and the output is cropped
  to T50 frames.
* Longer inputs are cut into 30 s windows that overlap by at least
  ``overlap_s`` (default 10 s); window starts are spread evenly so the last
  window ends exactly at the end of the input (no short tail window). Windows
  are encoded in batches. They are stitched with a triangular cross-fade: each
  window's frame weighs its distance (in frames, + 1) to the window's nearer
  edge, and the weights of all windows covering a frame are normalised to sum
  to 1. A window's contribution therefore fades to ~0 at its edges, so the
  stitched sequence has no seam, and frames are dominated by the window in which
  they have the most context on both sides.

Positional component
--------------------
Whisper's encoder output carries a strong signal of the absolute position of a
frame inside its 30 s window (a few "massive" channels follow the sinusoidal
position embedding). Measured on TTS speech, the same audio encoded at two
offsets 5–10 s apart gave a mean frame cosine of only 0.50–0.55; the difference
lies almost entirely in a low-dimensional subspace (10 components hold 97 % of
its energy) that is also traced by the encoding of a *silent* window. By default
(``position_components=32``) we remove that subspace: the top 32 principal
directions of the encoder's output over the 1500 positions of an all-silent
window are projected out of every frame. Same audio at different offsets then
agrees with cosine 0.96–0.97, and seams between windows disappear. The output
stays 512-dimensional (rank 480). ``position_components=0`` gives the raw
encoder output.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from aisinger.dsp.signal import check_mono
from aisinger.errors import AisingerError
from aisinger.features import whisper as wh
from aisinger.io.audio import resample
from aisinger.progress import track

__all__ = ["ContentConfig", "content_features", "n_content_frames", "window_starts",
           "stitch_windows", "positional_basis", "CONTENT_FRAME_RATE", "CONTENT_DIM"]

CONTENT_FRAME_RATE = wh.ENCODER_FRAME_RATE  # 50 frames/s (20 ms)
CONTENT_DIM = wh.ENCODER_DIM  # 512


@dataclass(frozen=True)
class ContentConfig:
    """Settings of the Whisper content extractor.

    model: content model name (only "whisper-base").
    compute_type: CTranslate2 compute type. "int8" (default) needs ~1.8x less CPU
        than "float32" (about 1.0 vs 1.8 CPU-seconds per 30 s window); its output
        has a mean frame cosine of 0.998 to float32 (1st percentile 0.993).
    overlap_s: minimum overlap in seconds between consecutive 30 s windows for
        inputs longer than one window (must be in [0, 15]).
    position_components: number of positional principal directions projected
        out of the encoder output (0 = raw encoder output); see module docs.
    batch_size: windows per encoder call.
    threads: CPU threads for the encoder (0 = all cores available).
    """

    model: str = "whisper-base"
    compute_type: str = "int8"
    overlap_s: float = 10.0
    position_components: int = 32
    batch_size: int = 2
    threads: int = 0


MAX_OVERLAP_S = wh.CHUNK_SECONDS / 2  # windows must advance by at least half a window


def n_content_frames(n_samples: int, sr: int) -> int:
    """Number of 50 frames/s content frames for ``n_samples`` at ``sr`` Hz
    (frame j at t = j / 50 s, frames covering t in [0, duration])."""
    return int(n_samples * CONTENT_FRAME_RATE // sr) + 1


def window_starts(n_frames: int, window: int = wh.ENCODER_FRAMES, min_overlap: int = 500) -> np.ndarray:
    """Start frames of the encoder windows covering ``n_frames`` output frames.

    One window (start 0) when ``n_frames <= window``; otherwise the fewest
    windows whose consecutive overlap is at least ``min_overlap`` frames, with
    starts spread evenly from 0 to ``n_frames - window`` (int64, increasing).
    """
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    hop = window - min_overlap
    if hop <= 0:
        raise ValueError(f"min_overlap {min_overlap} must be smaller than the window {window}")
    n_windows = math.ceil((n_frames - window) / hop) + 1
    return np.round(np.linspace(0, n_frames - window, n_windows)).astype(np.int64)


def _window_weights(window: int) -> np.ndarray:
    """Triangular cross-fade weights (window,): distance to the nearer edge + 1."""
    j = np.arange(window)
    return (np.minimum(j, window - 1 - j) + 1).astype(np.float64)


def stitch_windows(outputs: Iterator[tuple[int, np.ndarray]] | list, n_frames: int) -> np.ndarray:
    """Blend per-window outputs into one (n_frames, D) float32 sequence.

    outputs: iterable of (start_frame, (window, D) array). Frames past n_frames
    are ignored. Each frame is the weighted mean of the windows covering it, the
    weights being :func:`_window_weights` (fade to ~0 at each window edge).
    """
    acc = None
    total = np.zeros(n_frames, dtype=np.float64)
    for start, out in outputs:
        length = min(out.shape[0], n_frames - start)
        if length <= 0:
            continue
        if acc is None:
            acc = np.zeros((n_frames, out.shape[1]), dtype=np.float64)
        w = _window_weights(out.shape[0])[:length]
        acc[start : start + length] += w[:, None] * out[:length]
        total[start : start + length] += w
    if acc is None or np.any(total == 0):
        raise ValueError("stitch_windows: the windows do not cover every frame")
    return (acc / total[:, None]).astype(np.float32)


_BASES: dict[tuple, np.ndarray] = {}
_BASES_LOCK = threading.Lock()


def positional_basis(model, components: int, key: tuple = ()) -> np.ndarray:
    """Top ``components`` principal directions (components, 512) of the encoder
    output over the 1500 positions of a window of digital silence (30 s of
    zeros). Cached per process under ``key`` (model identity + components)."""
    cache_key = (*key, components)
    with _BASES_LOCK:
        basis = _BASES.get(cache_key)
    if basis is None:
        silent = wh.pad_or_trim(wh.log_mel_spectrogram(np.zeros(wh.N_SAMPLES, np.float32)))
        enc = wh.encode(model, silent[None])[0].astype(np.float64)  # (1500, 512)
        _, _, vt = np.linalg.svd(enc - enc.mean(axis=0), full_matrices=False)
        basis = np.ascontiguousarray(vt[:components], dtype=np.float32)
        with _BASES_LOCK:
            _BASES[cache_key] = basis
    return basis


def content_features(
    audio: np.ndarray,
    sr: int,
    config: ContentConfig = ContentConfig(),
    *,
    progress: bool = True,
) -> np.ndarray:
    """Whisper-base encoder features of mono audio.

    Parameters
    ----------
    audio : np.ndarray, shape (samples,)
        Mono audio, float, full scale 1.0, any sample rate.
    sr : int
        Sample rate of ``audio`` in Hz.
    config : ContentConfig
    progress : bool
        Show a progress bar over window batches (when progress is enabled and
        there is more than one batch).

    Returns
    -------
    np.ndarray, float32, shape (n_content_frames(len(audio), sr), 512)
        Frame j is centred at t = j / 50 s.
    """
    if config.model != "whisper-base":
        raise AisingerError(f"unknown content model '{config.model}' (available: whisper-base)")
    if not 0.0 <= config.overlap_s <= MAX_OVERLAP_S:
        raise AisingerError(f"content overlap_s={config.overlap_s} must be in [0, {MAX_OVERLAP_S}]")
    audio = check_mono(audio, sr, "content features")
    n_out = n_content_frames(audio.shape[0], int(sr))
    audio16 = resample(audio, int(sr), wh.SAMPLE_RATE)
    # Whisper appends 30 s of zeros before the analysis; the last window then
    # always has its 3000 frames.
    mel = wh.log_mel_spectrogram(audio16, padding=wh.N_SAMPLES)

    starts = window_starts(n_out, wh.ENCODER_FRAMES, round(config.overlap_s * CONTENT_FRAME_RATE))
    model = wh.load_whisper(wh.WhisperConfig(compute_type=config.compute_type, threads=config.threads))
    basis = None
    if config.position_components > 0:
        basis = positional_basis(model, config.position_components,
                                 key=(str(wh.model_dir()), config.compute_type))

    def window_mel(start: int) -> np.ndarray:
        m = mel[:, start * wh.ENCODER_STRIDE : start * wh.ENCODER_STRIDE + wh.N_FRAMES]
        return wh.pad_or_trim(m)

    def encoded() -> Iterator[tuple[int, np.ndarray]]:
        batch = max(1, config.batch_size)
        batches = [starts[i : i + batch] for i in range(0, len(starts), batch)]
        if progress and len(batches) > 1:
            batches = track(batches, total=len(batches), description="content features")
        for group in batches:
            out = wh.encode(model, np.stack([window_mel(int(s)) for s in group]))
            if basis is not None:
                out = out - (out @ basis.T) @ basis
            yield from zip((int(s) for s in group), out)

    if len(starts) == 1:
        _, out = next(encoded())
        return np.ascontiguousarray(out[:n_out], dtype=np.float32)
    return stitch_windows(encoded(), n_out)
