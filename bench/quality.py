"""Quality benchmark: voice conversion on the lab corpus, scored with ``aisinger.eval``.

    .venv/bin/python bench/quality.py [--quick] [--corpus DIR] [--seed 0] [--voices A,B,...]
        [--pairs SRC:TGT,...] [--system NAME ...] [--phrases N] [--json PATH] [--save-audio DIR]

1. Builds the lab corpus (:func:`aisinger.lab.corpus.make_corpus`, no songs) in ``--corpus``
   (default ``bench/results/lab-corpus``, git-ignored), or reuses it when its manifest already
   holds every voice asked for with the same seed.  A corpus missing voices is completed
   (the build resumes; existing clips are kept).
2. Plans the grid: every ordered pair of distinct voices of the same language (or ``--pairs``)
   × the held-out *test* phrases they both sing in that language.  Parallel renditions share
   melody and timing, so the target voice's rendition is the ground truth of the conversion;
   ``transpose`` is the target clip's transpose minus the source clip's (male voices sing an
   octave lower: male→female is +12).
3. Runs every system (``--system``, repeatable) on every task.  Built-in baselines:
   ``identity`` (the source unchanged: the floor) and ``ground-truth`` (the target voice's
   parallel rendition: the ceiling).  A real model plugs in as another system, see
   :func:`register_system` and :func:`resolve_system` (``--system package.module:function``).
4. Scores each output with the metrics of :mod:`aisinger.eval` (Resemblyzer similarity to the
   target voice's *train-split* clips and to the source, F0 vs source + transpose, Whisper CER
   against the known lyrics, DNSMOS, the long-term spectrum per octave band against the
   target's train clips: :mod:`aisinger.eval.spectrum`), memoising per-audio work
   (embeddings, F0 tracks, transcripts, DNSMOS, band energies) across rows, and aggregates per
   system × language.

Prints the table and writes JSON (default ``bench/results/quality.json``) with per-clip rows,
aggregates, config, timing and machine info.  espeak-ng's Mandarin/Cantonese voices are not
intelligible to Whisper: their CER is reported per row (``intelligible: false``) but kept out
of the aggregate ``cer``/``wer`` (shown in parentheses, JSON ``cer_unintelligible``).

Target (issue 4): floor and ceiling rows for >= 4 voices and 2 languages in <= 20 minutes on
2 CPU cores, corpus build included.  See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import itertools
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_CORPUS = BENCH_DIR / "results" / "lab-corpus"
QUICK_CORPUS = BENCH_DIR / "results" / "lab-corpus-quick"
DEFAULT_JSON = BENCH_DIR / "results" / "quality.json"

DEFAULT_VOICES = ("kokoro-alpha", "kokoro-gongitsune", "kokoro-kumo", "kokoro-mix-deep",
                  "piper-joe", "kokoro-nezumi", "kokoro-tebukuro", "kokoro-mix-bright")
"""The human-like lab (issue 13): four Mandarin singers (Kokoro alpha and gongitsune
female, kumo male, a blended deep male) and four English singers (piper joe male, Kokoro
nezumi and tebukuro female, a blended bright female): 12 + 12 ordered pairs, same- and
cross-gender.  The flite/espeak-ng voices remain available with ``--voices``."""
DEFAULT_PHRASES = 6
"""Phrases per language in the default corpus: 2 test (-> 24 pairs x 2 = 48 conversions per
system) and 4 train (the similarity references)."""
DEFAULT_SHARED = 0
"""No English phrases sung by the Mandarin voices (the grid pairs same-language voices)."""
QUICK_VOICES = ("kokoro-alpha", "kokoro-kumo", "piper-joe", "kokoro-nezumi")
"""``--quick``: two voices per language."""
QUICK_PHRASES = 3
"""Phrases per language in the ``--quick`` corpus (test_fraction 0.2 -> 1 test, 2 train)."""
QUICK_SHARED = 0
"""``--quick``: no English phrases sung by the Mandarin voices (fewer clips to build)."""
DEFAULT_SYSTEMS = ("identity", "ground-truth")

TIME_BUDGET_S = 20 * 60
"""The issue's budget for the default run on 2 CPU cores, corpus build included."""

EMBED_BATCH_CLIPS = 32
"""Clips embedded per speaker-encoder call when pre-computing embeddings (bounds memory)."""

JSON_VERSION = 1

METRIC_KEYS = ("similarity_target", "similarity_source", "similarity_margin", "f0_rmse_cents",
               "f0_median_cents", "f0_gross_error", "f0_corr", "vuv_error", "cer", "wer",
               "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808", "naturalness",
               "naturalness_refs", "naturalness_gap", "spectrum_max_abs_db", "rtf")
