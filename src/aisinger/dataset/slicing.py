"""Silence-based slicing of a recording into clips of a bounded length.

Everything here works on the shared frame grid (:data:`aisinger.dsp.frames.FRAME_RATE`
= 100 frames/s; frame ``i`` is centred at ``i / 100`` s and stands for the 10 ms around it).
Frame intervals are half-open ``(a, b)``: frames ``a … b-1``, i.e. ``[a / 100, b / 100)`` s.

Steps (:func:`plan_clips`):

1. **Levels.**  :func:`frame_levels_db`: RMS over 40 ms around each frame, in dBFS.
2. **Threshold.**  :func:`silence_threshold_db`: ``silence_db`` (default -40 dB) below the
   *reference* — the level exceeded by the loudest second of the block, so neither a click
   nor long rests move it — and never below an absolute floor (default -65 dBFS).
3. **Runs.**  :func:`active_runs`: frames at or above the threshold; pauses shorter than
   ``min_silence_s`` (0.3 s) do not cut; runs shorter than :data:`MIN_RUN_S` (clicks) are
   dropped.
4. **Padding.**  Each run keeps ``pad_s`` of the silence around it, at most up to the middle of
   the pause to its neighbour.
5. **Split.**  Runs longer than ``max_clip_s`` are cut into the fewest pieces that fit, each
   cut at the quietest frame (levels smoothed over 50 ms) among the cut points that keep
   every piece within ``min_clip_s`` … ``max_clip_s``.
6. **Merge.**  Pieces shorter than ``min_clip_s`` are merged with the neighbour across the
   shorter pause, while that pause is at most ``max_gap_s`` and the merged clip at most
   ``max_clip_s``; the shortest piece is merged first.  What is still too short is reported as
   such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aisinger.dsp.frames import FRAME_RATE, n_frames

LEVEL_WINDOW_S = 0.04
"""RMS window of the frame levels (40 ms, 4 hops)."""
LEVEL_FLOOR_DB = -120.0
"""Level reported for digital silence."""
REFERENCE_S = 1.0
"""The reference level is the one exceeded by this much of the block's loudest audio."""
MIN_RUN_S = 0.1
"""Non-silent runs shorter than this (clicks, ticks) are dropped before planning."""
SPLIT_SMOOTH_FRAMES = 5
"""Frames (50 ms) of level smoothing when looking for the quietest point to split at."""
TIE_BREAK_DB_PER_FRAME = 1e-4
"""Among equally quiet split points the one nearest the middle wins (at most 0.05 dB)."""
LEVEL_CHUNK_FRAMES = 2000
"""Frames computed per step in :func:`frame_levels_db` (bounds its temporary memory)."""


