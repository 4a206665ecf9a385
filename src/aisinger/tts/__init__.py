"""Text-to-speech: one entry, :func:`synthesize`, over the engines aisinger ships.

======================  ========  =====================================================
speaker                 langs     engine
======================  ========  =====================================================
kokoro-alpha (default)  zh en ja  Kokoro-82M, style jf_alpha (female)
kokoro-gongitsune ...   zh en ja  Kokoro-82M, the other four styles (kumo is male)
piper-joe (en default)  en        piper VITS en_US-joe-medium (male, a real speaker)
espeak-yue (default)    yue       espeak-ng ``yue+f4`` (lab voice ``espeak-yue-f4``): no
                                  intelligible offline neural Cantonese voice exists yet;
                                  this one is robotic and Whisper does not understand it
======================  ========  =====================================================

Modules: ``kokoro`` and ``piper`` (neural, onnxruntime), ``_phonemes`` (text -> phonemes),
``classic`` (the flite and espeak-ng lab voices: ``VOICES``, ``speak``; the human-like lab
voices listed there speak through ``kokoro`` and ``piper``).

Every engine is offline and deterministic: the same text and speaker give the same samples.
Weights come from the asset registry (``kokoro-82m``, ``kokoro-voices``, ``piper-joe``); a
missing or corrupt asset is an :class:`~aisinger.errors.AssetError` naming it and
``aisinger models fetch NAME``.  Text that yields no phonemes is refused, naming the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from aisinger.errors import AisingerError
from aisinger.tts import classic, kokoro, piper
from aisinger.tts.kokoro import KokoroVoice

LANGS = ("zh", "en", "ja", "yue")


@dataclass(frozen=True)
class Speaker:
    """A named voice of one engine: ``kokoro`` (``kokoro`` voice blend), ``piper`` or
    ``espeak`` (``espeak`` voice name); ``langs`` it speaks; ``gender``."""

    name: str
    engine: str
    langs: tuple[str, ...]
    gender: str
    kokoro: KokoroVoice | None = None
    espeak: str | None = None


def _kokoro(name: str, base: str, gender: str) -> Speaker:
    return Speaker(name, "kokoro", ("zh", "en", "ja"), gender, kokoro=KokoroVoice(((base, 1.0),)))


SPEAKERS: dict[str, Speaker] = {s.name: s for s in (
    _kokoro("kokoro-alpha", "jf_alpha", "female"),
    _kokoro("kokoro-gongitsune", "jf_gongitsune", "female"),
    _kokoro("kokoro-nezumi", "jf_nezumi", "female"),
    _kokoro("kokoro-tebukuro", "jf_tebukuro", "female"),
    _kokoro("kokoro-kumo", "jm_kumo", "male"),
    Speaker("piper-joe", "piper", ("en",), "male"),
    Speaker("espeak-yue", "espeak", ("yue",), "female", espeak="espeak-yue-f4"),
)}
"""Speakers by name."""

DEFAULT_SPEAKER = {"zh": "kokoro-alpha", "en": "piper-joe", "ja": "kokoro-alpha",
                   "yue": "espeak-yue"}
"""Speaker used for a language when none is named."""


def speaker(name: str) -> Speaker:
    try:
        return SPEAKERS[name]
    except KeyError:
        raise AisingerError(f"unknown speaker {name!r}; known: {', '.join(SPEAKERS)}") from None


def synthesize(text: str, lang: str, voice: str | Speaker | KokoroVoice | None = None,
               sr: int | None = None, *, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak ``text`` in ``lang`` (zh, en, ja, yue).

    ``voice``: a speaker name (see :data:`SPEAKERS`), a :class:`Speaker`, a
    :class:`KokoroVoice` blend, or None for :data:`DEFAULT_SPEAKER`. ``sr``: resample to this
    rate (None: the engine's own).  ``speed`` > 1 speaks faster (Kokoro and piper).
    Returns ``(float32 mono audio, sample rate)``, peak at most :data:`aisinger.tts.kokoro.PEAK_LIMIT`.
    """
    if lang not in LANGS:
        raise AisingerError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
    if voice is None:
        voice = DEFAULT_SPEAKER[lang]
    if isinstance(voice, str):
        voice = speaker(voice)
    if not str(text).strip():
        raise AisingerError("empty text to speak")
    if isinstance(voice, KokoroVoice):
        kv = KokoroVoice(voice.mix, voice.speed * speed)
        audio, rate = kokoro.synthesize(text, lang, kv)
    else:
        if lang not in voice.langs:
            raise AisingerError(f"speaker {voice.name!r} speaks {', '.join(voice.langs)}, "
                                f"not {lang!r}")
        if voice.engine == "kokoro":
            assert voice.kokoro is not None
            kv = KokoroVoice(voice.kokoro.mix, voice.kokoro.speed * speed)
            audio, rate = kokoro.synthesize(text, lang, kv)
        elif voice.engine == "piper":
            audio, rate = piper.synthesize(text, length_scale=1.0 / speed)
        else:
            audio, rate = classic.speak_native(text, voice.espeak or "espeak-yue-f4")
    if not np.any(audio):
        raise AisingerError(f"text {str(text)[:80]!r} gave silence")
    if sr is not None and sr != rate:
        audio, rate = soxr.resample(audio, rate, sr).astype(np.float32), sr
    return audio, rate


__all__ = ["synthesize", "Speaker", "SPEAKERS", "DEFAULT_SPEAKER", "KokoroVoice", "LANGS",
           "speaker"]
