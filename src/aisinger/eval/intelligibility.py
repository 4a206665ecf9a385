"""Intelligibility: character (and word) error rate of a Whisper-base transcription.

The OUTPUT is transcribed with Whisper base (CTranslate2, offline; the ``whisper-base-ct2``
asset through :mod:`aisinger.features.whisper`) with the language token set explicitly, and
compared with a reference text: the given lyrics, or else the transcription of the SOURCE
(never the output against itself, which would always give 0).  Audio longer than 30 s is
transcribed in consecutive 30 s windows, decoded as one batch.  A window whose
no-speech probability exceeds :data:`NO_SPEECH_THRESHOLD` while its average log-probability is
below :data:`LOGPROB_THRESHOLD` is treated as silent (Whisper's own rule), so noise gives an
empty transcription rather than a hallucination.

Languages: ``zh`` (Mandarin), ``yue`` (Cantonese), ``en``, ``ja``.  Whisper base has no
``<|yue|>`` token (it appeared with large-v3), so Cantonese is decoded with ``<|zh|>``.

Text normalisation (:func:`normalize_text`): Unicode NFKC (full-width forms to ASCII), lower
case, apostrophes removed (``don't`` -> ``dont``), every other punctuation or symbol character
replaced by a space.  Chinese (zh, yue) is converted from traditional to simplified characters
with OpenCC's ``t2s`` tables when ``opencc-purepy`` is installed (Whisper writes either script;
without the package, a traditional/simplified mismatch counts as an error — see
:func:`script_conversion_available`).  Japanese is not converted.  For zh/yue/ja all
whitespace is removed and CER is computed over characters; for other languages whitespace is
collapsed, WER is computed over words and CER over the characters of the words joined by single
spaces.  Number words vs digits ("three" / "3") are not reconciled.

Result keys: ``cer`` (edit distance / reference length; 1.0 for an empty transcription; can
exceed 1 when the transcription is much longer than the reference), ``wer`` (space-delimited
languages only).  ``ctx.info`` receives ``transcript`` (output), ``reference`` and
``reference_kind`` (``lyrics`` or ``source transcription``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from aisinger.errors import AisingerError
from aisinger.eval.registry import EvalContext, register
from aisinger.features import whisper as W
from aisinger.io.audio import resample

LANGUAGES = ("zh", "yue", "en", "ja")
"""Languages the CLI accepts."""
CJK_LANGUAGES = frozenset({"zh", "yue", "ja"})  # scored per character, whitespace ignored
CHINESE_LANGUAGES = frozenset({"zh", "yue"})  # traditional -> simplified before scoring
WHISPER_LANGUAGE_TOKEN = {"zh": "zh", "yue": "zh", "en": "en", "ja": "ja"}  # base has no <|yue|>
SAMPLE_RATE = 16000  # Whisper's input rate
WINDOW_SECONDS = 30  # Whisper's fixed context
BEAM_SIZE = 5  # beam search width (Whisper's default for transcription)
MAX_DECODE_TOKENS = 448  # Whisper's decoder context (max_length)
NO_SPEECH_THRESHOLD = 0.6  # Whisper's no_speech_threshold
LOGPROB_THRESHOLD = -1.0  # Whisper's logprob_threshold (average log-probability per token)
APOSTROPHES = "'\u2019\u02bc"  # ' ’ ʼ are deleted inside words


# ----------------------------------------------------------------------------------------------
# edit distance and error rates


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1) between two
    sequences of hashable tokens; O(len(ref) * len(hyp)) time, O(len(hyp)) memory, one numpy
    row per reference token."""
    if len(ref) == 0 or len(hyp) == 0:
        return max(len(ref), len(hyp))
    vocab: dict = {}
    r = np.array([vocab.setdefault(t, len(vocab)) for t in ref], dtype=np.int64)
    h = np.array([vocab.setdefault(t, len(vocab)) for t in hyp], dtype=np.int64)
    positions = np.arange(len(h) + 1, dtype=np.int64)
    prev = positions.copy()  # distance from the empty reference prefix
    for i, token in enumerate(r, start=1):
        # substitution/match and deletion, vectorised over the hypothesis
        best = np.minimum(prev[:-1] + (h != token), prev[1:] + 1)
        row = np.empty_like(prev)
        row[0] = i
        row[1:] = best
        # insertions run left to right: row[j] = min_k<=j (row[k] + j - k)
        row = np.minimum.accumulate(row - positions) + positions
        prev = row
    return int(prev[-1])


@functools.lru_cache(maxsize=1)
def _t2s():
    """OpenCC traditional->simplified converter, or None when opencc-purepy is missing."""
    try:
        from opencc_purepy import OpenCC
    except ImportError:
        return None
    return OpenCC("t2s")


def script_conversion_available() -> bool:
    """Whether traditional Chinese is mapped to simplified before scoring (opencc-purepy)."""
    return _t2s() is not None


