"""The VITS-family singing-voice-conversion generator (So-VITS-SVC 4.x, RVC v1/v2).

Pure ``torch.nn`` code.  Inference path::

    content (B,T,D) ─ projection ─┐                       (So-VITS: conv k=5 + voiced + volume
    F0 coarse bins ── embedding ──┤                        embeddings; RVC: linear, x√H, lrelu)
                                  ▼
                 prior encoder: transformer with relative-position self-attention
                                  ▼ (mean, log-std) per frame; z_p = mean + noise·std·scale
                 normalising flow (mean-only residual couplings with WaveNets), reversed,
                 conditioned on the speaker embedding
                                  ▼ z
                 NSF-HiFiGAN decoder (harmonic source from F0)  ──►  waveform (B, T·hop)

Optional So-VITS 4.1 F0 predictor (:class:`F0Decoder`): a causal transformer that predicts a
normalised log-F0 curve from the projected content.

Parameter names mirror the community state-dict layouts (``enc_p``, ``flow.flows.N``, ``dec``,
``emb_g`` …) so weights load by key and shape; the structure is chosen by :class:`VitsConfig`.
All randomness is drawn from explicit ``torch.Generator`` objects (posterior noise, NSF noise,
initial phases); with none given, inference is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from aisinger.nn.nsf_hifigan import NsfConfig, NsfHifigan

__all__ = ["VitsConfig", "SvcGenerator", "RelativeAttention", "AttentionEncoder", "WaveNet",
           "CouplingFlow", "F0Decoder", "f0_to_coarse", "fold_weight_norm", "unfold_weight_norm",
           "FAMILIES"]

FAMILIES = ("sovits", "rvc")
F0_BINS = 256
F0_MEL_MIN = 1127.0 * math.log(1.0 + 50.0 / 700.0)
F0_MEL_MAX = 1127.0 * math.log(1.0 + 1100.0 / 700.0)
MASK_FILL = -1e4


def f0_to_coarse(f0: torch.Tensor) -> torch.Tensor:
    """F0 in Hz -> integer bins 1..255 on the mel scale (50 Hz -> 1, 1100 Hz -> 255); 0 Hz and
    anything below 50 Hz -> 1."""
    mel = 1127.0 * torch.log1p(f0.to(torch.float64) / 700.0)
    scaled = (mel - F0_MEL_MIN) * (F0_BINS - 2) / (F0_MEL_MAX - F0_MEL_MIN) + 1.0
    scaled = torch.where(mel > 0, scaled, torch.ones_like(scaled))
    return torch.round(scaled).clamp(1, F0_BINS - 1).long()


SIZE_BOUNDS = {
    "content_dim": (1, 4096), "inter_channels": (1, 4096), "hidden_channels": (1, 4096),
    "filter_channels": (1, 16384), "n_heads": (1, 64), "n_layers": (1, 64),
    "kernel_size": (1, 63), "window_size": (0, 1024), "n_flows": (1, 32),
    "flow_layers": (1, 64), "gin_channels": (0, 4096), "n_speakers": (1, 100_000),
    "spec_channels": (1, 16385)}
"""Accepted range of every size of a :class:`VitsConfig` (published So-VITS-SVC/RVC models
use 192-768 channels, 6 layers, 4 flows; the bounds are ~10x that): checked before any module
is built, so a file asking for 4e8 channels is refused instead of exhausting memory."""
DECODER_BOUNDS = {
    "in_channels": (1, 4096), "upsample_initial_channel": (1, 4096), "upsample_rates": (1, 64),
    "upsample_kernel_sizes": (1, 256), "resblock_kernel_sizes": (1, 63),
    "resblock_dilation_sizes": (1, 64), "sample_rate": (8000, 384_000), "harmonics": (0, 64),
    "gin_channels": (0, 4096)}
"""Accepted range of every size of the decoder (:class:`~aisinger.nn.nsf_hifigan.NsfConfig`);
tuples are checked element by element and may have at most ``MAX_STAGES`` entries."""
MAX_STAGES = 8


def _check_bound(name: str, value, lo: int, hi: int) -> None:
    values = value if isinstance(value, (tuple, list)) else (value,)
    if isinstance(value, (tuple, list)) and not 1 <= len(value) <= MAX_STAGES:
        raise ValueError(f"{name} has {len(value)} entries; 1..{MAX_STAGES} are supported")
    for v in values:
        if isinstance(v, (tuple, list)):
            _check_bound(name, v, lo, hi)
        elif isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"{name}={v!r} is outside the supported range {lo}..{hi}")


def check_sizes(cfg: VitsConfig) -> None:
    """Raise ValueError naming the first size of ``cfg`` outside :data:`SIZE_BOUNDS` /
    :data:`DECODER_BOUNDS` (or inconsistent with another), before anything is allocated."""
    for name, (lo, hi) in SIZE_BOUNDS.items():
        _check_bound(name, getattr(cfg, name), lo, hi)
    for name, (lo, hi) in DECODER_BOUNDS.items():
        _check_bound(f"decoder.{name}", getattr(cfg.decoder, name), lo, hi)
    d = cfg.decoder
    if len(d.upsample_rates) != len(d.upsample_kernel_sizes):
        raise ValueError(f"{len(d.upsample_rates)} upsample_rates but "
                         f"{len(d.upsample_kernel_sizes)} upsample_kernel_sizes")
    if len(d.resblock_kernel_sizes) != len(d.resblock_dilation_sizes):
        raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
    if cfg.hidden_channels % cfg.n_heads:
        raise ValueError(f"hidden_channels={cfg.hidden_channels} is not a multiple of "
                         f"n_heads={cfg.n_heads}")


@dataclass(frozen=True)
class VitsConfig:
    """Shape of an :class:`SvcGenerator`.

    family: "sovits" or "rvc"; content_dim: width of the content features (256 or 768);
    inter_channels: latent width; hidden/filter/n_heads/n_layers/kernel_size/window_size: the
    prior's transformer (window: relative positions ±window, 4 in So-VITS, 10 in RVC);
    n_flows / flow_layers: coupling layers and WaveNet depth of the flow; gin_channels /
    n_speakers: speaker embedding; use_f0: F0 conditioning (RVC no-F0 models: False);
    vol_embedding: So-VITS 4.1 volume input; f0_predictor: has the 4.1 F0 decoder;
    spec_channels: linear-spectrogram bins (training only); decoder: :class:`NsfConfig`.
    """

    family: str = "sovits"
    content_dim: int = 768
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    window_size: int = 4
    n_flows: int = 4
    flow_layers: int = 4
    gin_channels: int = 256
    n_speakers: int = 1
    use_f0: bool = True
    vol_embedding: bool = False
    f0_predictor: bool = False
    spec_channels: int = 1025
    decoder: NsfConfig = NsfConfig()

    @property
    def sample_rate(self) -> int:
        return self.decoder.sample_rate

    @property
    def hop(self) -> int:
        return self.decoder.hop

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder"] = self.decoder.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VitsConfig:
        d = dict(d)
        d["decoder"] = NsfConfig.from_dict(d["decoder"])
        if d.get("family") not in FAMILIES:
            raise ValueError(f"unknown model family {d.get('family')!r}")
        return cls(**d)


# --------------------------------------------------------------------------------------------
# transformer pieces


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T) tensors (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


class RelativeAttention(nn.Module):
    """Multi-head self-attention with learned relative-position embeddings for keys and values
    (offsets -window..window; farther pairs get none), as in VITS's text encoder.

    ``window=None``: plain scaled dot-product attention.
    """

    def __init__(self, channels: int, n_heads: int, window: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads = n_heads
        self.window = window
        self.dk = channels // n_heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)
        if window is not None:
            std = self.dk ** -0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.dk) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.dk) * std)

    def _offsets(self, t: int) -> range:
        w = min(self.window, t - 1)
        return range(-w, w + 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, c, t = x.shape
        h, dk = self.n_heads, self.dk
        q = self.conv_q(x).view(b, h, dk, t).transpose(2, 3) / math.sqrt(dk)  # (B,h,T,dk)
        k = self.conv_k(x).view(b, h, dk, t).transpose(2, 3)
        v = self.conv_v(x).view(b, h, dk, t).transpose(2, 3)
        scores = q @ k.transpose(-2, -1)  # (B,h,T,T)
        if self.window is not None:
            rel = q @ self.emb_rel_k.transpose(-2, -1).unsqueeze(0)  # (B,h,T,2w+1)
            bias = torch.zeros_like(scores)
            for o in self._offsets(t):
                rows = slice(0, t - o) if o >= 0 else slice(-o, t)
                bias.diagonal(o, -2, -1).copy_(rel[:, :, rows, o + self.window])
            scores = scores + bias
        if mask is not None:
            scores = scores.masked_fill(mask == 0, MASK_FILL)
        p = self.drop(F.softmax(scores, dim=-1))
        out = p @ v
        if self.window is not None:
            relw = p.new_zeros(b, h, t, 2 * self.window + 1)
            for o in self._offsets(t):
                rows = slice(0, t - o) if o >= 0 else slice(-o, t)
                relw[:, :, rows, o + self.window] = p.diagonal(o, -2, -1)
            out = out + relw @ self.emb_rel_v.unsqueeze(0)
        return self.conv_o(out.transpose(2, 3).reshape(b, c, t))


class FeedForward(nn.Module):
    """Conv (k) -> ReLU -> conv (k), masked; ``causal`` pads on the left only."""

    def __init__(self, channels: int, filter_channels: int, kernel: int, dropout: float = 0.0,
                 causal: bool = False):
        super().__init__()
        self.kernel = kernel
        self.causal = causal
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel)
        self.drop = nn.Dropout(dropout)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel
        if k == 1:
            return x
        return F.pad(x, (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.conv_1(self._pad(x * mask))))
        return self.conv_2(self._pad(y * mask)) * mask


class AttentionEncoder(nn.Module):
    """Post-norm transformer encoder: (attention, add & norm, conv FFN, add & norm) × n."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel: int, window: int | None, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.attn_layers = nn.ModuleList([RelativeAttention(channels, n_heads, window, dropout)
                                          for _ in range(n_layers)])
        self.norm_layers_1 = nn.ModuleList([ChannelNorm(channels) for _ in range(n_layers)])
        self.ffn_layers = nn.ModuleList([FeedForward(channels, filter_channels, kernel, dropout)
                                         for _ in range(n_layers)])
        self.norm_layers_2 = nn.ModuleList([ChannelNorm(channels) for _ in range(n_layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        amask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, n1, ffn, n2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                     self.norm_layers_2):
            x = n1(x + self.drop(attn(x, amask)))
            x = n2(x + self.drop(ffn(x, mask)))
        return x * mask


class CausalEncoder(nn.Module):
    """Decoder-style transformer with a causal mask (So-VITS 4.1 F0 predictor body)."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.self_attn_layers = nn.ModuleList([RelativeAttention(channels, n_heads, None, dropout)
                                               for _ in range(n_layers)])
        self.norm_layers_0 = nn.ModuleList([ChannelNorm(channels) for _ in range(n_layers)])
        self.ffn_layers = nn.ModuleList([FeedForward(channels, filter_channels, kernel, dropout,
                                                     causal=True) for _ in range(n_layers)])
        self.norm_layers_1 = nn.ModuleList([ChannelNorm(channels) for _ in range(n_layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        causal = torch.tril(torch.ones(t, t, device=x.device, dtype=x.dtype))[None, None]
        x = x * mask
        for attn, n0, ffn, n1 in zip(self.self_attn_layers, self.norm_layers_0,
                                     self.ffn_layers, self.norm_layers_1):
            x = n0(x + self.drop(attn(x, causal)))
            x = n1(x + self.drop(ffn(x, mask)))
        return x * mask


class F0Decoder(nn.Module):
    """So-VITS 4.1 F0 predictor: projected content + speaker + normalised log-F0 ->
    predicted normalised log-F0 (B, 1, T)."""

    def __init__(self, hidden: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel: int, gin_channels: int, dropout: float = 0.0):
        super().__init__()
        self.prenet = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.decoder = CausalEncoder(hidden, filter_channels, n_heads, n_layers, kernel, dropout)
        self.proj = nn.Conv1d(hidden, 1, 1)
        self.f0_prenet = nn.Conv1d(1, hidden, 3, padding=1)
        self.cond = nn.Conv1d(gin_channels, hidden, 1)

    def forward(self, x: torch.Tensor, norm_lf0: torch.Tensor, mask: torch.Tensor,
                g: torch.Tensor | None = None) -> torch.Tensor:
        x = x.detach()
        if g is not None:
            x = x + self.cond(g)
        x = x + self.f0_prenet(norm_lf0)
        x = self.prenet(x) * mask
        x = self.decoder(x * mask, mask)
        return self.proj(x) * mask


# --------------------------------------------------------------------------------------------
# flow


class WaveNet(nn.Module):
    """Non-causal WaveNet: gated dilated convs with residual and skip paths, global condition."""

    def __init__(self, hidden: int, kernel: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, dropout: float = 0.0):
        super().__init__()
        self.hidden = hidden
        self.n_layers = n_layers
        self.drop = nn.Dropout(dropout)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            d = dilation_rate ** i
            self.in_layers.append(nn.Conv1d(hidden, 2 * hidden, kernel, dilation=d,
                                            padding=(kernel * d - d) // 2))
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip_layers.append(nn.Conv1d(hidden, out, 1))
        if gin_channels > 0:
            self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                g: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden
        skip = torch.zeros_like(x)
        cond = self.cond_layer(g) if g is not None and hasattr(self, "cond_layer") else None
        for i, (inl, rs) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = inl(x)
            if cond is not None:
                a = a + cond[:, 2 * h * i:2 * h * (i + 1)]
            acts = self.drop(torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:]))
            r = rs(acts)
            if i < self.n_layers - 1:
                x = (x + r[:, :h]) * mask
                skip = skip + r[:, h:]
            else:
                skip = skip + r
        return skip * mask


class Coupling(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a WaveNet of
    the first half."""

    def __init__(self, channels: int, hidden: int, kernel: int, n_layers: int, gin_channels: int):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, kernel, 1, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.half, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None,
                reverse: bool) -> torch.Tensor:
        x0, x1 = x[:, :self.half], x[:, self.half:]
        m = self.post(self.enc(self.pre(x0) * mask, mask, g)) * mask
        x1 = (x1 - m) * mask if reverse else m + x1 * mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    """Reverses the channel order (between couplings)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None,
                reverse: bool) -> torch.Tensor:
        return torch.flip(x, [1])


class CouplingFlow(nn.Module):
    """``n_flows`` × (coupling, flip); volume preserving (mean-only)."""

    def __init__(self, channels: int, hidden: int, kernel: int, n_layers: int, n_flows: int,
                 gin_channels: int):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(Coupling(channels, hidden, kernel, n_layers, gin_channels))
            self.flows.append(Flip())

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        for f in (reversed(self.flows) if reverse else self.flows):
            x = f(x, mask, g, reverse)
        return x


# --------------------------------------------------------------------------------------------
# prior encoders


class SovitsPrior(nn.Module):
    """So-VITS prior: (projected content + F0-bin embedding) -> transformer -> mean, log-std."""

    def __init__(self, cfg: VitsConfig, dropout: float = 0.0):
        super().__init__()
        self.out = cfg.inter_channels
        self.proj = nn.Conv1d(cfg.hidden_channels, 2 * cfg.inter_channels, 1)
        self.f0_emb = nn.Embedding(F0_BINS, cfg.hidden_channels)
        self.enc_ = AttentionEncoder(cfg.hidden_channels, cfg.filter_channels, cfg.n_heads,
                                     cfg.n_layers, cfg.kernel_size, cfg.window_size, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, coarse: torch.Tensor):
        x = x + self.f0_emb(coarse).transpose(1, 2)
        x = self.enc_(x * mask, mask)
        stats = self.proj(x) * mask
        return stats[:, :self.out], stats[:, self.out:]


class RvcPrior(nn.Module):
    """RVC prior: linear content embedding (+ F0-bin embedding), ×√H, leaky ReLU ->
    transformer -> mean, log-std."""

    def __init__(self, cfg: VitsConfig, dropout: float = 0.0):
        super().__init__()
        self.out = cfg.inter_channels
        self.hidden = cfg.hidden_channels
        self.emb_phone = nn.Linear(cfg.content_dim, cfg.hidden_channels)
        if cfg.use_f0:
            self.emb_pitch = nn.Embedding(F0_BINS, cfg.hidden_channels)
        self.encoder = AttentionEncoder(cfg.hidden_channels, cfg.filter_channels, cfg.n_heads,
                                        cfg.n_layers, cfg.kernel_size, cfg.window_size, dropout)
        self.proj = nn.Conv1d(cfg.hidden_channels, 2 * cfg.inter_channels, 1)

    def forward(self, content: torch.Tensor, mask: torch.Tensor, coarse: torch.Tensor | None):
        x = self.emb_phone(content)
        if coarse is not None and hasattr(self, "emb_pitch"):
            x = x + self.emb_pitch(coarse)
        x = F.leaky_relu(x * math.sqrt(self.hidden), 0.1).transpose(1, 2)
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask
        return stats[:, :self.out], stats[:, self.out:]


# --------------------------------------------------------------------------------------------
# the generator


class SvcGenerator(nn.Module):
    """Content + F0 (+ volume) + speaker -> waveform.  See the module docstring."""

    def __init__(self, cfg: VitsConfig, dropout: float = 0.0):
        super().__init__()
        check_sizes(cfg)
        if cfg.family not in FAMILIES:
            raise ValueError(f"unknown model family {cfg.family!r}")
        if cfg.decoder.in_channels != cfg.inter_channels:
            raise ValueError("decoder.in_channels must equal inter_channels")
        self.cfg = cfg
        self.emb_g = nn.Embedding(cfg.n_speakers, cfg.gin_channels)
        if cfg.family == "sovits":
            self.pre = nn.Conv1d(cfg.content_dim, cfg.hidden_channels, 5, padding=2)
            self.emb_uv = nn.Embedding(2, cfg.hidden_channels)
            if cfg.vol_embedding:
                self.emb_vol = nn.Linear(1, cfg.hidden_channels)
            self.enc_p = SovitsPrior(cfg, dropout)
            if cfg.f0_predictor:
                self.f0_decoder = F0Decoder(cfg.hidden_channels, cfg.filter_channels,
                                            cfg.n_heads, cfg.n_layers, cfg.kernel_size,
                                            cfg.gin_channels, dropout)
        else:
            self.enc_p = RvcPrior(cfg, dropout)
        self.flow = CouplingFlow(cfg.inter_channels, cfg.hidden_channels, 5, cfg.flow_layers,
                                 cfg.n_flows, cfg.gin_channels)
        self.dec = NsfHifigan(cfg.decoder)

    # -- stages --------------------------------------------------------------------------------

    def speaker(self, sid: torch.Tensor) -> torch.Tensor:
        """(B,) speaker ids -> (B, gin, 1) condition."""
        return self.emb_g(sid.long()).unsqueeze(-1)

    def _sovits_input(self, content, uv, vol, mask):
        x = self.pre(content.transpose(1, 2)) * mask
        x = x + self.emb_uv(uv.long()).transpose(1, 2)
        if vol is not None and hasattr(self, "emb_vol"):
            x = x + self.emb_vol(vol[:, :, None]).transpose(1, 2)
        return x

    def predict_f0(self, content: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor,
                   sid: torch.Tensor, vol: torch.Tensor | None = None) -> torch.Tensor:
        """So-VITS 4.1 automatic F0: predicted F0 (B, T) Hz from the content and the source
        F0's voiced mean (the curve's shape comes from the model)."""
        if not hasattr(self, "f0_decoder"):
            raise ValueError("this model has no F0 predictor")
        mask = torch.ones(content.shape[0], 1, content.shape[1], dtype=content.dtype,
                          device=content.device)
        g = self.speaker(sid)
        x = self._sovits_input(content, uv, vol, mask)
        lf0 = 2595.0 * torch.log10(1.0 + f0[:, None] / 700.0) / 500.0
        uvf = uv.to(lf0.dtype)
        n = uvf.sum(dim=1, keepdim=True)
        n = torch.where(n == 0, torch.full_like(n, 9999.0), n)
        mean = (lf0[:, 0] * uvf).sum(dim=1, keepdim=True) / n
        norm = (lf0 - mean[:, :, None]) * mask
        pred = self.f0_decoder(x, norm, mask, g)
        return (700.0 * (torch.pow(10.0, pred * 500.0 / 2595.0) - 1.0))[:, 0]

    def prior(self, content: torch.Tensor, f0: torch.Tensor | None, sid: torch.Tensor,
              uv: torch.Tensor | None = None, vol: torch.Tensor | None = None,
              coarse: torch.Tensor | None = None):
        """(mean, log-std, mask) of the prior for content (B,T,D) and F0 (B,T) Hz."""
        b, t, _ = content.shape
        mask = torch.ones(b, 1, t, dtype=content.dtype, device=content.device)
        if coarse is None and f0 is not None and self.cfg.use_f0:
            coarse = f0_to_coarse(f0)
        if self.cfg.family == "sovits":
            if uv is None:
                uv = (f0 > 0).to(content.dtype)
            x = self._sovits_input(content, uv, vol, mask)
            m, logs = self.enc_p(x, mask, coarse)
        else:
            m, logs = self.enc_p(content, mask, coarse if self.cfg.use_f0 else None)
        return m, logs, mask

    def latent(self, content, f0, sid, uv=None, vol=None, coarse=None,
               noise: torch.Tensor | None = None, noise_scale: float = 0.0) -> torch.Tensor:
        """z after the reversed flow (B, inter, T).  ``noise``: standard normal draws
        (B, inter, T) for the posterior sample, scaled by ``noise_scale`` (None = none)."""
        m, logs, mask = self.prior(content, f0, sid, uv, vol, coarse)
        z_p = m
        if noise is not None and noise_scale > 0:
            z_p = m + noise.to(m.dtype) * torch.exp(logs) * noise_scale
        g = self.speaker(sid)
        return self.flow(z_p * mask, mask, g=g, reverse=True) * mask

    def infer(self, content: torch.Tensor, f0: torch.Tensor | None, sid: torch.Tensor,
              uv: torch.Tensor | None = None, vol: torch.Tensor | None = None,
              coarse: torch.Tensor | None = None, noise_scale: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Waveform (B, T*hop).  content: (B, T, content_dim); f0: (B, T) Hz (0 = unvoiced);
        sid: (B,); uv: So-VITS voiced flags (default f0 > 0); vol: So-VITS 4.1 frame RMS;
        coarse: F0 bins (default from f0); generator: source of all randomness (posterior
        noise × noise_scale, NSF noise, overtone phases); None = deterministic."""
        noise = None
        if generator is not None and noise_scale > 0:
            noise = torch.randn(content.shape[0], self.cfg.inter_channels, content.shape[1],
                                generator=generator).to(content.device)
        z = self.latent(content, f0, sid, uv, vol, coarse, noise, noise_scale)
        src_f0 = f0 if self.cfg.use_f0 else None
        return self.dec(z, src_f0, g=self.speaker(sid), generator=generator)[:, 0]


