"""Conversion with an imported So-VITS-SVC / RVC voice (model family "vits").

Source vocals -> F0 (fcpe / crepe-tiny / dsp at 100 frames/s, × 2^(transpose/12)) and HuBERT /
ContentVec content (50 frames/s, optionally blended with the RVC index's nearest vectors:
``retrieval`` = RVC's ``index_rate``) -> both brought onto the model's frame grid
(hop = prod(upsample_rates) samples at the model rate; frame j at t = j·hop/sr) -> the
generator, chunk by chunk -> waveform.

Chunks: :data:`CHUNK_S` seconds of frames, each run with :data:`CONTEXT_FRAMES` of context on
both sides and cross-faded over :data:`FADE_FRAMES` with its neighbour; the harmonic source
keeps one continuous phase across chunks (the phase reached at a chunk's start is passed in),
the posterior noise is drawn once for the whole signal, so chunking changes only the
attention context.  Randomness comes from one seeded generator: same input, same output.
"""

from __future__ import annotations

import math

import numpy as np

from aisinger.convert.retrieval import blend_knn, protect_mask
from aisinger.dsp.frames import FRAME_RATE, resample_f0
from aisinger.dsp.loudness import frame_rms, loudness_db
from aisinger.errors import AisingerError
from aisinger.features.hubert import (content_on_grid, encoder_path, frame_times_hubert,
                                      hubert_features)
from aisinger.features.pitch import PitchConfig, estimate_f0, fill_unvoiced
from aisinger.io.audio import resample

__all__ = ["convert_vits", "retrieve_rvc", "model_frames", "NOISE_SCALE"]

CHUNK_S = 20.0
CONTEXT_FRAMES = 48
FADE_FRAMES = 8
RETRIEVAL_K = 8  # RVC: neighbours per frame, weighted by 1 / distance^2
RETRIEVAL_BLOCK = 1024
NOISE_SCALE = {"sovits": 0.4, "rvc": 0.66666}  # the communities' default posterior noise
SEED = 0


def retrieve_rvc(content: np.ndarray, index: np.ndarray, ratio,
                 k: int = RETRIEVAL_K) -> np.ndarray:
    """RVC-style feature retrieval: each frame is blended (``ratio``: a number or a per-frame
    (T,) array) with the inverse-squared-distance weighted mean of its k nearest index
    vectors (L2)."""
    if index is None or index.shape[0] == 0:
        return content.astype(np.float32)
    k = min(k, index.shape[0])
    index = index.astype(np.float32)
    idx_sq = (index ** 2).sum(axis=1)

    def knn_mean(c: np.ndarray) -> np.ndarray:
        d2 = np.maximum((c ** 2).sum(axis=1, keepdims=True) - 2.0 * c @ index.T + idx_sq[None],
                        0.0)
        top = np.argpartition(d2, k - 1, axis=1)[:, :k]
        w = 1.0 / np.maximum(np.take_along_axis(d2, top, axis=1), 1e-12)
        w = w / w.sum(axis=1, keepdims=True)
        return np.einsum("bk,bkd->bd", w, index[top])

    return blend_knn(content, index, ratio, knn_mean, RETRIEVAL_BLOCK)


