"""Naturalness: DistillMOS of the output and of the target references.

DistillMOS (:mod:`aisinger.nn.distillmos`, weights: the ``distillmos`` asset) predicts the
mean opinion score listeners would give a *speech* recording on the 1-5 scale, from 16 kHz
audio (longer clips: the mean over overlapping 7.68 s segments).  Unlike DNSMOS, it separates
robotic from natural voices (measured on spoken sentences: flite 2.8-2.9, Kokoro and piper
4.1-4.5; see docs/lab.md).

It was trained on speech, not singing: sung audio scores lower than speech of the same voice,
so use it *relative to a reference* — ``naturalness_gap`` compares the output with the target
singer's own clips — and never as an absolute singing-quality scale.

Result keys: ``naturalness`` (MOS of the output), ``naturalness_refs`` (mean MOS of the target
references, when given) and ``naturalness_gap`` (``naturalness_refs - naturalness``, MOS
points; > 0: the output sounds less natural than the target's own recordings).
"""

from __future__ import annotations

import threading

import numpy as np

from aisinger import assets
from aisinger.errors import AssetError
from aisinger.eval.registry import EvalContext, register
from aisinger.io.audio import resample
from aisinger.io.safeload import torch_load_safe

ASSET_NAME = "distillmos"
SAMPLE_RATE = 16000
BATCH_SEGMENTS = 8  # segments per forward pass (bounds memory on long songs)

_MODEL = None
_LOCK = threading.Lock()


def _model():
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            from aisinger.nn.distillmos import DistillMOS

            path = assets.fetch(ASSET_NAME)
            ckpt = torch_load_safe(path)
            state = ckpt.get("model") if isinstance(ckpt, dict) else None
            if not isinstance(state, dict):
                raise AssetError(f"asset '{ASSET_NAME}': {path} holds no 'model' state dict; "
                                 f"delete it and run 'aisinger models fetch {ASSET_NAME}'")
            model = DistillMOS()
            try:
                model.load_state_dict(state)
            except RuntimeError as err:
                raise AssetError(f"asset '{ASSET_NAME}': {path} does not fit the DistillMOS "
                                 f"architecture ({str(err).splitlines()[0][:160]})") from None
            _MODEL = model.eval()
    return _MODEL


def distillmos(audio: np.ndarray, sr: int) -> float:
    """DistillMOS (1-5) of mono float ``audio`` ``(samples,)`` at ``sr`` Hz."""
    import torch

    from aisinger.nn.distillmos import MAX_HOP, SEGMENT

    x = resample(np.asarray(audio, dtype=np.float32), sr, SAMPLE_RATE)
    if x.size == 0:
        raise ValueError("DistillMOS needs non-empty audio")
    over = x.shape[0] - SEGMENT
    if over < 0:
        x, over = np.pad(x, (0, -over)), 0
    n = int(np.ceil(over / MAX_HOP)) + 1
    segs = np.stack([x[int(c * over):int(c * over) + SEGMENT] for c in np.linspace(0, 1, n)])
    model = _model()
    scores = []
    with torch.inference_mode():
        for i in range(0, n, BATCH_SEGMENTS):
            scores.append(model.score_segments(torch.from_numpy(segs[i:i + BATCH_SEGMENTS])))
    return float(torch.cat(scores).mean())


class NaturalnessMetric:
    """DistillMOS of the output, of the target references, and their gap."""

    name = "naturalness"
    keys = ("naturalness", "naturalness_refs", "naturalness_gap")

    def missing(self, ctx: EvalContext) -> str | None:
        return None

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        out = ctx.cached(("distillmos", "output"), lambda: distillmos(*ctx.output))
        result = {"naturalness": out}
        if ctx.target_refs:
            refs = [ctx.cached(("distillmos", "target", i), lambda a=a: distillmos(*a))
                    for i, a in enumerate(ctx.target_refs)]
            result["naturalness_refs"] = float(np.mean(refs))
            result["naturalness_gap"] = result["naturalness_refs"] - out
        return result


register(NaturalnessMetric())
