"""Block-wise feature extractors of the live path: content, F0 and loudness of the newest
frames of a stream, each from a short window of recent audio (see docs/live.md).

Every extractor works on absolute frame indices of the shared grid (100 frames/s, frame ``i``
centred on input sample ``i * hop``; :mod:`aisinger.dsp.frames`), given the recent audio as an
array and the absolute index of its first sample.  Frames near the newest sample see less
right context than an offline analysis (the lookahead); everything else matches the offline
extractors of :mod:`aisinger.features`.
"""

from __future__ import annotations

import json

import numpy as np

from aisinger.assets import fetch
from aisinger.errors import AisingerError

from aisinger.dsp.frames import FRAME_RATE
from aisinger.dsp.loudness import LoudnessConfig, loudness_db
from aisinger.features import whisper as wh
from aisinger.features.content import CONTENT_FRAME_RATE, positional_basis
from aisinger.features.pitch import GATE_WINDOW, MODEL_HOP, PitchConfig, neural_model

__all__ = ["WhisperWindow", "FcpeStream", "frame_loudness", "CONTENT_WINDOW_S"]

CONTENT_WINDOW_S = 1.0
"""Seconds of recent audio the Whisper encoder re-reads for every block (the alternative to
the student that was measured and not chosen, docs/live.md)."""
ALIGN16 = wh.HOP_LENGTH * wh.ENCODER_STRIDE  # 320 samples at 16 kHz: one encoder frame
FCPE_CONTEXT_FRAMES = 8
"""Past frames FCPE sees before the newest frames of a block (its receptive field is 92
frames each side; measured on two lab phrases: 8 frames gave the same voicing agreement
(98.4-99.4 %) and median error (0.4-0.5 cents) against offline FCPE as 24, at less cost)."""
FCPE_MIN_STATS_FRAMES = 50
"""Below this many frames of running group-norm statistics, the block's own are used."""


