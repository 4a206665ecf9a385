"""A small DDSP-class voice decoder: content + F0 + loudness -> harmonic-plus-noise waveform.

Pure ``torch.nn`` code (imports torch only).  Frame convention: control frame ``i`` is centred at
sample ``i * hop`` of the synthesised signal (``hop = sample_rate / frame_rate``), the same grid
as :mod:`aisinger.dsp.frames` (frame i at t = i / 100 s).

Pieces
------
* :class:`Decoder`: the swappable interface.  ``controls(content, f0, loudness_db)`` runs the
  network on frames; ``synthesize(controls, n_samples, ...)`` turns controls into audio;
  ``forward`` does both.
* :class:`ControlNet`: LayerNorm'd content projection + pitch/loudness embedding -> residual
  Conv1d stack -> per-frame controls (overall amplitude, harmonic distribution, noise bands).
* :func:`harmonic_synth`: additive sine bank at integer multiples of F0 (phase from a float64
  cumulative sum, carried across chunks), harmonics above Nyquist silenced.
* :func:`noise_synth`: white noise shaped in the STFT domain by per-frame band magnitudes
  (STFT hop = control hop, frames centred on the control frames).
* :func:`multi_resolution_stft_loss`: L1 of linear and log magnitudes over a few FFT sizes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from aisinger.nn._config import check_known_keys

__all__ = ["DdspConfig", "Decoder", "ControlNet", "HarmonicNoiseDecoder", "Controls",
           "HarmonicEnvelopeDecoder", "harmonic_synth", "sine_multiples", "noise_synth", "envelope_at", "exp_sigmoid", "upsample_frames",
           "multi_resolution_stft_loss", "build_decoder", "DECODERS"]

F0_REF_HZ = 440.0  # reference of the log-F0 input feature (octaves relative to A4)
LOUDNESS_FLOOR_DB = -80.0  # loudness input is clamped here and scaled to [0, 1] over this range
EXP_SIGMOID_MAX = 2.0  # upper bound of the amplitude nonlinearity (DDSP's exp_sigmoid)
EXP_SIGMOID_EXPONENT = math.log(10.0)  # its steepness (DDSP default)
EXP_SIGMOID_FLOOR = 1e-7  # keeps amplitudes strictly positive (log losses)
NOISE_BIAS = -5.0  # initial bias of the noise-band logits: start with a quiet noise floor
LOG_EPS = 1e-5  # floor inside log-magnitude losses
ENVELOPE_TILT = math.log(10 ** (-12 / 20))  # initial envelope: -12 dB per octave (log amp.)
ENVELOPE_TILT_HZ = 500.0  # ... above this frequency (flat below)
ENVELOPE_HEAD_SCALE = 0.1  # initial head weights scaled down: start near the prior
NOISE_LOG_BIAS = -3.0  # initial noise level: e^-3 (-26 dB) relative to the frame RMS
NOISE_RMS_SCALE = math.sqrt(3.0)  # uniform noise in [-1, 1) has RMS 1/sqrt(3)
GAIN_LOG_MAX = 4.0  # upper clamp of the log gains (e^4 = +35 dB over the loudness)


@dataclass(frozen=True)
class DdspConfig:
    """Hyper-parameters of :class:`HarmonicNoiseDecoder`.

    sample_rate: synthesis rate in Hz; frame_rate: control frames per second (hop =
    sample_rate / frame_rate must be an integer); content_dim: width of the content features;
    hidden: channels of the conv stack; layers: residual conv blocks; kernel: conv kernel size
    (frames); n_harmonics: sines in the harmonic bank; n_noise_bands: linearly spaced noise
    filter bands from 0 to Nyquist; dropout: on the content projection while training;
    n_envelope / envelope_max_hz: points of the log-amplitude spectral envelope of the
    ``harmonic-envelope`` decoder, spaced evenly on the mel scale from 0 Hz to
    envelope_max_hz (unused by ``harmonic-noise``).
    """

    decoder: str = "harmonic-envelope"
    sample_rate: int = 24000
    frame_rate: int = 100
    content_dim: int = 512
    hidden: int = 256
    layers: int = 6
    kernel: int = 5
    n_harmonics: int = 64
    n_noise_bands: int = 65
    dropout: float = 0.1
    n_envelope: int = 80
    envelope_max_hz: float = 12000.0

    @property
    def hop(self) -> int:
        """Samples per control frame."""
        return self.sample_rate // self.frame_rate

    @property
    def receptive_frames(self) -> int:
        """Frames of context on each side that influence one output frame."""
        return self.layers * (self.kernel // 2)

    def to_dict(self) -> dict:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DdspConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        check_known_keys(cls, d)
        cfg = cls(**d)
        if cfg.sample_rate % cfg.frame_rate:
            raise ValueError(f"sample_rate {cfg.sample_rate} is not a multiple of frame_rate "
                             f"{cfg.frame_rate}")
        return cfg


Controls = dict  # name -> tensor (B, T, C): "amplitude", "harmonics", "noise", "f0", "voiced"


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's positive amplitude nonlinearity: 2 * sigmoid(x) ** ln(10) + 1e-7."""
    return EXP_SIGMOID_MAX * torch.sigmoid(x) ** EXP_SIGMOID_EXPONENT + EXP_SIGMOID_FLOOR