def model_frames(n_model_samples: int, hop: int) -> int:
    """Frames needed to synthesise ``n_model_samples`` samples."""
    return max(1, math.ceil(n_model_samples / hop))


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _synthesize(model, content, f0, uv, vol, sid, noise_scale, gen) -> np.ndarray:
    """Chunked generator run over all frames: (T * hop,) float32."""
    import torch

    cfg = model.cfg
    hop = cfg.hop
    t = content.shape[0]
    size = max(4 * FADE_FRAMES, int(round(CHUNK_S * cfg.sample_rate / hop)))
    noise = torch.randn(1, cfg.inter_channels, t, generator=gen) if noise_scale > 0 else None
    init_phase = None
    if cfg.use_f0 and cfg.decoder.harmonics > 0:
        init_phase = torch.rand(1, cfg.decoder.harmonics, generator=gen, dtype=torch.float64)
        init_phase[:, 0] = 0.0
    # phase (cycles) reached at the start of each frame: the source holds F0 over each hop
    f0_src = f0 if cfg.use_f0 else np.zeros_like(f0)
    cum_phase = np.concatenate([[0.0], np.cumsum(f0_src.astype(np.float64) * hop
                                                 / cfg.sample_rate)]) % 1.0
    out = np.zeros(t * hop, dtype=np.float32)
    weight = np.zeros(t * hop, dtype=np.float32)
    fade = FADE_FRAMES * hop
    sid_t = torch.tensor([sid])
    chunks = _chunks(t, size)
    with torch.inference_mode():
        for a, b in chunks:
            lo, hi = max(0, a - CONTEXT_FRAMES), min(t, b + CONTEXT_FRAMES)
            sl = slice(lo, hi)
            c = torch.from_numpy(np.ascontiguousarray(content[sl]))[None]
            f = torch.from_numpy(np.ascontiguousarray(f0[sl]))[None]
            u = torch.from_numpy(np.ascontiguousarray(uv[sl]))[None]
            v = torch.from_numpy(np.ascontiguousarray(vol[sl]))[None] if vol is not None else None
            z = model.latent(c, f if cfg.use_f0 else None, sid_t, uv=u, vol=v,
                             noise=noise[:, :, sl] if noise is not None else None,
                             noise_scale=noise_scale)
            g = model.speaker(sid_t)
            src = None
            if cfg.use_f0 and cfg.decoder.harmonics > 0:
                src = model.dec.source(f, generator=gen,
                                       phase_offset=torch.tensor([cum_phase[lo]]),
                                       init_phase=init_phase)
            y = model.dec(z, f, g=g, source=src)[0, 0].numpy()
            # keep [a - fade/2, b + fade/2) (clipped), with linear ramps at inner edges
            s0 = max(lo * hop, a * hop - (fade // 2 if a > 0 else 0))
            s1 = min(hi * hop, b * hop + (fade // 2 if b < t else 0))
            seg = y[s0 - lo * hop:s1 - lo * hop]
            w = np.ones(seg.shape[0], dtype=np.float32)
            if a > 0:
                r = min(fade, seg.shape[0])
                w[:r] = (np.arange(r) + 0.5) / r
            if b < t:
                r = min(fade, seg.shape[0])
                w[-r:] = np.minimum(w[-r:], ((np.arange(r) + 0.5) / r)[::-1])
            out[s0:s1] += seg * w
            weight[s0:s1] += w
    return out / np.maximum(weight, 1e-6)


def convert_vits(voice, audio: np.ndarray, rate: int, transpose: float, f0_method: str,
                 retrieval: float, sr: int | None, content_encoder=None,
                 noise_scale: float | None = None, protect: float = 0.0
                 ) -> tuple[np.ndarray, int]:
    """Convert mono ``audio`` at ``rate`` with a vits-family ``voice`` (see the module
    docstring).  ``protect``: on the source's consonants and breaths (unvoiced, not silent;
    :func:`aisinger.convert.retrieval.protect_mask`) the retrieval blend is reduced by this share, as
    RVC's ``protect`` keeps the source's own content there.  Returns (audio, out_sr) with
    round(len(audio) · out_sr / rate) samples."""
    import torch


    model = voice.model
    cfg = model.cfg
    s_model = cfg.sample_rate
    hop = cfg.hop
    grid_rate = s_model / hop
    n_model = math.ceil(audio.shape[0] * s_model / rate)
    t = model_frames(n_model, hop)
    enc = voice.meta["content_encoder"]
    enc_file = encoder_path(enc, content_encoder)
    content = hubert_features(audio, rate, enc_file, int(enc["layer"]), bool(enc["final_proj"]))
    if content.shape[1] != cfg.content_dim:
        raise AisingerError(f"{enc_file}: gives {content.shape[1]}-d content, the voice needs "
                            f"{cfg.content_dim}-d")
    need_f0 = cfg.use_f0 or (voice.index is not None and retrieval > 0 and protect > 0)
    f0_100 = estimate_f0(audio, rate, PitchConfig(method=f0_method)) if need_f0 else None
    if voice.index is not None and retrieval > 0:
        ratio = np.float32(retrieval)
        if protect > 0:
            keep = protect_mask(f0_100, loudness_db(audio, rate), protect)
            at = np.clip(np.rint(frame_times_hubert(content.shape[0]) * FRAME_RATE), 0,
                         keep.shape[0] - 1).astype(np.int64)
            ratio = retrieval * (1.0 - keep[at])
        content = retrieve_rvc(content, voice.index, ratio)
    content = content_on_grid(content, t, grid_rate)
    f0 = np.zeros(t, np.float32)
    uv = np.zeros(t, np.float32)
    if cfg.use_f0:
        f0_100 = f0_100 * np.float32(2.0 ** (transpose / 12.0))
        f0 = resample_f0(f0_100, t, rate_in=FRAME_RATE, rate_out=grid_rate)
        uv = (f0 > 0).astype(np.float32)
        if cfg.family == "sovits":  # So-VITS feeds an interpolated F0 plus voiced flags
            f0, _ = fill_unvoiced(f0)
    vol = None
    if cfg.family == "sovits" and cfg.vol_embedding:
        x = resample(audio, rate, s_model) if rate != s_model else audio
        vol = frame_rms(x, hop, t)
    if noise_scale is None:
        noise_scale = NOISE_SCALE[cfg.family]
    gen = torch.Generator().manual_seed(SEED)
    y = _synthesize(model, content.astype(np.float32), f0.astype(np.float32), uv, vol,
                    int(voice.meta["speaker"]), noise_scale, gen)[:n_model]
    out_sr = int(sr or s_model)
    if out_sr != s_model:
        y = resample(y, s_model, out_sr)
    n_out = int(round(audio.shape[0] * out_sr / rate))
    y = np.pad(y, (0, max(0, n_out - y.shape[0])))[:n_out].astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise AisingerError(f"{voice.path}: the model produced invalid audio (NaN)")
    return y, out_sr
