"""Speaker similarity: cosine of Resemblyzer (GE2E) embeddings (the "SECS" of SVC papers).

Pipeline, following Resemblyzer 0.1.4 (``preprocess_wav`` + ``VoiceEncoder.embed_utterance``):

1. resample to 16 kHz (soxr);
2. raise the level to -30 dBFS RMS if quieter (never lowered);
3. shorten long silences with a voice activity detector on 30 ms windows: the VAD decisions
   are smoothed with an 8-window moving average, rounded, and dilated by 3 windows each side,
   so only silences longer than ~0.2 s are cut.  The VAD is WebRTC's (aggressiveness 3) from
   the ``webrtcvad`` module (``webrtcvad-wheels`` on PyPI) when it can be imported; otherwise
   an energy gate (window RMS within :data:`ENERGY_VAD_RANGE_DB` of the loudest window and
   above :data:`ENERGY_VAD_FLOOR_DBFS`) — embeddings then differ slightly from Resemblyzer's.
   If nothing is left after trimming, the untrimmed audio is used (Resemblyzer would embed
   silence);
4. 40-band mel power spectrogram, 25 ms window, 10 ms hop;
5. cut into partial utterances of 160 frames (1.6 s) every 77 frames (Resemblyzer's 1.3
   partials/s, ~50 % overlap); the last partial is kept when at least 75 % of it is audio
   (zero-padded);
6. embed the partials (:class:`aisinger.nn.speaker_encoder.SpeakerEncoder`), average, L2
   normalise.  A speaker embedding of several clips is the normalised mean of their
   utterance embeddings.

Result keys: ``similarity_target`` (output vs the mean target embedding),
``similarity_source`` (output vs the source) and ``similarity_margin`` (target - source: > 0
means the output sounds more like the target than like the source singer).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

try:  # webrtcvad-wheels is a dependency; without it the energy gate is used (vad_backend())
    import webrtcvad
except ImportError:  # pragma: no cover - depends on the installation
    webrtcvad = None

from aisinger.errors import AssetError
from aisinger.eval._dsp import mel_power
from aisinger.eval.registry import Audio, EvalContext, register
from aisinger.io.safeload import torch_load_safe
from aisinger import assets
from aisinger.io.audio import resample

ASSET_NAME = "resemblyzer"
SAMPLE_RATE = 16000  # Hz, the encoder's input rate
MEL_WINDOW_SAMPLES = 400  # 25 ms at 16 kHz
MEL_HOP_SAMPLES = 160  # 10 ms at 16 kHz
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s partial utterances
PARTIAL_STEP_FRAMES = 77  # round(16000 / 1.3 / 160): Resemblyzer's 1.3 partials/s (~50 % overlap)
PARTIAL_MIN_COVERAGE = 0.75  # keep a zero-padded last partial holding >= 75 % audio
TARGET_DBFS = -30.0  # loudness normalisation target (RMS, increase only)
INT16_MAX = 2 ** 15 - 1
VAD_WINDOW_SAMPLES = 480  # 30 ms at 16 kHz (WebRTC VAD accepts 10/20/30 ms)
VAD_AGGRESSIVENESS = 3  # WebRTC VAD mode 0-3; 3 filters non-speech most
VAD_AVERAGE_WIDTH = 8  # windows in the moving average smoothing the VAD decisions
VAD_MAX_SILENCE_WINDOWS = 6  # dilation: silences of <= 6 windows (180 ms) are kept
ENERGY_VAD_RANGE_DB = 40.0  # fallback VAD: voiced if within 40 dB of the loudest window...
ENERGY_VAD_FLOOR_DBFS = -60.0  # ...and louder than -60 dBFS RMS
BATCH_PARTIALS = 64  # partial utterances per forward pass (bounds memory on long songs)
DB_EPS = 1e-12  # avoids log10(0) on digital silence
NORM_EPS = 1e-12  # guards the normalisation of an all-zero embedding


# ----------------------------------------------------------------------------------------------
# model


_ENCODERS: dict[tuple[str, str], object] = {}
_ENCODERS_LOCK = threading.Lock()


def load_encoder(device: str = "cpu"):
    """The pretrained :class:`~aisinger.nn.speaker_encoder.SpeakerEncoder` (cached per process,
    keyed by asset path and device)."""
    path = assets.fetch(ASSET_NAME)
    key = (str(path), device)
    with _ENCODERS_LOCK:
        model = _ENCODERS.get(key)
        if model is None:
            model = encoder_from_file(path).to(device)
            _ENCODERS[key] = model
    return model


def encoder_from_file(path: str | Path):
    """Build the speaker encoder and load Resemblyzer weights from ``path`` (safe load, eval mode).

    Raises :class:`~aisinger.errors.AssetError` when the file is not a Resemblyzer
    checkpoint (missing or mis-shaped ``lstm.*``/``linear.*`` tensors).  The ``resemblyzer``
    asset (``pretrained.pt``: a dict whose ``model_state`` holds ``lstm.*`` and ``linear.*``
    tensors, plus GE2E's unused ``similarity_weight``/``similarity_bias`` and an optimizer
    state) loads with ``torch.load(weights_only=True)`` through
    :func:`aisinger.io.safeload.torch_load_safe`.
    """
    from aisinger.nn.speaker_encoder import SpeakerEncoder  # aisinger.nn imports torch

    checkpoint = torch_load_safe(path)
    state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise AssetError(f"{path}: not a Resemblyzer checkpoint (no 'model_state' dict)")
    model = SpeakerEncoder()
    wanted = model.state_dict()
    # GE2E's similarity_weight/bias are training-only; keep just the encoder's tensors.
    kept = {k: v for k, v in state.items() if k in wanted}
    missing = sorted(set(wanted) - set(kept))
    if missing:
        raise AssetError(f"{path}: not a Resemblyzer checkpoint (missing {', '.join(missing[:3])})")
    try:
        model.load_state_dict(kept, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise AssetError(f"{path}: Resemblyzer weights do not fit the encoder ({first[:200]})") from err
    return model.eval()


# ----------------------------------------------------------------------------------------------
# preprocessing


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale ``wav`` (samples,) up to ``target_dbfs`` RMS; louder audio is returned unchanged."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 0.0:
        return wav
    change_db = target_dbfs - 20.0 * np.log10(rms)
    return wav if change_db < 0 else (wav * 10.0 ** (change_db / 20.0)).astype(np.float32)


def _webrtc_flags(windows: np.ndarray) -> np.ndarray | None:
    """WebRTC VAD decision per 30 ms window of int16 PCM ``(n, 480)``; ``None`` if the
    ``webrtcvad`` module is not installed."""
    if webrtcvad is None:
        return None
    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    return np.array([vad.is_speech(w.tobytes(), SAMPLE_RATE) for w in windows], dtype=bool)


def _energy_flags(windows: np.ndarray) -> np.ndarray:
    """Energy-gate VAD decision per window of int16 PCM ``(n, 480)``."""
    rms = np.sqrt(np.mean((windows.astype(np.float64) / INT16_MAX) ** 2, axis=1))
    db = 20.0 * np.log10(rms + DB_EPS)
    return (db > db.max() - ENERGY_VAD_RANGE_DB) & (db > ENERGY_VAD_FLOOR_DBFS)


def vad_backend() -> str:
    """``"webrtcvad"`` when WebRTC's VAD is importable, else ``"energy"``."""
    return "energy" if webrtcvad is None else "webrtcvad"


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """Remove silences longer than ~0.2 s from 16 kHz ``wav`` (samples,) (see module doc).

    Returns the kept samples (a multiple of 480); the tail beyond the last full 30 ms window
    is dropped, as in Resemblyzer.
    """
    n_windows = wav.shape[0] // VAD_WINDOW_SAMPLES
    if n_windows == 0:
        return wav[:0]
    pcm = np.clip(np.round(wav[: n_windows * VAD_WINDOW_SAMPLES] * INT16_MAX), -INT16_MAX - 1,
                  INT16_MAX).astype(np.int16).reshape(n_windows, VAD_WINDOW_SAMPLES)
    flags = _webrtc_flags(pcm)
    if flags is None:
        flags = _energy_flags(pcm)
    # moving average over 8 windows (zero padded: 3 before, 4 after), rounded half-to-even
    padded = np.concatenate([np.zeros((VAD_AVERAGE_WIDTH - 1) // 2), flags.astype(np.float64),
                             np.zeros(VAD_AVERAGE_WIDTH // 2)])
    average = np.convolve(padded, np.ones(VAD_AVERAGE_WIDTH), mode="valid") / VAD_AVERAGE_WIDTH
    mask = np.round(average).astype(bool)
    # dilate voiced regions by VAD_MAX_SILENCE_WINDOWS // 2 windows on each side
    kernel = np.ones(VAD_MAX_SILENCE_WINDOWS + 1)
    mask = np.convolve(mask.astype(np.float64), kernel, mode="same") > 0
    return wav[: n_windows * VAD_WINDOW_SAMPLES][np.repeat(mask, VAD_WINDOW_SAMPLES)]


def preprocess(audio: np.ndarray, sr: int) -> np.ndarray:
    """Resemblyzer's preprocessing: 16 kHz, -30 dBFS (increase only), long silences trimmed.

    Args:
        audio: mono float ``(samples,)``.
        sr: its sample rate in Hz.
    Returns:
        float32 ``(samples',)`` at 16 kHz.  When the VAD finds no voice the untrimmed audio
        is returned.
    """
    wav = resample(np.asarray(audio, dtype=np.float32), sr, SAMPLE_RATE)
    wav = normalize_volume(wav)
    trimmed = trim_long_silences(wav)
    return trimmed if trimmed.size else wav


def partial_starts(n_samples: int) -> list[int]:
    """Start frames of the partial utterances covering ``n_samples`` samples at 16 kHz."""
    n_frames = int(np.ceil((n_samples + 1) / MEL_HOP_SAMPLES))
    steps = max(1, n_frames - PARTIAL_FRAMES + PARTIAL_STEP_FRAMES + 1)
    starts = list(range(0, steps, PARTIAL_STEP_FRAMES))
    last_start = starts[-1] * MEL_HOP_SAMPLES
    coverage = (n_samples - last_start) / (PARTIAL_FRAMES * MEL_HOP_SAMPLES)
    if coverage < PARTIAL_MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def partial_mels(wav16k: np.ndarray) -> np.ndarray:
    """Mel power partials of preprocessed 16 kHz audio: float32 ``(n_partials, 160, 40)``."""
    starts = partial_starts(wav16k.shape[0])
    needed = (starts[-1] + PARTIAL_FRAMES) * MEL_HOP_SAMPLES
    if needed >= wav16k.shape[0]:
        wav16k = np.pad(wav16k, (0, needed - wav16k.shape[0]))
    mel = mel_power(wav16k, SAMPLE_RATE, MEL_WINDOW_SAMPLES, MEL_HOP_SAMPLES, N_MELS)
    return np.stack([mel[s:s + PARTIAL_FRAMES] for s in starts])


# ----------------------------------------------------------------------------------------------
# embeddings


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), NORM_EPS)).astype(np.float32)


def embed_utterances(clips: list[Audio], *, preprocessed: bool = False) -> np.ndarray:
    """Speaker embeddings of several clips: float32 ``(n_clips, 256)``, rows unit-norm.

    The partial utterances of all clips go through the encoder together (in batches of
    :data:`BATCH_PARTIALS`), which is much cheaper than one pass per clip: the LSTM's cost is
    dominated by its 160 sequential steps, not by the batch size.

    Args:
        clips: ``[(audio, sr), ...]``, audio mono float ``(samples,)``.
        preprocessed: skip :func:`preprocess` (audio already went through it, sr = 16000).
    """
    import torch

    mels = [partial_mels(np.asarray(a, dtype=np.float32) if preprocessed else preprocess(a, sr))
            for a, sr in clips]
    counts = [m.shape[0] for m in mels]
    batch = np.concatenate(mels)
    model = load_encoder()
    with torch.inference_mode():
        partials = np.concatenate([model(torch.from_numpy(batch[i:i + BATCH_PARTIALS])).numpy()
                                   for i in range(0, batch.shape[0], BATCH_PARTIALS)])
    bounds = np.cumsum([0] + counts)
    return np.stack([_unit(partials[bounds[i]:bounds[i + 1]].mean(axis=0)) for i in range(len(clips))])


def embed_utterance(audio: np.ndarray, sr: int, *, preprocessed: bool = False) -> np.ndarray:
    """Speaker embedding of one clip: float32 ``(256,)``, unit norm, non-negative: the
    normalised mean of its partial-utterance embeddings.

    Args:
        audio: mono float ``(samples,)``.
        sr: its sample rate in Hz (must be 16000 when ``preprocessed``).
        preprocessed: skip :func:`preprocess` (``audio`` already went through it).
    """
    return embed_utterances([(audio, sr)], preprocessed=preprocessed)[0]


def embed_speaker(clips: list[Audio]) -> np.ndarray:
    """Speaker embedding of several clips ``[(audio, sr), ...]``: the normalised mean of their
    utterance embeddings, float32 ``(256,)``."""
    if not clips:
        raise ValueError("embed_speaker needs at least one clip")
    return _unit(embed_utterances(clips).mean(axis=0))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(_unit(a), _unit(b)))


