"""Conversion with a DDSP voice (model family "ddsp", aisinger's first trained voices;
``aisinger train --model ddsp``).

Source vocals -> features (content, F0, loudness at 100 frames/s) -> optional k-NN retrieval
of the target's own content frames (``retrieval`` blend, as RVC does against timbre leakage)
-> F0 x 2^(transpose/12) -> the voice's decoder -> waveform at the voice's rate (or ``sr``).

Any length: the network runs on chunks of frames with ``receptive_frames`` of context on each
side (so controls equal whole-signal inference), the oscillator runs chunk by chunk carrying its
phase (no discontinuity), and the noise part of adjacent chunks overlaps and is crossfaded with
power-complementary (sine/cosine) windows.  Output length = input duration x output rate
exactly; loudness follows the source through the loudness control.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from aisinger.convert.key import range_warning, voice_range
from aisinger.convert.nsf import synthesize_nsf
from aisinger.convert.retrieval import protect_mask, retrieve_content
from aisinger.errors import AisingerError
from aisinger.features import Features, extract
from aisinger.features.pitch import fill_unvoiced
from aisinger.io.audio import resample

log = logging.getLogger("aisinger")

__all__ = ["convert_ddsp", "feature_config"]

BLEND_BLOCK = 1 << 20  # samples per block of the protect blend (bounds memory)
CHUNK_FRAMES = 1000  # frames (10 s) per network/synthesis chunk
CROSSFADE_FRAMES = 10  # noise crossfade between chunks (100 ms)
CONTEXT_EXTRA = 2  # frames of context beyond the receptive field
NOISE_SEED = 0  # noise generator seed (conversion is deterministic)


def _blend_source(y: np.ndarray, source: np.ndarray, mask: np.ndarray, frame_rate: int,
                  sr: int) -> np.ndarray:
    """y * (1 - m) + source * m in place, with the frame mask m linearly interpolated to
    samples (block by block: no full-length float64 temporaries)."""
    if not np.any(mask > 0):
        return y
    n = y.shape[0]
    src = np.pad(source, (0, max(0, n - source.shape[0])))[:n]
    frames = np.arange(mask.shape[0])
    for a in range(0, n, BLEND_BLOCK):
        b = min(n, a + BLEND_BLOCK)
        m = np.interp(np.arange(a, b) * (frame_rate / sr), frames, mask).astype(np.float32)
        y[a:b] += m * (src[a:b] - y[a:b])
    return y


def _controls(model, content, f0, voiced, loud) -> dict:
    """Network controls for all frames, computed chunk by chunk with context margins."""
    import torch

    t = f0.shape[0]
    margin = model.cfg.receptive_frames + CONTEXT_EXTRA
    parts: dict[str, list] = {}
    with torch.no_grad():
        for a in range(0, t, CHUNK_FRAMES):
            b = min(t, a + CHUNK_FRAMES)
            lo, hi = max(0, a - margin), min(t, b + margin)
            c = model.controls(torch.from_numpy(content[lo:hi])[None],
                               torch.from_numpy(f0[lo:hi])[None],
                               torch.from_numpy(voiced[lo:hi])[None],
                               torch.from_numpy(loud[lo:hi])[None])
            for k, v in c.items():
                parts.setdefault(k, []).append(v[:, a - lo:b - lo])
    return {k: torch.cat(v, dim=1) for k, v in parts.items()}


def _synthesize(model, controls: dict, n_samples: int) -> np.ndarray:
    """Chunked synthesis: phase-continuous harmonics + crossfaded noise, (n_samples,)."""
    import torch

    hop = model.cfg.hop
    need = n_samples // hop + 2
    t = controls["f0"].shape[1]
    if t < need:  # edge-pad the controls to cover every sample
        controls = {k: torch.cat([v, v[:, -1:].expand(-1, need - t, -1) if v.ndim == 3
                                  else v[:, -1:].expand(-1, need - t)], dim=1)
                    for k, v in controls.items()}
    out = np.zeros(n_samples, dtype=np.float32)
    chunk = CHUNK_FRAMES * hop
    fade = CROSSFADE_FRAMES * hop
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade).astype(np.float32)
    phase = None
    with torch.no_grad():
        for i, s0 in enumerate(range(0, n_samples, chunk)):
            s1 = min(n_samples, s0 + chunk)
            f0 = s0 // hop
            # harmonics: exact continuation of the phase
            sl = {k: v[:, f0:s1 // hop + 2] for k, v in controls.items()}
            gen = torch.Generator().manual_seed(NOISE_SEED + i)
            n_noise = min(n_samples, s1 + fade) - s0
            sl_n = {k: v[:, f0:(s0 + n_noise) // hop + 2] for k, v in controls.items()}
            harm, _, phase_next = model.synthesize(sl, s1 - s0, state=phase)
            _, noise, _ = model.synthesize(sl_n, n_noise, state=phase, generator=gen)
            phase = phase_next
            noise = noise[0].numpy().copy()
            if i > 0:  # fade-in over the previous chunk's tail
                m = min(fade, noise.shape[0])
                noise[:m] *= ramp[:m]
            if s0 + n_noise > s1:  # fade-out tail overlapping the next chunk
                tail = s0 + n_noise - s1
                noise[-tail:] *= ramp[::-1][:tail]
            out[s0:s1] += harm[0].numpy()
            out[s0:s0 + n_noise] += noise
    return out


def feature_config(voice, f0_method: str):
    """The FeatureConfig conversion analyses a source with: the voice's, with ``f0_method``."""
    return dataclasses.replace(voice.features,
                               pitch=dataclasses.replace(voice.features.pitch, method=f0_method))