"""Per-row metric keys that are aggregated: those of :func:`aisinger.eval.evaluate` plus the
benchmark's ``f0_median_cents`` and ``f0_gross_error`` (:func:`median_cents_error`,
:func:`gross_error_rate`).  Besides the means, :func:`aggregate` adds
``spectrum_pooled_max_abs_db`` (see there)."""
GROSS_ERROR_CENTS = 50.0
"""A voiced frame whose pitch is off by more than this counts as a gross error."""
ASR_KEYS = ("cer", "wer")
"""Aggregated over intelligible rows only (the others go to ``<key>_unintelligible``)."""

TABLE_COLUMNS = (
    # (header, aggregate key, format)
    ("sim_tgt", "similarity_target", "{:.3f}"),
    ("sim_src", "similarity_source", "{:.3f}"),
    ("margin", "similarity_margin", "{:+.3f}"),
    ("f0_rmse", "f0_rmse_cents", "{:.0f}"),
    ("f0_med", "f0_median_cents", "{:.0f}"),
    ("f0>50c", "f0_gross_error", "{:.3f}"),
    ("f0_corr", "f0_corr", "{:.3f}"),
    ("vuv", "vuv_error", "{:.3f}"),
    ("cer", "cer", "{:.3f}"),
    ("wer", "wer", "{:.3f}"),
    ("ovrl", "dnsmos_ovrl", "{:.2f}"),
    ("nat", "naturalness", "{:.2f}"),
    ("nat_gap", "naturalness_gap", "{:+.2f}"),
    ("spec_d", "spectrum_max_abs_db", "{:.1f}"),
    ("spec_pool", "spectrum_pooled_max_abs_db", "{:.1f}"),
    ("rtf", "rtf", "{:.3f}"),
)

Audio = tuple[np.ndarray, int]
"""Mono float32 ``(samples,)`` audio and its sample rate in Hz."""


# ----------------------------------------------------------------------------------------------
# systems


@dataclass(frozen=True)
class ConversionTask:
    """One conversion of the grid: sing ``source_wav``'s phrase in ``target_voice``'s voice.

    Attributes:
        source_wav: the source clip (44.1 kHz mono WAV of the lab corpus).
        source_voice, target_voice: lab voice names.
        transpose: semitones the output should be shifted by (target clip's transpose minus
            the source clip's: +12 male→female, -12 female→male, 0 otherwise).
        language: language of the phrase (``en``, ``zh``, ``yue``).
        phrase: phrase id (``en-003``).
        lyrics: the sung text (reference for CER).
        target_train: the target voice's train-split clips of this language (what a voice
            model of the target is trained on; also the similarity references).
        target_wav: the target voice's parallel rendition (ground truth). Only baselines may
            read it; a real system must not.
    """

    source_wav: Path
    source_voice: str
    target_voice: str
    transpose: float
    language: str
    phrase: str
    lyrics: str
    target_train: tuple[Path, ...]
    target_wav: Path
    intelligible: bool


Converter = Callable[[ConversionTask], Audio]
"""A system: converts one task to ``(audio (samples,), sr)``."""


@dataclass(frozen=True)
class System:
    """A conversion system benchmarked as one row per language.

    ``baseline`` systems do no real work, so no real-time factor is reported for them.
    """

    name: str
    convert: Converter
    description: str = ""
    baseline: bool = False


SYSTEMS: dict[str, System] = {}
"""Registered systems by name (``--system NAME``)."""


def register_system(name: str, description: str = "", baseline: bool = False,
                    takes_task: bool = True) -> Callable[[Callable], Callable]:
    """Decorator registering a converter under ``name``.

    With ``takes_task`` the function receives the :class:`ConversionTask`; otherwise it is the
    plain form ``fn(source_wav: Path, target_voice: str, transpose: float) -> (audio, sr)``
    (what a trained voice model provides).
    """
    def wrap(fn: Callable) -> Callable:
        SYSTEMS[name] = System(name, fn if takes_task else _plain(fn), description, baseline)
        return fn
    return wrap


def _plain(fn: Callable[[Path, str, float], Any]) -> Converter:
    """Adapt ``fn(source_wav, target_voice, transpose)`` to the :data:`Converter` form."""
    def convert(task: ConversionTask) -> Audio:
        return fn(task.source_wav, task.target_voice, task.transpose)
    convert.__name__ = getattr(fn, "__name__", "convert")
    return convert


def _read(path: Path) -> Audio:
    from aisinger.io.audio import load

    return load(path, mono=True)


@register_system("identity", "the source clip unchanged (floor)", baseline=True)
def identity(task: ConversionTask) -> Audio:
    """The floor: no conversion at all (not even the transpose)."""
    return _read(task.source_wav)


@register_system("ground-truth", "the target voice's parallel rendition (ceiling)", baseline=True)
def ground_truth(task: ConversionTask) -> Audio:
    """The ceiling: a perfect conversion is the target voice singing the same phrase."""
    return _read(task.target_wav)


