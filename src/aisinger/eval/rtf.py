"""Real-time factor of the conversion that produced the output.

``rtf = processing_seconds / audio_seconds``: below 1 is faster than real time.  Needs timing
data passed to :func:`aisinger.eval.evaluate` (``timing=``); ``audio_seconds`` defaults to the
output's duration.

Result keys: ``rtf``, ``processing_seconds``.
"""

from __future__ import annotations

from aisinger.errors import AisingerError
from aisinger.eval.registry import EvalContext, register


def real_time_factor(processing_seconds: float, audio_seconds: float) -> float:
    """``processing_seconds / audio_seconds`` (AisingerError for a non-positive duration or a
    negative time)."""
    if audio_seconds <= 0:
        raise AisingerError(f"real-time factor: audio duration must be > 0 s, got {audio_seconds}")
    if processing_seconds < 0:
        raise AisingerError(f"real-time factor: processing time must be >= 0 s, got {processing_seconds}")
    return processing_seconds / audio_seconds


class RtfMetric:
    """Processing time divided by audio duration."""

    name = "rtf"
    keys = ("rtf", "processing_seconds")

    def missing(self, ctx: EvalContext) -> str | None:
        return None if ctx.timing is not None else "needs timing data (processing seconds)"

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        timing = ctx.timing
        audio_seconds = timing.audio_seconds if timing.audio_seconds is not None else ctx.output_seconds
        return {"rtf": real_time_factor(timing.processing_seconds, audio_seconds),
                "processing_seconds": float(timing.processing_seconds)}


register(RtfMetric())
