"""Vocal separation: split a song into ``vocals`` and ``accompaniment`` stems.

Backends (:data:`BACKENDS`, :func:`get_separator`):

* ``spleeter`` (default, offline): Deezer's Spleeter 2-stem U-Nets (MIT), run by aisinger's own
  model code (:mod:`aisinger.nn.spleeter`) with the weights of assets ``spleeter-vocals`` and
  ``spleeter-accompaniment``.
* ``demucs`` (optional, for users online): the ``demucs`` package's pretrained ``htdemucs``.
  demucs 4.x needs torchaudio, for which there is no CPU build for aisinger's torch, so on such
  machines asking for it raises :class:`~aisinger.errors.AisingerError` saying so.

Every backend returns stems with the input's shape and sample rate, and the accompaniment is
always ``mixture - vocals``, so the two stems sum exactly (to float rounding) to the mixture.

How the Spleeter backend works
------------------------------
* **Sample rate.**  The models work at 44.1 kHz; other rates are resampled (soxr) to 44.1 kHz
  for the model and the vocal stem is resampled back.
* **STFT.**  4096-point periodic-Hann STFT, hop 1024, centred with zero padding.  The U-Nets
  see the magnitudes of the lowest 1024 bins (0–11 kHz) in segments of 512 frames (11.9 s)
  starting at frame 0, the last one zero-padded — exactly as Spleeter does.
* **Masks.**  ``mask="vocals"`` (default) applies the vocals model's sigmoid mask alone;
  ``mask="ratio"`` uses Spleeter's Wiener-like ratio ``m_v² / (m_v² + m_a²)`` of the vocals and
  accompaniment models' masks (``separation_exponent = 2``).  Measured vocal SDR gain over the
  mixture (dB, mean): on 5 lab mixes (:mod:`aisinger.lab`: 5 voices, vocal/accompaniment
  -3..+3 dB, ~19 s each) vocals 9.84 vs ratio 9.85 (3 of 5 mixes favour "vocals"); on 12
  mixes over a denser band (piano, bass, strings, drums; -6..+4 dB) vocals 13.06 vs ratio 12.26
  (11 of 12 favour "vocals").  The vocals model alone is never clearly worse and needs half the
  compute, so it is the default.
* **Above 11 kHz** (bins 1024–2048, not modelled) the vocal mask of each frame is continued
  with a constant (``high_band``): ``"average"`` (default) = the mean mask over all modelled
  bins of that frame (Spleeter's ``mask_extension="average"``), ``"top"`` = the mean over the
  top :data:`TOP_BINS` modelled bins (8.9–11 kHz), ``"zeros"`` = everything above 11 kHz goes
  to the accompaniment.  The lab voices are band-limited to 11 kHz (WORLD at 22.05 kHz), so the
  choice was measured on the same 5 mixes with a vocal given realistic air above 11 kHz
  (rectified-and-high-passed vocal at -30 dB): SDR of the >11 kHz band of the vocal stem
  average 5.65 dB, top 5.15 dB, zeros 0.0 dB; full-band vocal SDR differs by < 0.05 dB.
* **Channels.**  Mono is fed to the models as a duplicated stereo pair and the two channels'
  masks are averaged.  Stereo is processed as is.  More than two channels (e.g. 5.1 in the
  WAV/FLAC order L R C LFE Ls Rs) are processed as consecutive *pairs* (L/R, C/LFE, Ls/Rs; an odd
  last channel as mono): every output channel is a separation of its own input channel, no
  channel leaks into another and the channel layout is kept.  The cost grows with the number
  of pairs.
* **Chunking.**  The song is processed in chunks of :data:`CHUNK_SEGMENTS` model segments
  (11.9 s) and overlap-added into the output, so memory grows only with the whole-song arrays:
  separating a 10-minute 44.1 kHz stereo WAV with :func:`separate_file` peaks at ~0.85 GB RSS.
  Chunk borders fall on the model's own segment borders and the inverse STFT is a plain
  overlap-add normalised by the summed squared window, so chunked output equals whole-song
  output to float rounding.
* **Limitation.**  Like upstream Spleeter, the 11.9 s segments are not overlapped, so the U-Net
  has no context across a segment border.  Averaging a second, half-segment-shifted pass with
  triangular weights measured +0.3 dB vocal SDR on the 9 denser-band mixes at twice the cost;
  it is not implemented.

Output files (:func:`separate_file`) are 32-bit float WAV: no clipping of peaks above 0 dBFS
and no dither/quantisation noise, so ``vocals.wav + accompaniment.wav`` reproduces the mixture.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from aisinger import assets
from aisinger.errors import AisingerError
from aisinger.io.audio import check_output_not_input, load, resample, save
from aisinger.io.safeload import numpy_array_globals, torch_load_safe
from aisinger.progress import track

STEMS = ("vocals", "accompaniment")
"""Stem names every backend returns."""

# --- Spleeter STFT / model geometry (fixed by the pretrained weights) ---
MODEL_SR = 44_100
"""Sample rate (Hz) the Spleeter models were trained at."""
N_FFT = 4096
"""STFT size (samples at 44.1 kHz; 92.9 ms)."""
HOP = 1024
"""STFT hop (samples; 23.2 ms)."""
N_BINS = 1024
"""Number of low-frequency bins the models see (0 to 1024 * 44100 / 4096 = 11.0 kHz)."""
SEGMENT_FRAMES = 512
"""Frames per model segment (11.9 s)."""
CHUNK_SEGMENTS = 1
"""Model segments per processing chunk (11.9 s of audio; more only costs memory)."""
TOP_BINS = 192
"""Modelled bins averaged for ``high_band="top"``: the top 192 bins, 8.9–11.0 kHz."""
MASK_EPS = 1e-10
"""Regulariser of the soft-mask ratio (Spleeter's EPSILON): silent bins split 50/50."""
ENV_THREADS = "AISINGER_THREADS"
"""Environment variable overriding the number of torch threads used for separation."""

HighBand = Literal["average", "top", "zeros"]
MaskMode = Literal["vocals", "ratio"]


@runtime_checkable
class Separator(Protocol):
    """A vocal separation backend."""

    name: str
    sample_rate: int  # the rate the model works at (Hz); inputs at other rates are resampled

    def separate(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Split ``audio`` ((channels, samples) or (samples,), float32) at ``sr`` Hz.

        Returns ``{"vocals": ..., "accompaniment": ...}``, each with the input's shape, dtype
        float32 and sample rate; ``vocals + accompaniment == audio`` to float rounding.
        """
        ...


# ----------------------------------------------------------------------------------------------
# shared helpers


def _check_audio(audio: np.ndarray, sr: int) -> np.ndarray:
    """Validate an input array and return it as float32 (channels, samples)."""
    if not isinstance(audio, np.ndarray):
        raise AisingerError(f"separate: expected a numpy array, got {type(audio).__name__}")
    if audio.ndim not in (1, 2):
        raise AisingerError(f"separate: audio must have shape (channels, samples) or (samples,), "
                            f"got {audio.shape}")
    x = audio[None, :] if audio.ndim == 1 else audio
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise AisingerError(f"separate: empty audio of shape {audio.shape}")
    if x.shape[0] > x.shape[1]:
        raise AisingerError(f"separate: audio of shape {audio.shape} looks like (samples, "
                            "channels); aisinger uses (channels, samples)")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AisingerError(f"separate: invalid sample rate {sr!r}")
    if not np.isfinite(x).all():
        raise AisingerError("separate: audio contains NaN or infinite samples")
    return np.asarray(x, dtype=np.float32)


def channel_groups(n_channels: int) -> list[tuple[int, ...]]:
    """Channel indices processed together: consecutive pairs, an odd last channel alone.

    >>> channel_groups(6)
    [(0, 1), (2, 3), (4, 5)]
    >>> channel_groups(1)
    [(0,)]
    """
    return [tuple(range(i, min(i + 2, n_channels))) for i in range(0, n_channels, 2)]


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis of ``x`` to ``n`` samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])])


def _finish(x: np.ndarray, vocals: np.ndarray, input_ndim: int) -> dict[str, np.ndarray]:
    """Stem dict from ``x`` and ``vocals`` (channels, samples); accompaniment = x - vocals.

    ``input_ndim == 1`` returns (samples,) stems like the caller's mono input.
    """
    vocals = np.asarray(vocals, dtype=np.float32)
    accompaniment = x - vocals
    if input_ndim == 1:
        return {"vocals": vocals[0], "accompaniment": accompaniment[0]}
    return {"vocals": vocals, "accompaniment": accompaniment}


def torch_threads() -> int:
    """Threads to use: ``AISINGER_THREADS`` if set, else every CPU core (``os.cpu_count()``)."""
    env = os.environ.get(ENV_THREADS)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise AisingerError(f"{ENV_THREADS}={env!r} is not a whole number") from None
        if n < 1:
            raise AisingerError(f"{ENV_THREADS}={env!r} must be at least 1")
        return n
    return os.cpu_count() or 1


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave as is), then restore."""
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _VocalsFirst:
    """Backends that estimate the vocals; the accompaniment is the remainder."""

    def _vocals(self, x: np.ndarray, sr: int) -> np.ndarray:
        """Vocals (channels, samples) of the checked mixture ``x`` (channels, samples)."""
        raise NotImplementedError

    def separate(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Split ``audio`` ((channels, samples) or (samples,)) at ``sr`` Hz into both stems."""
        x = _check_audio(audio, sr)
        return _finish(x, self._vocals(x, int(sr)), audio.ndim)

    def separate_vocals(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The vocal stem alone, float32 shaped like ``audio`` (one array less in memory)."""
        vocals = self._vocals(_check_audio(audio, sr), int(sr))
        return vocals[0] if audio.ndim == 1 else vocals


# ----------------------------------------------------------------------------------------------
# Spleeter


@dataclass(frozen=True)
class SpleeterConfig:
    """Options of the Spleeter backend (defaults are the measured best)."""

    mask: MaskMode = "vocals"
    """``"vocals"``: the vocals model's mask alone; ``"ratio"``: m_v² / (m_v² + m_a²)."""
    high_band: HighBand = "average"
    """How the vocal mask continues above 11 kHz (see the module docstring)."""
    chunk_segments: int | None = CHUNK_SEGMENTS
    """Model segments (512 frames) per chunk; ``None`` = the whole song in one chunk."""
    threads: int | None = None
    """torch threads during separation; ``None`` = :func:`torch_threads` (env or all cores)."""


@functools.lru_cache(maxsize=4)
def _load_unet(path: str):
    """Load one Spleeter U-Net from a checkpoint file (cached per path; CPU, eval mode)."""
    from aisinger.nn.spleeter import load_spleeter_unet

    ckpt = torch_load_safe(path, extra_globals=numpy_array_globals())
    if not isinstance(ckpt, dict):
        raise AisingerError(f"{path}: not a Spleeter checkpoint (expected a dict of arrays)")
    try:
        return load_spleeter_unet(ckpt)
    except (KeyError, RuntimeError) as err:
        raise AisingerError(f"{path}: not a Spleeter 2-stem checkpoint "
                            f"({str(err).splitlines()[0][:200]})") from None


def _padded_slice(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``x[:, start:stop]`` with zeros where the range leaves [0, samples)."""
    n = x.shape[-1]
    out = np.zeros((x.shape[0], stop - start), dtype=np.float32)
    lo, hi = max(start, 0), min(stop, n)
    if hi > lo:
        out[:, lo - start:hi - start] = x[:, lo:hi]
    return out


def _window_envelope(start: int, stop: int, n_frames: int, window_sq: np.ndarray) -> np.ndarray:
    """Sum of squared windows of frames 0..n_frames-1 over padded samples [start, stop).

    Frame ``t`` covers padded samples ``[t * HOP, t * HOP + N_FFT)``.
    """
    n = np.arange(start, stop)
    env = np.zeros(stop - start, dtype=np.float64)
    for k in range(N_FFT // HOP):
        t = n // HOP - k
        ok = (t >= 0) & (t < n_frames)
        env[ok] += window_sq[n[ok] - t[ok] * HOP]
    return env


def _extend_mask(mask, high_band: HighBand):
    """Continue a (..., T, N_BINS) mask to all N_FFT // 2 + 1 bins with a per-frame constant."""
    import torch

    n_extra = N_FFT // 2 + 1 - N_BINS
    if high_band == "zeros":
        row = torch.zeros_like(mask[..., :1])
    elif high_band == "average":
        row = mask.mean(dim=-1, keepdim=True)
    elif high_band == "top":
        row = mask[..., -TOP_BINS:].mean(dim=-1, keepdim=True)
    else:
        raise AisingerError(f"spleeter: unknown high_band {high_band!r}; use top, average or zeros")
    return torch.cat([mask, row.expand(*row.shape[:-1], n_extra)], dim=-1)


class SpleeterSeparator(_VocalsFirst):
    """Spleeter 2-stem separation on CPU (see the module docstring for the method)."""

    name = "spleeter"
    sample_rate = MODEL_SR

    def __init__(self, config: SpleeterConfig = SpleeterConfig(),
                 vocals_path: str | Path | None = None,
                 accompaniment_path: str | Path | None = None):
        """Models load lazily on first use; paths default to the verified assets."""
        if config.chunk_segments is not None and config.chunk_segments < 1:
            raise AisingerError("spleeter: chunk_segments must be >= 1, "
                                f"got {config.chunk_segments}")
        if config.high_band not in ("average", "top", "zeros"):
            raise AisingerError(f"spleeter: unknown high_band {config.high_band!r}; "
                                "use average, top or zeros")
        if config.mask not in ("vocals", "ratio"):
            raise AisingerError(f"spleeter: unknown mask {config.mask!r}; use vocals or ratio")
        self.config = config
        self._paths = (vocals_path, accompaniment_path)

    def load(self) -> tuple:
        """Return the (vocals, accompaniment) U-Nets, fetching/loading them if needed.

        The accompaniment U-Net is only loaded for ``mask="ratio"`` (else ``None``).
        """
        vocals_path, acc_path = self._paths
        net_v = _load_unet(str(vocals_path or assets.fetch("spleeter-vocals")))
        if self.config.mask != "ratio":
            return net_v, None
        return net_v, _load_unet(str(acc_path or assets.fetch("spleeter-accompaniment")))

    # -- public --------------------------------------------------------------------------------

    def _vocals(self, x: np.ndarray, sr: int) -> np.ndarray:
        """Vocals (channels, samples) of the checked mixture ``x`` at ``sr`` Hz."""
        nets = self.load()
        n = x.shape[1]
        x_model = resample(x, sr, MODEL_SR) if sr != MODEL_SR else x
        threads = self.config.threads or torch_threads()
        groups = channel_groups(x.shape[0])
        with _threads(threads):
            if len(groups) == 1:
                vocals = self._separate_group(x_model, nets)
            else:
                vocals = np.empty_like(x_model)
                for g in groups:
                    vocals[list(g)] = self._separate_group(x_model[list(g)], nets)
        if sr != MODEL_SR:
            vocals = _fit_length(resample(vocals, MODEL_SR, sr), n)
        return vocals

    # -- internals -----------------------------------------------------------------------------

    def _vocal_mask(self, mag, nets):
        """Vocal mask (2, T, N_BINS) for magnitudes (2, T, N_BINS), segment by segment."""
        import torch
        import torch.nn.functional as F

        net_v, net_a = nets
        t = mag.shape[1]
        n_seg = -(-t // SEGMENT_FRAMES)
        padded = F.pad(mag, (0, 0, 0, n_seg * SEGMENT_FRAMES - t))
        masks = []
        for s in range(n_seg):
            seg = padded[None, :, s * SEGMENT_FRAMES:(s + 1) * SEGMENT_FRAMES]
            m_v = net_v(seg)[0]
            if self.config.mask == "ratio":
                m_a = net_a(seg)[0]
                m_v = (m_v ** 2 + MASK_EPS / 2) / (m_v ** 2 + m_a ** 2 + MASK_EPS)
            masks.append(m_v)
        return torch.cat(masks, dim=1)[:, :t]

    def _process_chunk(self, x: np.ndarray, a: int, b: int, nets, window):
        """Vocal overlap-add of frames [a, b) of ``x`` (c, samples), c in {1, 2}.

        Returns (c, (b - a - 1) * HOP + N_FFT) float32 starting at padded sample ``a * HOP``
        (not yet divided by the window envelope).
        """
        import torch
        import torch.nn.functional as F

        c = x.shape[0]
        pad = N_FFT // 2
        start, stop = a * HOP - pad, (b - 1) * HOP + N_FFT - pad
        seg = torch.from_numpy(_padded_slice(x, start, stop))
        spec = torch.fft.rfft(seg.unfold(-1, N_FFT, HOP) * window)  # (c, T, N_FFT // 2 + 1)
        del seg
        mag = spec[..., :N_BINS].abs()
        if c == 1:
            mag = mag.expand(2, -1, -1)
        with torch.inference_mode():
            mask = self._vocal_mask(mag.contiguous(), nets)
            if c == 1:
                mask = mask.mean(dim=0, keepdim=True)
            spec.mul_(_extend_mask(mask, self.config.high_band))
            del mask, mag
            out = torch.fft.irfft(spec, n=N_FFT).mul_(window)  # (c, T, N_FFT)
            del spec
            n_out = (b - a - 1) * HOP + N_FFT
            ola = F.fold(out.transpose(1, 2), output_size=(1, n_out), kernel_size=(1, N_FFT),
                         stride=(1, HOP))  # (c, 1, 1, n_out) overlap-add
        return ola[:, 0, 0].numpy()

    def _chunks(self, n_frames: int) -> list[tuple[int, int]]:
        """Frame ranges [a, b) per chunk; borders are multiples of SEGMENT_FRAMES."""
        step = (n_frames if self.config.chunk_segments is None
                else self.config.chunk_segments * SEGMENT_FRAMES)
        return [(a, min(a + step, n_frames)) for a in range(0, n_frames, step)]

    def _separate_group(self, x: np.ndarray, nets) -> np.ndarray:
        """Vocals (c, samples) of ``x`` (c, samples) at 44.1 kHz, c in {1, 2}."""
        import torch

        c, n = x.shape
        pad = N_FFT // 2
        n_frames = 1 + n // HOP  # centred STFT
        window = torch.hann_window(N_FFT, periodic=True)
        window_sq = (window ** 2).numpy().astype(np.float64)
        # frame-major memory layout, like audio files: saving it needs no transposed copy
        vocals = np.zeros((n, c), dtype=np.float32).T
        carry = np.zeros((c, 0), dtype=np.float32)
        chunks = self._chunks(n_frames)
        for a, b in track(chunks, total=len(chunks), description="separating"):
            ola = self._process_chunk(x, a, b, nets, window)
            ola[:, :carry.shape[1]] += carry
            # samples before the next chunk's first frame are complete
            done = ola.shape[1] if b == n_frames else (b - a) * HOP
            carry = ola[:, done:].copy()
            p0, p1 = a * HOP, a * HOP + done  # padded coordinates
            env = _window_envelope(p0, p1, n_frames, window_sq)
            lo, hi = max(p0, pad), min(p1, pad + n)  # keep only real samples
            if hi > lo:
                seg = ola[:, lo - p0:hi - p0] / env[lo - p0:hi - p0]
                vocals[:, lo - pad:hi - pad] = seg
        return vocals


# ----------------------------------------------------------------------------------------------
# demucs (optional)

DEMUCS_MODEL = "htdemucs"
"""The demucs pretrained model used (downloaded by demucs from its model hub)."""
DEMUCS_OVERLAP = 0.25
"""Overlap between demucs' internal chunks (its default)."""
DEMUCS_STD_EPS = 1e-8
"""Guards demucs' input standardisation against digital silence."""


class DemucsSeparator(_VocalsFirst):
    """Hybrid Transformer Demucs (``htdemucs``) via the ``demucs`` package, when installed."""

    name = "demucs"

    def __init__(self, model_name: str = DEMUCS_MODEL):
        try:
            from demucs.apply import apply_model  # noqa: F401
            from demucs.pretrained import get_model
        except Exception as err:  # ImportError, or torchaudio failing inside demucs
            raise AisingerError(
                "separation backend 'demucs' is not available: the 'demucs' package (4.x) "
                "needs torchaudio, which has no CPU build for this platform's torch, so it "
                f"cannot be installed here ({type(err).__name__}: {str(err)[:80]}); on a "
                "machine where torchaudio installs, run 'pip install demucs' (the model is "
                "downloaded from the internet on first use), or use --backend spleeter") from None
        try:
            self._model = get_model(model_name)
        except Exception as err:
            raise AisingerError(f"demucs: cannot load model '{model_name}' ({err}); it is "
                                "downloaded on first use and needs internet") from None
        self._model.eval()
        self.sample_rate = int(self._model.samplerate)
        if "vocals" not in self._model.sources:
            raise AisingerError(f"demucs: model '{model_name}' has no vocals source")

    def _vocals(self, x: np.ndarray, sr: int) -> np.ndarray:
        """Vocals of ``x`` (channels, samples); channel rules as for Spleeter."""
        import torch
        from demucs.apply import apply_model

        n = x.shape[1]
        x_model = resample(x, sr, self.sample_rate) if sr != self.sample_rate else x
        idx = list(self._model.sources).index("vocals")
        vocals = np.empty_like(x_model)
        with _threads(torch_threads()), torch.inference_mode():
            for g in channel_groups(x.shape[0]):
                pair = x_model[list(g)]
                wav = torch.from_numpy(np.concatenate([pair, pair]) if len(g) == 1 else pair)
                ref = wav.mean(0)
                mean, std = ref.mean(), ref.std() + DEMUCS_STD_EPS  # demucs' own normalisation
                est = apply_model(self._model, ((wav - mean) / std)[None], split=True,
                                  overlap=DEMUCS_OVERLAP, progress=False)[0, idx] * std + mean
                est = est.numpy()
                vocals[list(g)] = est.mean(0, keepdims=True) if len(g) == 1 else est
        if sr != self.sample_rate:
            vocals = _fit_length(resample(vocals, self.sample_rate, sr), n)
        return vocals


# ----------------------------------------------------------------------------------------------
# registry and file API

BACKENDS: dict[str, Callable[[], Separator]] = {
    "spleeter": SpleeterSeparator,
    "demucs": DemucsSeparator,
}
"""Backend name -> factory.  ``spleeter`` is the default and works offline."""

DEFAULT_BACKEND = "spleeter"


def get_separator(name: str = DEFAULT_BACKEND) -> Separator:
    """The separator backend called ``name`` (see :data:`BACKENDS`)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise AisingerError(f"unknown separation backend '{name}'; choose one of "
                            f"{', '.join(BACKENDS)}") from None
    return factory()


def separate_file(song: str | Path, out_dir: str | Path,
                  backend: str | Separator = DEFAULT_BACKEND) -> dict[str, Path]:
    """Separate ``song`` into ``out_dir/vocals.wav`` and ``out_dir/accompaniment.wav``.

    Outputs keep the song's sample rate and channel count and are 32-bit float WAV, written
    atomically.  Returns ``{"vocals": path, "accompaniment": path}``.
    """
    song, out_dir = Path(song), Path(out_dir)
    targets = {stem: out_dir / f"{stem}.wav" for stem in STEMS}
    for path in targets.values():
        check_output_not_input(path, song)
    separator = get_separator(backend) if isinstance(backend, str) else backend
    audio, sr = load(song)
    if not hasattr(separator, "separate_vocals"):
        stems = separator.separate(audio, sr)
        return {stem: save(path, stems[stem], sr) for stem, path in targets.items()}
    # memory: hold at most mixture + vocals; the accompaniment overwrites our own loaded copy
    vocals = separator.separate_vocals(audio, sr)
    out = {"vocals": save(targets["vocals"], vocals, sr)}
    np.subtract(audio, vocals, out=audio)
    del vocals
    out["accompaniment"] = save(targets["accompaniment"], audio, sr)
    return out
