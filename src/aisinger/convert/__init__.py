"""Voice conversion: ``aisinger convert VOCALS --voice VOICE -o OUT``.

:func:`convert` checks its arguments, loads the source and dispatches on the voice's model
family: :mod:`aisinger.convert.ddsp` (voices aisinger trains) or :mod:`aisinger.convert.vits`
(imported So-VITS-SVC / RVC voices).  :mod:`aisinger.convert.retrieval` holds the content
retrieval and consonant protection both families share; :mod:`aisinger.convert.key` the
automatic transpose.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aisinger.convert.ddsp import convert_ddsp, feature_config
from aisinger.convert.retrieval import DEFAULT_PROTECT, DEFAULT_RETRIEVAL
from aisinger.convert.vits import convert_vits
from aisinger.errors import AisingerError
from aisinger.io.audio import load, save, to_mono
from aisinger.voice.folder import load_voice

__all__ = ["convert", "feature_config", "F0_METHODS", "DEFAULT_RETRIEVAL", "DEFAULT_PROTECT"]

F0_METHODS = ("fcpe", "crepe-tiny", "dsp")


def _load_source(vocals, input_sr: int | None) -> tuple[np.ndarray, int]:
    if isinstance(vocals, (str, Path)):
        return load(vocals, mono=True)
    if isinstance(vocals, tuple) and len(vocals) == 2:
        vocals, input_sr = vocals
    if input_sr is None:
        raise AisingerError("convert: give the sample rate of an audio array (input_sr=)")
    x = np.asarray(vocals, dtype=np.float32)
    if x.ndim == 2:
        x = to_mono(x)
    if x.ndim != 1 or x.shape[0] == 0:
        raise AisingerError(f"convert: audio must be (samples,) or (channels, samples), got "
                            f"shape {x.shape}")
    return x, int(input_sr)


def convert(vocals, voice_dir: str | Path, out_path: str | Path | None = None,
            transpose: float = 0.0, f0_method: str = "fcpe",
            retrieval: float = DEFAULT_RETRIEVAL, sr: int | None = None,
            input_sr: int | None = None, protect: float = DEFAULT_PROTECT,
            content_encoder: str | Path | None = None) -> tuple[np.ndarray, int]:
    """Convert sung vocals to the voice in ``voice_dir``.

    vocals: a path, an array (samples,)/(channels, samples) with ``input_sr``, or an
    ``(array, sr)`` tuple; transpose: semitones (F0 x 2^(n/12)); f0_method: fcpe, crepe-tiny
    or dsp; retrieval: 0..1 blend of k-NN retrieved target content (0 = off; needs the voice's
    index; for RVC voices this is RVC's index_rate); sr: output rate (default: the voice's);
    protect: 0..1 share of the source kept on consonants and breaths (see
    :func:`aisinger.convert.retrieval.protect_mask`; 0 = off); content_encoder: HuBERT/ContentVec weights for
    imported So-VITS/RVC voices (default: the asset registry, see
    aisinger.features.hubert).  Returns (audio (samples,) float32, sr) with
    samples = round(input samples x sr / input rate); writes ``out_path`` when given.
    Dispatches on the voice's model family (DDSP, or vits for imported community models).
    """
    if f0_method not in F0_METHODS:
        raise AisingerError(f"convert: unknown F0 method {f0_method!r} (use one of "
                            f"{', '.join(F0_METHODS)})")
    if not 0.0 <= retrieval <= 1.0:
        raise AisingerError(f"convert: retrieval must be in [0, 1], got {retrieval}")
    if not 0.0 <= protect <= 1.0:
        raise AisingerError(f"convert: protect must be in [0, 1], got {protect}")
    if not math.isfinite(transpose):
        raise AisingerError(f"convert: transpose must be a number of semitones, got {transpose}")
    voice = load_voice(voice_dir)
    audio, rate = _load_source(vocals, input_sr)
    if voice.family == "vits":
        y, out_sr = convert_vits(voice, audio, rate, transpose, f0_method, retrieval, sr,
                                 content_encoder=content_encoder, protect=protect)
    else:
        y, out_sr = convert_ddsp(voice, audio, rate, transpose, f0_method, retrieval, sr,
                                 protect=protect)
    if out_path is not None:
        save(out_path, y, out_sr)
    return y, out_sr