@dataclass(frozen=True)
class SliceSettings:
    """The slicing part of :class:`~aisinger.dataset.config.DatasetConfig`, in seconds/dB.

    No defaults here: :class:`DatasetConfig` is the one place that defines them
    (build with :meth:`from_config`).
    """

    min_clip_s: float
    max_clip_s: float
    silence_db: float
    silence_floor_dbfs: float
    min_silence_s: float
    max_gap_s: float
    pad_s: float

    @classmethod
    def from_config(cls, config) -> SliceSettings:
        """Take the matching fields of a DatasetConfig."""
        return cls(**{k: getattr(config, k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Piece:
    """A planned stretch of frames ``[a, b)``; ``kind`` is ``"clip"`` or ``"too_short"``."""

    a: int
    b: int
    kind: str

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return (self.b - self.a) / FRAME_RATE


def frame_levels_db(x: np.ndarray, sr: int) -> np.ndarray:
    """RMS level in dBFS of 40 ms windows centred on each frame of the shared grid.

    Args:
        x: ``(samples,)`` mono audio.
        sr: sample rate in Hz.
    Returns:
        ``(n_frames(len(x), sr),)`` float32, at least :data:`LEVEL_FLOOR_DB`.  Windows are cut
        at the ends of the signal (the mean is over the samples that exist).  Temporary memory
        is bounded by :data:`LEVEL_CHUNK_FRAMES`, not by the signal length.
    """
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    total = n_frames(n, sr)
    half = max(1, int(round(LEVEL_WINDOW_S * sr / 2)))
    out = np.empty(total, dtype=np.float32)
    hop = sr / FRAME_RATE
    for f0 in range(0, total, LEVEL_CHUNK_FRAMES):
        f1 = min(total, f0 + LEVEL_CHUNK_FRAMES)
        centres = np.round(np.arange(f0, f1) * hop).astype(np.int64)
        lo = np.clip(centres - half, 0, n)
        hi = np.clip(centres + half, 0, n)
        s0, s1 = int(lo[0]), int(hi[-1])
        csum = np.concatenate([[0.0], np.cumsum(np.square(x[s0:s1], dtype=np.float64))])
        count = np.maximum(hi - lo, 1)
        power = (csum[hi - s0] - csum[lo - s0]) / count
        out[f0:f1] = 10.0 * np.log10(np.maximum(power, 10 ** (LEVEL_FLOOR_DB / 10)))
    return out


def reference_level_db(levels: np.ndarray) -> float:
    """The level (dB) exceeded by the loudest :data:`REFERENCE_S` of frames (all, if shorter)."""
    k = min(levels.shape[0], int(REFERENCE_S * FRAME_RATE))
    if k == 0:
        return LEVEL_FLOOR_DB
    return float(np.partition(levels, levels.shape[0] - k)[levels.shape[0] - k])


def silence_threshold_db(levels: np.ndarray, settings: SliceSettings) -> float:
    """Frames below this level (dBFS) are silent: see the module docstring, step 2."""
    return max(reference_level_db(levels) + settings.silence_db, settings.silence_floor_dbfs)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``[a, b)`` of True in a boolean ``(T,)`` array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def active_runs(levels: np.ndarray, threshold_db: float,
                settings: SliceSettings) -> list[tuple[int, int]]:
    """Non-silent frame runs ``[a, b)``, pauses shorter than ``min_silence_s`` bridged and runs
    shorter than :data:`MIN_RUN_S` dropped."""
    runs = _runs(levels >= threshold_db)
    min_pause = int(round(settings.min_silence_s * FRAME_RATE))
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < min_pause:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    min_run = int(round(MIN_RUN_S * FRAME_RATE))
    return [(a, b) for a, b in merged if b - a >= min_run]


def _pad(runs: list[tuple[int, int]], total: int, pad: int) -> list[tuple[int, int]]:
    """Extend each run by ``pad`` frames, at most to the middle of the pause to a neighbour."""
    out = []
    for i, (a, b) in enumerate(runs):
        prev_end = runs[i - 1][1] if i else None
        next_start = runs[i + 1][0] if i + 1 < len(runs) else None
        lo = a - pad if prev_end is None else max(a - pad, (prev_end + a + 1) // 2)
        hi = b + pad if next_start is None else min(b + pad, (b + next_start) // 2)
        out.append((max(lo, 0), min(hi, total)))
    return out


def _smooth(levels: np.ndarray) -> np.ndarray:
    """Moving average of levels over :data:`SPLIT_SMOOTH_FRAMES` frames (same length)."""
    k = np.ones(SPLIT_SMOOTH_FRAMES) / SPLIT_SMOOTH_FRAMES
    return np.convolve(levels.astype(np.float64), k, mode="same")


def _split_long(a: int, b: int, smooth: np.ndarray, min_f: int,
                max_f: int) -> list[tuple[int, int]]:
    """Cut ``[a, b)`` into the fewest parts of ``min_f`` … ``max_f`` frames, each cut at the
    quietest frame where the rest can still be cut that way (ties: nearest the middle)."""
    out, todo = [], [(a, b)]
    while todo:
        lo, hi = todo.pop()
        length = hi - lo
        if length <= max_f:
            out.append((lo, hi))
            continue
        parts = -(-length // max_f)
        # the first part must leave a remainder that fits in parts - 1 pieces of <= max_f
        first = lo + max(min_f, length - (parts - 1) * max_f)
        last = lo + min(max_f, length - min_f)
        window = smooth[first:last + 1]
        centre = (last - first) / 2
        tie_break = TIE_BREAK_DB_PER_FRAME * np.abs(np.arange(window.shape[0]) - centre)
        cut = first + int(np.argmin(window + tie_break))
        todo += [(cut, hi), (lo, cut)]
    return sorted(out)


def _merge_short(pieces: list[tuple[int, int]], min_f: int, max_f: int,
                 max_gap: int) -> list[tuple[int, int]]:
    """Merge pieces shorter than ``min_f`` with a neighbour (shortest first, nearer neighbour)."""
    pieces = list(pieces)
    while True:
        best = None  # (length, index, neighbour index)
        for i, (a, b) in enumerate(pieces):
            if b - a >= min_f:
                continue
            options = []
            for j in (i - 1, i + 1):
                if 0 <= j < len(pieces):
                    lo, hi = min(a, pieces[j][0]), max(b, pieces[j][1])
                    gap = pieces[i][0] - pieces[j][1] if j < i else pieces[j][0] - pieces[i][1]
                    if gap <= max_gap and hi - lo <= max_f:
                        options.append((gap, j))
            if options and (best is None or b - a < best[0]):
                best = (b - a, i, min(options)[1])
        if best is None:
            return pieces
        _, i, j = best
        lo, hi = min(i, j), max(i, j)
        pieces[lo:hi + 1] = [(pieces[lo][0], pieces[hi][1])]


def plan_clips(levels: np.ndarray, settings: SliceSettings,
               threshold_db: float | None = None) -> list[Piece]:
    """Plan the clips of one block from its frame levels (see the module docstring).

    Args:
        levels: ``(T,)`` frame levels in dBFS (:func:`frame_levels_db`).
        settings: lengths and thresholds.
        threshold_db: silence threshold; default :func:`silence_threshold_db` of ``levels``.
    Returns:
        Pieces in time order: ``"clip"`` (``min_clip_s`` … ``max_clip_s`` long) or
        ``"too_short"`` (could not be merged to ``min_clip_s``).
    """
    if threshold_db is None:
        threshold_db = silence_threshold_db(levels, settings)
    total = levels.shape[0]
    min_f = int(round(settings.min_clip_s * FRAME_RATE))
    max_f = int(round(settings.max_clip_s * FRAME_RATE))
    runs = _pad(active_runs(levels, threshold_db, settings), total,
                int(round(settings.pad_s * FRAME_RATE)))
    smooth = _smooth(levels)
    pieces = [p for a, b in runs for p in _split_long(a, b, smooth, min_f, max_f)]
    pieces = _merge_short(pieces, min_f, max_f, int(round(settings.max_gap_s * FRAME_RATE)))
    return [Piece(a, b, "clip" if b - a >= min_f else "too_short") for a, b in pieces]
