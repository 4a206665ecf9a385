"""Kokoro-82M speech (int8 ONNX, 24 kHz) in Mandarin, English and Japanese.

The model (``kokoro-82m`` asset) maps phoneme tokens and a 256-d *style* vector to audio.
The style tables (``kokoro-voices`` asset) hold five voices (jf_alpha, jf_gongitsune,
jf_nezumi, jf_tebukuro, jm_kumo), each 510 vectors indexed by token count - 1.  A
:class:`KokoroVoice` is a weighted blend of those tables, so new timbres can be made by
mixing (the lab's blended singers).  Inference is deterministic (no random ops in the graph).

Phonemes come from :mod:`aisinger.tts._phonemes`; text longer than :data:`MAX_TOKENS` is split
at punctuation and spoken in pieces separated by :data:`PIECE_PAUSE_S` of silence.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass

import numpy as np

from aisinger import assets
from aisinger.errors import AisingerError, AssetError
from aisinger.tts._phonemes import kokoro_phonemes

MODEL_ASSET = "kokoro-82m"
VOICES_ASSET = "kokoro-voices"
SAMPLE_RATE = 24000
STYLE_DIM = 256
MAX_TOKENS = 500
"""Most phoneme tokens per call (the style table has 510 rows; 2 are the padding tokens)."""
PIECE_PAUSE_S = 0.25
BASE_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
TRIM_LEVEL = 0.005
"""Leading/trailing samples quieter than this are trimmed (keeping TRIM_PAD_S)."""
TRIM_PAD_S = 0.03
PEAK_LIMIT = 0.99
"""Speech louder than this is scaled down to it."""


@dataclass(frozen=True)
class KokoroVoice:
    """A Kokoro timbre: ``((base voice, weight), ...)`` blended style tables, and a speed."""

    mix: tuple[tuple[str, float], ...]
    speed: float = 1.0

    def describe(self) -> str:
        return "+".join(f"{w:g}*{v}" for v, w in self.mix)


_LOCK = threading.Lock()


def _asset_error(name: str, err: Exception) -> AisingerError:
    return AssetError(f"asset '{name}' is missing or unusable ({str(err).splitlines()[0][:160]}); "
                      f"run 'aisinger models fetch {name}'")


@functools.lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    try:
        path = assets.fetch(MODEL_ASSET)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except AssetError:
        raise
    except Exception as err:  # onnxruntime raises its own types for a corrupt file
        raise _asset_error(MODEL_ASSET, err) from None


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, int], dict[str, np.ndarray]]:
    folder = assets.fetch(VOICES_ASSET)
    try:
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(folder / "voices_ja.npz", allow_pickle=False) as z:
            styles = {k: np.asarray(z[k], dtype=np.float32).reshape(-1, STYLE_DIM) for k in z.files}
    except (OSError, ValueError, KeyError) as err:
        raise _asset_error(VOICES_ASSET, err) from None
    return vocab, styles


def style(voice: KokoroVoice, n_tokens: int) -> np.ndarray:
    """The blended style vector ``(1, 256)`` for an utterance of ``n_tokens`` tokens."""
    _, styles = _tables()
    total = sum(w for _, w in voice.mix)
    if not voice.mix or total <= 0:
        raise AisingerError(f"Kokoro voice {voice.describe()!r}: weights must sum to > 0")
    out = np.zeros(STYLE_DIM, dtype=np.float64)
    for name, w in voice.mix:
        if name not in styles:
            raise AisingerError(f"unknown Kokoro voice {name!r}; known: {', '.join(sorted(styles))}")
        table = styles[name]
        out += w / total * table[min(max(n_tokens, 1), len(table)) - 1]
    return out.astype(np.float32).reshape(1, STYLE_DIM)


def tokens(phonemes: str) -> list[int]:
    """Kokoro token ids of a phoneme string (symbols outside the vocabulary are dropped)."""
    vocab, _ = _tables()
    return [vocab[c] for c in phonemes if c in vocab]


def _pieces(phonemes: str) -> list[str]:
    if len(phonemes) <= MAX_TOKENS:
        return [phonemes]
    out, cur = [], ""
    for part in re.split(r"(?<=[,.!?;:])\s*", phonemes):
        while len(part) > MAX_TOKENS:
            out.append(part[:MAX_TOKENS])
            part = part[MAX_TOKENS:]
        if cur and len(cur) + len(part) + 1 > MAX_TOKENS:
            out.append(cur)
            cur = part
        else:
            cur = f"{cur} {part}".strip()
    return out + ([cur] if cur else [])


def _trim(audio: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(np.abs(audio) > TRIM_LEVEL)
    if idx.size == 0:
        return audio
    pad = int(TRIM_PAD_S * SAMPLE_RATE)
    return audio[max(0, idx[0] - pad): idx[-1] + pad]


def synthesize_phonemes(phonemes: str, voice: KokoroVoice, *, text: str | None = None
                        ) -> np.ndarray:
    """Audio (float32, 24 kHz) of a Kokoro phoneme string."""
    chunks = []
    for piece in _pieces(phonemes):
        ids = tokens(piece)
        if not ids:
            continue
        feed = {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": style(voice, len(ids)),
                "speed": np.array([voice.speed], dtype=np.float32)}
        sess = _session()
        with _LOCK:
            audio = sess.run(None, feed)[0]
        chunks.append(_trim(np.asarray(audio, dtype=np.float32).ravel()))
    if not chunks:
        shown = text if text is not None else phonemes
        raise AisingerError(f"text {shown[:80]!r} gives no phonemes Kokoro can speak")
    gap = np.zeros(int(PIECE_PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    out = [chunks[0]]
    for c in chunks[1:]:
        out += [gap, c]
    return limit_peak(np.concatenate(out))


def limit_peak(audio: np.ndarray) -> np.ndarray:
    """``audio`` scaled down to peak :data:`PEAK_LIMIT` if louder (never clipped): Kokoro can
    overshoot full scale (measured peaks up to 1.12)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > PEAK_LIMIT:
        audio = (audio * (PEAK_LIMIT / peak)).astype(np.float32)
    return audio


def synthesize(text: str, lang: str, voice: KokoroVoice) -> tuple[np.ndarray, int]:
    """Speak ``text`` (``lang``: zh, en or ja) with a Kokoro voice; ``(audio, 24000)``."""
    if not text.strip():
        raise AisingerError("empty text to speak")
    phonemes = kokoro_phonemes(text, lang)
    return synthesize_phonemes(phonemes, voice, text=text), SAMPLE_RATE
