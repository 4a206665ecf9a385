"""Synthesis for "nsf"-family voices (:mod:`aisinger.nn.nsf_voice`), called by
:func:`aisinger.convert.convert` after feature extraction, retrieval and transpose.

Any length: the model runs on chunks of ``CHUNK_FRAMES`` frames with ``receptive_frames`` +
``CONTEXT_EXTRA`` frames of context on each side; the harmonic source of every chunk starts at
the phase the whole signal has there (the cumulative F0 phase up to the chunk's first frame),
so the sines line up across chunks; adjacent chunks overlap by ``CROSSFADE_FRAMES`` and are
crossfaded linearly.  The source noise is position-seeded (blocks of ``NOISE_BLOCK_FRAMES``
frames, each from a generator seeded by its index), so every chunk sees the same noise the
whole signal has there: chunked output equals whole-signal output up to the context edges,
and conversion is deterministic.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["synthesize_nsf", "CHUNK_FRAMES"]

CHUNK_FRAMES = 1000  # frames (10 s) per chunk
CROSSFADE_FRAMES = 4  # overlap of adjacent chunks (40 ms)
CONTEXT_EXTRA = 4  # frames of context beyond the model's receptive field
NOISE_SEED = 0
NOISE_BLOCK_FRAMES = 100  # frames per position-seeded noise block (1 s at 100 frames/s)


def _noise(lo: int, hi: int, hop: int, harmonics: int):
    """Standard-normal source noise (1, (hi - lo) * hop, harmonics) for frames [lo, hi): the
    same values at the same position whichever chunk asks (block b from seed (NOISE_SEED, b))."""
    import torch

    n = NOISE_BLOCK_FRAMES * hop
    parts = []
    for blk in range(lo // NOISE_BLOCK_FRAMES, -(-hi // NOISE_BLOCK_FRAMES)):
        gen = torch.Generator().manual_seed(NOISE_SEED * 1_000_003 + blk)
        parts.append(torch.randn(n, harmonics, generator=gen))
    start = lo * hop - (lo // NOISE_BLOCK_FRAMES) * n
    return torch.cat(parts)[start:start + (hi - lo) * hop][None]


def synthesize_nsf(model, content: np.ndarray, f0: np.ndarray, voiced: np.ndarray,
                   loudness: np.ndarray, n_samples: int, chunk_frames: int = CHUNK_FRAMES
                   ) -> np.ndarray:
    """content (T, D), f0 (T,) filled Hz, voiced (T,), loudness (T,) dBFS -> (n_samples,)
    float32 at the model rate (edge-padded frames when n_samples > T * hop)."""
    import torch

    cfg = model.cfg
    hop = cfg.hop
    need = -(-n_samples // hop)
    t = f0.shape[0]
    if t < need:  # edge-pad the frames to cover every sample
        idx = np.minimum(np.arange(need), t - 1)
        content, f0, voiced, loudness = (a[idx] for a in (content, f0, voiced, loudness))
        t = need
    src_f0 = f0.astype(np.float64) * (voiced > 0)
    # phase (cycles) of the source at the first sample of every frame
    frame_phase = np.concatenate([[0.0], np.cumsum(src_f0 * hop / cfg.sample_rate)])
    margin = cfg.receptive_frames + CONTEXT_EXTRA
    fade = CROSSFADE_FRAMES
    # linear fades: overlapping chunks carry the same sines, so the two gains must sum to 1
    ramp = ((np.arange(fade * hop) + 0.5) / (fade * hop)).astype(np.float32)
    out = np.zeros(t * hop, dtype=np.float32)
    chunk_frames = max(chunk_frames, 2 * fade + 1)
    starts = list(range(0, t, chunk_frames))
    if len(starts) > 1 and t - starts[-1] < 2 * fade + 1:
        starts.pop()  # a tail shorter than two crossfades joins the previous chunk
    with torch.no_grad():
        for i, a in enumerate(starts):
            b = t if i == len(starts) - 1 else min(t, a + chunk_frames + fade)
            lo, hi = max(0, a - margin), min(t, b + margin)
            y = model(*(torch.from_numpy(np.ascontiguousarray(x[lo:hi], dtype=np.float32))[None]
                        for x in (content, f0, voiced, loudness)),
                      noise=_noise(lo, hi, hop, cfg.harmonics),
                      phase_offset=torch.tensor([math.fmod(frame_phase[lo], 1.0)],
                                                dtype=torch.float64))[0].numpy()
            seg = y[(a - lo) * hop:(b - lo) * hop].copy()
            if i > 0:
                seg[:fade * hop] *= ramp
            if b < t and i < len(starts) - 1:
                seg[-fade * hop:] *= ramp[::-1]
            out[a * hop:b * hop] += seg
    return out[:n_samples]