class WhisperWindow:
    """Content frames (100 frames/s, 512-d) from the Whisper-base encoder run on the last
    ``window_s`` seconds of 16 kHz audio (CTranslate2 accepts windows shorter than 30 s; the
    positional subspace is projected out as offline, :mod:`aisinger.features.content`)."""

    def __init__(self, window_s: float = CONTENT_WINDOW_S, threads: int = 1,
                 compute_type: str = "int8", position_components: int = 32):
        self.window = int(round(window_s * wh.SAMPLE_RATE / ALIGN16)) * ALIGN16
        self.model = wh.load_whisper(wh.WhisperConfig(compute_type=compute_type,
                                                      threads=threads))
        self.basis = positional_basis(self.model, position_components,
                                      key=(str(wh.model_dir()), compute_type)) \
            if position_components > 0 else None

    def reset(self) -> None:
        """Start a new stream (nothing is carried: every block re-reads its window)."""

    def frames(self, x16: np.ndarray, start16: int, a: int, b: int) -> np.ndarray:
        """Content of absolute frames [a, b) (100 frames/s) from ``x16``, the recent 16 kHz
        audio whose first sample is absolute sample ``start16`` (window start aligned to the
        encoder's 20 ms grid here).  Returns (b - a, 512) float32."""
        import ctranslate2

        end = start16 + x16.shape[0]
        s0 = max(start16, end - self.window)
        s0 = -(-s0 // ALIGN16) * ALIGN16  # first encoder frame on the absolute 50 frames/s grid
        seg = x16[s0 - start16:]
        seg = seg[:(seg.shape[0] // ALIGN16) * ALIGN16]
        if seg.shape[0] < ALIGN16:
            seg = np.zeros(ALIGN16, np.float32)
        mel = wh.log_mel_spectrogram(seg)
        mel = mel[:, :(mel.shape[1] // 2) * 2]
        out = self.model.encode(ctranslate2.StorageView.from_array(
            np.ascontiguousarray(mel[None], dtype=np.float32)), to_cpu=True)
        enc = np.array(out, dtype=np.float32)[0]  # (n, 512) at 50 frames/s from s0
        if self.basis is not None:
            enc = enc - (enc @ self.basis.T) @ self.basis
        # 100 frames/s frame i is at 50 frames/s position (i - s0 / 160) / 2
        pos = (np.arange(a, b, dtype=np.float64) - s0 / wh.HOP_LENGTH) / (
            FRAME_RATE / CONTENT_FRAME_RATE)
        pos = np.clip(pos, 0, enc.shape[0] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, enc.shape[0] - 1)
        w = (pos - lo).astype(np.float32)[:, None]
        return (enc[lo] * (1 - w) + enc[hi] * w).astype(np.float32)


class FcpeStream:
    """F0 (Hz, 0 = unvoiced) of the newest frames with FCPE on a short window, its group
    normalisation from running statistics of every frame seen so far (offline: the whole
    signal's), then the offline post-processing (voicing threshold, -60 dBFS gate, range)."""

    def __init__(self, config: PitchConfig = PitchConfig(method="fcpe")):
        from aisinger.nn import fcpe

        self.fcpe = fcpe
        self.model = neural_model("fcpe", "cpu")
        self.front = fcpe.MelFrontEnd()
        self.config = config
        self.threshold = config.voicing_threshold()
        self.reset()

    def reset(self) -> None:
        """Forget the running statistics."""
        self.s = self.s2 = None
        self.count = 0

    def frames(self, x16: np.ndarray, start16: int, a: int, b: int, final: int) -> np.ndarray:
        """F0 of absolute frames [a, b) (float64 Hz, 0 = unvoiced) from the recent 16 kHz audio
        ``x16`` (first sample at absolute ``start16``); frames [a, final) are final and enter
        the running statistics."""
        import torch

        fc = self.fcpe
        left = (fc.N_FFT - fc.HOP) // 2
        lo = max(0, a - FCPE_CONTEXT_FRAMES)
        n = b - lo
        # frame i spans absolute samples [i * HOP - left, i * HOP - left + N_FFT)
        s0 = lo * fc.HOP - left
        need = (n - 1) * fc.HOP + fc.N_FFT
        buf = np.zeros(need, np.float32)
        src_a, src_b = max(s0, start16), min(s0 + need, start16 + x16.shape[0])
        if src_b > src_a:
            buf[src_a - s0:src_b - s0] = x16[src_a - start16:src_b - start16]
        with torch.inference_mode():
            mel = self.front.from_padded(torch.from_numpy(buf)[None], n)
            h = self.model.first_conv(mel)
            k0, k1 = max(a, lo + 1) - lo, max(a, min(final, b - 1)) - lo
            if k1 > k0:  # final frames (not at the window's edges) enter the statistics
                ps, ps2, pn = self.model.group_moments(h[:, :, k0:k1])
                self.s, self.s2 = (ps, ps2) if self.s is None else (self.s + ps, self.s2 + ps2)
                self.count += pn
            if self.count >= FCPE_MIN_STATS_FRAMES * fc.HIDDEN // fc.GROUPS:
                stats = fc.stats_from_moments(self.s, self.s2, self.count)
            else:
                stats = fc.stats_from_moments(*self.model.group_moments(h))
            act = self.model(mel, stats)[0, a - lo:]
            cents, conf = fc.decode_local_argmax(act, self.model.cent_table)
            f0 = fc.cents_to_hz(cents).double().numpy()
        f0 = np.where(conf.double().numpy() > self.threshold, f0, 0.0)
        cfg = self.config
        if cfg.silence_db is not None:
            f0 = np.where(_gate_db(x16, start16, a, b) >= cfg.silence_db, f0, 0.0)
        return np.where((f0 >= cfg.fmin) & (f0 <= cfg.fmax), f0, 0.0)


def _gate_db(x16: np.ndarray, start16: int, a: int, b: int) -> np.ndarray:
    """RMS level (dBFS) over GATE_WINDOW samples centred on each frame of [a, b) (as
    :func:`aisinger.features.pitch._frame_db`; samples outside ``x16`` count as zeros)."""
    half = GATE_WINDOW // 2
    s0 = a * MODEL_HOP - half
    n = (b - a - 1) * MODEL_HOP + GATE_WINDOW
    buf = np.zeros(n, np.float64)
    src_a, src_b = max(s0, start16), min(s0 + n, start16 + x16.shape[0])
    if src_b > src_a:
        buf[src_a - s0:src_b - s0] = x16[src_a - start16:src_b - start16]
    c = np.concatenate([[0.0], np.cumsum(buf * buf)])
    st = np.arange(b - a) * MODEL_HOP
    power = (c[st + GATE_WINDOW] - c[st]) / GATE_WINDOW
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def frame_loudness(x: np.ndarray, start: int, hop: int, sr: int, a: int, b: int,
                   config: LoudnessConfig = LoudnessConfig()) -> np.ndarray:
    """Loudness (dBFS) of absolute frames [a, b) from recent audio ``x`` at ``sr`` whose first
    sample is absolute sample ``start`` (a multiple of ``hop``), as
    :func:`aisinger.dsp.loudness.loudness_db` (its Hann window cut at the newest sample)."""
    margin = int(round(config.window_s * sr)) // hop + 1
    f_lo = max(start // hop, a - margin)
    seg = x[f_lo * hop - start:]
    if seg.shape[0] == 0:
        return np.full(b - a, config.floor_db, np.float32)
    lv = loudness_db(seg, sr, config)  # frame r at absolute frame f_lo + r
    idx = np.clip(np.arange(a, b) - f_lo, 0, lv.shape[0] - 1)
    return lv[idx]


STUDENT_ASSET = "live-content"
"""The asset registry name of the shipped causal content encoder."""


def load_student(path=None):
    """The shipped :class:`~aisinger.nn.live_content.LiveContentNet` (eval mode), or the one
    at ``path`` (a live-content.safetensors written by scripts/train_live_content.py)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from aisinger.nn.live_content import LiveContentConfig, LiveContentNet

    p = fetch(STUDENT_ASSET) if path is None else path
    p = p if str(p).endswith(".safetensors") else p / "live-content.safetensors"
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        cfg = LiveContentConfig.from_dict(json.loads(meta["config"]))
        net = LiveContentNet(cfg)
        net.load_state_dict({k: v.float() for k, v in load_file(str(p)).items()})
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise AisingerError(f"{p}: not a usable live content encoder "
                            f"({str(exc).splitlines()[0][:120]})") from None
    return net.eval()


EDGE16 = 48
"""Newest 16 kHz samples a complete mel frame must not touch (3 ms: the one-shot resampler's
end-of-signal handling changes them slightly)."""


class StudentContent:
    """Content frames (100 frames/s, 512-d) from the causal student
    (:mod:`aisinger.nn.live_content`), run as a true stream: every complete log-mel frame is
    fed once, the network's convolution inputs are carried (:func:`step`), so the result
    equals the student run over the whole signal.  Content of frame ``j`` is known once mel
    frame ``j + lookahead`` is complete."""

    KEEP = 256  # computed frames kept

    def __init__(self, path=None):
        self.net = load_student(path)
        self.lookahead = self.net.cfg.lookahead
        self.receptive = self.net.cfg.receptive_frames
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        from aisinger.nn.live_content import StreamState

        self.state = StreamState(self.net)
        self.m_next = 0  # next mel frame to feed
        self.out = np.zeros((0, self.net.cfg.out_dim), np.float32)
        self.out_start = 0  # absolute frame of self.out[0]
        self.fed = 0  # outputs produced so far (output i describes frame i - lookahead)

    def frames(self, x16: np.ndarray, start16: int, a: int, b: int) -> np.ndarray:
        """Content of absolute frames [a, b) from the recent 16 kHz audio ``x16`` (first sample
        at absolute ``start16``); frames whose lookahead is not complete yet repeat the newest
        known frame.  Returns (b - a, 512) float32."""
        import torch

        from aisinger.nn.live_content import log_mel, step

        hop, half = wh.HOP_LENGTH, wh.N_FFT // 2
        end16 = start16 + x16.shape[0]
        m_last = (end16 - half - EDGE16) // hop  # newest complete mel frame
        if m_last >= self.m_next:
            m0, m1 = self.m_next, m_last + 1
            s0 = (m0 - 2) * hop  # 2 extra frames: mel_power's reflect-padded edge
            buf = np.zeros((m1 - m0 + 2) * hop + half, np.float32)
            src_a, src_b = max(s0, start16), min(s0 + buf.shape[0], end16)
            if src_b > src_a:
                buf[src_a - s0:src_b - s0] = x16[src_a - start16:src_b - start16]
            power = wh.mel_power(buf)[:, 2:2 + (m1 - m0)]
            with torch.inference_mode():
                y = step(self.net, log_mel(torch.from_numpy(np.ascontiguousarray(power)))[None],
                         self.state)[0].numpy()
            first = self.m_next - self.lookahead  # frame the first new output describes
            if first < 0:
                y, first = y[-first:], 0
            if self.out.shape[0] == 0:
                self.out_start = first
            self.out = np.concatenate([self.out, y])
            drop = max(0, self.out.shape[0] - self.KEEP)
            self.out, self.out_start = self.out[drop:], self.out_start + drop
            self.m_next = m1
        if self.out.shape[0] == 0:
            return np.zeros((b - a, self.net.cfg.out_dim), np.float32)
        idx = np.clip(np.arange(a, b) - self.out_start, 0, self.out.shape[0] - 1)
        return self.out[idx]
