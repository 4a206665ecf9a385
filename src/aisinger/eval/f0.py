"""Pitch accuracy of a conversion: the output's F0 against the (transposed) source F0.

Both F0 tracks come from :func:`aisinger.features.pitch.estimate_f0` (100 frames/s, 0 =
unvoiced; method ``ctx.f0_method``, FCPE by default).  The expected output pitch is the source
pitch shifted by the transpose the conversion applied (``transpose`` semitones = 100 cents
each).  Conversion preserves timing, so frames are compared index by index; when the two
tracks differ by more than :data:`LENGTH_TOLERANCE_FRAMES` the longer one is cut and the
mismatch is reported in the notes and as ``f0_length_mismatch_frames``.

Result keys:

``f0_rmse_cents``
    RMS of ``cents(output) - (cents(source) + 100 * transpose)`` over frames voiced in both.
``f0_corr``
    Pearson correlation of the two pitch curves (in cents) on those frames (NaN when fewer
    than :data:`MIN_VOICED_FRAMES` frames or a flat curve).
``vuv_error``
    Fraction of frames whose voiced/unvoiced decision differs between output and source.
``f0_voiced_frames``
    Number of frames voiced in both (what RMSE and correlation are computed on).
"""

from __future__ import annotations

import numpy as np

from aisinger.dsp.frames import FRAME_RATE
from aisinger.eval.registry import EvalContext, register
from aisinger.features.pitch import PitchConfig, estimate_f0

CENTS_PER_SEMITONE = 100.0
CENTS_PER_OCTAVE = 1200.0
CENTS_REFERENCE_HZ = 440.0  # cents are measured relative to A4 (only differences matter)
LENGTH_TOLERANCE_FRAMES = 5  # 50 ms: resampling/padding may shift lengths by a few frames
MIN_VOICED_FRAMES = 10  # fewer common voiced frames than this: RMSE/correlation undefined


def track(audio: np.ndarray, sr: int, method: str = "fcpe") -> np.ndarray:
    """F0 track of ``audio`` (samples,) at ``sr`` Hz: float32 ``(frames,)`` Hz, 0 = unvoiced,
    100 frames/s (see :func:`aisinger.features.pitch.estimate_f0`)."""
    return estimate_f0(np.asarray(audio, dtype=np.float32), sr, PitchConfig(method=method))


def to_cents(f0_hz: np.ndarray) -> np.ndarray:
    """Pitch in cents relative to 440 Hz for positive F0 values (Hz), float64."""
    return CENTS_PER_OCTAVE * np.log2(np.asarray(f0_hz, dtype=np.float64) / CENTS_REFERENCE_HZ)


def compare_f0(f0_out: np.ndarray, f0_src: np.ndarray, transpose: float = 0.0) -> dict[str, float]:
    """Compare two aligned F0 tracks (Hz, 0 = unvoiced, same frame grid).

    Args:
        f0_out: ``(T,)`` F0 of the converted output.
        f0_src: ``(T',)`` F0 of the source; both are cut to ``min(T, T')`` frames.
        transpose: semitones the conversion shifted the source by.
    Returns:
        ``f0_rmse_cents``, ``f0_corr``, ``vuv_error``, ``f0_voiced_frames`` (see module doc);
        RMSE/correlation are NaN when fewer than :data:`MIN_VOICED_FRAMES` frames are voiced in
        both tracks.
    """
    n = min(f0_out.shape[0], f0_src.shape[0])
    out, src = np.asarray(f0_out[:n], np.float64), np.asarray(f0_src[:n], np.float64)
    v_out, v_src = out > 0, src > 0
    both = v_out & v_src
    result = {
        "vuv_error": float(np.mean(v_out != v_src)) if n else float("nan"),
        "f0_voiced_frames": float(both.sum()),
        "f0_rmse_cents": float("nan"),
        "f0_corr": float("nan"),
    }
    if both.sum() < MIN_VOICED_FRAMES:
        return result
    c_out = to_cents(out[both])
    c_src = to_cents(src[both]) + CENTS_PER_SEMITONE * transpose
    result["f0_rmse_cents"] = float(np.sqrt(np.mean((c_out - c_src) ** 2)))
    if np.std(c_out) > 0 and np.std(c_src) > 0:
        result["f0_corr"] = float(np.corrcoef(c_out, c_src)[0, 1])
    return result


class F0Metric:
    """F0 RMSE (cents), correlation and voicing disagreement of output vs transposed source."""

    name = "f0"
    keys = ("f0_rmse_cents", "f0_corr", "vuv_error", "f0_voiced_frames", "f0_length_mismatch_frames")

    def missing(self, ctx: EvalContext) -> str | None:
        return None if ctx.source is not None else "needs the source"

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        f0_out = ctx.cached(("f0", "output", ctx.f0_method),
                            lambda: track(*ctx.output, method=ctx.f0_method))
        f0_src = ctx.cached(("f0", "source", ctx.f0_method),
                            lambda: track(*ctx.source, method=ctx.f0_method))
        result = compare_f0(f0_out, f0_src, ctx.transpose)
        mismatch = abs(f0_out.shape[0] - f0_src.shape[0])
        if mismatch > LENGTH_TOLERANCE_FRAMES:
            result["f0_length_mismatch_frames"] = float(mismatch)
            ctx.notes.append(f"f0: output and source lengths differ by {mismatch} frames "
                             f"({mismatch / FRAME_RATE:.2f} s); compared the first "
                             f"{min(f0_out.shape[0], f0_src.shape[0])} frames")
        if np.isnan(result["f0_rmse_cents"]):
            ctx.notes.append(f"f0: fewer than {MIN_VOICED_FRAMES} frames voiced in both output "
                             "and source; RMSE and correlation undefined")
        ctx.info["f0_method"] = ctx.f0_method
        return result


register(F0Metric())
