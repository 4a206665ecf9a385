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
from aisinger.convert.retrieval import DEFAULT_PROTECT, DEFAULT_RETRIEVAL, check_settings
from aisinger.convert.vits import convert_vits
from aisinger.dsp.signal import check_mono
from aisinger.errors import AisingerError
from aisinger.features import Features
from aisinger.features.pitch import DEFAULT_METHOD, METHODS
from aisinger.io.audio import MAX_SR, MIN_SR, to_mono
from aisinger.voice.folder import Voice

__all__ = ["convert", "feature_config", "DEFAULT_RETRIEVAL", "DEFAULT_PROTECT"]


def _mono(audio, sr: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    return check_mono(to_mono(x) if x.ndim == 2 else x, sr, "convert")


def convert(voice: Voice, audio: np.ndarray, sr: int, features: Features | None = None, *,
            transpose: float = 0.0, f0_method: str = DEFAULT_METHOD,
            retrieval: float = DEFAULT_RETRIEVAL, protect: float = DEFAULT_PROTECT,
            out_sr: int | None = None, content_encoder: str | Path | None = None,
            warn_range: bool = True) -> tuple[np.ndarray, int]:
    """Convert sung vocals to ``voice`` (a :class:`~aisinger.voice.folder.Voice`, see
    :func:`~aisinger.voice.folder.load_voice`).

    audio: (samples,) or (channels, samples) float32 at ``sr`` Hz (mixed to mono); features:
    the source's :class:`~aisinger.features.Features` when the caller has them already
    (extracted with :func:`feature_config` ``(voice, f0_method)``; DDSP voices use them instead
    of analysing the audio again, vits voices analyse with their own HuBERT/ContentVec encoder);
    transpose: semitones (F0 x 2^(n/12)); f0_method: one of
    :data:`aisinger.features.pitch.METHODS`; retrieval: 0..1 blend of k-NN retrieved target
    content (0 = off; needs the voice's index; for RVC voices this is RVC's index_rate);
    protect: 0..1 share of the source kept on consonants and breaths (see
    :func:`aisinger.convert.retrieval.protect_mask`; 0 = off); out_sr: output rate (default:
    the voice's); content_encoder: HuBERT/ContentVec weights for imported So-VITS/RVC voices
    (default: the asset registry, see aisinger.features.hubert).  Returns (audio (samples,)
    float32, rate) with samples = round(input samples x rate / sr).  Writes nothing: callers
    save through :mod:`aisinger.label`.  Dispatches on the voice's model family.
    warn_range: log a warning when more than :data:`aisinger.convert.key.OUT_OF_RANGE_WARN` of
    the transposed sung frames fall outside the voice's trained range (DDSP voices, whose
    model card records the range).
    """
    if f0_method not in METHODS:
        raise AisingerError(f"convert: unknown F0 method {f0_method!r} (use one of "
                            f"{', '.join(METHODS)})")
    check_settings(retrieval, protect, "convert")
    if not math.isfinite(transpose):
        raise AisingerError(f"convert: transpose must be a number of semitones, got {transpose}")
    if out_sr is not None and not MIN_SR <= out_sr <= MAX_SR:
        raise AisingerError(f"convert: output sample rate {out_sr} Hz is outside "
                            f"{MIN_SR}-{MAX_SR} Hz")
    x = _mono(audio, sr)
    if voice.family == "vits":
        return convert_vits(voice, x, int(sr), transpose, f0_method, retrieval, out_sr,
                            content_encoder=content_encoder, protect=protect)
    return convert_ddsp(voice, x, int(sr), transpose, f0_method, retrieval, out_sr,
                        protect=protect, features=features, warn_range=warn_range)
