"""DNSMOS: non-intrusive perceptual quality of the output (Reddy et al., ICASSP 2022).

Microsoft's DNSMOS P.835 network (``dnsmos-p835`` asset, ``sig_bak_ovr.onnx``) predicts three
MOS values on a 1-5 scale from 16 kHz audio: SIG (speech signal quality), BAK (background
noise intrusiveness) and OVRL (overall quality).  The P.808 network (``dnsmos-p808``,
``model_v8.onnx``) predicts one overall MOS from a log-mel spectrogram.  Both run with
onnxruntime on the CPU.

Framing (as in the published DNSMOS scripts): audio is resampled to 16 kHz; a clip shorter
than 9.01 s is repeated (doubled) until it is long enough; then 9.01 s segments are taken every
1 s and the per-segment predictions are averaged.  The P.835 raw outputs are mapped to MOS
with the published second-order polynomials of the non-personalised model
(:data:`P835_POLYNOMIALS`).  P.808 input: 120-band mel power of the segment without its last
10 ms (n_fft 321, hop 160), in dB relative to the segment's maximum (floored 80 dB below),
scaled as ``(dB + 40) / 40``.

DNSMOS was trained on speech; on singing it still ranks clean above noisy/distorted audio, but
absolute values are not comparable with speech-enhancement papers.

Result keys: ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl``, ``dnsmos_p808``.
"""

from __future__ import annotations

import threading

import numpy as np

from aisinger import assets
from aisinger.eval._dsp import mel_power, power_to_db_ref_max
from aisinger.eval.registry import EvalContext, register
from aisinger.io.audio import resample

P835_ASSET = "dnsmos-p835"
P808_ASSET = "dnsmos-p808"
SAMPLE_RATE = 16000  # Hz, the models' input rate
SEGMENT_SECONDS = 9.01  # the P.835 model's fixed input length
SEGMENT_SAMPLES = int(SEGMENT_SECONDS * SAMPLE_RATE)  # 144160
HOP_SAMPLES = SAMPLE_RATE  # one segment per second
P808_TRIM_SAMPLES = 160  # P.808 sees the segment without its last 10 ms -> 900 mel frames
P808_N_FFT = 321  # as in the published DNSMOS P.808 feature extraction
P808_HOP = 160
P808_N_MELS = 120
P808_DB_OFFSET = 40.0  # (dB + 40) / 40 normalisation of the P.808 input
P808_DB_SCALE = 40.0
BATCH_SEGMENTS = 16  # segments per onnxruntime call (bounds memory on long songs)
# Polynomials (highest power first) mapping raw P.835 outputs to MOS, non-personalised model.
P835_POLYNOMIALS = {
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}


_SESSIONS: dict[str, object] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(asset: str):
    """onnxruntime session for ``asset`` (cached per process)."""
    import onnxruntime as ort

    path = str(assets.fetch(asset))
    with _SESSIONS_LOCK:
        sess = _SESSIONS.get(path)
        if sess is None:
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only
            sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            _SESSIONS[path] = sess
    return sess


def segments(audio16k: np.ndarray, hop_seconds: int = 1) -> np.ndarray:
    """9.01 s segments every ``hop_seconds`` (default 1 s, as published) of 16 kHz audio,
    repeated first if shorter than 9.01 s.

    Returns float32 ``(n_segments, 144160)``, at least one segment.
    """
    x = np.asarray(audio16k, dtype=np.float32)
    if x.size == 0:
        raise ValueError("DNSMOS needs non-empty audio")
    while x.shape[0] < SEGMENT_SAMPLES:
        x = np.concatenate([x, x])
    n = int(np.floor(x.shape[0] / SAMPLE_RATE) - SEGMENT_SECONDS) + 1
    hop = HOP_SAMPLES * max(1, int(hop_seconds))
    starts = [s for s in range(0, n * HOP_SAMPLES, hop) if s + SEGMENT_SAMPLES <= x.shape[0]]
    return np.stack([x[s:s + SEGMENT_SAMPLES] for s in starts])


def p808_features(segment: np.ndarray) -> np.ndarray:
    """P.808 input of one segment (144160,): float32 ``(900, 120)``."""
    mel = mel_power(segment[:-P808_TRIM_SAMPLES], SAMPLE_RATE, P808_N_FFT, P808_HOP, P808_N_MELS)
    return ((power_to_db_ref_max(mel) + P808_DB_OFFSET) / P808_DB_SCALE).astype(np.float32)


def dnsmos(audio: np.ndarray, sr: int, p808: bool = True, hop_seconds: int = 1) -> dict[str, float]:
    """DNSMOS of mono ``audio`` (samples,) at ``sr`` Hz.

    Returns ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl`` (P.835, 1-5) and, when ``p808``,
    ``dnsmos_p808`` — each the mean over 9.01 s segments taken every ``hop_seconds`` (1 s as
    published; a larger hop makes long songs proportionally faster).
    """
    segs = segments(resample(np.asarray(audio, dtype=np.float32), sr, SAMPLE_RATE), hop_seconds)
    p835 = _session(P835_ASSET)
    raw = np.concatenate([p835.run(None, {"input_1": segs[i:i + BATCH_SEGMENTS]})[0]
                          for i in range(0, segs.shape[0], BATCH_SEGMENTS)])  # (n, 3)
    result = {}
    for column, key in enumerate(("sig", "bak", "ovrl")):
        mos = np.polyval(P835_POLYNOMIALS[key], raw[:, column].astype(np.float64))
        result[f"dnsmos_{key}"] = float(np.mean(mos))
    if p808:
        sess = _session(P808_ASSET)
        scores = []
        for i in range(0, segs.shape[0], BATCH_SEGMENTS):
            feats = np.stack([p808_features(s) for s in segs[i:i + BATCH_SEGMENTS]])
            scores.append(sess.run(None, {"input_1": feats})[0][:, 0])
        result["dnsmos_p808"] = float(np.mean(np.concatenate(scores)))
    return result


class DnsmosMetric:
    """DNSMOS P.835 SIG/BAK/OVRL and P.808 MOS of the output."""

    name = "dnsmos"
    keys = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")

    def missing(self, ctx: EvalContext) -> str | None:
        return None

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        return dnsmos(*ctx.output)


register(DnsmosMetric())