# --------------------------------------------------------------------------------------------
# weight normalisation in community checkpoints


def fold_weight_norm(state: dict) -> dict:
    """Replace every ``X.weight_g`` / ``X.weight_v`` pair (torch weight_norm, dim 0) and every
    ``X.parametrizations.weight.original0/1`` pair by the plain ``X.weight`` they define."""
    out = {}
    pairs = {}
    for k, v in state.items():
        for g_suffix, v_suffix in ((".weight_g", ".weight_v"),
                                   (".parametrizations.weight.original0",
                                    ".parametrizations.weight.original1")):
            if k.endswith(g_suffix) or k.endswith(v_suffix):
                suffix = g_suffix if k.endswith(g_suffix) else v_suffix
                base = k[: -len(suffix)]
                pairs.setdefault(base, {})["g" if suffix == g_suffix else "v"] = v
                break
        else:
            out[k] = v
    for base, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise ValueError(f"{base}: weight-norm pair is incomplete")
        g, v = gv["g"].to(torch.float32), gv["v"].to(torch.float32)
        dims = tuple(range(1, v.ndim))
        norm = torch.linalg.vector_norm(v, dim=dims, keepdim=True)
        out[base + ".weight"] = v * (g / norm)
    return out


def unfold_weight_norm(state: dict, names: list[str]) -> dict:
    """The inverse layout: ``X.weight`` -> ``X.weight_g`` (per-output-channel norm) and
    ``X.weight_v`` (the weight itself) for every X in ``names``."""
    out = dict(state)
    for base in names:
        w = out.pop(base + ".weight")
        dims = tuple(range(1, w.ndim))
        out[base + ".weight_g"] = torch.linalg.vector_norm(w, dim=dims, keepdim=True)
        out[base + ".weight_v"] = w.clone()
    return out
