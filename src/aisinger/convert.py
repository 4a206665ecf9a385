"""Voice conversion: ``aisinger convert VOCALS --voice VOICE -o OUT``.

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
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError

log = logging.getLogger("aisinger")

__all__ = ["convert", "retrieve_content", "blend_knn", "protect_mask", "feature_config", "F0_METHODS",
           "DEFAULT_RETRIEVAL", "DEFAULT_PROTECT"]

F0_METHODS = ("fcpe", "crepe-tiny", "dsp")
DEFAULT_RETRIEVAL = 0.5  # blend of retrieved target content frames (0 = off, 1 = all)
DEFAULT_PROTECT = 0.33  # share of the source kept on unvoiced frames (0 = off); see protect_mask
PROTECT_RAMP_FRAMES = 2  # the protect mask rises/falls over this many frames (20 ms), no clicks
PROTECT_SILENCE_DB = -60.0  # source frames quieter than this (dBFS) are silence, not consonants
BLEND_BLOCK = 1 << 20  # samples per block of the protect blend (bounds memory)
RETRIEVAL_K = 4  # nearest neighbours averaged per frame
RETRIEVAL_BLOCK = 2048  # source frames per similarity matmul (memory bound)
CHUNK_FRAMES = 1000  # frames (10 s) per network/synthesis chunk
CROSSFADE_FRAMES = 10  # noise crossfade between chunks (100 ms)
CONTEXT_EXTRA = 2  # frames of context beyond the receptive field
NOISE_SEED = 0  # noise generator seed (conversion is deterministic)


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


def feature_config(voice, f0_method: str):
    """The FeatureConfig conversion analyses a source with: the voice's, with ``f0_method``."""
    return dataclasses.replace(voice.features,
                               pitch=dataclasses.replace(voice.features.pitch, method=f0_method))


def _load_source(vocals, input_sr: int | None) -> tuple[np.ndarray, int]:
    from aisinger.audio import load, to_mono

    if isinstance(vocals, (str, Path)):
        return load(vocals, mono=True)
    if isinstance(vocals, tuple) and len(vocals) == 2:
        vocals, input_sr = vocals
    if input_sr is None:
        raise AisingerError("convert: give the sample rate of an audio array (input_sr=)")
    x = np.asarray(vocals, dtype=np.float32)
    if x.ndim == 2:
        x = to_mono(x)
    if x.ndim != 1 or x.shape[0] == 0:
        raise AisingerError(f"convert: audio must be (samples,) or (channels, samples), got "
                            f"shape {x.shape}")
    return x, int(input_sr)


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


def _write_labelled(out_path, y: np.ndarray, sr: int, voice_dir) -> None:
    """An AI output written by the library: labelled like the CLI's (one labelled writer)."""
    from aisinger.label import label_audio, write_labelled
    from aisinger.remix import TRUE_PEAK_CEILING_DBTP

    marked, label = label_audio(y, sr, voice_id=Path(voice_dir).resolve().name)
    write_labelled(marked, sr, out_path, label, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)


def _warn_range(f0: np.ndarray, voice, transpose: float) -> None:
    """Log a warning when many sung frames land outside the voice's trained range."""
    from aisinger.key import range_warning, voice_range

    why = range_warning(f0, voice_range(voice.card), transpose)
    if why:
        log.warning("warning: %s", why)


