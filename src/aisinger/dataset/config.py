"""The settings of a dataset build (:class:`DatasetConfig`), saved in ``dataset.json``.

Every threshold has a named default here with the measurement it comes from; see
``docs/dataset.md`` for the full rationale.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from aisinger.errors import AisingerError
from aisinger.features.pitch import DEFAULT_METHOD, METHODS
from aisinger.separation import BACKENDS, DEFAULT_BACKEND

SeparateMode = Literal["auto", "always", "never"]
SEPARATE_MODES = ("auto", "always", "never")

PIPELINE_VERSION = 1
"""Bumped whenever the build's output for the same inputs and config changes; part of the
config fingerprint, so old datasets are rebuilt instead of mixed with new clips."""

REPORT_ONLY_FIELDS = frozenset({"validation_fraction", "split_seed", "min_minutes",
                                "min_range_semitones"})
"""Settings that change only the split and the report, not the clips."""

DEFAULT_SAMPLE_RATE = 44_100
"""The voice models' sample rate (Hz)."""
DEFAULT_ACCOMPANIMENT_THRESHOLD_DB = -15.0
"""Auto separation: an input counts as *with accompaniment* when the separated accompaniment
(median over 0.5 s windows) is at least this loud relative to the mixture.  Measured with
Spleeter on aisinger.lab audio: mixes (vocal 3 dB over the band) -3.3 … -7 dB, dry lab vocals
-22 … -47 dB (see docs/dataset.md)."""
DEFAULT_TARGET_LUFS = -23.0
"""Loudness of every clip after normalisation (EBU R128 integrated loudness, LUFS)."""


@dataclass(frozen=True)
class DatasetConfig:
    """Settings of :func:`aisinger.dataset.build_dataset`.

    Attributes:
        sample_rate: rate of the written clips in Hz (the model rate).
        separate: ``"auto"`` (separate inputs that have accompaniment), ``"always"``, ``"never"``.
        separator: separation backend (:func:`aisinger.separation.get_separator`).
        accompaniment_threshold_db: auto mode: accompaniment level relative to the mixture
            (dB) from which an input counts as accompanied.
        min_clip_s, max_clip_s: clip length range in seconds.
        silence_db: a 40 ms frame is silent when its RMS level is this many dB below the
            reference (the level exceeded by the loudest second of the block), or below
            ``silence_floor_dbfs``.
        silence_floor_dbfs: absolute silence level (dBFS); blocks entirely below it are skipped.
        min_silence_s: shorter pauses do not cut a clip.
        max_gap_s: longest pause bridged when merging short phrases into one clip.
        pad_s: silence kept before and after each phrase.
        target_lufs: EBU R128 integrated loudness of every clip after normalisation.
        peak_ceiling_dbfs: the normalisation gain is reduced if the clip's peak would pass this.
        clip_level: |sample| at or above this counts as clipped (input samples, before any
            processing).
        max_clipped_fraction: clips whose input has more clipped samples than this are rejected.
        near_silent_lufs: clips quieter than this (integrated loudness before normalisation)
            are rejected as near-silent.
        min_voiced_share: clips where fewer of the non-silent frames are voiced (pitched,
            per the pitch tracker) are rejected as mostly noise.
        pitch_method: :class:`aisinger.features.pitch.PitchConfig` method for F0.
        validation_fraction: share of clips in the validation split.
        split_seed: salt of the split hash (change it to draw another split).
        block_s: long inputs are processed in blocks of this many seconds (memory bound).
        min_minutes: the report warns when fewer minutes are kept.
        min_range_semitones: the report warns when the 5th–95th percentile pitch range is
            narrower.
    """

    sample_rate: int = DEFAULT_SAMPLE_RATE
    separate: SeparateMode = "auto"
    separator: str = DEFAULT_BACKEND
    accompaniment_threshold_db: float = DEFAULT_ACCOMPANIMENT_THRESHOLD_DB
    min_clip_s: float = 2.0
    max_clip_s: float = 15.0
    silence_db: float = -40.0
    silence_floor_dbfs: float = -65.0
    min_silence_s: float = 0.3
    max_gap_s: float = 1.0
    pad_s: float = 0.1
    target_lufs: float = DEFAULT_TARGET_LUFS
    peak_ceiling_dbfs: float = -1.0
    clip_level: float = 0.999
    max_clipped_fraction: float = 0.001
    near_silent_lufs: float = -55.0
    min_voiced_share: float = 0.3
    pitch_method: str = DEFAULT_METHOD
    validation_fraction: float = 0.1
    split_seed: int = 0
    block_s: float = 300.0
    min_minutes: float = 5.0
    min_range_semitones: float = 12.0

    def validate(self) -> DatasetConfig:
        """Raise AisingerError (one line) for inconsistent settings; return self."""
        def bad(msg: str) -> AisingerError:
            return AisingerError(f"dataset config: {msg}")

        if not 8_000 <= int(self.sample_rate) <= 192_000:
            raise bad(f"sample_rate {self.sample_rate} Hz is outside 8000–192000")
        if self.separate not in SEPARATE_MODES:
            raise bad(f"separate={self.separate!r}; use one of {', '.join(SEPARATE_MODES)}")
        if self.separator not in BACKENDS:
            raise bad(f"unknown separator {self.separator!r}; use one of {', '.join(BACKENDS)}")
        if not (0.5 <= self.min_clip_s and 2 * self.min_clip_s <= self.max_clip_s):
            raise bad(f"need 0.5 <= min_clip_s and 2 * min_clip_s <= max_clip_s, got "
                      f"{self.min_clip_s} and {self.max_clip_s}")
        if self.block_s < 4 * self.max_clip_s:
            raise bad(f"block_s={self.block_s} must be at least 4 * max_clip_s")
        if not (self.min_silence_s > 0 and self.max_gap_s >= 0 and self.pad_s >= 0):
            raise bad("min_silence_s must be > 0, max_gap_s and pad_s >= 0")
        if self.silence_db >= 0:
            raise bad(f"silence_db={self.silence_db} must be negative (dB below the reference)")
        if not 0 <= self.validation_fraction < 1:
            raise bad(f"validation_fraction={self.validation_fraction} must be in [0, 1)")
        if not 0 <= self.min_voiced_share <= 1 or not 0 <= self.max_clipped_fraction <= 1:
            raise bad("min_voiced_share and max_clipped_fraction must be in [0, 1]")
        if self.pitch_method not in METHODS:
            raise bad(f"pitch_method={self.pitch_method!r}; use one of {', '.join(METHODS)}")
        if not -70 <= self.target_lufs <= -5:
            raise bad(f"target_lufs={self.target_lufs} is outside -70 … -5 LUFS")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise AisingerError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise AisingerError(f"dataset config: unknown settings {', '.join(unknown)}")
        return cls(**data)

    def fingerprint(self) -> str:
        """Hex digest of the settings that shape the clips (with the pipeline version).

        The split and report settings (:data:`REPORT_ONLY_FIELDS`) are left out: changing them
        redraws the split and rewrites the report without reprocessing any audio.
        """
        shaping = {k: v for k, v in self.to_dict().items() if k not in REPORT_ONLY_FIELDS}
        blob = json.dumps({"pipeline": PIPELINE_VERSION, **shaping}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
