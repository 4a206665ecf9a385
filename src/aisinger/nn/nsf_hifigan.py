"""NSF-HiFiGAN: a HiFi-GAN waveform generator driven by a harmonic source made from F0.

Pure ``torch.nn`` code.  The decoder of the VITS-family singing-voice models (So-VITS-SVC 4.x,
RVC): latent frames -> ``conv_pre`` (+ speaker condition ``cond``) -> for each upsampling
stage: leaky ReLU, transposed conv, plus the harmonic source brought to that stage's rate by a
strided conv (``noise_convs``), then the mean of the multi-receptive-field residual blocks
(``resblocks``) -> leaky ReLU, ``conv_post``, tanh.

The harmonic source (:func:`harmonic_excitation`) follows the neural source-filter idea: the
frame F0 is held over each hop, its phase is the running sum of F0 / sr (float64, wrapped), the
sines of the first ``harmonics`` multiples are mixed by a linear layer + tanh.  Voiced samples
carry the sines plus a little noise, unvoiced samples noise only.  All randomness (initial
phases of the overtones, additive noise) is drawn from an explicit ``torch.Generator``; with
``generator=None`` there is none at all, so outputs can be compared exactly.

Parameter names follow the community checkpoints' state-dict layout so that their weights
load by key and shape (weight normalisation is folded into plain weights on import).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NsfConfig", "NsfHifigan", "harmonic_excitation", "upper_harmonics", "ResBlock1",
           "ResBlock2", "LRELU_SLOPE"]

LRELU_SLOPE = 0.1
SINE_AMP = 0.1  # amplitude of each source sine
VOICED_NOISE_STD = 0.003  # additive noise on voiced samples
UNVOICED_NOISE_STD = SINE_AMP / 3  # noise-only excitation of unvoiced samples


@dataclass(frozen=True)
class NsfConfig:
    """Shape of an :class:`NsfHifigan`.

    in_channels: latent channels; upsample_*: per stage rate / kernel and the channels before
    the first stage (halved at every stage); resblock: "1" (3 dilated + 3 plain convs) or "2"
    (2 dilated convs); sample_rate: output rate; harmonics: sines in the source (0 = a plain
    HiFi-GAN without source, as RVC's no-F0 models); gin_channels: speaker condition width
    (0 = none); post_bias: ``conv_post`` has a bias.
    """

    in_channels: int = 192
    upsample_initial_channel: int = 512
    upsample_rates: tuple = (8, 8, 2, 2, 2)
    upsample_kernel_sizes: tuple = (16, 16, 4, 4, 4)
    resblock: str = "1"
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    sample_rate: int = 44100
    harmonics: int = 9
    gin_channels: int = 256
    post_bias: bool = True

    @property
    def hop(self) -> int:
        return int(math.prod(self.upsample_rates))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NsfConfig:
        d = dict(d)
        for k in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            d[k] = tuple(int(v) for v in d[k])
        d["resblock_dilation_sizes"] = tuple(tuple(int(v) for v in r)
                                             for r in d["resblock_dilation_sizes"])
        return cls(**d)


def _same(kernel: int, dilation: int = 1) -> int:
    return (kernel - 1) * dilation // 2


# Fast path: on CPU, time-major ("channels last") 2-D convolutions over (B, C, 1, T) run the
# narrow late stages of the decoder markedly faster than Conv1d over (B, C, T) (bench/compat.py).
# The modules stay nn.Conv1d / nn.ConvTranspose1d (same parameters and state dict); these
# helpers apply them to 4-D inputs.

def _w4(m: nn.Module) -> torch.Tensor:
    w = m.weight
    if torch.is_grad_enabled() and w.requires_grad:
        return w.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    key = (w.data_ptr(), w._version, w.dtype, w.device)
    cached = getattr(m, "_w4_cache", None)
    if cached is None or cached[0] != key:
        cached = (key, w.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last))
        object.__setattr__(m, "_w4_cache", cached)
    return cached[1]


def conv(m: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``m(x)`` for (B, C, T) inputs; the equivalent 2-D convolution for (B, C, 1, T)."""
    if x.ndim == 3:
        return m(x)
    return F.conv2d(x, _w4(m), m.bias, stride=(1, m.stride[0]), padding=(0, m.padding[0]),
                    dilation=(1, m.dilation[0]), groups=m.groups)


def conv_t(m: nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """``m(x)`` for (B, C, T); the equivalent 2-D transposed convolution for (B, C, 1, T)."""
    if x.ndim == 3:
        return m(x)
    return F.conv_transpose2d(x, _w4(m), m.bias, stride=(1, m.stride[0]),
                              padding=(0, m.padding[0]),
                              output_padding=(0, m.output_padding[0]), groups=m.groups,
                              dilation=(1, m.dilation[0]))


class ResBlock1(nn.Module):
    """Three (dilated conv, plain conv) pairs with leaky ReLUs and residual sums."""

    def __init__(self, ch: int, kernel: int, dilations: tuple):
        super().__init__()
        self.convs1 = nn.ModuleList([nn.Conv1d(ch, ch, kernel, dilation=d, padding=_same(kernel, d))
                                     for d in dilations])
        self.convs2 = nn.ModuleList([nn.Conv1d(ch, ch, kernel, padding=_same(kernel))
                                     for _ in dilations])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = not torch.is_grad_enabled()  # inference: fewer large temporaries
        for i, (a, b) in enumerate(zip(self.convs1, self.convs2)):
            y = conv(b, F.leaky_relu(conv(a, F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE,
                                     inplace=inplace))
            x = x.add_(y) if inplace and i > 0 else x + y  # never modify the caller's x
        return x


class ResBlock2(nn.Module):
    """Two dilated convs with leaky ReLUs and residual sums."""

    def __init__(self, ch: int, kernel: int, dilations: tuple):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(ch, ch, kernel, dilation=d, padding=_same(kernel, d))
                                    for d in dilations[:2]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = not torch.is_grad_enabled()
        for i, c in enumerate(self.convs):
            y = conv(c, F.leaky_relu(x, LRELU_SLOPE))
            x = x.add_(y) if inplace and i > 0 else x + y
        return x


def harmonic_excitation(f0: torch.Tensor, hop: int, sample_rate: int, harmonics: int,
                        generator: torch.Generator | None = None,
                        phase_offset: torch.Tensor | None = None,
                        init_phase: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None) -> torch.Tensor:
    """Sines of the first ``harmonics`` multiples of a frame-rate F0, at the sample rate.

    f0: (B, T) Hz (0 = unvoiced); returns (B, T*hop, harmonics) float32.  Sample n of frame t
    has phase ``offset + sum_{m<=n} f0[m] / sr`` (float64, wrapped to [0, 1)), so chunks of
    one signal line up when the caller passes the phase reached so far as ``phase_offset``
    ((B,) cycles).  ``init_phase`` ((B, harmonics) cycles, fundamental 0) sets the overtones'
    initial phases; without it a ``generator`` draws them at random.  With a ``generator`` the
    voiced/unvoiced noise is added; without one the excitation is deterministic.  ``noise``
    ((B, T*hop, harmonics) standard normal) is used instead of drawing it from the generator
    (chunked synthesis passes position-seeded noise, so chunks equal the whole signal).
    """
    b, t = f0.shape
    f, phase = _source_phase(f0, hop, sample_rate, phase_offset)
    mult = torch.arange(1, harmonics + 1, dtype=torch.float64, device=f0.device)
    ph = torch.remainder(phase[:, :, None] * mult, 1.0)
    if init_phase is None and generator is not None:
        init_phase = torch.rand(b, harmonics, generator=generator, dtype=torch.float64)
        init_phase[:, 0] = 0.0
    if init_phase is not None:
        ph = ph + init_phase.to(device=f0.device, dtype=torch.float64)[:, None, :]
    sines = torch.sin(2.0 * math.pi * ph).to(torch.float32) * SINE_AMP
    uv = (f > 0).to(torch.float32)[:, :, None]
    out = sines * uv
    if noise is not None or generator is not None:
        amp = uv * VOICED_NOISE_STD + (1.0 - uv) * UNVOICED_NOISE_STD
        if noise is None:
            noise = torch.randn(out.shape, generator=generator)
        out = out + amp * noise.to(device=out.device, dtype=out.dtype)
    return out


def _source_phase(f0: torch.Tensor, hop: int, sample_rate: int,
                  phase_offset: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(F0 per sample (B, N) float64, fundamental phase (B, N) in cycles, wrapped to [0, 1))
    of frame-rate ``f0`` (B, T) held over each hop; see :func:`harmonic_excitation`."""
    f = f0.to(torch.float64).repeat_interleave(hop, dim=1)  # (B, N) nearest upsampling
    phase = torch.cumsum(f / sample_rate, dim=1)
    if phase_offset is not None:
        phase = phase + phase_offset.to(torch.float64)[:, None]
    return f, torch.remainder(phase, 1.0)


def upper_harmonics(f0: torch.Tensor, hop: int, sample_rate: int, first: int, max_hz: float,
                    phase_offset: torch.Tensor | None = None) -> torch.Tensor:
    """The sum of the harmonics ``first + 1 .. K`` of a frame-rate F0, every one at amplitude
    ``SINE_AMP`` and in phase with the fundamental, K = floor(max_hz / F0) per sample (none
    where K <= first or F0 = 0): the part of a band-limited pulse train above the
    ``first`` explicit sines of :func:`harmonic_excitation` (same phase, so it continues them).

    Closed form (no sine per harmonic): sum_{k=a..K} sin(k x) = (cos((a - 1/2) x) -
    cos((K + 1/2) x)) / (2 sin(x / 2)), a = first + 1.  f0: (B, T) Hz; returns (B, T * hop)
    float32.
    """
    f, phase = _source_phase(f0, hop, sample_rate, phase_offset)
    x = 2.0 * math.pi * phase
    voiced = f > 0
    k = torch.where(voiced, torch.floor(max_hz / f.clamp_min(1e-3)), torch.zeros_like(f))
    k = torch.maximum(k, torch.full_like(k, float(first)))
    half = torch.sin(x / 2)
    small = half.abs() < 1e-9  # x = 0 (mod 2 pi): every sine is 0
    upper = torch.where(small, torch.zeros_like(x),
                        (torch.cos((first + 0.5) * x) - torch.cos((k + 0.5) * x)) /
                        (2 * torch.where(small, torch.ones_like(half), half)))
    return (upper * (voiced & (k > first)) * SINE_AMP).to(torch.float32)


class SourceModule(nn.Module):
    """Mixes the source sines into one excitation signal (linear layer + tanh)."""

    def __init__(self, harmonics: int):
        super().__init__()
        self.l_linear = nn.Linear(harmonics, 1)

    def forward(self, sines: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.l_linear(sines))  # (B, N, 1)


class NsfHifigan(nn.Module):
    """The NSF-HiFiGAN generator (see the module docstring)."""

    def __init__(self, cfg: NsfConfig, channels_last: bool = True):
        super().__init__()
        self.cfg = cfg
        self.channels_last = channels_last  # the 4-D fast path (see conv()), same results
        c0 = cfg.upsample_initial_channel
        rates = list(cfg.upsample_rates)
        if cfg.harmonics > 0:
            self.m_source = SourceModule(cfg.harmonics)
            self.noise_convs = nn.ModuleList()
        self.conv_pre = nn.Conv1d(cfg.in_channels, c0, 7, padding=3)
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(rates, cfg.upsample_kernel_sizes)):
            c_in, c_out = c0 // 2 ** i, c0 // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2))
            if cfg.harmonics > 0:
                rest = int(math.prod(rates[i + 1:]))
                if rest > 1:  # bring the sample-rate source down to this stage's rate
                    self.noise_convs.append(nn.Conv1d(1, c_out, rest * 2, stride=rest,
                                                      padding=rest // 2))
                else:
                    self.noise_convs.append(nn.Conv1d(1, c_out, 1))
        block = ResBlock1 if cfg.resblock == "1" else ResBlock2
        self.resblocks = nn.ModuleList()
        for i in range(len(rates)):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, tuple(d)))
        self.conv_post = nn.Conv1d(c0 // 2 ** len(rates), 1, 7, padding=3, bias=cfg.post_bias)
        if cfg.gin_channels > 0:
            self.cond = nn.Conv1d(cfg.gin_channels, c0, 1)

    def source(self, f0: torch.Tensor, generator: torch.Generator | None = None,
               phase_offset: torch.Tensor | None = None,
               init_phase: torch.Tensor | None = None) -> torch.Tensor:
        """The mixed harmonic source for frame F0 (B, T): (B, 1, T*hop)."""
        sines = harmonic_excitation(f0, self.cfg.hop, self.cfg.sample_rate, self.cfg.harmonics,
                                    generator=generator, phase_offset=phase_offset,
                                    init_phase=init_phase)
        return self.m_source(sines.to(self.conv_pre.weight.dtype)).transpose(1, 2)

    def forward(self, x: torch.Tensor, f0: torch.Tensor | None = None,
                g: torch.Tensor | None = None, generator: torch.Generator | None = None,
                source: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, in_channels, T) latents; f0: (B, T) Hz (needed unless ``source`` is given or
        the model has no source); g: (B, gin, 1) speaker condition.  Returns (B, 1, T*hop)."""
        har = None
        if self.cfg.harmonics > 0:
            har = source if source is not None else self.source(f0, generator)
        x = self.conv_pre(x)
        if g is not None and self.cfg.gin_channels > 0:
            x = x + self.cond(g)
        fast = self.channels_last and x.device.type == "cpu"
        if fast:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            if har is not None:
                har = har.unsqueeze(2)
        nk = len(self.cfg.resblock_kernel_sizes)
        inplace = not torch.is_grad_enabled()
        for i, up in enumerate(self.ups):
            x = conv_t(up, F.leaky_relu(x, LRELU_SLOPE, inplace=inplace and i > 0))
            if har is not None:
                x = x.add_(conv(self.noise_convs[i], har)) if inplace else \
                    x + conv(self.noise_convs[i], har)
            acc = self.resblocks[i * nk](x)
            for j in range(1, nk):
                acc = acc.add_(self.resblocks[i * nk + j](x)) if inplace else \
                    acc + self.resblocks[i * nk + j](x)
            x = acc.div_(nk) if inplace else acc / nk
        x = conv(self.conv_post, F.leaky_relu(x, inplace=inplace))
        if fast:
            x = x[:, :, 0].contiguous()
        return torch.tanh(x)
