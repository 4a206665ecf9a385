"""Speech in a trained singing voice: ``aisinger speak "文本" --voice VOICE --lang zh -o OUT``.

A frequent request of the 2023 AI-cover users: "能否训练出音色后，让他用训练的音色读出一段文字"
(once the timbre is trained, can it read a text aloud?).  Offline TTS makes the words with a
natural speech contour, and the voice model re-sings them:

    text ─ TTS (aisinger.tts: Kokoro-82M for Mandarin and Japanese, piper joe for English,
         espeak-ng for Cantonese) ─ features.extract ─ pitch placement ─ convert.convert
         ─ label ─ file

* Mandarin, English and Japanese speech is intelligible (Whisper base CER 0 on test sentences,
  see docs/lab.md).  Cantonese stays on espeak-ng (robotic, not intelligible to Whisper) until
  an intelligible offline Cantonese voice exists.
* Pitch: speech sits lower than singing, so the speech contour is moved (kept in shape, not
  flattened) so that its median lands ``SPEECH_RANGE_POSITION`` of the way up the voice's
  trained range (in semitones); ``transpose`` overrides.
* The output is labelled like every other output (:func:`aisinger.label.policy_for`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.consent import check_voice
from aisinger.convert import DEFAULT_PROTECT, DEFAULT_RETRIEVAL, convert, feature_config
from aisinger.convert.key import voice_range
from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP
from aisinger.errors import AisingerError
from aisinger.features import extract
from aisinger.features.pitch import DEFAULT_METHOD
from aisinger.io import audio as audio_io
from aisinger.label import label_audio, policy_for, write_labelled
from aisinger.tts import synthesize
from aisinger.voice.folder import load_voice

__all__ = ["speak", "SpeakOptions", "SpeakResult", "tts_text", "speech_transpose", "LANGS",
           "TTS_VOICES", "MAX_TEXT_CHARS"]

LANGS = ("en", "zh", "ja", "yue")
DEFAULT_LANG = "en"
"""The language of the text unless told otherwise."""
TTS_VOICES = {"en": "piper-joe", "zh": "kokoro-alpha", "ja": "kokoro-alpha", "yue": "espeak-yue"}
"""Speaker per language (:data:`aisinger.tts.SPEAKERS`); its timbre is replaced by the voice."""
MAX_TEXT_CHARS = 2000
"""Longest text accepted (one TTS call; longer texts: split them)."""
SPEECH_RANGE_POSITION = 0.25
"""Where the speech median is put in the voice's trained range (0 = bottom, 1 = top)."""


@dataclass
class SpeakOptions:
    """transpose: semitones (None: place the speech in the voice's range); retrieval/protect:
    as in :func:`aisinger.convert.convert`; sr: output rate (None: the voice's); tts_voice:
    override the speaker (a name of :data:`aisinger.tts.SPEAKERS`); explicit_label / no_label:
    as in cover."""

    transpose: float | None = None
    retrieval: float = DEFAULT_RETRIEVAL
    protect: float = DEFAULT_PROTECT
    sr: int | None = None
    tts_voice: str | None = None
    explicit_label: str | None = None
    no_label: bool = False


@dataclass
class SpeakResult:
    out_path: Path
    transpose: float
    reason: str
    text: str
    seconds: float
    label: dict = field(default_factory=dict)


def tts_text(text: str, lang: str) -> str:
    """The text handed to the TTS engine: whitespace collapsed (Kokoro reads Mandarin Han
    characters itself; the pinyin step for espeak-ng is no longer needed)."""
    return " ".join(str(text).split())


def speech_transpose(f0: np.ndarray, range_hz: tuple[float, float] | None) -> tuple[float, str]:
    """Semitones that put the median of the voiced speech ``f0`` (Hz, 0 = unvoiced) at
    ``SPEECH_RANGE_POSITION`` of the voice's range; (0, reason) when either is unknown."""
    voiced = f0[f0 > 0]
    if range_hz is None or voiced.size == 0:
        return 0.0, "no pitch range in the voice's model card or no voiced speech: no shift"
    lo, hi = (12 * math.log2(x / 440.0) for x in range_hz)
    med = 12 * math.log2(float(np.median(voiced)) / 440.0)
    shift = round(lo + SPEECH_RANGE_POSITION * (hi - lo) - med, 1)
    return shift, (f"speech median {float(np.median(voiced)):.0f} Hz placed at "
                   f"{SPEECH_RANGE_POSITION:.0%} of the voice range {range_hz[0]:.0f}-"
                   f"{range_hz[1]:.0f} Hz: {shift:+.1f} semitones")


def speak(text: str, voice_dir: str | Path, out_path: str | Path, lang: str = DEFAULT_LANG,
          options: SpeakOptions = SpeakOptions(), progress=None) -> SpeakResult:
    """Read ``text`` aloud in the voice ``voice_dir`` and write a labelled file ``out_path``.

    lang: ``"en"``, ``"zh"`` (Mandarin), ``"ja"`` or ``"yue"`` (Cantonese, espeak-ng).  The
    voice's consent record must permit ``speak``.  ``progress(stage, fraction)`` is called as
    the stages start (the callback :func:`aisinger.progress.stage_bar` yields).
    """
    report = progress or (lambda stage, fraction: None)
    if lang not in LANGS:
        raise AisingerError(f"speak: unknown language {lang!r}; use one of {', '.join(LANGS)}")
    text = " ".join(str(text).split())
    if not text:
        raise AisingerError("speak: the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise AisingerError(f"speak: the text has {len(text)} characters; the limit is "
                            f"{MAX_TEXT_CHARS} (split it)")
    out_path, voice_dir = Path(out_path), Path(voice_dir)
    if out_path.suffix.lower() not in audio_io.WRITE_EXTENSIONS:
        raise AisingerError(f"{out_path}: cannot write '{out_path.suffix or 'no extension'}'; "
                            f"use one of {', '.join(audio_io.WRITE_EXTENSIONS)}")
    voice = load_voice(voice_dir)
    check_voice(voice_dir, "speak")
    policy = policy_for("speak", no_label=options.no_label, explicit=options.explicit_label,
                        lang="zh" if lang in ("zh", "yue") else "en")  # ja: English label

    report("text to speech", 0.05)
    spoken = tts_text(text, lang)
    tts_sr = 22050
    speech, _ = synthesize(spoken, lang, options.tts_voice or TTS_VOICES[lang], sr=tts_sr)
    report("pitch", 0.25)
    feats = None
    if options.transpose is None:
        feats = extract(speech, tts_sr, config=feature_config(voice, DEFAULT_METHOD),
                        progress=False)  # analysed once: the key and the conversion use them
        transpose, reason = speech_transpose(feats.f0, voice_range(voice.card))
    else:
        transpose = float(options.transpose)
        reason = f"transpose {transpose:+g} semitones given by the user"
    report("convert", 0.4)
    y, rate = convert(voice, speech, tts_sr, feats, transpose=transpose,
                      f0_method=DEFAULT_METHOD, retrieval=options.retrieval,
                      protect=options.protect, out_sr=options.sr,
                      warn_range=False)  # speech sits low on purpose (SPEECH_RANGE_POSITION)
    label: dict = {}
    report("label", 0.85)
    if policy.enabled:
        y, label = label_audio(y, rate, voice_id=voice_dir.resolve().name, policy=policy)
    # one labelled writer, limited to the true-peak ceiling (TTS + conversion can exceed 1.0)
    write_labelled(y, rate, out_path, label, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)
    report("done", 1.0)
    return SpeakResult(out_path, transpose, reason, spoken, round(y.shape[-1] / rate, 3), label)
