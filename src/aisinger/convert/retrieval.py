"""Content retrieval and consonant protection, shared by both model families.

:func:`retrieve_content` (DDSP voices: cosine k-NN over the voice's training frames) and
:func:`aisinger.convert.vits.retrieve_rvc` (RVC's L2 index) blend each source content frame with
its nearest target frames (``retrieval``, against timbre leakage); :func:`protect_mask` keeps a
share of the source on consonants and breaths.
"""

from __future__ import annotations

import numpy as np

from aisinger.errors import AisingerError

__all__ = ["retrieve_content", "blend_knn", "protect_mask", "check_settings",
           "DEFAULT_RETRIEVAL", "DEFAULT_PROTECT"]

DEFAULT_RETRIEVAL = 0.5  # blend of retrieved target content frames (0 = off, 1 = all)
DEFAULT_PROTECT = 0.33  # share of the source kept on unvoiced frames (0 = off); see protect_mask
PROTECT_RAMP_FRAMES = 2  # the protect mask rises/falls over this many frames (20 ms), no clicks
PROTECT_SILENCE_DB = -60.0  # source frames quieter than this (dBFS) are silence, not consonants
RETRIEVAL_K = 4  # nearest neighbours averaged per frame


def check_settings(retrieval: float, protect: float, where: str) -> None:
    """AisingerError (prefixed ``where``) unless retrieval and protect are both in [0, 1]."""
    for name, value in (("retrieval", retrieval), ("protect", protect)):
        if not 0.0 <= value <= 1.0:
            raise AisingerError(f"{where}: {name} must be in [0, 1], got {value}")
RETRIEVAL_BLOCK = 2048  # source frames per similarity matmul (memory bound)


def blend_knn(content: np.ndarray, index: np.ndarray | None, ratio, knn_mean,
              block: int = RETRIEVAL_BLOCK) -> np.ndarray:
    """(1 - ratio) * content + ratio * knn_mean(frames), block by block (memory bound).

    content: (T, D); ratio: a number or a per-frame (T,) array in [0, 1]; knn_mean: maps a
    (b, D) float32 block to the (b, D) mean of its retrieved index frames.  Returns (T, D)
    float32; ``content`` itself (as float32) when the ratio is 0 everywhere or there is no
    index.  Shared by the DDSP (cosine) and the RVC (L2) retrieval.
    """
    ratio = np.asarray(ratio, dtype=np.float32)
    if not np.any(ratio > 0) or index is None or index.shape[0] == 0:
        return content.astype(np.float32)
    if ratio.ndim:
        ratio = ratio[:, None]
    out = np.empty_like(content, dtype=np.float32)
    for a in range(0, content.shape[0], block):
        c = np.ascontiguousarray(content[a:a + block], dtype=np.float32)
        r = ratio[a:a + block] if ratio.ndim else ratio
        out[a:a + block] = (1 - r) * c + r * knn_mean(c)
    return out


def retrieve_content(content: np.ndarray, index: np.ndarray, ratio,
                     k: int = RETRIEVAL_K) -> np.ndarray:
    """Blend each content frame with the mean of its k nearest index frames (cosine).

    content: (T, D); index: (N, D) target training frames; ratio in [0, 1], a number or a
    per-frame (T,) array.  Returns (T, D) float32 = (1 - ratio) * content + ratio * knn_mean.
    Neighbours are weighted by their cosine similarity.
    """
    if index is None or index.shape[0] == 0:
        return content.astype(np.float32)
    import torch

    k = min(k, index.shape[0])
    idx = torch.from_numpy(np.ascontiguousarray(index, dtype=np.float32))
    idx_n = idx / idx.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def knn_mean(c: np.ndarray) -> np.ndarray:
        ct = torch.from_numpy(c)
        sim = (ct / ct.norm(dim=1, keepdim=True).clamp_min(1e-8)) @ idx_n.T  # (b, N)
        w, top = torch.topk(sim, k, dim=1)
        w = w.clamp_min(1e-4)
        w = w / w.sum(dim=1, keepdim=True)
        return torch.einsum("bk,bkd->bd", w, idx[top]).numpy()

    return blend_knn(content, index, ratio, knn_mean)


def protect_mask(f0: np.ndarray, loudness_db: np.ndarray, protect: float) -> np.ndarray:
    """Per-frame share of the *source* to keep, (T,) float32 in [0, protect].

    Consonants and breaths are the unvoiced, non-silent frames of the source (F0 = 0, level
    above ``PROTECT_SILENCE_DB``).  There a DDSP voice has only its noise branch, and
    retrieval swaps their content for the nearest (mostly voiced) target frames: both turn
    sibilants and breaths "electronic".  Protection (the idea behind RVC's ``protect``) keeps
    ``protect`` of the source on those frames: the retrieval blend is reduced by it and the
    source waveform is mixed back in by it.  The mask ramps over ``PROTECT_RAMP_FRAMES``.
    """
    m = ((f0 <= 0) & (loudness_db > PROTECT_SILENCE_DB)).astype(np.float32) * float(protect)
    if protect > 0 and PROTECT_RAMP_FRAMES > 0 and m.size:
        from scipy.ndimage import uniform_filter1d

        m = uniform_filter1d(m, size=2 * PROTECT_RAMP_FRAMES + 1, mode="nearest")
    return m.astype(np.float32)