def speaker_similarity(a: Audio, b: Audio | list[Audio]) -> float:
    """Cosine of the embeddings of clip ``a`` and clip(s) ``b`` (1 = same voice)."""
    other = embed_speaker(b) if isinstance(b, list) else embed_utterance(*b)
    return cosine(embed_utterance(*a), other)


# ----------------------------------------------------------------------------------------------
# metric


class SimilarityMetric:
    """Resemblyzer cosine of the output vs the target references and vs the source."""

    name = "similarity"
    keys = ("similarity_target", "similarity_source", "similarity_margin")

    def missing(self, ctx: EvalContext) -> str | None:
        if ctx.source is None and not ctx.target_refs:
            return "needs the source or target reference clips"
        return None

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        # one encoder pass for output, source and references
        clips = [ctx.output] + ([ctx.source] if ctx.source is not None else []) + ctx.target_refs
        emb = embed_utterances(clips)
        out, rest = emb[0], emb[1:]
        result: dict[str, float] = {}
        if ctx.target_refs:
            target = _unit(rest[-len(ctx.target_refs):].mean(axis=0))
            result["similarity_target"] = cosine(out, target)
        if ctx.source is not None:
            result["similarity_source"] = cosine(out, rest[0])
        if len(result) == 2:
            result["similarity_margin"] = result["similarity_target"] - result["similarity_source"]
        ctx.info["vad"] = vad_backend()
        return result


register(SimilarityMetric())
