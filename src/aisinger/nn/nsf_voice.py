"""The "nsf" voice model: content + F0 + loudness frames -> a neural source-filter waveform.

Pure ``torch.nn`` code (imports torch and other ``aisinger.nn`` modules only).

::

    content (T, 512), log-F0, voiced, loudness ─ ControlNet (aisinger.nn.ddsp) ─ latent (T, L)
    F0 (0 = unvoiced) ─ harmonic + noise source (aisinger.nn.nsf_hifigan) ─┐
                                                                          ▼
    generator "hifigan":  NSF-HiFiGAN (upsampling convs + source injected at every stage)
    generator "istft":    frame latent -> a log gain per STFT bin and a phase correction;
    (default)             output STFT = gain x the source's complex STFT x correction
                          (istft_excitation "spectrum", default; "phase": the source's phase at
                          unit magnitude); inverse STFT (hop = frame hop)

Both generators reuse the project's own building blocks: the frame network of the DDSP
decoder (:class:`aisinger.nn.ddsp.ControlNet`), the NSF-HiFiGAN generator and its harmonic
source written for imported So-VITS/RVC voices (:mod:`aisinger.nn.nsf_hifigan`).  The choice
between them was made by measurement (docs/voice-model.md, "Neural source-filter decoder").

Frame convention: frame ``i`` covers samples ``[i * hop, (i + 1) * hop)`` of the output (the
NSF-HiFiGAN layout: T frames -> T * hop samples).  All randomness (source noise, overtone
phases) comes from an explicit ``torch.Generator`` or a given ``noise`` tensor; with neither
the source has no noise and zero overtone phases, so outputs are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from aisinger.nn._config import check_known_keys

from aisinger.nn.ddsp import ControlNet, DdspConfig
from aisinger.nn.nsf_hifigan import NsfConfig, NsfHifigan, harmonic_excitation, upper_harmonics

__all__ = ["NsfVoiceConfig", "NsfVoice", "GENERATORS", "ISTFT_EXCITATIONS", "LEGACY_DEFAULTS",
           "GROWABLE", "with_legacy_defaults"]

GENERATORS = ("hifigan", "istft")
ISTFT_EXCITATIONS = ("phase", "spectrum")
LEGACY_DEFAULTS = {"istft_excitation": "phase", "source_max_hz": 0.0}
"""Values of config fields added after voices/bases were first written, as those files behave
(a stored config without the key means this value, not the current default)."""
GROWABLE = {"source_max_hz": (0.0, ("upper_gain",))}
"""Config fields a base may have "off" (the value given) while the model trained from it has
them on: field -> (off value, the parameters turning it on adds).  Those parameters start at
values that leave the model's output unchanged, so a base without them is a valid start
(:func:`aisinger.voice.base_model.init_from` fills them in)."""
ISTFT_LOGMAG_BIAS = -6.0  # initial log magnitude of the istft head (quiet start)
ISTFT_LOGMAG_MAX = 6.0  # clamp of the predicted log magnitudes (no overflow in exp)


@dataclass(frozen=True)
class NsfVoiceConfig:
    """Shape of an :class:`NsfVoice`.

    generator: "istft" (default: measured faster to learn and cheaper per step on a CPU, see
    docs/voice-model.md) or "hifigan"; sample_rate / frame_rate: hop = sample_rate / frame_rate
    (frame_rate is the feature rate, 100); content_dim / hidden / layers / kernel / dropout:
    the frame network (as in :class:`~aisinger.nn.ddsp.DdspConfig`); latent: its output
    channels; upsample_*: NSF-HiFiGAN stages (product of the rates = hop; every stage's
    remaining rate must be even or 1); resblock*: its residual blocks; harmonics: sines in the
    source; istft_n_fft: FFT size of the istft head (hop = frame hop); istft_excitation: what
    the istft head filters: "phase" (the source's STFT phase at unit magnitude: the head draws
    every bin's magnitude) or "spectrum" (the source's complex STFT: harmonic peaks and the
    noise between them come from the source, the head predicts a filter gain per bin);
    source_max_hz: the source also carries every harmonic above the ``harmonics`` explicit sines
    up to this frequency (a band-limited pulse train, :func:`~aisinger.nn.nsf_hifigan.
    upper_harmonics`), scaled by one learned gain that starts at 0; 0 = only the ``harmonics``
    sines (the default, and bases and voices written before the field: with 8 sines a 150 Hz
    voice has harmonics only up to 1.2 kHz, so the filter shapes noise above that).  Off by
    default: the base trained with it (10 kHz) re-synthesised words better but its fine-tuned
    quick voices were not better and one was less natural (docs/voice-model.md, "Session 6").
    """

    generator: str = "istft"
    sample_rate: int = 24000
    frame_rate: int = 100
    content_dim: int = 512
    hidden: int = 192
    layers: int = 4
    kernel: int = 5
    dropout: float = 0.1
    latent: int = 128
    upsample_initial_channel: int = 128
    upsample_rates: tuple = (5, 4, 3, 2, 2)
    upsample_kernel_sizes: tuple = (11, 8, 7, 4, 4)
    resblock: str = "2"
    resblock_kernel_sizes: tuple = (3, 7)
    resblock_dilation_sizes: tuple = ((1, 3), (1, 3))
    harmonics: int = 8
    istft_n_fft: int = 960
    istft_excitation: str = "spectrum"
    source_max_hz: float = 0.0

    @property
    def hop(self) -> int:
        """Samples per frame."""
        return self.sample_rate // self.frame_rate

    @property
    def receptive_frames(self) -> int:
        """Frames of context on each side that (noticeably) influence one output frame: the
        frame network's plus a few for the generator's convolutions."""
        return self.layers * (self.kernel // 2) + 4

    def to_dict(self) -> dict:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_stored(cls, d: dict) -> NsfVoiceConfig:
        """:meth:`from_dict` for a config read from a saved voice or base file (fields it
        predates take their :data:`LEGACY_DEFAULTS`)."""
        return cls.from_dict(with_legacy_defaults(d))

    @classmethod
    def from_dict(cls, d: dict) -> NsfVoiceConfig:
        """Inverse of :meth:`to_dict`; unknown keys or an inconsistent shape raise ValueError."""
        check_known_keys(cls, d)
        d = dict(d)
        for k in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        if "resblock_dilation_sizes" in d:
            d["resblock_dilation_sizes"] = tuple(tuple(int(v) for v in r)
                                                 for r in d["resblock_dilation_sizes"])
        cfg = cls(**d)
        cfg.check()
        return cfg

    def check(self) -> None:
        """ValueError when the shape is inconsistent."""
        if not 0.0 <= self.source_max_hz < self.sample_rate / 2:
            raise ValueError(f"source_max_hz {self.source_max_hz} must be 0 (off) or below the "
                             f"Nyquist frequency {self.sample_rate / 2:g}")
        if self.generator not in GENERATORS:
            raise ValueError(f"unknown generator {self.generator!r} (known: {GENERATORS})")
        if self.sample_rate % self.frame_rate:
            raise ValueError(f"sample_rate {self.sample_rate} is not a multiple of frame_rate "
                             f"{self.frame_rate}")
        if self.generator == "hifigan":
            rates = self.upsample_rates
            if math.prod(rates) != self.hop:
                raise ValueError(f"upsample_rates {rates} multiply to {math.prod(rates)}, not "
                                 f"the hop {self.hop}")
            if len(self.upsample_kernel_sizes) != len(rates):
                raise ValueError("one upsample kernel size per upsample rate")
            for i, (u, k) in enumerate(zip(rates, self.upsample_kernel_sizes)):
                if (k - u) % 2:
                    raise ValueError(f"upsample stage {i}: kernel {k} - rate {u} must be even")
                rest = math.prod(rates[i + 1:])
                if rest > 1 and rest % 2:
                    raise ValueError(f"upsample stage {i}: remaining rate {rest} must be even")
            if self.upsample_initial_channel // 2 ** len(rates) < 1:
                raise ValueError("upsample_initial_channel too small for the number of stages")
        elif self.istft_excitation not in ISTFT_EXCITATIONS:
            raise ValueError(f"unknown istft_excitation {self.istft_excitation!r} (known: "
                             f"{ISTFT_EXCITATIONS})")
        elif self.istft_n_fft < 2 * self.hop:
            raise ValueError(f"istft_n_fft {self.istft_n_fft} must be >= 2 * hop {self.hop}")

    def nsf_config(self) -> NsfConfig:
        """The :class:`~aisinger.nn.nsf_hifigan.NsfConfig` of the hifigan generator."""
        return NsfConfig(in_channels=self.latent,
                         upsample_initial_channel=self.upsample_initial_channel,
                         upsample_rates=tuple(self.upsample_rates),
                         upsample_kernel_sizes=tuple(self.upsample_kernel_sizes),
                         resblock=self.resblock,
                         resblock_kernel_sizes=tuple(self.resblock_kernel_sizes),
                         resblock_dilation_sizes=tuple(tuple(d) for d in
                                                       self.resblock_dilation_sizes),
                         sample_rate=self.sample_rate, harmonics=self.harmonics,
                         gin_channels=0, post_bias=True)

    def control_config(self) -> DdspConfig:
        """The DdspConfig that shapes the shared frame network."""
        return DdspConfig(sample_rate=self.sample_rate, frame_rate=self.frame_rate,
                          content_dim=self.content_dim, hidden=self.hidden, layers=self.layers,
                          kernel=self.kernel, dropout=self.dropout)


def with_legacy_defaults(stored: dict) -> dict:
    """A stored config dict completed with :data:`LEGACY_DEFAULTS` for keys it lacks."""
    return {**LEGACY_DEFAULTS, **stored}


class IstftHead(nn.Module):
    """Frame latent -> complex STFT (a gain per bin times the source's STFT, or times its phase
    alone with ``istft_excitation="phase"``, rotated by a predicted phase correction) ->
    waveform by inverse STFT at the frame hop."""

    def __init__(self, cfg: NsfVoiceConfig):
        super().__init__()
        self.n_fft, self.hop = cfg.istft_n_fft, cfg.hop
        self.keep_source_magnitude = cfg.istft_excitation == "spectrum"
        bins = cfg.istft_n_fft // 2 + 1
        self.mag = nn.Conv1d(cfg.latent, bins, 3, padding=1)
        self.phase = nn.Conv1d(cfg.latent, bins, 3, padding=1)
        with torch.no_grad():
            self.mag.bias.fill_(ISTFT_LOGMAG_BIAS)
            self.phase.weight.mul_(0.1)
            self.phase.bias.zero_()
        self.register_buffer("window", torch.hann_window(cfg.istft_n_fft), persistent=False)

    def forward(self, latent: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """latent (B, L, T), source (B, T * hop) -> (B, T * hop)."""
        t = latent.shape[2]
        n = t * self.hop
        spec = torch.stft(source, self.n_fft, self.hop, window=self.window, center=True,
                          return_complex=True)[:, :, :t + 1]  # (B, bins, T + 1)
        lat = torch.cat([latent, latent[:, :, -1:]], dim=2)  # frame edges: T + 1 STFT frames
        mag = torch.exp(self.mag(lat).clamp(max=ISTFT_LOGMAG_MAX))
        unit = spec if self.keep_source_magnitude else spec / spec.abs().clamp_min(1e-6)
        rot = torch.polar(torch.ones_like(mag), self.phase(lat))
        return torch.istft(mag * unit * rot, self.n_fft, self.hop, window=self.window,
                           center=True, length=n)


class NsfVoice(nn.Module):
    """Frame network + neural source-filter generator (see the module docstring)."""

    voice_family = "nsf"  # the "family" a voice folder of this model declares

    def __init__(self, cfg: NsfVoiceConfig = NsfVoiceConfig()):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.net = ControlNet(cfg.control_config(), n_out=cfg.latent, bias=torch.zeros(cfg.latent))
        if cfg.generator == "hifigan":
            self.gen = NsfHifigan(cfg.nsf_config())
        else:
            self.m_source = nn.Linear(cfg.harmonics, 1)
            self.gen = IstftHead(cfg)
        if cfg.source_max_hz > 0:  # starts at 0: the source equals the sines-only one
            self.upper_gain = nn.Parameter(torch.zeros(()))

    def latent(self, content: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor,
               loudness_db: torch.Tensor) -> torch.Tensor:
        """content (B,T,D); f0 (B,T) Hz > 0 (filled); voiced (B,T); loudness (B,T) dBFS ->
        (B, latent, T)."""
        return self.net(content, f0, voiced, loudness_db).transpose(1, 2)

    def source(self, f0: torch.Tensor, voiced: torch.Tensor,
               generator: torch.Generator | None = None,
               phase_offset: torch.Tensor | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """Excitation (B, T * hop): harmonics of F0 on voiced frames, noise (with a generator,
        or the given ``noise`` (B, T * hop, harmonics)) everywhere.  Overtones start at random
        phases when a generator is given without ``phase_offset`` (training), else in phase
        with the fundamental, whose phase at the first sample is ``phase_offset`` ((B,)
        cycles; chunked synthesis)."""
        cfg = self.cfg
        f = f0 * (voiced > 0).to(f0.dtype)
        init = None if generator is not None and phase_offset is None else \
            torch.zeros(f.shape[0], cfg.harmonics, dtype=torch.float64)
        sines = harmonic_excitation(f, cfg.hop, cfg.sample_rate, cfg.harmonics,
                                    generator=generator, phase_offset=phase_offset,
                                    init_phase=init, noise=noise)
        mixer = self.gen.m_source.l_linear if cfg.generator == "hifigan" else self.m_source
        src = torch.tanh(mixer(sines))[..., 0]
        if cfg.source_max_hz > 0:
            src = src + self.upper_gain * upper_harmonics(f, cfg.hop, cfg.sample_rate,
                                                          cfg.harmonics, cfg.source_max_hz,
                                                          phase_offset)
        return src

    def forward(self, content: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor,
                loudness_db: torch.Tensor, generator: torch.Generator | None = None,
                phase_offset: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """Frames (B, T, ·) -> audio (B, T * hop); ``generator`` / ``phase_offset`` / ``noise``:
        see :meth:`source`."""
        z = self.latent(content, f0, voiced, loudness_db)
        src = self.source(f0, voiced, generator, phase_offset, noise)
        if self.cfg.generator == "hifigan":
            return self.gen(z, source=src[:, None, :])[:, 0]
        return self.gen(z, src)