def upsample_frames(x: torch.Tensor, n_samples: int, hop: int, offset: int = 0) -> torch.Tensor:
    """Linear interpolation of frame values onto samples.

    x: (B, T, C) frame values, frame j at sample j * hop; returns (B, n_samples, C) for samples
    ``offset .. offset + n_samples - 1`` (positions beyond the last frame hold its value).
    """
    t = x.shape[1]
    pos = (torch.arange(n_samples, dtype=torch.float64) + offset) / hop
    pos = pos.clamp(0, t - 1)
    i0 = pos.floor().long().clamp(max=t - 1)
    i1 = (i0 + 1).clamp(max=t - 1)
    w = (pos - i0.to(torch.float64)).to(x.dtype)[None, :, None]
    return x[:, i0] * (1 - w) + x[:, i1] * w


def harmonic_synth(f0: torch.Tensor, amplitudes: torch.Tensor, n_samples: int, sample_rate: int,
                   hop: int, phase0: torch.Tensor | None = None, offset: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive harmonic oscillator bank.

    f0: (B, T) Hz per frame (must be > 0 everywhere: fill unvoiced gaps before);
    amplitudes: (B, T, K) linear amplitude of harmonic k+1 per frame (linearly interpolated
    between frames, held after the last one);
    phase0: (B,) phase in radians (float64) of the fundamental at the first sample (0 if None);
    offset: index of the first synthesised sample on the frame grid (a multiple of ``hop``).
    Returns (audio (B, n_samples) float32, phase (B,) float64 just after the last sample) so a
    following chunk continues without a discontinuity.

    The sines do not depend on the amplitudes, so each hop-long stretch between two frames is
    two small matrix products (sines × the amplitudes of the frames on either side), blended
    linearly: the same result as upsampling every harmonic's amplitude to the sample rate, at
    a fraction of the cost and memory in the backward pass.
    """
    if offset % hop:
        raise ValueError(f"harmonic_synth: offset {offset} is not a multiple of hop {hop}")
    b, t, k = amplitudes.shape
    n_frames = -(-n_samples // hop)  # frame intervals covering the samples
    total = n_frames * hop
    f0_s = upsample_frames(f0[..., None].to(torch.float64), total, hop, offset)[..., 0]
    omega = 2 * math.pi * f0_s / sample_rate  # (B, total) radians per sample
    if phase0 is None:
        phase0 = torch.zeros(b, dtype=torch.float64)
    cum = torch.cumsum(omega, dim=1)
    phase = phase0[:, None] + cum - omega  # phase at each sample (first sample = phase0)
    end_phase = torch.remainder(phase0 + cum[:, n_samples - 1], 2 * math.pi)
    phase = torch.remainder(phase, 2 * math.pi).to(amplitudes.dtype)
    sines = sine_multiples(phase.reshape(b, n_frames, hop), k)  # (K, B, J, hop)
    j = torch.arange(n_frames) + offset // hop
    a0 = amplitudes[:, j.clamp(max=t - 1)]  # (B, J, K)
    a1 = amplitudes[:, (j + 1).clamp(max=t - 1)]
    w = torch.arange(hop, dtype=amplitudes.dtype) / hop  # (hop,)
    audio = (torch.einsum("kbjh,bjk->bjh", sines, a0) * (1 - w)
             + torch.einsum("kbjh,bjk->bjh", sines, a1) * w)  # (B, J, hop)
    return audio.reshape(b, total)[:, :n_samples], end_phase


def sine_multiples(phase: torch.Tensor, k: int) -> torch.Tensor:
    """sin(m * phase) for m = 1..k, shape (k, *phase.shape), by the Chebyshev recurrence
    sin((m+1)x) = 2 cos(x) sin(mx) - sin((m-1)x) (one sin and one cos per sample instead of k
    sines; float32 error < 1e-4 for k = 64)."""
    out = torch.empty((k,) + tuple(phase.shape), dtype=phase.dtype)
    out[0] = torch.sin(phase)
    if k > 1:
        c = 2 * torch.cos(phase)
        out[1] = c * out[0]
        for m in range(2, k):
            torch.addcmul(-out[m - 2], c, out[m - 1], out=out[m])
    return out


def noise_synth(bands: torch.Tensor, n_samples: int, hop: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Filtered white noise.

    bands: (B, T, N) linear magnitudes of N bands spaced evenly from 0 Hz to Nyquist, frame j
    centred at sample j * hop (T must be n_samples // hop + 1); returns (B, n_samples).
    Uniform noise in [-1, 1) is shaped frame by frame in the STFT domain (n_fft = 4 * hop,
    Hann window) and resynthesised by overlap-add.
    """
    b = bands.shape[0]
    n_fft = 4 * hop
    n_gen = max(n_samples, n_fft)  # the STFT's reflect padding needs > n_fft / 2 samples
    window = torch.hann_window(n_fft, dtype=bands.dtype)
    noise = torch.rand(b, n_gen, generator=generator, dtype=bands.dtype) * 2 - 1
    spec = torch.stft(noise, n_fft, hop, window=window, center=True, return_complex=True)
    n_bins = spec.shape[1]
    gains = _interp_bins(bands, n_bins)
    frames = spec.shape[2]
    if gains.shape[1] != frames:  # pad/cut the control frames to the STFT's frame count
        gains = _fit_frames(gains, frames)
    spec = spec * gains.transpose(1, 2)
    return torch.istft(spec, n_fft, hop, window=window, center=True, length=n_gen)[:, :n_samples]


def _interp_bins(bands: torch.Tensor, n_bins: int) -> torch.Tensor:
    """(B, T, N) band magnitudes -> (B, T, n_bins) by linear interpolation over frequency."""
    b, t, n = bands.shape
    x = bands.reshape(b * t, 1, n)
    y = F.interpolate(x, size=n_bins, mode="linear", align_corners=True)
    return y.reshape(b, t, n_bins)


def _fit_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    """Cut or edge-pad (B, T', C) to (B, t, C)."""
    if x.shape[1] >= t:
        return x[:, :t]
    pad = x[:, -1:].expand(-1, t - x.shape[1], -1)
    return torch.cat([x, pad], dim=1)


class _ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, T) tensor (frame-local, unlike GroupNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _ResBlock(nn.Module):
    """LayerNorm -> Conv1d -> GELU -> Conv1d(1x1) with a residual connection (B, C, T)."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.norm = _ChannelNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.gelu(self.conv(self.norm(x))))


class ControlNet(nn.Module):
    """Frame network: (content (B,T,D), log-F0, voiced, loudness) -> raw control logits.

    Frame-local except for the conv context (``cfg.receptive_frames`` each side), so chunked
    inference with that much margin reproduces whole-signal inference.
    """

    def __init__(self, cfg: DdspConfig, n_out: int | None = None,
                 bias: torch.Tensor | None = None, head_scale: float = 1.0):
        super().__init__()
        self.cfg = cfg
        self.content_norm = nn.LayerNorm(cfg.content_dim)
        self.content_proj = nn.Linear(cfg.content_dim, cfg.hidden)
        self.cond_proj = nn.Linear(3, cfg.hidden)  # log-F0, voiced flag, scaled loudness
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(_ResBlock(cfg.hidden, cfg.kernel) for _ in range(cfg.layers))
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, n_out or 1 + cfg.n_harmonics + cfg.n_noise_bands)
        with torch.no_grad():
            if bias is None:  # harmonic-noise layout: amplitude, harmonics, noise
                self.head.bias[1 + cfg.n_harmonics:] = NOISE_BIAS
            else:
                self.head.bias.copy_(bias)
            self.head.weight.mul_(head_scale)

    def forward(self, content: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor,
                loudness_db: torch.Tensor) -> torch.Tensor:
        """content (B,T,D); f0 (B,T) Hz > 0; voiced (B,T) 0/1; loudness_db (B,T) dBFS ->
        (B, T, 1 + K + N) logits."""
        log_f0 = torch.log2(f0.clamp(min=1.0) / F0_REF_HZ)
        loud = (loudness_db.clamp(min=LOUDNESS_FLOOR_DB) - LOUDNESS_FLOOR_DB) / -LOUDNESS_FLOOR_DB
        cond = torch.stack([log_f0, voiced, loud], dim=-1)
        h = self.dropout(self.content_proj(self.content_norm(content))) + self.cond_proj(cond)
        h = h.transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        return self.head(self.out_norm(h.transpose(1, 2)))


class Decoder(nn.Module):
    """Interface of a swappable voice decoder (frames -> waveform).

    Subclasses implement ``controls`` (network, frame domain) and ``synthesize`` (signal
    domain, may be chunked with a carried state); ``forward`` chains them.
    """

    cfg: DdspConfig

    def controls(self, content: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor,
                 loudness_db: torch.Tensor) -> Controls:  # pragma: no cover - interface
        raise NotImplementedError

    def synthesize(self, controls: Controls, n_samples: int, state=None, offset: int = 0,
                   generator: torch.Generator | None = None):  # pragma: no cover - interface
        """Returns (harmonic (B, n), noise (B, n), new_state)."""
        raise NotImplementedError

    def forward(self, content: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor,
                loudness_db: torch.Tensor, n_samples: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,T,...) frames -> (B, n_samples) audio; n_samples defaults to (T - 1) * hop."""
        c = self.controls(content, f0, voiced, loudness_db)
        n = (f0.shape[1] - 1) * self.cfg.hop if n_samples is None else n_samples
        harm, noise, _ = self.synthesize(c, n, generator=generator)
        return harm + noise


class HarmonicNoiseDecoder(Decoder):
    """ControlNet + harmonic oscillator bank + filtered noise (DDSP harmonic-plus-noise)."""

    def __init__(self, cfg: DdspConfig = DdspConfig(decoder="harmonic-noise")):
        super().__init__()
        self.cfg = cfg
        self.net = ControlNet(cfg)

    def controls(self, content, f0, voiced, loudness_db) -> Controls:
        """Per-frame controls (B, T, ·): amplitude, harmonic amplitudes (Nyquist-masked,
        silenced when unvoiced), noise band magnitudes, f0, voiced."""
        cfg = self.cfg
        logits = self.net(content, f0, voiced, loudness_db)
        amp = exp_sigmoid(logits[..., :1])
        dist = exp_sigmoid(logits[..., 1:1 + cfg.n_harmonics])
        k = torch.arange(1, cfg.n_harmonics + 1, dtype=f0.dtype)
        below = (f0[..., None] * k < cfg.sample_rate / 2).to(dist.dtype)
        dist = dist * below
        dist = dist / dist.sum(-1, keepdim=True).clamp(min=EXP_SIGMOID_FLOOR)
        harmonics = amp * dist * voiced[..., None]
        noise = exp_sigmoid(logits[..., 1 + cfg.n_harmonics:])
        return {"harmonics": harmonics, "noise": noise, "f0": f0, "voiced": voiced}

    def synthesize(self, controls: Controls, n_samples: int, state=None, offset: int = 0,
                   generator: torch.Generator | None = None):
        """Audio for samples [offset, offset + n_samples) of the controls' grid (control frame
        0 at sample 0; ``offset`` a multiple of hop); state = phase (B,) float64 carried from
        the previous chunk.  Returns (harmonic (B, n), noise (B, n), end phase (B,))."""
        cfg = self.cfg
        harm, phase = harmonic_synth(controls["f0"], controls["harmonics"], n_samples,
                                     cfg.sample_rate, cfg.hop, phase0=state, offset=offset)
        bands = controls["noise"]
        if offset:
            bands = bands[:, offset // cfg.hop:]
        noise = noise_synth(_fit_frames(bands, n_samples // cfg.hop + 1), n_samples, cfg.hop,
                            generator=generator)
        return harm, noise, phase


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def envelope_at(envelope: torch.Tensor, freqs: torch.Tensor, max_hz: float) -> torch.Tensor:
    """Sample a log-amplitude envelope at given frequencies.

    envelope: (B, T, M) values at M points evenly spaced on the mel scale from 0 Hz to
    ``max_hz``; freqs: (B, T, K) Hz.  Returns (B, T, K) by linear interpolation in mel (held
    constant beyond the last point).
    """
    m = envelope.shape[-1]
    pos = hz_to_mel(freqs.clamp(min=0.0)) / float(hz_to_mel(torch.tensor(max_hz))) * (m - 1)
    pos = pos.clamp(0, m - 1).to(envelope.dtype)
    i0 = pos.floor().long().clamp(max=m - 1)
    i1 = (i0 + 1).clamp(max=m - 1)
    w = pos - i0.to(envelope.dtype)
    return envelope.gather(-1, i0) * (1 - w) + envelope.gather(-1, i1) * w


class HarmonicEnvelopeDecoder(Decoder):
    """Harmonic-plus-noise synthesiser driven by a spectral envelope and the loudness.

    Differs from :class:`HarmonicNoiseDecoder` in the parameterisation of the harmonics (the
    synthesiser is the same):

    * The network predicts a log-amplitude *spectral envelope* on a mel-spaced frequency grid
      (``n_envelope`` points up to ``envelope_max_hz``); harmonic k's amplitude is that envelope
      sampled at k·F0.  Timbre (formants) is then a smooth function of absolute frequency that
      does not have to be re-learned for every pitch, as per-harmonic weights do.
    * Levels are anchored to the loudness input (RMS in dBFS): the harmonic weights are
      normalised to unit power and scaled to the frame's RMS times exp(gain), and the noise
      bands are relative to the same RMS.  At initialisation the output already has the
      target's level and a voice-like -12 dB/octave tilt, so nothing has to be learned through
      a saturating amplitude nonlinearity.
    """

    def __init__(self, cfg: DdspConfig = DdspConfig()):
        super().__init__()
        self.cfg = cfg
        n_out = 1 + cfg.n_envelope + cfg.n_noise_bands
        bias = torch.zeros(n_out)
        mel_max = float(hz_to_mel(torch.tensor(cfg.envelope_max_hz)))
        mels = torch.linspace(0, mel_max, cfg.n_envelope)
        hz = 700.0 * (10 ** (mels / 2595.0) - 1)
        bias[1:1 + cfg.n_envelope] = ENVELOPE_TILT * torch.log2(
            hz.clamp(min=ENVELOPE_TILT_HZ) / ENVELOPE_TILT_HZ)
        bias[1 + cfg.n_envelope:] = NOISE_LOG_BIAS
        self.net = ControlNet(cfg, n_out=n_out, bias=bias, head_scale=ENVELOPE_HEAD_SCALE)

    def controls(self, content, f0, voiced, loudness_db) -> Controls:
        """Per-frame controls (B, T, ·): harmonic amplitudes (Nyquist-masked, silenced when
        unvoiced), noise band magnitudes, f0, voiced; also the envelope (log amplitude)."""
        cfg = self.cfg
        logits = self.net(content, f0, voiced, loudness_db)
        gain = logits[..., :1].clamp(max=GAIN_LOG_MAX)
        env = logits[..., 1:1 + cfg.n_envelope]
        k = torch.arange(1, cfg.n_harmonics + 1, dtype=f0.dtype)
        freqs = f0[..., None] * k
        log_w = envelope_at(env, freqs, cfg.envelope_max_hz)
        log_w = log_w.masked_fill(freqs >= cfg.sample_rate / 2, -1e4)
        log_w = log_w - 0.5 * torch.logsumexp(2 * log_w, dim=-1, keepdim=True)  # unit power
        rms = 10.0 ** (loudness_db[..., None] / 20.0)
        harmonics = math.sqrt(2.0) * rms * torch.exp(log_w + gain) * voiced[..., None]
        noise = NOISE_RMS_SCALE * rms * torch.exp(
            logits[..., 1 + cfg.n_envelope:].clamp(max=GAIN_LOG_MAX))
        return {"harmonics": harmonics, "noise": noise, "f0": f0, "voiced": voiced,
                "envelope": env}

    synthesize = HarmonicNoiseDecoder.synthesize


DECODERS = {"harmonic-noise": HarmonicNoiseDecoder, "harmonic-envelope": HarmonicEnvelopeDecoder}


def build_decoder(cfg: DdspConfig) -> Decoder:
    """The decoder named by ``cfg.decoder`` (ValueError if unknown)."""
    try:
        return DECODERS[cfg.decoder](cfg)
    except KeyError:
        raise ValueError(f"unknown decoder {cfg.decoder!r} (known: {sorted(DECODERS)})") from None


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                               fft_sizes: tuple[int, ...] = (2048, 512, 128),
                               overlap: int = 4) -> torch.Tensor:
    """Sum over FFT sizes of mean |S - S'| + mean |log S - log S'| (magnitudes).

    pred, target: (B, n) audio; hop = n_fft / overlap, Hann windows.
    """
    total = pred.new_zeros(())
    for n_fft in fft_sizes:
        window = torch.hann_window(n_fft, dtype=pred.dtype)
        s_p = torch.stft(pred, n_fft, n_fft // overlap, window=window, return_complex=True).abs()
        s_t = torch.stft(target, n_fft, n_fft // overlap, window=window,
                         return_complex=True).abs()
        total = total + (s_p - s_t).abs().mean()
        total = total + (torch.log(s_p + LOG_EPS) - torch.log(s_t + LOG_EPS)).abs().mean()
    return total
