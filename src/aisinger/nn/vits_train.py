"""Training pieces of the VITS-family voice model: posterior encoder, discriminators, losses.

Pure ``torch.nn`` code.

* :class:`PosteriorEncoder` (``enc_q`` in the community layout): linear spectrogram -> WaveNet
  (conditioned on the speaker) -> mean / log-std -> sampled latent z.
* :class:`MultiPeriodDiscriminator` (``discriminators.N`` in ``D_*.pth``): one multi-scale
  discriminator on the raw waveform (grouped strided convs) plus period discriminators that
  fold the waveform into (T / p, p) images, p in 2, 3, 5, 7, 11.  ``width`` scales the channel
  counts (1 = the community size).
* losses: multi-band log-mel L1 (:class:`MelLoss`), KL between posterior and prior,
  least-squares adversarial losses, feature matching, and the F0-predictor MSE.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from aisinger.nn.fcpe import mel_filterbank
from aisinger.nn.vits import WaveNet

__all__ = ["PosteriorEncoder", "MultiPeriodDiscriminator", "MelLoss", "kl_loss",
           "generator_adversarial_loss", "discriminator_loss", "feature_matching_loss",
           "random_segments"]

LRELU = 0.1
PERIODS = (2, 3, 5, 7, 11)


class PosteriorEncoder(nn.Module):
    """Linear spectrogram (B, spec, T) -> z (B, inter, T), mean, log-std."""

    def __init__(self, spec_channels: int, inter: int, hidden: int, gin_channels: int,
                 kernel: int = 5, layers: int = 16):
        super().__init__()
        self.inter = inter
        self.pre = nn.Conv1d(spec_channels, hidden, 1)
        self.enc = WaveNet(hidden, kernel, 1, layers, gin_channels)
        self.proj = nn.Conv1d(hidden, 2 * inter, 1)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None,
                generator: torch.Generator | None = None):
        x = self.enc(self.pre(spec) * mask, mask, g)
        stats = self.proj(x) * mask
        m, logs = stats[:, :self.inter], stats[:, self.inter:]
        noise = torch.randn(m.shape, generator=generator).to(m.device)
        return (m + noise * torch.exp(logs)) * mask, m, logs


def _scaled(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


class ScaleDiscriminator(nn.Module):
    """Grouped strided 1-D convs on the raw waveform."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        ch = [_scaled(c, width) for c in (16, 64, 256, 1024, 1024, 1024)]
        groups = [1, 4, 16, 64, 256, 1]
        spec = [(1, ch[0], 15, 1, 7, 1)]
        for i in range(1, 5):
            g = max(1, min(groups[i], ch[i - 1], ch[i]))
            while ch[i - 1] % g or ch[i] % g:
                g //= 2
            spec.append((ch[i - 1], ch[i], 41, 4, 20, g))
        spec.append((ch[4], ch[5], 5, 1, 2, 1))
        self.convs = nn.ModuleList([nn.Conv1d(a, b, k, s, padding=p, groups=g)
                                    for a, b, k, s, p, g in spec])
        self.conv_post = nn.Conv1d(ch[5], 1, 3, 1, padding=1)

    def forward(self, y: torch.Tensor):
        return _conv_stack(self.convs, self.conv_post, y)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, y: torch.Tensor):
    """Leaky-ReLU conv stack + output conv: (flattened logits, feature maps of every layer)."""
    fmap = []
    for conv in convs:
        y = F.leaky_relu(conv(y), LRELU)
        fmap.append(y)
    y = post(y)
    fmap.append(y)
    return y.flatten(1), fmap


class PeriodDiscriminator(nn.Module):
    """2-D convs over the waveform folded by ``period``."""

    def __init__(self, period: int, width: float = 1.0):
        super().__init__()
        self.period = period
        ch = [1] + [_scaled(c, width) for c in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            [nn.Conv2d(ch[i], ch[i + 1], (5, 1), (3, 1), padding=(2, 0)) for i in range(4)]
            + [nn.Conv2d(ch[4], ch[5], (5, 1), 1, padding=(2, 0))])
        self.conv_post = nn.Conv2d(ch[5], 1, (3, 1), 1, padding=(1, 0))

    def forward(self, y: torch.Tensor):
        b, c, t = y.shape
        if t % self.period:
            pad = self.period - t % self.period
            y = F.pad(y, (0, pad), "reflect" if pad < t else "constant")
            t = t + pad
        y = y.view(b, c, t // self.period, self.period)
        return _conv_stack(self.convs, self.conv_post, y)


class MultiPeriodDiscriminator(nn.Module):
    """Scale discriminator + period discriminators (community ``D_*.pth`` layout)."""

    def __init__(self, width: float = 1.0, periods: tuple = PERIODS):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(width)] + [PeriodDiscriminator(p, width) for p in periods])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor):
        out = []
        for d in self.discriminators:
            r, fr = d(y)
            g, fg = d(y_hat)
            out.append((r, g, fr, fg))
        return out


class MelLoss(nn.Module):
    """L1 between natural-log mel spectrograms (Slaney mels, Hann window, centred frames)."""

    def __init__(self, sr: int, n_fft: int, hop: int, n_mels: int = 80, fmin: float = 0.0,
                 fmax: float | None = None):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("basis", mel_filterbank(sr, n_fft, n_mels, fmin, fmax or sr / 2),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def mel(self, y: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop) // 2
        y = F.pad(y[:, None], (pad, pad), mode="reflect")[:, 0]
        s = torch.stft(y, self.n_fft, self.hop, window=self.window, center=False,
                       return_complex=True)
        mag = torch.sqrt(s.real ** 2 + s.imag ** 2 + 1e-9)
        return torch.log(torch.clamp(self.basis @ mag, min=1e-5))

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.mel(y_hat), self.mel(y))


def kl_loss(z_p, logs_q, m_p, logs_p, mask) -> torch.Tensor:
    """KL(posterior || prior) per latent element, as VITS computes it on the flowed z_p."""
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


def generator_adversarial_loss(outs) -> torch.Tensor:
    return sum(torch.mean((1.0 - g) ** 2) for _r, g, _fr, _fg in outs)


def discriminator_loss(outs) -> torch.Tensor:
    return sum(torch.mean((1.0 - r) ** 2) + torch.mean(g ** 2) for r, g, _fr, _fg in outs)


def feature_matching_loss(outs) -> torch.Tensor:
    loss = 0.0
    for _r, _g, fr, fg in outs:
        for a, b in zip(fr, fg):
            loss = loss + torch.mean(torch.abs(a.detach() - b))
    return 2.0 * loss


def random_segments(t: int, frames: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Start frames (B,) of random windows of ``frames`` within ``t`` frames."""
    hi = max(1, t - frames + 1)
    return torch.randint(0, hi, (batch,), generator=generator)