def resolve_system(spec: str) -> System:
    """A registered system name, or ``package.module:function`` / ``path/file.py:function``
    naming a plain converter ``fn(source_wav, target_voice, transpose) -> (audio, sr)``.

    Raises AisingerError for an unknown name or an import that fails.
    """
    from aisinger.errors import AisingerError

    if spec in SYSTEMS:
        return SYSTEMS[spec]
    if ":" not in spec:
        raise AisingerError(f"unknown system '{spec}'; known: {', '.join(SYSTEMS)} "
                            "(or package.module:function)")
    target, _, attr = spec.rpartition(":")
    try:
        if target.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {target}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module  # dataclasses etc. look their module up
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        fn = getattr(module, attr)
    except (ImportError, AttributeError, OSError) as err:
        raise AisingerError(f"system '{spec}': cannot import ({err})") from None
    name = f"{Path(target).name}:{attr}" if target.endswith(".py") else spec
    return System(name, _plain(fn), f"plug-in {spec}")


def _slug(name: str) -> str:
    """``name`` as one safe folder name (plug-in systems are named ``module:function``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "system"


# ----------------------------------------------------------------------------------------------
# corpus and grid


def ensure_corpus(corpus: Path, voices: Sequence[str], seed: int, n_phrases: int | None = None,
                  n_shared: int | None = None, workers: int = 2) -> tuple[dict, bool, float]:
    """Reuse the corpus in ``corpus`` if it holds ``voices`` (built with ``seed``), else build
    or complete it (no songs; ``n_phrases``/``n_shared`` as in
    :func:`~aisinger.lab.corpus.make_corpus`).  When completing, the voices and phrase counts
    already there are kept, so existing clips are reused.

    Returns ``(manifest, built, seconds)``.  Raises AisingerError when the existing corpus was
    built with another seed (pass that seed or another ``--corpus``).
    """
    from aisinger.errors import AisingerError
    from aisinger.lab.corpus import load_manifest, make_corpus

    start = time.perf_counter()
    old = load_manifest(corpus) if (corpus / "manifest.json").is_file() else None
    keep: list[str] = []
    if old is not None:
        if old["config"]["seed"] != seed:
            was = old["config"]["seed"]
            raise AisingerError(f"{corpus}: lab corpus built with seed {was}, not {seed}; "
                                f"pass --seed {was} or another --corpus")
        if set(voices) <= set(old["voices"]):
            return old, False, time.perf_counter() - start
        keep = [v for v in old["config"]["voices"] if v not in voices]
        n_phrases, n_shared = old["config"]["n_phrases"], old["config"]["n_shared"]
    path = make_corpus(corpus, seed=seed, voices=list(voices) + keep, n_phrases=n_phrases,
                       n_shared=n_shared, n_songs=0, workers=workers)
    return load_manifest(path), True, time.perf_counter() - start


@dataclass(frozen=True)
class Pair:
    """A source → target voice pair evaluated on phrases of ``language``."""

    source: str
    target: str
    language: str


def default_pairs(manifest: dict, voices: Sequence[str]) -> list[Pair]:
    """Every ordered pair of distinct ``voices`` whose own language is the same."""
    lang = {v: manifest["voices"][v]["language"] for v in voices}
    return [Pair(a, b, lang[a]) for a, b in itertools.permutations(voices, 2) if lang[a] == lang[b]]


def parse_pairs(text: str, manifest: dict) -> list[Pair]:
    """``"A:B,C:D"`` → pairs; a cross-language pair uses the shared English phrases."""
    from aisinger.errors import AisingerError

    pairs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        a, sep, b = item.partition(":")
        if not sep or a not in manifest["voices"] or b not in manifest["voices"] or a == b:
            raise AisingerError(f"--pairs: '{item}' is not SOURCE:TARGET of two corpus voices "
                                f"({', '.join(manifest['voices'])})")
        la, lb = manifest["voices"][a]["language"], manifest["voices"][b]["language"]
        pairs.append(Pair(a, b, la if la == lb else "en"))
    return pairs


def plan_tasks(manifest: dict, corpus: Path, pairs: Sequence[Pair],
               max_phrases: int | None = None) -> list[ConversionTask]:
    """The conversions of the grid: for each pair, its parallel *test* clips in the pair's
    language (at most ``max_phrases`` per pair, in phrase order)."""
    from aisinger.errors import AisingerError
    from aisinger.lab.corpus import parallel_clips

    tasks = []
    for pair in pairs:
        refs = train_refs(manifest, corpus, pair.target, pair.language)
        clips = [(a, b) for a, b in parallel_clips(manifest, pair.source, pair.target, split="test")
                 if a["language"] == pair.language]
        clips.sort(key=lambda ab: ab[0]["phrase"])
        if not clips:
            raise AisingerError(f"{corpus}: no parallel test clips for {pair.source} → "
                                f"{pair.target} in '{pair.language}'")
        for src, tgt in clips[:max_phrases]:
            tasks.append(ConversionTask(
                source_wav=corpus / src["audio"], source_voice=pair.source,
                target_voice=pair.target, transpose=float(tgt["transpose"] - src["transpose"]),
                language=pair.language, phrase=src["phrase"], lyrics=src["text"],
                target_train=refs, target_wav=corpus / tgt["audio"],
                intelligible=bool(src["intelligible"] and tgt["intelligible"])))
    return tasks


def train_refs(manifest: dict, corpus: Path, voice: str, language: str) -> tuple[Path, ...]:
    """The voice's train-split clips in ``language`` (all its train clips if none)."""
    train = [c for c in manifest["clips"] if c["voice"] == voice and c["split"] == "train"]
    same = [c for c in train if c["language"] == language] or train
    if not same:
        from aisinger.errors import AisingerError

        raise AisingerError(f"{corpus}: voice {voice} has no train-split clips for references")
    return tuple(corpus / c["audio"] for c in sorted(same, key=lambda c: c["phrase"]))


