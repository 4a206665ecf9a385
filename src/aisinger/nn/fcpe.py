"""FCPE pitch estimator (torchfcpe 0.0.4 ``fcpe_c_v001`` checkpoint), written for aisinger.

FCPE ("Fast Context-based Pitch Estimation", CNChTu et al., MIT) maps a log-mel spectrogram
(16 kHz, 128 mels, n_fft 1024, hop 160) to 360 sigmoid activations per frame, one per
pitch bin spaced evenly in cents between 32.70 Hz and 1975.5 Hz.  The released checkpoint is
the "conv only" variant of the naive Conformer: an input stack (conv, group norm, leaky ReLU,
conv), six residual Conformer convolution modules (layer norm, pointwise conv + GLU, depthwise
conv k=31, SiLU, pointwise conv), a final layer norm and a weight-normalised linear output.

This module holds only the network, the mel front end and the decoder (torch + math).
Weight loading from the checkpoint dict is :func:`load_fcpe`; chunked inference on long
signals lives in :mod:`aisinger.features.pitch`.

Chunking note: the input stack's ``GroupNorm`` normalises each group over *all* frames of the
input, so outputs depend (weakly) on the whole signal.  :meth:`FCPE.forward` therefore accepts
precomputed group statistics (:meth:`FCPE.group_stats`), which lets a caller run any window of a
long signal and get exactly what the full-length pass would give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 16000
"""Model input sample rate in Hz."""
N_FFT = 1024
"""STFT size (and Hann window length) in samples at 16 kHz."""
HOP = 160
"""STFT hop in samples at 16 kHz (10 ms)."""
N_MELS = 128
"""Mel bands."""
MEL_FMIN = 0.0
MEL_FMAX = 8000.0
"""Mel filter bank range in Hz."""
LOG_CLIP = 1e-5
"""Magnitudes are clamped to this before the natural log."""
MAG_EPS = 1e-9
"""Added to the power before the square root (as in the reference front end)."""
N_BINS = 360
"""Output pitch bins."""
CENT_REF_HZ = 10.0
"""Cents are measured relative to 10 Hz: ``cents = 1200 * log2(f / 10)``."""
LOCAL_HALF_WIDTH = 4
"""The local-argmax decoder averages the ``2 * 4 + 1`` bins around the peak."""

HIDDEN = 512
N_LAYERS = 6
GROUPS = 4
"""GroupNorm groups in the input stack."""
KERNEL = 31
"""Depthwise convolution kernel of each Conformer conv module."""
EXPANSION = 2
"""Inner width of the conv modules is ``EXPANSION * HIDDEN``."""
NORM_EPS = 1e-5
"""Epsilon of the layer norms and the group norm (PyTorch defaults)."""
RECEPTIVE_HALF_WIDTH = 2 * 1 + N_LAYERS * (KERNEL // 2)
"""Frames of context each side that influence one output frame (two k=3 convs + six k=31)."""


# --------------------------------------------------------------------------------------------
# Mel front end
# --------------------------------------------------------------------------------------------

_SLANEY_F_SP = 200.0 / 3.0
"""Slaney mel scale: Hz per mel below the break frequency."""
_SLANEY_BREAK_HZ = 1000.0
"""Slaney mel scale: linear below, logarithmic above this frequency."""
_SLANEY_LOGSTEP = math.log(6.4) / 27.0
"""Slaney mel scale: log-frequency step per mel above the break."""


def hz_to_mel_slaney(f: torch.Tensor) -> torch.Tensor:
    """Hz → mel on the Slaney (Auditory Toolbox) scale, elementwise."""
    f = torch.as_tensor(f, dtype=torch.float64)
    lin = f / _SLANEY_F_SP
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_F_SP
    log = break_mel + torch.log(torch.clamp(f, min=1e-10) / _SLANEY_BREAK_HZ) / _SLANEY_LOGSTEP
    return torch.where(f >= _SLANEY_BREAK_HZ, log, lin)


def mel_to_hz_slaney(m: torch.Tensor) -> torch.Tensor:
    """Mel → Hz on the Slaney scale (inverse of :func:`hz_to_mel_slaney`)."""
    m = torch.as_tensor(m, dtype=torch.float64)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_F_SP
    lin = m * _SLANEY_F_SP
    log = _SLANEY_BREAK_HZ * torch.exp(_SLANEY_LOGSTEP * (m - break_mel))
    return torch.where(m >= break_mel, log, lin)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = MEL_FMIN, fmax: float = MEL_FMAX) -> torch.Tensor:
    """Slaney-style, area-normalised triangular mel filter bank.

    Same definition as ``librosa.filters.mel(htk=False, norm="slaney")``: ``n_mels`` triangles
    whose corners are evenly spaced on the Slaney mel scale between ``fmin`` and ``fmax``, each
    scaled by ``2 / bandwidth_hz``.

    Returns:
        ``(n_mels, n_fft // 2 + 1)`` float32 tensor.
    """
    fft_hz = torch.linspace(0.0, sr / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(float(hz_to_mel_slaney(torch.tensor(fmin))),
                               float(hz_to_mel_slaney(torch.tensor(fmax))),
                               n_mels + 2, dtype=torch.float64)
    hz_edges = mel_to_hz_slaney(mel_edges)
    widths = hz_edges[1:] - hz_edges[:-1]
    ramps = hz_edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights = weights * (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.to(torch.float32)


class MelFrontEnd(nn.Module):
    """Waveform (16 kHz) → natural-log mel magnitude spectrogram, FCPE's input features.

    Framing follows the reference exactly: the signal is reflect-padded (zero-padded when too
    short) by ``(N_FFT - HOP) // 2`` on the left, so STFT window ``i`` is centred on sample
    ``i * HOP + HOP / 2``, and there are ``n_samples // HOP + 1`` frames.  The network was
    trained with this framing and its output ``i`` describes time ``i * HOP``: on synthetic
    glides of 24 cents per frame the F0 bias is -0.7 cents with this framing and ±6 cents
    (a 2.5 ms lag) with windows centred on ``i * HOP``.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("mel_basis", mel_filterbank(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    @staticmethod
    def padding(n_samples: int) -> tuple[int, int]:
        """(left, right) samples of padding for a signal of ``n_samples`` samples."""
        left, right = (N_FFT - HOP) // 2, (N_FFT - HOP + 1) // 2
        return left, max(right, N_FFT - n_samples - left)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: ``wav`` ``(B, n_samples)`` float at 16 kHz.

        Returns:
            ``(B, n_samples // HOP + 1, N_MELS)`` log-mel features.
        """
        n = wav.shape[-1]
        left, right = self.padding(n)
        mode = "reflect" if max(left, right) < n else "constant"
        padded = F.pad(wav[:, None, :], (left, right), mode=mode)[:, 0, :]
        return self.from_padded(padded, n // HOP + 1)

    def from_padded(self, padded: torch.Tensor, n_frames: int) -> torch.Tensor:
        """Log-mel of an already padded signal ``(B, S)``: frame ``i`` spans
        ``padded[:, i*HOP : i*HOP + N_FFT]``.  Returns ``(B, n_frames, N_MELS)`` (the last
        frame is repeated if the padded signal is too short, as in the reference)."""
        spec = torch.stft(padded, N_FFT, hop_length=HOP, win_length=N_FFT, window=self.window,
                          center=False, normalized=False, onesided=True, return_complex=True)
        mag = torch.sqrt(spec.real.square() + spec.imag.square() + MAG_EPS)
        mel = torch.log(torch.clamp(self.mel_basis @ mag, min=LOG_CLIP)).transpose(1, 2)
        if mel.shape[1] < n_frames:
            mel = torch.cat([mel, mel[:, -1:].expand(-1, n_frames - mel.shape[1], -1)], dim=1)
        return mel[:, :n_frames]


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class ConvModule(nn.Module):
    """Conformer convolution module (residual added by the caller), shapes ``(B, T, C)``."""

    def __init__(self, dim: int = HIDDEN, expansion: int = EXPANSION, kernel: int = KERNEL):
        super().__init__()
        inner = dim * expansion
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.pointwise_in = nn.Conv1d(dim, 2 * inner, 1)
        self.depthwise = nn.Conv1d(inner, inner, kernel, padding=kernel // 2, groups=inner)
        self.pointwise_out = nn.Conv1d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)
        h = F.glu(self.pointwise_in(h), dim=1)
        h = F.silu(self.depthwise(h))
        return self.pointwise_out(h).transpose(1, 2)


class LinearConvModule(nn.Module):
    """:class:`ConvModule` with its pointwise convolutions as linear layers on ``(B, T, C)``
    (the same arithmetic, no transposes around them; lets them be quantised)."""

    def __init__(self, cm: ConvModule):
        super().__init__()
        self.norm, self.depthwise = cm.norm, cm.depthwise
        self.pointwise_in = _as_linear(cm.pointwise_in)
        self.pointwise_out = _as_linear(cm.pointwise_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.pointwise_in(self.norm(x)), dim=-1).transpose(1, 2)
        return self.pointwise_out(F.silu(self.depthwise(h)).transpose(1, 2))


def _as_linear(conv: nn.Conv1d) -> nn.Linear:
    lin = nn.Linear(conv.in_channels, conv.out_channels)
    lin.weight.data = conv.weight.data[:, :, 0].clone()
    lin.bias.data = conv.bias.data.clone()
    return lin


def quantized_copy(model: FCPE) -> FCPE:
    """A copy of ``model`` whose pointwise convolutions (9.4 M of its 10.8 M weights) run as
    dynamically quantised int8 linear layers (per-tensor weights, activations quantised per
    call); the rest is unchanged.  For the live path, where FCPE runs on ~20 frames per call
    and its cost is mostly reading its weights (docs/live.md)."""
    import copy
    import warnings

    m = copy.deepcopy(model)
    for i, block in enumerate(m.blocks):
        m.blocks[i] = LinearConvModule(block)
    with warnings.catch_warnings():  # torch.ao's eager quantisation is marked deprecated
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)


@dataclass(frozen=True)
class GroupStats:
    """Per-group mean and variance of the first input conv's output over the whole signal.

    ``mean`` and ``var`` are ``(B, GROUPS)`` tensors (variance is the biased one, as GroupNorm).
    """

    mean: torch.Tensor
    var: torch.Tensor


class FCPE(nn.Module):
    """FCPE network: log-mel ``(B, T, 128)`` → pitch-bin activations ``(B, T, 360)`` in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.in_conv1 = nn.Conv1d(N_MELS, HIDDEN, 3, padding=1)
        self.in_norm = nn.GroupNorm(GROUPS, HIDDEN, eps=NORM_EPS)
        self.in_conv2 = nn.Conv1d(HIDDEN, HIDDEN, 3, padding=1)
        self.blocks = nn.ModuleList([ConvModule() for _ in range(N_LAYERS)])
        self.out_norm = nn.LayerNorm(HIDDEN, eps=NORM_EPS)
        self.out_proj = nn.Linear(HIDDEN, N_BINS)
        # Bin centres in cents re 10 Hz; overwritten by the checkpoint's own table on load.
        lo = 1200.0 * math.log2(32.70 / CENT_REF_HZ)
        hi = 1200.0 * math.log2(1975.5 / CENT_REF_HZ)
        self.register_buffer("cent_table", torch.linspace(lo, hi, N_BINS))

    def first_conv(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, T, 128)`` → ``(B, HIDDEN, T)`` output of the first input conv."""
        return self.in_conv1(mel.transpose(1, 2))

    @staticmethod
    def group_moments(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Sums for the group norm of ``h`` ``(B, HIDDEN, T)``: per-group ``(sum, sum of
        squares, count)`` in float64, so that chunks can be accumulated."""
        b, c, t = h.shape
        g = h.reshape(b, GROUPS, (c // GROUPS) * t).double()
        return g.sum(-1), g.square().sum(-1), g.shape[-1]

    def group_stats(self, mel: torch.Tensor) -> GroupStats:
        """Group-norm statistics of a whole (not too long) input ``(B, T, 128)``."""
        s, s2, n = self.group_moments(self.first_conv(mel))
        return stats_from_moments(s, s2, n)

    def forward(self, mel: torch.Tensor, stats: GroupStats | None = None) -> torch.Tensor:
        """Args:
            mel: ``(B, T, 128)`` log-mel features from :class:`MelFrontEnd`.
            stats: group-norm statistics; None = compute them from ``mel`` itself (the
                reference behaviour for a full-length input).

        Returns:
            ``(B, T, 360)`` sigmoid activations per pitch bin.
        """
        h = self.first_conv(mel)
        if stats is None:
            s, s2, n = self.group_moments(h)
            stats = stats_from_moments(s, s2, n)
        b, c, t = h.shape
        g = h.reshape(b, GROUPS, c // GROUPS, t)
        mean = stats.mean.to(h.dtype)[:, :, None, None]
        var = stats.var.to(h.dtype)[:, :, None, None]
        g = (g - mean) * torch.rsqrt(var + self.in_norm.eps)
        h = g.reshape(b, c, t)
        h = h * self.in_norm.weight[None, :, None] + self.in_norm.bias[None, :, None]
        h = self.in_conv2(F.leaky_relu(h)).transpose(1, 2)
        for block in self.blocks:
            h = h + block(h)
        return torch.sigmoid(self.out_proj(self.out_norm(h)))


def stats_from_moments(s: torch.Tensor, s2: torch.Tensor, n: int) -> GroupStats:
    """Group mean / biased variance from accumulated sums (see :meth:`FCPE.group_moments`)."""
    mean = s / n
    var = torch.clamp(s2 / n - mean.square(), min=0.0)
    return GroupStats(mean=mean, var=var)


def decode_local_argmax(act: torch.Tensor, cent_table: torch.Tensor,
                        lo_bin: int = 0, hi_bin: int = N_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """Local weighted-average decoder.

    Finds the peak bin (searched within ``[lo_bin, hi_bin)``), then averages the cents of the
    ``2 * LOCAL_HALF_WIDTH + 1`` bins around it weighted by their activations (indices clamped
    at the table ends, as in the reference).

    Args:
        act: ``(..., n_bins)`` activations.
        cent_table: ``(n_bins,)`` bin centres in cents re 10 Hz.
    Returns:
        (cents ``(...)``, confidence ``(...)`` = peak activation).
    """
    n_bins = act.shape[-1]
    confidence, peak = act[..., lo_bin:hi_bin].max(dim=-1, keepdim=True)
    peak = peak + lo_bin
    offsets = torch.arange(-LOCAL_HALF_WIDTH, LOCAL_HALF_WIDTH + 1, device=act.device)
    idx = torch.clamp(peak + offsets, 0, n_bins - 1)
    w = torch.gather(act, -1, idx)
    c = cent_table.to(act.dtype)[idx]
    cents = (w * c).sum(-1) / torch.clamp(w.sum(-1), min=1e-12)
    return cents, confidence[..., 0]


def cents_to_hz(cents: torch.Tensor) -> torch.Tensor:
    """Cents re 10 Hz → Hz."""
    return CENT_REF_HZ * torch.pow(2.0, cents / 1200.0)


def load_fcpe(checkpoint: dict) -> FCPE:
    """Build an :class:`FCPE` in eval mode from the torchfcpe checkpoint dict.

    Args:
        checkpoint: ``{'model': state_dict, 'config_dict': ..., ...}`` as stored in
            ``fcpe_c_v001.pt`` (load it with ``aisinger.io.safeload.torch_load_safe``).
    Raises:
        ValueError: when the checkpoint is not the conv-only CFNaiveMelPE this code implements.
    """
    cfg = checkpoint.get("config_dict", {})
    model_cfg, mel_cfg = cfg.get("model", {}), cfg.get("mel", {})
    expected = {"type": "CFNaiveMelPE", "out_dims": N_BINS, "hidden_dims": HIDDEN,
                "n_layers": N_LAYERS, "conv_only": True}
    for key, value in expected.items():
        if model_cfg.get(key) != value:
            raise ValueError(f"unsupported FCPE config: model.{key}={model_cfg.get(key)!r}")
    for key, value in {"sr": SAMPLE_RATE, "num_mels": N_MELS, "n_fft": N_FFT,
                       "hop_size": HOP}.items():
        if mel_cfg.get(key) != value:
            raise ValueError(f"unsupported FCPE config: mel.{key}={mel_cfg.get(key)!r}")
    sd = checkpoint["model"]
    ours: dict[str, torch.Tensor] = {
        "in_conv1.weight": sd["input_stack.0.weight"], "in_conv1.bias": sd["input_stack.0.bias"],
        "in_norm.weight": sd["input_stack.1.weight"], "in_norm.bias": sd["input_stack.1.bias"],
        "in_conv2.weight": sd["input_stack.3.weight"], "in_conv2.bias": sd["input_stack.3.bias"],
        "out_norm.weight": sd["norm.weight"], "out_norm.bias": sd["norm.bias"],
        "cent_table": sd["cent_table"],
    }
    # Weight normalisation (dim 0): W = g * v / ||v|| row-wise; fold it into a plain weight.
    v, g = sd["output_proj.weight_v"], sd["output_proj.weight_g"]
    ours["out_proj.weight"] = g * v / v.norm(dim=1, keepdim=True)
    ours["out_proj.bias"] = sd["output_proj.bias"]
    names = {"norm": "net.0", "pointwise_in": "net.2", "depthwise": "net.4.conv",
             "pointwise_out": "net.6"}
    for i in range(N_LAYERS):
        for ours_name, theirs in names.items():
            for p in ("weight", "bias"):
                theirs_key = f"net.encoder_layers.{i}.conformer.{theirs}.{p}"
                ours[f"blocks.{i}.{ours_name}.{p}"] = sd[theirs_key]
    model = FCPE()
    model.load_state_dict(ours, strict=True)
    return model.eval()
