"""Deterministic text-to-speech through the system ``flite`` and ``espeak-ng`` binaries.

The lab uses TTS only as a source of *timbre* (spectral envelope, consonants); pitch and timing
are imposed later by :mod:`aisinger.lab.sing`.  Both engines are deterministic: the same text
and voice give bit-identical samples.

``VOICES`` maps a lab voice name (``flite-slt``, ``espeak-cmn``, ...) to a :class:`VoiceSpec`.
Text for the Mandarin voices is pinyin with tone digits (``"ni3 hao3"``); Cantonese voices read
Han characters (``"你好"``); see :mod:`aisinger.lab.lyrics`.

The human-like singers (``kokoro-*``, ``piper-joe*``) speak through :mod:`aisinger.tts`
(Kokoro-82M and piper VITS, deterministic); Kokoro Mandarin voices read Han characters.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from aisinger.errors import AisingerError
from aisinger.io.programs import run_to_wav
from aisinger.tts import kokoro, piper

TTS_TIMEOUT_S = 60
"""Wall-clock limit for one TTS call (seconds)."""


@dataclass(frozen=True)
class VoiceSpec:
    """A named lab voice.

    Attributes:
        name: registry key, e.g. ``"flite-slt"``.
        engine: ``"flite"`` or ``"espeak-ng"``.
        voice: engine voice argument (flite ``-voice``; espeak-ng ``-v``, e.g. ``"en-us+f3"``).
        language: ``"en"``, ``"zh"`` (Mandarin) or ``"yue"`` (Cantonese).
        gender: ``"female"`` or ``"male"``; picks the singing register.
        pitch: espeak-ng ``-p`` (0-99) or ``None``.
        speed: espeak-ng ``-s`` words per minute or ``None``.
        intelligible: whether an ASR model understands the TTS output (espeak-ng's Chinese
            voices are not intelligible to Whisper; they are used for timbre only).
        foreign_voice: engine voice used instead of ``voice`` for text in another language
            (e.g. English lyrics for the pinyin-reading Mandarin voice); ``None``: ``voice``.
        kokoro: for ``engine="kokoro"``: the blend of Kokoro style tables
            (``((base voice, weight), ...)``, see :mod:`aisinger.tts.kokoro`).
        formant: spectral-envelope scale applied when singing (> 1: shorter vocal tract,
            brighter; < 1: darker); makes new timbres from one speech voice.
        pitch_offset: semitones added to the gender transpose (a singer's own range).
    """

    name: str
    engine: str
    voice: str
    language: str
    gender: str
    pitch: int | None = None
    speed: int | None = None
    intelligible: bool = True
    foreign_voice: str | None = None
    kokoro: tuple[tuple[str, float], ...] | None = None
    formant: float = 1.0
    pitch_offset: int = 0

    def engine_voice(self, language: str | None = None) -> str:
        """The engine voice argument for text in ``language`` (``None``: the voice's own)."""
        if language is not None and language != self.language and self.foreign_voice:
            return self.foreign_voice
        return self.voice


VOICES: dict[str, VoiceSpec] = {
    v.name: v
    for v in (
        VoiceSpec("flite-slt", "flite", "slt", "en", "female"),
        VoiceSpec("flite-rms", "flite", "rms", "en", "male"),
        VoiceSpec("flite-awb", "flite", "awb", "en", "male"),
        # kal16 is the 16 kHz build of the kal diphone voice (plain "kal" is 8 kHz).
        VoiceSpec("flite-kal", "flite", "kal16", "en", "male"),
        VoiceSpec("espeak-en-f3", "espeak-ng", "en-us+f3", "en", "female", pitch=60, speed=150),
        VoiceSpec("espeak-en-m3", "espeak-ng", "en-us+m3", "en", "male", pitch=40, speed=150),
        VoiceSpec("espeak-en-f2", "espeak-ng", "en-gb+f2", "en", "female", pitch=55, speed=150),
        VoiceSpec("espeak-en-m1", "espeak-ng", "en-gb+m1", "en", "male", pitch=45, speed=150),
        # Mandarin reads pinyin with tone digits ("ni3 hao3"): the packaged espeak-ng cmn
        # dictionary lacks most Han characters (they come out as English letter names).
        # English text goes to plain "cmn", which reads Latin script as English.
        VoiceSpec("espeak-cmn", "espeak-ng", "cmn-latn-pinyin", "zh", "male", pitch=45,
                  speed=150, intelligible=False, foreign_voice="cmn"),
        VoiceSpec("espeak-cmn-f2", "espeak-ng", "cmn-latn-pinyin+f2", "zh", "female", pitch=60,
                  speed=150, intelligible=False, foreign_voice="cmn+f2"),
        VoiceSpec("espeak-yue", "espeak-ng", "yue", "yue", "male", pitch=45, speed=150,
                  intelligible=False),
        VoiceSpec("espeak-yue-f4", "espeak-ng", "yue+f4", "yue", "female", pitch=60, speed=150,
                  intelligible=False),
        # Human-like singers (issue 13): neural speech voices through aisinger.tts.  Kokoro
        # reads Mandarin (Han characters) and English; piper joe English only.  Blends of
        # Kokoro style tables plus a formant scale and a range offset make further singers.
        VoiceSpec("kokoro-alpha", "kokoro", "jf_alpha", "zh", "female",
                  kokoro=(("jf_alpha", 1.0),)),
        VoiceSpec("kokoro-gongitsune", "kokoro", "jf_gongitsune", "zh", "female",
                  kokoro=(("jf_gongitsune", 1.0),)),
        VoiceSpec("kokoro-kumo", "kokoro", "jm_kumo", "zh", "male", kokoro=(("jm_kumo", 1.0),)),
        VoiceSpec("kokoro-nezumi", "kokoro", "jf_nezumi", "en", "female",
                  kokoro=(("jf_nezumi", 1.0),)),
        VoiceSpec("kokoro-tebukuro", "kokoro", "jf_tebukuro", "en", "female",
                  kokoro=(("jf_tebukuro", 1.0),)),
        VoiceSpec("piper-joe", "piper", "en_US-joe-medium", "en", "male"),
        VoiceSpec("kokoro-mix-deep", "kokoro", "jm_kumo+jf_alpha", "zh", "male",
                  kokoro=(("jm_kumo", 0.7), ("jf_alpha", 0.3)), formant=0.9, pitch_offset=-2),
        VoiceSpec("kokoro-mix-bright", "kokoro", "jf_nezumi+jf_gongitsune", "en", "female",
                  kokoro=(("jf_nezumi", 0.5), ("jf_gongitsune", 0.5)), formant=1.1,
                  pitch_offset=2),
        VoiceSpec("piper-joe-dark", "piper", "en_US-joe-medium", "en", "male", formant=0.88,
                  pitch_offset=-3),
        # More Mandarin singers for the base model (issue 16, base v5): the base had only two
        # intelligible Mandarin voices.  None of them uses jf_alpha or jf_nezumi, so the
        # benchmark's held-out targets (kokoro-alpha, kokoro-nezumi and their blends) stay
        # unseen by the base.
        VoiceSpec("kokoro-tebukuro-zh", "kokoro", "jf_tebukuro", "zh", "female",
                  kokoro=(("jf_tebukuro", 1.0),)),
        VoiceSpec("kokoro-mix-warm", "kokoro", "jf_gongitsune+jf_tebukuro", "zh", "female",
                  kokoro=(("jf_gongitsune", 0.5), ("jf_tebukuro", 0.5)), formant=0.95,
                  pitch_offset=-1),
        VoiceSpec("kokoro-mix-tenor", "kokoro", "jm_kumo+jf_gongitsune", "zh", "male",
                  kokoro=(("jm_kumo", 0.6), ("jf_gongitsune", 0.4)), formant=1.05,
                  pitch_offset=2),
    )
}
"""Lab voices by name."""


def voice_spec(voice: str | VoiceSpec) -> VoiceSpec:
    """Look up a lab voice by name (or pass a :class:`VoiceSpec` through)."""
    if isinstance(voice, VoiceSpec):
        return voice
    try:
        return VOICES[voice]
    except KeyError:
        raise AisingerError(
            f"unknown lab voice {voice!r}; known voices: {', '.join(sorted(VOICES))}") from None


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AisingerError(
            f"TTS binary {name!r} not found on PATH; install it (e.g. `apt-get install {name}`)")
    return path


def _command(spec: VoiceSpec, text: str, out: Path, language: str | None) -> list[str]:
    if spec.engine == "flite":
        return [_binary("flite"), "-voice", spec.engine_voice(language), "-t", text, "-o", str(out)]
    if spec.engine == "espeak-ng":
        cmd = [_binary("espeak-ng"), "-v", spec.engine_voice(language), "-w", str(out)]
        if spec.pitch is not None:
            cmd += ["-p", str(spec.pitch)]
        if spec.speed is not None:
            cmd += ["-s", str(spec.speed)]
        # "--" so that lyrics starting with "-" are not read as options.
        return cmd + ["--", text]
    raise AisingerError(f"lab voice {spec.name!r}: unknown TTS engine {spec.engine!r}")


def speak_native(text: str, voice: str | VoiceSpec, language: str | None = None
                 ) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` at the engine's native sample rate.

    ``language`` is the language of ``text`` (``None``: the voice's own); it selects the
    voice's ``foreign_voice`` when they differ.

    Returns:
        ``(audio, sr)``: float32 ``(samples,)`` mono in [-1, 1] and its sample rate in Hz
        (flite 16000, espeak-ng 22050).
    """
    spec = voice_spec(voice)
    if not text.strip():
        raise AisingerError(f"lab voice {spec.name!r}: empty text to speak")
    if spec.engine in ("kokoro", "piper"):
        return _speak_neural(text, spec, language)
    audio, sr = run_to_wav(lambda out: _command(spec, text, out, language),
                           timeout_s=TTS_TIMEOUT_S,
                           what=f"speaking {text!r} with voice {spec.voice!r}")
    return np.ascontiguousarray(audio.mean(axis=0)), sr


def _speak_neural(text: str, spec: VoiceSpec, language: str | None) -> tuple[np.ndarray, int]:
    """Kokoro / piper through :mod:`aisinger.tts` (cached per process: syllables repeat)."""
    return _neural_cached(text, spec.engine, spec.kokoro, language or spec.language)


@functools.lru_cache(maxsize=4096)
def _neural_cached(text: str, engine: str, mix, language: str) -> tuple[np.ndarray, int]:
    if engine == "kokoro":
        audio, sr = kokoro.synthesize(text, language, kokoro.KokoroVoice(mix))
    else:
        if language != "en":
            raise AisingerError(f"piper joe speaks English, not {language!r}")
        audio, sr = piper.synthesize(text)
    audio.setflags(write=False)
    return audio, sr


def speak(text: str, voice: str | VoiceSpec, sr: int = 22050, language: str | None = None
          ) -> np.ndarray:
    """Synthesize ``text`` with a lab voice, resampled to ``sr`` Hz.

    ``language``: language of ``text`` when it is not the voice's own (see
    :meth:`VoiceSpec.engine_voice`).

    Returns:
        float32 ``(samples,)`` mono.
    """
    audio, native = speak_native(text, voice, language)
    if native != sr:
        audio = soxr.resample(audio, native, sr).astype(np.float32)
    return audio