def convert(vocals, voice_dir: str | Path, out_path: str | Path | None = None,
            transpose: float = 0.0, f0_method: str = "fcpe",
            retrieval: float = DEFAULT_RETRIEVAL, sr: int | None = None,
            input_sr: int | None = None, protect: float = DEFAULT_PROTECT,
            content_encoder: str | Path | None = None,
            warn_range: bool = True) -> tuple[np.ndarray, int]:
    """Convert sung vocals to the voice in ``voice_dir``.

    vocals: a path, an array (samples,)/(channels, samples) with ``input_sr``, or an
    ``(array, sr)`` tuple; transpose: semitones (F0 x 2^(n/12)); f0_method: fcpe, crepe-tiny
    or dsp; retrieval: 0..1 blend of k-NN retrieved target content (0 = off; needs the voice's
    index; for RVC voices this is RVC's index_rate); sr: output rate (default: the voice's);
    protect: 0..1 share of the source kept on consonants and breaths (see
    :func:`protect_mask`; 0 = off); content_encoder: HuBERT/ContentVec weights for
    imported So-VITS/RVC voices (default: the asset registry, see
    aisinger.features.hubert).  Returns (audio (samples,) float32, sr) with
    samples = round(input samples x sr / input rate); writes ``out_path`` when given (labelled,
    through :func:`aisinger.label.write_labelled`; the returned audio is unlabelled).
    Dispatches on the voice's model family (DDSP, or vits for imported community models).
    warn_range: log a warning when more than :data:`aisinger.key.OUT_OF_RANGE_WARN` of the
    transposed sung frames fall outside the voice's trained range (DDSP voices, whose model
    card records the range).
    """
    from aisinger.audio import resample
    from aisinger.features import extract
    from aisinger.train import fill_unvoiced
    from aisinger.voice import load_voice

    if f0_method not in F0_METHODS:
        raise AisingerError(f"convert: unknown F0 method {f0_method!r} (use one of "
                            f"{', '.join(F0_METHODS)})")
    if not 0.0 <= retrieval <= 1.0:
        raise AisingerError(f"convert: retrieval must be in [0, 1], got {retrieval}")
    if not 0.0 <= protect <= 1.0:
        raise AisingerError(f"convert: protect must be in [0, 1], got {protect}")
    if not math.isfinite(transpose):
        raise AisingerError(f"convert: transpose must be a number of semitones, got {transpose}")
    from aisinger.audio import MAX_SR, MIN_SR

    if sr is not None and not MIN_SR <= sr <= MAX_SR:
        raise AisingerError(f"convert: output sample rate {sr} Hz is outside {MIN_SR}-{MAX_SR} Hz")
    voice = load_voice(voice_dir)
    audio, rate = _load_source(vocals, input_sr)
    if voice.family == "vits":
        from aisinger.convert_vits import convert_vits

        y, out_sr = convert_vits(voice, audio, rate, transpose, f0_method, retrieval, sr,
                                 content_encoder=content_encoder, protect=protect)
        if out_path is not None:
            _write_labelled(out_path, y, out_sr, voice_dir)
        return y, out_sr
    feats = extract(audio, rate, config=feature_config(voice, f0_method))
    if warn_range:
        _warn_range(feats.f0, voice, transpose)
    keep = protect_mask(feats.f0, feats.loudness_db, protect)
    content = retrieve_content(feats.content, voice.index, retrieval * (1 - keep)) \
        if voice.index is not None else feats.content.astype(np.float32)
    f0, voiced = fill_unvoiced(feats.f0 * 2.0 ** (transpose / 12.0))
    controls = _controls(voice.model, np.ascontiguousarray(content, dtype=np.float32), f0,
                         voiced, feats.loudness_db.astype(np.float32))
    n_model = math.ceil(audio.shape[0] * voice.sample_rate / rate)
    y = _synthesize(voice.model, controls, n_model)
    out_sr = int(sr or voice.sample_rate)
    if out_sr != voice.sample_rate:
        y = resample(y, voice.sample_rate, out_sr)
    n_out = int(round(audio.shape[0] * out_sr / rate))
    y = np.pad(y, (0, max(0, n_out - y.shape[0])))[:n_out].astype(np.float32)
    if protect > 0:
        y = _blend_source(y, resample(audio, rate, out_sr), keep, feats.frame_rate, out_sr)
    if not np.all(np.isfinite(y)):
        raise AisingerError(f"{voice.path}: the model produced invalid audio (NaN)")
    if out_path is not None:
        _write_labelled(out_path, y, out_sr, voice_dir)
    return y, out_sr