def normalize_text(text: str, lang: str) -> str:
    """Normalise ``text`` for scoring in ``lang`` (see the module doc).

    Returns a string without punctuation: for zh/yue/ja without any whitespace, otherwise
    lower-case words separated by single spaces.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if lang in CHINESE_LANGUAGES and (conv := _t2s()) is not None:
        text = conv.convert(text)
    text = re.sub(f"[{APOSTROPHES}]", "", text)
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    if lang in CJK_LANGUAGES:
        return "".join(text.split())
    return " ".join(text.split())


def error_rates(reference: str, hypothesis: str, lang: str) -> dict[str, float]:
    """CER (and WER for space-delimited languages) of ``hypothesis`` against ``reference``.

    Both texts are normalised with :func:`normalize_text`.  An empty hypothesis scores 1.0.
    Raises AisingerError when the normalised reference is empty.
    """
    ref, hyp = normalize_text(reference, lang), normalize_text(hypothesis, lang)
    if not ref:
        raise AisingerError(f"reference text {reference[:40]!r} is empty after normalisation")
    result = {"cer": edit_distance(ref, hyp) / len(ref)}
    if lang not in CJK_LANGUAGES:
        words = ref.split()
        result["wer"] = edit_distance(words, hyp.split()) / len(words)
    return result


# ----------------------------------------------------------------------------------------------
# transcription


def check_language(lang: str) -> str:
    """Return ``lang`` if supported, else raise AisingerError."""
    if lang not in LANGUAGES:
        raise AisingerError(f"unsupported language '{lang}'; use one of {', '.join(LANGUAGES)}")
    return lang


@functools.lru_cache(maxsize=2)
def _tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def _prompt(tokenizer, lang: str) -> list[int]:
    """Token ids of ``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>``."""
    names = ("<|startoftranscript|>", f"<|{WHISPER_LANGUAGE_TOKEN[lang]}|>", "<|transcribe|>",
             "<|notimestamps|>")
    ids = [tokenizer.token_to_id(n) for n in names]
    if None in ids:
        raise AisingerError(f"Whisper tokenizer lacks {names[ids.index(None)]}")
    return ids


def _windows(audio16k: np.ndarray) -> list[np.ndarray]:
    """Consecutive 30 s windows of 16 kHz audio (the last one shorter)."""
    size = WINDOW_SECONDS * SAMPLE_RATE
    return [audio16k[i:i + size] for i in range(0, max(audio16k.shape[0], 1), size)]


def transcribe(audio: np.ndarray, sr: int, lang: str = "en", beam_size: int = BEAM_SIZE) -> str:
    """Transcribe mono ``audio`` (samples,) at ``sr`` Hz with Whisper base in ``lang``.

    Returns the decoded text of all 30 s windows joined by spaces ('' when nothing is said).
    """
    import ctranslate2

    check_language(lang)
    model = W.load_whisper()
    tokenizer = _tokenizer(str(W.tokenizer_path()))
    eot = tokenizer.token_to_id("<|endoftext|>")
    audio16k = resample(np.asarray(audio, dtype=np.float32), sr, SAMPLE_RATE)
    mels = np.stack([W.pad_or_trim(W.log_mel_spectrogram(w)) for w in _windows(audio16k)])
    prompt = _prompt(tokenizer, lang)
    results = model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(mels)),
                             [prompt] * mels.shape[0], beam_size=beam_size,
                             max_length=MAX_DECODE_TOKENS, return_scores=True,
                             return_no_speech_prob=True, suppress_blank=True)
    texts = []
    for res in results:
        ids = [t for t in res.sequences_ids[0] if t < eot]  # drop special/timestamp tokens
        avg_logprob = res.scores[0] if res.scores else 0.0  # CT2: cumulative logprob / length
        if res.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
            continue
        texts.append(tokenizer.decode(ids).strip())
    return " ".join(t for t in texts if t)


# ----------------------------------------------------------------------------------------------
# metric


class IntelligibilityMetric:
    """CER/WER of the output's Whisper transcription against lyrics or the source's."""

    name = "intelligibility"
    keys = ("cer", "wer")

    def missing(self, ctx: EvalContext) -> str | None:
        if not (ctx.lyrics and ctx.lyrics.strip()) and ctx.source is None:
            return "needs lyrics or the source (whose transcription is the reference)"
        return None

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        check_language(ctx.lang)
        hyp = ctx.cached(("transcript", "output", ctx.lang),
                         lambda: transcribe(*ctx.output, lang=ctx.lang))
        if ctx.lyrics and ctx.lyrics.strip():
            ref, kind = ctx.lyrics, "lyrics"
        else:
            ref = ctx.cached(("transcript", "source", ctx.lang),
                             lambda: transcribe(*ctx.source, lang=ctx.lang))
            kind = "source transcription"
        ctx.info.update(transcript=hyp, reference=ref, reference_kind=kind)
        if ctx.lang in CHINESE_LANGUAGES and not script_conversion_available():
            ctx.notes.append("intelligibility: opencc-purepy not installed; traditional and "
                             "simplified characters are not unified")
        if not normalize_text(ref, ctx.lang):
            ctx.notes.append(f"intelligibility: the reference ({kind}) is empty; CER undefined")
            return {"cer": float("nan")}
        return error_rates(ref, hyp, ctx.lang)


register(IntelligibilityMetric())
