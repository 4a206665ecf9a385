"""piper (VITS) voices run directly with onnxruntime: en_US-joe-medium, 22.05 kHz.

The ``piper-joe`` asset holds the ONNX model and its JSON config (phoneme -> id map, default
noise/length scales).  Text is phonemised with espeak-ng (``en-us`` IPA, what piper voices are
trained on), framed as ``^ _ p1 _ p2 _ ... $`` ids, and synthesised with the config's scales.

Determinism: the VITS graph draws Gaussian noise (RandomNormalLike) for the prior and the
duration predictor.  onnxruntime seeds those kernels when a session is *created*, so every call
sets :data:`SEED` and creates a fresh session from the model bytes held in memory (about
0.6 s) — the same text then gives bit-identical audio in any order of calls.  Noise scale 0
would also be deterministic but measurably less natural (DistillMOS 3.82 vs 4.32 on one
sentence), so the config's scales are kept.
"""

from __future__ import annotations

import functools
import json
import threading

import numpy as np

from aisinger import assets
from aisinger.errors import AisingerError, AssetError
from aisinger.tts._phonemes import espeak_ipa
from aisinger.tts.kokoro import limit_peak

ASSET = "piper-joe"
MODEL_FILE = "en_US-joe-medium.onnx"
CONFIG_FILE = "en_US-joe-medium.onnx.json"
SEED = 1234
_LOCK = threading.Lock()


def _asset_error(err: Exception) -> AisingerError:
    return AssetError(f"asset '{ASSET}' is missing or unusable ({str(err).splitlines()[0][:160]}); "
                      f"run 'aisinger models fetch {ASSET}'")


@functools.lru_cache(maxsize=1)
def _model() -> tuple[bytes, dict]:
    folder = assets.fetch(ASSET)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        config["phoneme_id_map"], config["audio"]["sample_rate"]  # noqa: B018 - shape check
        return (folder / MODEL_FILE).read_bytes(), config
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _asset_error(err) from None


def sample_rate() -> int:
    return int(_model()[1]["audio"]["sample_rate"])


def phoneme_ids(phonemes: str) -> list[int]:
    """piper ids of an IPA string: BOS, each known symbol followed by the pad, EOS."""
    id_map = _model()[1]["phoneme_id_map"]
    pad = id_map["_"][0]
    ids = [id_map["^"][0], pad]
    for c in phonemes:
        if c in id_map:
            ids += [id_map[c][0], pad]
    return ids + [id_map["$"][0]]


def synthesize(text: str, length_scale: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak English ``text``; ``(float32 audio, 22050)``."""
    import onnxruntime as ort

    if not text.strip():
        raise AisingerError("empty text to speak")
    model, config = _model()
    phonemes = espeak_ipa(text, config.get("espeak", {}).get("voice", "en-us"))
    ids = phoneme_ids(phonemes)
    if len(ids) <= 3:
        raise AisingerError(f"text {text[:80]!r} gives no phonemes piper can speak")
    inf = config.get("inference", {})
    scales = np.array([inf.get("noise_scale", 0.667), inf.get("length_scale", 1.0) * length_scale,
                       inf.get("noise_w", 0.8)], dtype=np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    with _LOCK:
        ort.set_seed(SEED)
        try:
            sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # a corrupt model file
            raise _asset_error(err) from None
    audio = sess.run(None, {"input": np.array([ids], dtype=np.int64),
                            "input_lengths": np.array([len(ids)], dtype=np.int64),
                            "scales": scales})[0]
    return limit_peak(np.asarray(audio, dtype=np.float32).ravel()), sample_rate()