def convert_ddsp(voice, audio: np.ndarray, rate: int, transpose: float, f0_method: str,
                 retrieval: float, sr: int | None, protect: float = 0.0,
                 features: Features | None = None, warn_range: bool = True
                 ) -> tuple[np.ndarray, int]:
    """Convert mono ``audio`` at ``rate`` with a DDSP-family ``voice`` (see the module
    docstring; arguments as :func:`aisinger.convert.convert`, already checked).  ``features``:
    the source's features when the caller has them (extracted with
    :func:`feature_config` ``(voice, f0_method)``), else they are extracted here.  Returns
    (audio, out_sr) with round(len(audio) · out_sr / rate) samples."""
    feats = features if features is not None else \
        extract(audio, rate, config=feature_config(voice, f0_method))
    why = range_warning(feats.f0, voice_range(voice.card), transpose) if warn_range else None
    if why:  # the voice extrapolates outside its trained range
        log.warning("warning: %s", why)
    keep = protect_mask(feats.f0, feats.loudness_db, protect)
    content = retrieve_content(feats.content, voice.index, retrieval * (1 - keep)) \
        if voice.index is not None else feats.content.astype(np.float32)
    f0, voiced = fill_unvoiced(feats.f0 * 2.0 ** (transpose / 12.0))
    content = np.ascontiguousarray(content, dtype=np.float32)
    loud = feats.loudness_db.astype(np.float32)
    n_model = math.ceil(audio.shape[0] * voice.sample_rate / rate)
    if voice.family == "nsf":  # neural source-filter voices: same features, own synthesis
        y = synthesize_nsf(voice.model, content, f0, voiced, loud, n_model)
    else:
        y = _synthesize(voice.model, _controls(voice.model, content, f0, voiced, loud), n_model)
    out_sr = int(sr or voice.sample_rate)
    if out_sr != voice.sample_rate:
        y = resample(y, voice.sample_rate, out_sr)
    n_out = int(round(audio.shape[0] * out_sr / rate))
    y = np.pad(y, (0, max(0, n_out - y.shape[0])))[:n_out].astype(np.float32)
    if protect > 0:
        y = _blend_source(y, resample(audio, rate, out_sr), keep, feats.frame_rate, out_sr)
    if not np.all(np.isfinite(y)):
        raise AisingerError(f"{voice.path}: the model produced invalid audio (NaN)")
    return y, out_sr
