"""The metric registry and the evaluation context every metric reads.

A metric is any object with a ``name``, the result ``keys`` it may produce, a
``missing(ctx)`` check and ``compute(ctx) -> dict[str, float]`` (the :class:`Metric`
protocol).  Metric modules call :func:`register` at import time; :data:`METRICS` maps names to
metrics in registration order, which is also the order :func:`aisinger.eval.evaluate` runs them.

An :class:`EvalContext` holds the decoded inputs (mono float32 audio with its sample rate) and
caches derived data (resampled copies, F0 tracks, transcripts) for the duration of one
evaluation, so metrics sharing an input do the work once.  Metrics write free-form text
(transcripts, warnings) into ``ctx.info`` / ``ctx.notes``; their numeric results are the
returned dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aisinger.errors import AisingerError
from aisinger.io.audio import load, resample, to_mono

Audio = tuple[np.ndarray, int]
"""Mono audio ``(samples,)`` float32 and its sample rate in Hz."""


@dataclass
class Timing:
    """Processing time of the conversion that produced the output.

    processing_seconds: wall-clock seconds the conversion took.
    audio_seconds: duration of the converted audio in seconds (``None``: the output's length).
    """

    processing_seconds: float
    audio_seconds: float | None = None


@dataclass
class EvalContext:
    """Inputs of one evaluation and a per-evaluation cache.

    output: the converted audio; source: what was converted (``None`` if not given);
    target_refs: reference clips of the target voice (may be empty); transpose: semitones the
    conversion shifted the pitch by; lyrics: reference text (``None``: use the source's
    transcription); lang: ``zh``, ``yue``, ``en`` or ``ja``; timing: see :class:`Timing`;
    f0_method: pitch estimator name passed to the F0 metric.
    """

    output: Audio
    source: Audio | None = None
    target_refs: list[Audio] = field(default_factory=list)
    transpose: float = 0.0
    lyrics: str | None = None
    lang: str = "en"
    timing: Timing | None = None
    f0_method: str = "fcpe"
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def output_seconds(self) -> float:
        """Duration of the output in seconds."""
        audio, sr = self.output
        return audio.shape[0] / sr

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """Return ``make()``, computed once per context for ``key``."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def at_rate(self, which: str, sr: int, index: int = 0) -> np.ndarray:
        """Input ``which`` (``output``, ``source`` or ``target``; ``index`` picks the reference
        clip) resampled to ``sr`` Hz, as float32 ``(samples,)``; cached."""
        def make() -> np.ndarray:
            if which == "target":
                audio, rate = self.target_refs[index]
            else:
                pair = getattr(self, which)
                if pair is None:
                    raise AisingerError(f"evaluation input '{which}' was not given")
                audio, rate = pair
            return resample(audio, rate, sr)

        return self.cached(("audio", which, index, sr), make)


@runtime_checkable
class Metric(Protocol):
    """What every metric provides."""

    name: str
    """Registry name, e.g. ``"similarity"``."""
    keys: tuple[str, ...]
    """Result keys the metric may return (in display order)."""

    def missing(self, ctx: EvalContext) -> str | None:
        """Why the metric cannot run on ``ctx`` (one line), or ``None`` when it can."""
        ...

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        """Compute the metric's values (NaN where a value is undefined)."""
        ...


def as_audio(x: Any, sr: int | None, what: str) -> tuple[Audio, str]:
    """Decode one input — a path, an ``(audio, sr)`` pair, or an array with ``sr`` — to mono
    ``((samples,) float32, sr)`` and a label for reports (the path, or ``"<array>"``).

    Raises AisingerError (naming ``what``) for a missing file, an array without ``sr``, or
    empty, non-finite or wrongly shaped audio."""
    if isinstance(x, (str, Path)):
        path = Path(x)
        if not path.is_file():
            raise AisingerError(f"{path}: {what} file not found")
        audio, rate = load(path, mono=True)
        return (audio, rate), str(path)
    if isinstance(x, tuple) and len(x) == 2:
        audio, rate = x
    elif isinstance(x, np.ndarray):
        if sr is None:
            raise AisingerError(f"{what}: an audio array needs its sample rate (sr=)")
        audio, rate = x, sr
    else:
        raise AisingerError(f"{what}: expected a path, an (audio, sr) pair or an array, "
                            f"got {type(x).__name__}")
    audio = to_mono(np.asarray(audio, dtype=np.float32))
    if audio.ndim != 1 or audio.size == 0 or not np.isfinite(audio).all():
        raise AisingerError(f"{what}: audio must be non-empty, finite, mono or (channels, samples)")
    return (audio, int(rate)), "<array>"


METRICS: dict[str, Metric] = {}
"""Registered metrics by name, in registration order."""


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (replacing one of the same name) and return it."""
    if not isinstance(metric, Metric):
        raise TypeError(f"{metric!r} does not implement the Metric protocol")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric ``name`` (AisingerError listing the known names otherwise)."""
    try:
        return METRICS[name]
    except KeyError:
        raise AisingerError(f"unknown metric '{name}'; known metrics: {', '.join(METRICS)}") from None
