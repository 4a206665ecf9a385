"""Automatic key: the transpose that puts a source melody into a voice's trained range.

The 2023 tutorials picked ``--transpose`` by ear.  Here it is chosen from numbers: the source's
voiced F0 frames (Hz, 0 = unvoiced) against the voice's trained pitch range (the 5th-95th
percentile of its training F0, stored in the model card as ``pitch_range.low_hz/high_hz``).

For each candidate shift *s* (octaves -2..+2, or every semitone in that span with
``mode="semitone"``) the cost is the mean distance, in semitones, by which the shifted frames
fall outside the range (0 for a frame inside it), plus a small penalty per semitone of shift
so that, of equally good shifts, the smallest wins (an in-range source keeps 0).  Octave shifts
keep the song's key; semitone shifts change it, so they are opt-in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from aisinger.errors import AisingerError

__all__ = ["KeyChoice", "choose_transpose", "KEY_MODES", "MAX_SHIFT_SEMITONES",
           "out_of_range_share", "range_warning", "OUT_OF_RANGE_WARN"]

KEY_MODES = ("octave", "semitone")
MAX_SHIFT_SEMITONES = 24
"""Candidates span -24..+24 semitones (two octaves each way)."""

SHIFT_PENALTY = 0.01
"""Cost per semitone of shift (semitones of mean out-of-range distance): breaks ties only."""

OUT_OF_RANGE_WARN = 0.3
"""A conversion whose transposed sung frames fall outside the voice's trained range for more
than this share is warned about (the voice extrapolates there: strained, buzzy or breaking)."""

MIN_VOICED_FRAMES = 10
"""Fewer voiced source frames than this: no basis for a choice, keep 0."""


@dataclass(frozen=True)
class KeyChoice:
    """The chosen transpose and why.

    semitones: the shift; out_of_range_before / out_of_range_after: share of voiced source
    frames outside the voice's range without / with the shift; source_median_hz: median voiced
    source F0; range_hz: (low, high) of the voice; reason: one human sentence.
    """

    semitones: int
    out_of_range_before: float
    out_of_range_after: float
    source_median_hz: float
    range_hz: tuple[float, float]
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _midi(hz: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(hz / 440.0)


def _out_share(m: np.ndarray, lo: float, hi: float) -> float:
    return float(np.mean((m < lo) | (m > hi))) if m.size else 0.0


def voice_range(card: dict) -> tuple[float, float] | None:
    """(low_hz, high_hz) from a model card's ``pitch_range``, or None when it has none."""
    pr = (card or {}).get("pitch_range") or {}
    try:
        lo, hi = float(pr["low_hz"]), float(pr["high_hz"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 < lo < hi):
        return None
    return lo, hi


def choose_transpose(source_f0: np.ndarray, range_hz: tuple[float, float] | None,
                     mode: str = "octave") -> KeyChoice:
    """Choose the transpose (semitones) that best fits ``source_f0`` into ``range_hz``.

    source_f0: (T,) Hz, 0 = unvoiced; range_hz: (low, high) of the voice (None: unknown, keep
    0); mode: ``"octave"`` (multiples of 12) or ``"semitone"``.
    """
    if mode not in KEY_MODES:
        raise AisingerError(f"unknown key-shift mode {mode!r}; use one of {', '.join(KEY_MODES)}")
    f0 = np.asarray(source_f0, dtype=np.float64)
    voiced = f0[f0 > 0]
    median = float(np.median(voiced)) if voiced.size else 0.0
    if range_hz is None:
        return KeyChoice(0, 0.0, 0.0, round(median, 1), (0.0, 0.0),
                         "the voice has no trained pitch range in its model card: no shift")
    lo, hi = (float(_midi(np.array(x))) for x in range_hz)
    if voiced.size < MIN_VOICED_FRAMES:
        return KeyChoice(0, 0.0, 0.0, round(median, 1), tuple(range_hz),
                         "too few sung (voiced) frames to choose a key: no shift")
    m = _midi(voiced)
    step = 12 if mode == "octave" else 1
    best, best_cost = 0, np.inf
    for s in sorted(range(-MAX_SHIFT_SEMITONES, MAX_SHIFT_SEMITONES + 1, step), key=abs):
        x = m + s
        cost = float(np.mean(np.maximum(lo - x, 0) + np.maximum(x - hi, 0))) + SHIFT_PENALTY * abs(s)
        if cost < best_cost - 1e-12:
            best, best_cost = s, cost
    before, after = _out_share(m, lo, hi), _out_share(m + best, lo, hi)
    unit = "octave" if mode == "octave" else "semitone"
    what = "no shift" if best == 0 else f"{best:+d} semitones"
    reason = (f"source median {median:.0f} Hz vs voice range {range_hz[0]:.0f}-{range_hz[1]:.0f}"
              f" Hz: {what} ({unit} steps) leaves {after:.0%} of sung frames outside the range "
              f"(unshifted: {before:.0%})")
    return KeyChoice(int(best), round(before, 4), round(after, 4), round(median, 1),
                     (float(range_hz[0]), float(range_hz[1])), reason)


def out_of_range_share(source_f0: np.ndarray, range_hz: tuple[float, float] | None,
                       semitones: float) -> float | None:
    """Share of voiced ``source_f0`` frames outside ``range_hz`` after shifting by
    ``semitones`` (the measure :func:`choose_transpose` reports); None without a range or with
    fewer than ``MIN_VOICED_FRAMES`` voiced frames."""
    f0 = np.asarray(source_f0, dtype=np.float64)
    voiced = f0[f0 > 0]
    if range_hz is None or voiced.size < MIN_VOICED_FRAMES:
        return None
    lo, hi = (float(_midi(np.array(x))) for x in range_hz)
    return _out_share(_midi(voiced) + float(semitones), lo, hi)


def range_warning(source_f0: np.ndarray, range_hz: tuple[float, float] | None,
                  semitones: float) -> str | None:
    """A one-line warning when more than :data:`OUT_OF_RANGE_WARN` of the sung frames fall
    outside the voice's range at ``semitones`` (with the automatic key's suggestion), else
    None."""
    share = out_of_range_share(source_f0, range_hz, semitones)
    if share is None or share <= OUT_OF_RANGE_WARN:
        return None
    best = choose_transpose(source_f0, range_hz, "octave")
    hint = (f"; the automatic key (--transpose omitted) would use {best.semitones:+d} "
            f"({best.out_of_range_after:.0%} outside)" if best.semitones != semitones else "")
    return (f"transpose {semitones:+g} semitones leaves {share:.0%} of sung frames outside the "
            f"voice's range {range_hz[0]:.0f}-{range_hz[1]:.0f} Hz: expect strained or broken "
            f"notes there{hint}")
