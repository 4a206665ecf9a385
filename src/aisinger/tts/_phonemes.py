"""Text -> phoneme strings for the neural speech engines (offline, deterministic).

* Mandarin: ``misaki[zh]`` (jieba word segmentation + pypinyin + tone arrows), the phoneme
  style Kokoro v1.0 was trained with.
* Japanese: ``misaki``'s Japanese romaniser fed with OpenJTalk readings (``pyopenjtalk-plus``,
  which ships its dictionary in the wheel).
* English: espeak-ng's IPA (``espeak-ng -q --ipa``; espeak-ng is already a system dependency).
  piper voices are trained on exactly this.  For Kokoro the IPA is mapped to misaki's symbols
  (:data:`KOKORO_EN_MAP`: diphthongs to single letters, ``r`` -> ``ɹ`` ...) instead of using
  ``misaki[en]``, which needs spaCy and a model download.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import threading

from aisinger.errors import AisingerError

ESPEAK_TIMEOUT_S = 30

KOKORO_EN_MAP = (
    ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"),
    ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("g", "ɡ"), ("ɫ", "l"), ("ɐ", "ə"),
    ("ᵻ", "ɪ"), ("e", "ɛ"),
)
"""espeak-ng IPA -> Kokoro (misaki) English symbols, applied in order."""

KOKORO_JA_MAP = (
    ("ᶄ", "kʲ"), ("ᶃ", "ɡʲ"), ("K", "kw"), ("G", "ɡw"), ("ƫ", "tʲ"), ("ᶁ", "dʲ"), ("ᶀ", "bʲ"),
    ("ᶈ", "pʲ"), ("ᶆ", "mʲ"), ("ᶉ", "ɾʲ"), ("g", "ɡ"),
)
"""misaki 0.9.4 Japanese symbols missing from the Kokoro v1.0 vocabulary -> IPA it has."""

_LOCK = threading.Lock()


def espeak_ipa(text: str, voice: str = "en-us") -> str:
    """IPA of ``text`` from espeak-ng (clauses joined with ``", "``)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AisingerError("espeak-ng not found on PATH; install it (apt-get install espeak-ng)")
    try:
        proc = subprocess.run([exe, "-q", "-v", voice, "--ipa", "--", text], capture_output=True,
                              text=True, timeout=ESPEAK_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AisingerError(f"espeak-ng timed out phonemising {text[:60]!r}") from None
    if proc.returncode != 0:
        raise AisingerError(f"espeak-ng failed phonemising {text[:60]!r}: "
                            f"{proc.stderr.strip()[-200:]}")
    lines = [" ".join(line.split()) for line in proc.stdout.splitlines() if line.strip()]
    return ", ".join(lines)


def kokoro_english(text: str) -> str:
    """Kokoro phonemes for English text (espeak-ng IPA mapped to misaki's symbols)."""
    ipa = espeak_ipa(text, "en-us")
    for a, b in KOKORO_EN_MAP:
        ipa = ipa.replace(a, b)
    return ipa


@functools.lru_cache(maxsize=2)
def _g2p(lang: str):
    """misaki's G2P for ``zh`` or ``ja`` (imported on first use: jieba / OpenJTalk load
    dictionaries)."""
    need = {"zh": "misaki[zh]==0.9.4", "ja": "pyopenjtalk-plus==0.4.1.post10"}[lang]
    try:
        if lang == "zh":
            from misaki import zh as module
        else:
            from misaki import ja as module
    except ImportError as err:
        raise AisingerError(f"{'Mandarin' if lang == 'zh' else 'Japanese'} text-to-speech "
                            f"needs {need} ({err}); pip install '{need}'") from None
    if lang == "zh":
        logging.getLogger("jieba").setLevel(logging.WARNING)
        return module.ZHG2P()
    return module.JAG2P(version="pyopenjtalk")


def kokoro_mandarin(text: str) -> str:
    """Kokoro phonemes for Mandarin (Han characters; numbers are read out)."""
    with _LOCK:  # jieba and misaki keep module state
        return _g2p("zh")(text)[0]


def kokoro_japanese(text: str) -> str:
    """Kokoro phonemes for Japanese (kana/kanji)."""
    with _LOCK:
        out = _g2p("ja")(text)[0]
    # misaki 0.9.4 appends a pitch-accent string of the same length to the phonemes
    out = out[:len(out) // 2]
    for a, b in KOKORO_JA_MAP:
        out = out.replace(a, b)
    return out


def kokoro_phonemes(text: str, lang: str) -> str:
    """Kokoro phoneme string of ``text`` in ``lang`` (``zh``, ``en`` or ``ja``)."""
    if lang == "zh":
        return kokoro_mandarin(text)
    if lang == "ja":
        return kokoro_japanese(text)
    if lang == "en":
        return kokoro_english(text)
    raise AisingerError(f"Kokoro speaks zh, en and ja, not {lang!r}")