# ----------------------------------------------------------------------------------------------
# scoring


def audio_key(audio: np.ndarray, sr: int) -> str:
    """Content hash of mono audio and its rate (the memoisation key)."""
    h = hashlib.sha1(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    h.update(str(int(sr)).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class ScoreConfig:
    """What :class:`Scorer` computes.

    f0_method: pitch estimator of the F0 metric; dnsmos_hop_seconds: hop between DNSMOS's
    9.01 s segments (1 = as published); asr: run Whisper (CER/WER); dnsmos: run DNSMOS;
    naturalness: run DistillMOS on the output and the target references; spectrum: compare
    the output's long-term spectrum per octave band with the target references'.
    """

    f0_method: str = "fcpe"
    dnsmos_hop_seconds: int = 1
    asr: bool = True
    dnsmos: bool = True
    naturalness: bool = True
    spectrum: bool = True


@dataclass
class Scorer:
    """The per-clip metrics of :func:`aisinger.eval.evaluate`, with per-audio work memoised
    across calls (keyed by :func:`audio_key`): speaker embeddings, F0 tracks, transcripts and
    DNSMOS.  For a given output/source/references/transpose/lyrics it returns the same values
    as ``evaluate`` (``tests/test_bench_quality.py`` checks this)."""

    config: ScoreConfig = field(default_factory=ScoreConfig)
    seconds: dict[str, float] = field(default_factory=dict)
    """Compute time per metric (cache misses only), seconds."""
    _emb: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _f0: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _text: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _mos: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    _nat: dict[str, float] = field(default_factory=dict, repr=False)
    _bands: dict[tuple[str, tuple[float, ...]], np.ndarray] = field(default_factory=dict,
                                                                    repr=False)

    def _timed(self, metric: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds[metric] = self.seconds.get(metric, 0.0) + time.perf_counter() - start

    def embed(self, clips: Sequence[Audio]) -> list[np.ndarray]:
        """Utterance embeddings ``(256,)`` of ``clips``; missing ones computed in batches."""
        from aisinger.eval.similarity import embed_utterances

        keys = [audio_key(a, sr) for a, sr in clips]
        todo = list({k: c for k, c in zip(keys, clips) if k not in self._emb}.items())
        for i in range(0, len(todo), EMBED_BATCH_CLIPS):
            chunk = todo[i:i + EMBED_BATCH_CLIPS]
            emb = self._timed("similarity", lambda: embed_utterances([c for _, c in chunk]))
            self._emb.update({k: e for (k, _), e in zip(chunk, emb)})
        return [self._emb[k] for k in keys]

    def f0(self, clip: Audio) -> np.ndarray:
        """F0 track (Hz, 100 frames/s, 0 = unvoiced) of ``clip`` with ``config.f0_method``."""
        from aisinger.eval.f0 import track

        key = audio_key(*clip)
        if key not in self._f0:
            self._f0[key] = self._timed("f0", lambda: track(*clip, method=self.config.f0_method))
        return self._f0[key]

    def transcript(self, clip: Audio, lang: str) -> str:
        """Whisper-base transcription of ``clip`` in ``lang``."""
        from aisinger.eval.intelligibility import transcribe

        key = (audio_key(*clip), lang)
        if key not in self._text:
            self._text[key] = self._timed("intelligibility", lambda: transcribe(*clip, lang=lang))
        return self._text[key]

    def dnsmos(self, clip: Audio) -> dict[str, float]:
        """DNSMOS SIG/BAK/OVRL and P.808 of ``clip``."""
        from aisinger.eval.dnsmos import dnsmos

        key = audio_key(*clip)
        if key not in self._mos:
            self._mos[key] = self._timed("dnsmos", lambda: dnsmos(
                *clip, hop_seconds=self.config.dnsmos_hop_seconds))
        return self._mos[key]

    def naturalness(self, clip: Audio) -> float:
        """DistillMOS of ``clip``."""
        from aisinger.eval.naturalness import distillmos

        key = audio_key(*clip)
        if key not in self._nat:
            self._nat[key] = self._timed("naturalness", lambda: distillmos(*clip))
        return self._nat[key]

    def band_fractions(self, clip: Audio, bands: tuple[float, ...]) -> np.ndarray:
        """Octave-band energy fractions of ``clip`` on ``bands``
        (:func:`aisinger.eval.spectrum.band_fractions`)."""
        from aisinger.eval.spectrum import band_fractions

        key = (audio_key(*clip), tuple(bands))
        if key not in self._bands:
            self._bands[key] = self._timed("spectrum", lambda: band_fractions(*clip, bands))
        return self._bands[key]

    def spectrum(self, output: Audio, target_refs: Sequence[Audio]):
        """:func:`aisinger.eval.spectrum.spectrum_difference` of ``output`` vs ``target_refs``
        (same bands and numbers), with the per-clip band energies memoised."""
        from aisinger.eval.spectrum import bands_for_rate, compare_fractions

        bands = bands_for_rate(min([output[1]] + [sr for _, sr in target_refs]))
        return compare_fractions(bands, [self.band_fractions(output, bands)],
                                 [self.band_fractions(r, bands) for r in target_refs])

    def score(self, output: Audio, source: Audio, target_refs: Sequence[Audio], transpose: float,
              lyrics: str, lang: str) -> dict[str, Any]:
        """Metrics of one conversion, keys as :func:`aisinger.eval.evaluate` names them, plus
        ``transcript`` and ``notes``."""
        from aisinger.eval.f0 import LENGTH_TOLERANCE_FRAMES, compare_f0
        from aisinger.eval.intelligibility import error_rates
        from aisinger.eval.similarity import cosine

        out_e, src_e, *ref_e = self.embed([output, source, *target_refs])
        row: dict[str, Any] = {"similarity_target": cosine(out_e, np.mean(ref_e, axis=0)),
                               "similarity_source": cosine(out_e, src_e)}
        row["similarity_margin"] = row["similarity_target"] - row["similarity_source"]
        f0_out, f0_src = self.f0(output), self.f0(source)
        row.update(compare_f0(f0_out, f0_src, transpose))
        row["f0_median_cents"] = median_cents_error(f0_out, f0_src, transpose)
        row["f0_gross_error"] = gross_error_rate(f0_out, f0_src, transpose)
        notes = []
        if abs(f0_out.shape[0] - f0_src.shape[0]) > LENGTH_TOLERANCE_FRAMES:
            notes.append(f"f0: output and source lengths differ by "
                         f"{abs(f0_out.shape[0] - f0_src.shape[0])} frames")
        if self.config.asr:
            row["transcript"] = self.transcript(output, lang)
            row.update(error_rates(lyrics, row["transcript"], lang))
        if self.config.dnsmos:
            row.update(self.dnsmos(output))
        if self.config.naturalness:
            row["naturalness"] = self.naturalness(output)
            if target_refs:
                row["naturalness_refs"] = float(np.mean([self.naturalness(r) for r in target_refs]))
                row["naturalness_gap"] = row["naturalness_refs"] - row["naturalness"]
        if self.config.spectrum and target_refs:
            from aisinger.errors import AisingerError

            try:
                diff = self.spectrum(output, target_refs)
                row["spectrum_max_abs_db"] = diff.max_abs_db
                row["spectrum"] = diff.as_dict()
            except AisingerError as err:  # e.g. a silent output: undefined, not a crash
                row["spectrum_max_abs_db"] = float("nan")
                notes.append(str(err))
        row["notes"] = notes
        return row


def median_cents_error(f0_out: np.ndarray, f0_src: np.ndarray, transpose: float) -> float:
    """Median absolute pitch error (cents) of ``f0_out`` vs ``f0_src`` shifted by ``transpose``
    semitones, over frames voiced in both (tracks cut to the shorter; NaN when fewer than the
    F0 metric's minimum of voiced frames).

    A robust companion of ``f0_rmse_cents`` (benchmark-only key ``f0_median_cents``): the RMSE
    is dominated by a few octave/voicing errors of the pitch estimator (even the ground truth
    scores ~100 cents RMSE on some voices while its median error is a few cents).
    """
    err = _abs_cents_errors(f0_out, f0_src, transpose)
    return float("nan") if err is None else float(np.median(err))


def _abs_cents_errors(f0_out: np.ndarray, f0_src: np.ndarray, transpose: float
                      ) -> np.ndarray | None:
    """|pitch error| in cents per frame voiced in both tracks (cut to the shorter), against
    ``f0_src`` shifted by ``transpose``; None with fewer than the F0 metric's minimum frames."""
    from aisinger.eval.f0 import CENTS_PER_SEMITONE, MIN_VOICED_FRAMES, to_cents

    n = min(f0_out.shape[0], f0_src.shape[0])
    out, src = f0_out[:n], f0_src[:n]
    both = (out > 0) & (src > 0)
    if both.sum() < MIN_VOICED_FRAMES:
        return None
    return np.abs(to_cents(out[both]) - to_cents(src[both]) - CENTS_PER_SEMITONE * transpose)


def gross_error_rate(f0_out: np.ndarray, f0_src: np.ndarray, transpose: float,
                     cents: float = GROSS_ERROR_CENTS) -> float:
    """Fraction of the frames voiced in both tracks whose pitch is off by more than ``cents``
    from ``f0_src`` shifted by ``transpose`` (NaN with too few voiced frames)."""
    err = _abs_cents_errors(f0_out, f0_src, transpose)
    return float("nan") if err is None else float(np.mean(err > cents))


# ----------------------------------------------------------------------------------------------
# running


class _AudioCache:
    """Decoded corpus clips by path (the grid reads each clip many times)."""

    def __init__(self) -> None:
        self._clips: dict[Path, Audio] = {}

    def __call__(self, path: Path) -> Audio:
        if path not in self._clips:
            self._clips[path] = _read(path)
        return self._clips[path]


def _mono(result: Any, what: str) -> Audio:
    from aisinger.errors import AisingerError

    if not (isinstance(result, tuple) and len(result) == 2):
        raise AisingerError(f"system {what}: a converter must return (audio, sr)")
    audio, sr = result
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1 or audio.size == 0 or not np.isfinite(audio).all():
        raise AisingerError(f"system {what}: output must be non-empty finite mono audio")
    return audio, int(sr)


def run_system(system: System, tasks: Sequence[ConversionTask], scorer: Scorer,
               clips: _AudioCache, save_dir: Path | None = None) -> tuple[list[dict], dict]:
    """Convert every task with ``system`` and score the outputs.

    Returns ``(rows, timing)``: one row per task (task fields + metrics) and
    ``{"convert_s", "score_s"}``.
    """
    from aisinger.progress import track

    outputs: list[tuple[Audio, float]] = []
    t0 = time.perf_counter()
    for task in track(tasks, total=len(tasks), description=f"{system.name}: convert"):
        start = time.perf_counter()
        out = _mono(system.convert(task), system.name)
        outputs.append((out, time.perf_counter() - start))
        if save_dir is not None:
            from aisinger.io.audio import save

            save(save_dir / _slug(system.name) / f"{task.source_voice}__{task.target_voice}"
                 / f"{task.phrase}.wav", out[0], out[1])
    convert_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    # one batched encoder pass for every clip this system's rows need
    scorer.embed([o for o, _ in outputs] + [clips(p) for t in tasks
                                            for p in (t.source_wav, *t.target_train)])
    rows = []
    for task, (out, seconds) in track(list(zip(tasks, outputs)), total=len(tasks),
                                      description=f"{system.name}: score"):
        metrics = scorer.score(out, clips(task.source_wav), [clips(p) for p in task.target_train],
                               task.transpose, task.lyrics, task.language)
        # baselines do no work: no real-time factor
        metrics["rtf"] = None if system.baseline else seconds / (out[0].shape[0] / out[1])
        rows.append({"system": system.name, "language": task.language,
                     "source_voice": task.source_voice, "target_voice": task.target_voice,
                     "phrase": task.phrase, "transpose": task.transpose,
                     "intelligible": task.intelligible, "lyrics": task.lyrics,
                     "source": str(task.source_wav), "n_target_refs": len(task.target_train),
                     "output_seconds": out[0].shape[0] / out[1],
                     "convert_seconds": seconds, **metrics})
    return rows, {"convert_s": convert_s, "score_s": time.perf_counter() - t0}


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _mean(values: Sequence[Any]) -> float | None:
    vals = _finite(values)
    return float(np.mean(vals)) if vals else None


def aggregate(rows: Sequence[dict]) -> list[dict]:
    """Means per system × language, in first-seen order.

    Every :data:`METRIC_KEYS` value is the mean over the group's rows (None when no row has
    it); CER/WER are averaged over intelligible rows only and over the others as
    ``cer_unintelligible`` / ``wer_unintelligible``.  ``spectrum_pooled_max_abs_db`` is the
    issue-16 measure proper (:func:`pooled_spectrum`): per target voice, the long-term
    spectrum of all the group's outputs against the references, its largest band |Δ|,
    averaged over the target voices (``spectrum_pooled`` holds the per-voice tables).
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["system"], r["language"]), []).append(r)
    out = []
    for (system, lang), rs in groups.items():
        ok = [r for r in rs if r["intelligible"]]
        bad = [r for r in rs if not r["intelligible"]]
        agg: dict[str, Any] = {
            "system": system, "language": lang,
            "pairs": len({(r["source_voice"], r["target_voice"]) for r in rs}),
            "clips": len(rs), "intelligible_clips": len(ok),
            "voices": sorted({r["source_voice"] for r in rs} | {r["target_voice"] for r in rs}),
        }
        for key in METRIC_KEYS:
            if key in ASR_KEYS:
                agg[key] = _mean([r.get(key) for r in ok])
                agg[f"{key}_unintelligible"] = _mean([r.get(key) for r in bad])
            else:
                agg[key] = _mean([r.get(key) for r in rs])
        pooled = pooled_spectrum(rs)
        agg["spectrum_pooled"] = pooled
        agg["spectrum_pooled_max_abs_db"] = _mean([p["max_abs_db"] for p in pooled.values()])
        out.append(agg)
    return out


def pooled_spectrum(rows: Sequence[dict]) -> dict[str, dict]:
    """Long-term spectrum of all of ``rows``' outputs per target voice vs its references.

    Each row's ``spectrum`` holds its output's and the references' band levels (dB re the
    total in the compared bands); the pooled output spectrum is the mean of the rows' band
    fractions (each clip weighs the same, as the references do), compared with the mean of
    the rows' reference spectra (identical within a target voice and language).  Rows are
    pooled per target voice over the bands they share.  Returns ``{target_voice:
    SpectrumDifference.as_dict()}`` (empty when no row has a spectrum)."""
    from aisinger.eval.spectrum import compare_fractions

    by_voice: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("spectrum"):
            by_voice.setdefault(r["target_voice"], []).append(r["spectrum"])
    out = {}
    for voice, specs in by_voice.items():
        bands = min((tuple(s["bands_hz"]) for s in specs), key=len)
        keys = [f"{c:.0f}" for c in bands]

        def fractions(levels: dict) -> np.ndarray:
            f = 10.0 ** (np.array([levels[k] for k in keys]) / 10.0)
            return f / f.sum()

        out[voice] = compare_fractions(bands, [fractions(s["output_db"]) for s in specs],
                                       [fractions(s["refs_db"]) for s in specs]).as_dict()
    return out


def format_table(aggregates: Sequence[dict]) -> str:
    """The printed table: one line per system × language.

    A CER/WER in parentheses comes from voices Whisper cannot understand (not a quality
    measure); ``-`` = not computed.
    """
    shown = [c for c in TABLE_COLUMNS
             if any(a.get(c[1]) is not None or a.get(f"{c[1]}_unintelligible") is not None
                    for a in aggregates)]
    header = ["system", "lang", "pairs", "clips"] + [c[0] for c in shown]
    lines = []
    for a in aggregates:
        cells = [a["system"], a["language"], str(a["pairs"]), str(a["clips"])]
        for _, key, fmt in shown:
            v = a.get(key)
            if v is None and a.get(f"{key}_unintelligible") is not None:
                cells.append("(" + fmt.format(a[f"{key}_unintelligible"]) + ")")
            else:
                cells.append("-" if v is None else fmt.format(v))
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]

    def fmt_row(r: list[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i])
                         for i, c in enumerate(r))

    return "\n".join([fmt_row(header), "  ".join("-" * w for w in widths)]
                     + [fmt_row(r) for r in lines])


def machine_info() -> dict[str, Any]:
    """Where the benchmark ran: CPU count, load, platform, library versions, git commit."""
    import numpy
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor() or None, "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0],
        "numpy": numpy.__version__, "torch": torch.__version__,
    }
    for name in ("onnxruntime", "ctranslate2"):
        try:
            info[name] = importlib.import_module(name).__version__
        except ImportError:
            info[name] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=BENCH_DIR,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["git_commit"] = (commit + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def _json_safe(v: Any) -> Any:
    """NaN/inf → None, numpy scalars → float, paths → str, recursively."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v


def write_json(path: Path, doc: dict) -> None:
    """Atomic JSON write (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_json_safe(doc), indent=1, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"tiny grid: {', '.join(QUICK_VOICES)}, {QUICK_PHRASES} phrases per "
                         "language (1 test phrase per pair)")
    ap.add_argument("--corpus", type=Path, default=None,
                    help=f"lab corpus folder, built/completed if needed (default {DEFAULT_CORPUS}, "
                         f"--quick: {QUICK_CORPUS})")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    ap.add_argument("--voices", default=None, help="comma-separated lab voices "
                    f"(default {','.join(DEFAULT_VOICES)})")
    ap.add_argument("--pairs", default=None,
                    help="SRC:TGT,... explicit pairs (default: all ordered same-language pairs)")
    ap.add_argument("--system", action="append", default=None,
                    help="system to run, repeatable: a registered name "
                         f"({', '.join(SYSTEMS)}) or package.module:function (default: "
                         f"{' and '.join(DEFAULT_SYSTEMS)})")
    ap.add_argument("--phrases", type=int, default=None,
                    help="at most this many test phrases per pair (default: all)")
    ap.add_argument("--f0", default="fcpe", help="pitch method of the F0 metric (default fcpe)")
    ap.add_argument("--dnsmos-hop", type=int, default=1,
                    help="seconds between DNSMOS segments (default 1, as published)")
    ap.add_argument("--no-asr", action="store_true", help="skip Whisper (CER/WER)")
    ap.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS")
    ap.add_argument("--no-naturalness", action="store_true", help="skip DistillMOS")
    ap.add_argument("--no-spectrum", action="store_true",
                    help="skip the long-term spectrum comparison")
    ap.add_argument("--workers", type=int, default=2, help="corpus build processes (default 2)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    ap.add_argument("--save-audio", type=Path, default=None,
                    help="also write every output to DIR/<system>/<src>__<tgt>/<phrase>.wav")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does (see cli.py)
    from aisinger.errors import AisingerError

    try:
        return _run(args)
    except AisingerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    wall0 = time.perf_counter()
    load0 = os.getloadavg()
    corpus = args.corpus or (QUICK_CORPUS if args.quick else DEFAULT_CORPUS)
    systems = [resolve_system(s) for s in (args.system or DEFAULT_SYSTEMS)]
    pairs_text = args.pairs
    if pairs_text:  # the corpus needs the voices of the pairs (and of --voices, if given)
        voices = list(dict.fromkeys((_csv(args.voices) or []) + [
            v for p in _csv(pairs_text) or [] for v in p.split(":") if v]))
    else:
        voices = _csv(args.voices) or list(QUICK_VOICES if args.quick else DEFAULT_VOICES)

    manifest, built, corpus_s = ensure_corpus(
        corpus, voices, args.seed, n_phrases=QUICK_PHRASES if args.quick else DEFAULT_PHRASES,
        n_shared=QUICK_SHARED if args.quick else DEFAULT_SHARED, workers=args.workers)
    pairs = parse_pairs(pairs_text, manifest) if pairs_text else default_pairs(manifest, voices)
    tasks = plan_tasks(manifest, corpus, pairs, args.phrases)
    scorer = Scorer(ScoreConfig(f0_method=args.f0, dnsmos_hop_seconds=args.dnsmos_hop,
                                asr=not args.no_asr, dnsmos=not args.no_dnsmos,
                                naturalness=not args.no_naturalness,
                                spectrum=not args.no_spectrum))
    clips = _AudioCache()
    rows: list[dict] = []
    system_s: dict[str, dict] = {}
    for system in systems:
        r, timing = run_system(system, tasks, scorer, clips, args.save_audio)
        rows += r
        system_s[system.name] = timing
    aggregates = aggregate(rows)
    wall = time.perf_counter() - wall0

    languages = sorted({t.language for t in tasks})
    print(f"quality benchmark — {len(systems)} systems × {len(pairs)} pairs × {len(tasks)} "
          f"clips; {len(voices)} voices, languages {', '.join(languages)}; corpus {corpus} "
          f"(seed {args.seed}, {'built' if built else 'reused'} in {corpus_s:.0f} s)")
    print(format_table(aggregates))
    print("sim_* = Resemblyzer cosine vs target train clips / vs source; f0_rmse/f0_med = RMS/"
          "median pitch error in cents vs source+transpose; f0>50c = fraction of frames off by "
          "> 50 cents; nat = DistillMOS of the output (speech-trained: compare rows), nat_gap = "
          "target train clips' DistillMOS - output's; spec_d = largest |difference| (dB) over "
          "octave bands of the output's long-term spectrum vs the target train clips', mean over "
          "clips; "
          "spec_pool = the same for all of a target's outputs pooled, mean over targets; (cer) "
          "= voices Whisper cannot understand, not in the mean.")
    metric_s = ", ".join(f"{k} {v:.0f} s" for k, v in scorer.seconds.items())
    print(f"wall {wall:.0f} s (budget {TIME_BUDGET_S} s): corpus {corpus_s:.0f} s, metrics "
          f"{metric_s}; {os.cpu_count()} CPUs, load {load0[0]:.1f} → {os.getloadavg()[0]:.1f}")
    doc = {
        "benchmark": "quality", "version": JSON_VERSION,
        "config": {"quick": args.quick, "corpus": corpus, "seed": args.seed, "voices": voices,
                   "pairs": [asdict(p) for p in pairs],
                   "systems": {s.name: {"description": s.description, "baseline": s.baseline}
                               for s in systems},
                   "max_phrases_per_pair": args.phrases, "score": asdict(scorer.config)},
        "corpus": {"dir": corpus, "built": built, "seconds": corpus_s,
                   "config": manifest["config"], "n_clips": len(manifest["clips"])},
        "timing": {"wall_s": wall, "corpus_s": corpus_s, "systems": system_s,
                   "metrics_s": dict(scorer.seconds), "budget_s": TIME_BUDGET_S,
                   "within_budget": wall <= TIME_BUDGET_S},
        "machine": {**machine_info(), "loadavg_start": load0, "loadavg_end": os.getloadavg()},
        "aggregates": aggregates,
        "rows": rows,
    }
    write_json(args.json, doc)
    print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
