"""DistillMOS: a small speech-naturalness (MOS) predictor, as an nn module.

Architecture of DistillMOS v7 (Stahl & Gamper, "Distillation and pruning for scalable
self-supervised representation-based speech quality assessment", ICASSP 2025; MIT licence),
written here from its description so that no package importing ``torchaudio`` is needed:

* input: 16 kHz mono, peak-normalised per segment; segments of :data:`SEGMENT` samples
  (7.68 s; shorter input is zero-padded, longer input is covered by evenly spaced overlapping
  segments at most :data:`MAX_HOP` apart, whose scores are averaged);
* features: STFT (Hann 320, hop 160, reflect padding of 80 each side, no centring), complex
  bins power-law compressed (``|X|^0.3 * X/|X|``) -> 2 channels (real, imag) x 161 bins;
* a 6-layer 3x3 CNN (channels 64, 64, 128, 256, 256, 256; frequency stride 2 from layer 2,
  time stride 2 in the last layer, LeakyReLU 0.1) -> 256 x 4 = 1024 features per 20 ms;
* two BatchNorms, a linear projection to 200, sinusoidal positions (384 positions, the
  frequency base uses ``2 * 384``), a 7-layer post-norm transformer encoder (8 heads, FFN 400,
  ReLU), a BatchNorm, attention pooling with a 200-400-1 scorer and a linear head, a sigmoid,
  and ``1 + 4 * p`` -> MOS in [1, 5].

Parameter names follow the published state dict so its weights load unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
SEGMENT = 122880
"""Samples per scored segment (7.68 s at 16 kHz)."""
MAX_HOP = 16000
"""Longest distance between successive segment starts (samples)."""
HOP, WIN = 160, 320
N_BINS = WIN // 2 + 1
CNN_LAYERS = 6
CNN_CHANNELS = 256
D_MODEL = 200
N_HEADS = 8
N_LAYERS = 7
MAX_POSITIONS = 384


def compressed_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``(batch, samples)`` -> power-compressed complex STFT ``(batch, 2, 161, frames)``."""
    pad = (WIN - HOP) // 2
    x = F.pad(x, (pad, pad), mode="reflect")
    spec = torch.stft(x, n_fft=WIN, hop_length=HOP, win_length=WIN, center=False,
                      window=torch.hann_window(WIN, device=x.device), return_complex=True)
    ri = torch.view_as_real(spec)  # (B, F, T, 2)
    mag = ri.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    return (mag.pow(0.3) * ri / mag).permute(0, 3, 1, 2)


class _SpectrumCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, f = 2, N_BINS
        for i in range(CNN_LAYERS):
            c_out = min(64 * 2 ** max(i - 1, 0), CNN_CHANNELS)
            f_stride = 2 if i >= 1 else 1
            t_stride = 2 if i == CNN_LAYERS - 1 else 1
            layers += [nn.Conv2d(c_in, c_out, 3, stride=(f_stride, t_stride), padding=(0, 1)),
                       nn.LeakyReLU(0.1)]
            f = (f - 3) // f_stride + 1
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        self.out_bins = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cnn(compressed_spectrum(x))  # (B, C, F', T')
        return h.flatten(1, 2)  # (B, C*F', T')


class _Positions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        pos = torch.arange(MAX_POSITIONS).unsqueeze(1)
        freq = torch.exp(torch.arange(0, D_MODEL, 2) * (-math.log(2 * MAX_POSITIONS) / D_MODEL))
        pe = torch.zeros(1, MAX_POSITIONS, D_MODEL)
        pe[0, :, 0::2] = torch.sin(pos * freq)
        pe[0, :, 1::2] = torch.cos(pos * freq)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, :x.shape[1]]


class _Encoder(nn.Module):
    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_in)
        self.position_encoding = _Positions()
        self.linear_proj = nn.Linear(d_in, D_MODEL)
        layer = nn.TransformerEncoderLayer(D_MODEL, N_HEADS, dim_feedforward=2 * D_MODEL,
                                           dropout=0.0, batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, N_LAYERS,
                                                         enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.transformer_encoder(self.position_encoding(self.linear_proj(x)))


class _AttentionPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(D_MODEL, 2 * D_MODEL)
        self.linear2 = nn.Linear(2 * D_MODEL, 1)
        self.linear3 = nn.Linear(D_MODEL, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, 1)
        w = torch.softmax(self.linear2(F.relu(self.linear1(x))).transpose(1, 2), dim=2)
        return self.linear3(torch.bmm(w, x).squeeze(1))


class _Head(nn.Module):
    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.norm_input = nn.BatchNorm1d(d_in)
        self.transformer = _Encoder(d_in)
        self.norm_trans = nn.BatchNorm1d(D_MODEL)
        self.pool = _AttentionPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_input(x.transpose(1, 2)).transpose(1, 2)
        x = self.transformer(x)
        x = self.norm_trans(x.transpose(1, 2)).transpose(1, 2)
        return torch.sigmoid(self.pool(x))


class DistillMOS(nn.Module):
    """MOS predictor; ``forward(wave16k (batch, samples)) -> (batch,)`` in [1, 5]."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = _SpectrumCNN()
        self.transformer_pool_attn = _Head(CNN_CHANNELS * self.cnn.out_bins)

    def score_segments(self, segments: torch.Tensor) -> torch.Tensor:
        """``(n, SEGMENT)`` -> per-segment MOS ``(n,)``."""
        x = segments / (segments.abs().amax(dim=1, keepdim=True) + 1e-8)
        feats = self.cnn(x).transpose(1, 2)  # (n, T, 1024)
        return 1.0 + 4.0 * self.transformer_pool_attn(feats).squeeze(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        over = wave.shape[1] - SEGMENT
        if over < 0:
            wave, over = F.pad(wave, (0, -over)), 0
        n = int(math.ceil(over / MAX_HOP)) + 1
        starts = [int(c * over) for c in np.linspace(0.0, 1.0, n)]
        segs = torch.cat([wave[:, s:s + SEGMENT] for s in starts], dim=0)  # (n*B, SEGMENT)
        return self.score_segments(segs).reshape(n, -1).mean(dim=0)
