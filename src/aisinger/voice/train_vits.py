"""Training the VITS-family voice model (So-VITS-SVC / RVC architecture): ``aisinger train
--model vits``.

Data: the dataset's clips (consent required, as for every training) at the model's rate ->
linear spectrogram (hop = the decoder's upsampling), HuBERT/ContentVec content, F0 + voiced
flags and frame RMS, all on the model's frame grid (the same features conversion uses).

Step: random windows of ``window_frames`` frames from random clips; the prior encoder runs on
the content/F0/volume, the posterior encoder on the spectrogram, the flow maps the posterior
sample onto the prior's space (KL loss), and the decoder synthesises a random
``segment_frames`` slice of the posterior latent, compared with the real audio by log-mel L1,
least-squares adversarial and feature-matching losses against the multi-period + scale
discriminator; with the 4.1 F0 predictor its MSE on the normalised log-F0 is added.

Fine-tuning: ``base`` is a community So-VITS ``G_0.pth`` (+ config.json; its ``enc_q`` seeds
the posterior encoder) and ``base_d`` its ``D_0.pth``; otherwise the model starts from random
weights of the given size.  Uses the GPU when one is present.  The result is a "vits"-family
voice folder (as ``aisinger voice import`` writes) plus ``training/`` with the generator,
posterior encoder and discriminator weights (safetensors) and the loss history (JSON).
Not resumable yet: a run always starts from ``base`` (or scratch).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.consent import load_consent
from aisinger.dsp.frames import FRAME_RATE, resample_f0
from aisinger.dsp.loudness import frame_rms
from aisinger.errors import AisingerError
from aisinger.features.hubert import content_on_grid, encoder_path, hubert_features
from aisinger.features.pitch import PitchConfig, estimate_f0, fill_unvoiced
from aisinger.io.audio import load
from aisinger.io.fileio import write_json
from aisinger.io.safeload import torch_load_safe
from aisinger.layout import TRAINING_DIR
from aisinger.progress import track
from aisinger.voice.community import CONTENT_ENCODERS, load_community
from aisinger.voice.folder import _save_tensors, save_vits_voice
from aisinger.voice.train_ddsp import load_clips

__all__ = ["VitsTrainConfig", "VitsTrainResult", "train_vits"]



@dataclass(frozen=True)
class VitsTrainConfig:
    """steps / batch_size / learning_rate: optimisation (AdamW, betas 0.8/0.99, as the
    originals); window_frames: frames per training window (prior, posterior, flow);
    segment_frames: frames of it the decoder synthesises; model: VitsConfig overrides for a
    model trained from scratch (``decoder`` sub-dict for NsfConfig fields; default: So-VITS
    4.1 size); disc_width: discriminator channel scale (1 = community size); c_mel / c_kl:
    loss weights; device: "cuda", "cpu" or None (GPU if present)."""

    steps: int = 2000
    batch_size: int = 4
    learning_rate: float = 1e-4
    window_frames: int = 64
    segment_frames: int = 20
    model: dict = field(default_factory=dict)
    disc_width: float = 1.0
    c_mel: float = 45.0
    c_kl: float = 1.0
    device: str | None = None


@dataclass
class VitsTrainResult:
    """What :func:`train_vits` did: voice folder, steps, last losses, device, minutes."""

    voice_dir: Path
    steps: int
    losses: dict
    device: str
    minutes: float

    def summary(self) -> str:
        """The one-line report of ``aisinger train --model vits``."""
        return (f"voice: {self.voice_dir} — {self.steps} steps on {self.device}, mel loss "
                f"{self.losses.get('mel', float('nan')):.3f}")


def _default_config(overrides: dict):
    from aisinger.nn.nsf_hifigan import NsfConfig
    from aisinger.nn.vits import VitsConfig

    o = dict(overrides)
    dec_over = o.pop("decoder", {})
    base = VitsConfig(family="sovits", content_dim=768, vol_embedding=True, f0_predictor=True,
                      gin_channels=768, n_speakers=1,
                      decoder=NsfConfig(gin_channels=768))
    dec = dataclasses.replace(base.decoder, **dec_over)
    cfg = dataclasses.replace(base, **o)
    dec = dataclasses.replace(dec, in_channels=cfg.inter_channels, gin_channels=cfg.gin_channels)
    return dataclasses.replace(cfg, decoder=dec)


def _prepare(path: Path, cfg, enc_spec: dict, enc_file: Path) -> dict:
    import torch

    x, sr = load(path, sr=cfg.sample_rate, mono=True)
    hop = cfg.hop
    t = x.shape[0] // hop
    if t < 8:
        raise AisingerError(f"{path}: too short to train on")
    x = x[:t * hop]
    n_fft = (cfg.spec_channels - 1) * 2
    xt = torch.from_numpy(x)
    pad = (n_fft - hop) // 2
    spec = torch.stft(torch.nn.functional.pad(xt[None, None], (pad, pad), mode="reflect")[0],
                      n_fft, hop, window=torch.hann_window(n_fft), center=False,
                      return_complex=True).abs()[0, :, :t]
    content = hubert_features(x, sr, enc_file, int(enc_spec["layer"]), bool(enc_spec["final_proj"]))
    content = content_on_grid(content, t, sr / hop)
    f0 = resample_f0(estimate_f0(x, sr, PitchConfig()), t, rate_in=FRAME_RATE, rate_out=sr / hop)
    uv = (f0 > 0).astype(np.float32)
    f0_in = fill_unvoiced(f0)[0] if cfg.family == "sovits" else f0
    return {"wav": xt, "spec": spec.float(), "content": torch.from_numpy(content),
            "f0": torch.from_numpy(f0_in.astype(np.float32)), "uv": torch.from_numpy(uv),
            "vol": torch.from_numpy(frame_rms(x, hop, t)), "t": t}


def _batch(clips: list[dict], cfg, tc: VitsTrainConfig, gen) -> dict:
    import torch

    w = tc.window_frames
    out = {k: [] for k in ("spec", "content", "f0", "uv", "vol", "wav", "start")}
    for _ in range(tc.batch_size):
        c = clips[int(torch.randint(len(clips), (1,), generator=gen))]
        a = int(torch.randint(max(1, c["t"] - w + 1), (1,), generator=gen))
        n = min(w, c["t"])
        sl = slice(a, a + n)

        def fit(x, dim_last=True):  # pad short clips by repetition of the last frame
            if x.shape[-1 if dim_last else 0] >= w:
                return x
            reps = w - x.shape[-1 if dim_last else 0]
            if dim_last:
                return torch.cat([x, x[..., -1:].expand(*x.shape[:-1], reps)], dim=-1)
            return torch.cat([x, x[-1:].expand(reps, *x.shape[1:])], dim=0)

        out["spec"].append(fit(c["spec"][:, sl]))
        out["content"].append(fit(c["content"][sl], dim_last=False))
        for k in ("f0", "uv", "vol"):
            out[k].append(fit(c[k][sl]))
        out["wav"].append(fit(c["wav"][a * cfg.hop:(a + n) * cfg.hop]))
        out["start"].append(int(torch.randint(w - tc.segment_frames + 1, (1,), generator=gen)))
    b = {k: torch.stack(v) for k, v in out.items() if k != "start"}
    b["start"] = out["start"]
    return b


def _load_base(base: Path, base_config: Path | None):
    """(VitsConfig, generator state, enc_q state) from a community So-VITS G_0."""
    from aisinger.nn.vits import fold_weight_norm

    cm = load_community(base, base_config)
    doc = torch_load_safe(base)
    raw = doc.get("model") if isinstance(doc, dict) else None
    enc_q = {}
    if isinstance(raw, dict):
        enc_q = fold_weight_norm({k[6:]: v for k, v in raw.items() if k.startswith("enc_q.")})
    return cm.config, cm.model.state_dict(), enc_q, cm.encoder


def train_vits(dataset_dir: str | Path, out_dir: str | Path,
               config: VitsTrainConfig = VitsTrainConfig(), base: str | Path | None = None,
               base_config: str | Path | None = None, base_d: str | Path | None = None,
               content_encoder: str | Path | None = None, seed: int = 0) -> VitsTrainResult:
    """Train (or fine-tune) a VITS-family voice; see the module docstring."""
    import torch

    from aisinger.nn.vits import SvcGenerator, fold_weight_norm
    from aisinger.nn.vits_train import (MelLoss, MultiPeriodDiscriminator, PosteriorEncoder,
                                        discriminator_loss, feature_matching_loss,
                                        generator_adversarial_loss, kl_loss)

    t_start = time.time()
    name, train_set, _val, consent = load_clips(dataset_dir)
    out = Path(out_dir)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    enc_q_state = {}
    if base is not None:
        cfg, g_state, enc_q_state, enc_spec = _load_base(Path(base), base_config)
    else:
        try:
            cfg = _default_config(config.model)
        except (TypeError, ValueError) as exc:
            raise AisingerError(f"vits training: bad model settings ({exc})") from None
        if cfg.content_dim not in CONTENT_ENCODERS:
            raise AisingerError(f"vits training: content_dim must be 256 or 768, got "
                                f"{cfg.content_dim}")
        g_state, enc_spec = None, dict(CONTENT_ENCODERS[cfg.content_dim])
    if config.segment_frames > config.window_frames:
        raise AisingerError("vits training: segment_frames must not exceed window_frames")
    enc_file = encoder_path(enc_spec, content_encoder)
    clips = [_prepare(p, cfg, enc_spec, enc_file) for p in train_set]

    torch.manual_seed(seed)
    gen = SvcGenerator(cfg).to(device)
    if g_state is not None:
        gen.load_state_dict(g_state)
    enc_q = PosteriorEncoder(cfg.spec_channels, cfg.inter_channels, cfg.hidden_channels,
                             cfg.gin_channels).to(device)
    if enc_q_state:
        try:
            enc_q.load_state_dict({k: v.float() for k, v in enc_q_state.items()})
        except RuntimeError as exc:
            raise AisingerError(f"{base}: enc_q weights do not fit "
                                f"({str(exc).splitlines()[0][:120]})") from None
    disc = MultiPeriodDiscriminator(config.disc_width).to(device)
    if base_d is not None:
        doc = torch_load_safe(base_d)
        d_state = doc.get("model") if isinstance(doc, dict) else None
        if not isinstance(d_state, dict):
            raise AisingerError(f"{base_d}: not a D_*.pth checkpoint (no 'model' state dict)")
        try:
            disc.load_state_dict({k: v.float() for k, v in fold_weight_norm(
                {k[7:] if k.startswith("module.") else k: v for k, v in d_state.items()}).items()})
        except RuntimeError as exc:
            raise AisingerError(f"{base_d}: discriminator weights do not fit (disc_width "
                                f"{config.disc_width}; {str(exc).splitlines()[0][:120]})") from None
    mel_loss = MelLoss(cfg.sample_rate, (cfg.spec_channels - 1) * 2, cfg.hop).to(device)
    opt_g = torch.optim.AdamW(list(gen.parameters()) + list(enc_q.parameters()),
                              config.learning_rate, betas=(0.8, 0.99), eps=1e-9)
    opt_d = torch.optim.AdamW(disc.parameters(), config.learning_rate, betas=(0.8, 0.99),
                              eps=1e-9)
    rng = torch.Generator().manual_seed(seed)
    history = []
    seg = config.segment_frames
    gen.train(), enc_q.train(), disc.train()
    for step in track(range(config.steps), total=config.steps, description="train vits"):
        b = {k: (v.to(device) if torch.is_tensor(v) else v)
             for k, v in _batch(clips, cfg, config, rng).items()}
        bsz = b["f0"].shape[0]
        sid = torch.zeros(bsz, dtype=torch.long, device=device)
        g = gen.speaker(sid)
        m_p, logs_p, mask = gen.prior(b["content"], b["f0"], sid, uv=b["uv"],
                                      vol=b["vol"] if cfg.vol_embedding else None)
        z, m_q, logs_q = enc_q(b["spec"], mask, g, generator=rng)
        z_p = gen.flow(z, mask, g=g)
        z_s = torch.stack([z[i, :, s:s + seg] for i, s in enumerate(b["start"])])
        f0_s = torch.stack([b["f0"][i, s:s + seg] for i, s in enumerate(b["start"])])
        y = torch.stack([b["wav"][i, s * cfg.hop:(s + seg) * cfg.hop]
                         for i, s in enumerate(b["start"])])[:, None]
        y_hat = gen.dec(z_s, f0_s if cfg.use_f0 else None, g=g, generator=rng)
        # discriminator
        loss_d = discriminator_loss(disc(y, y_hat.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # generator
        outs = disc(y, y_hat)
        l_mel = mel_loss(y[:, 0], y_hat[:, 0])
        l_kl = kl_loss(z_p, logs_q, m_p, logs_p, mask)
        l_adv = generator_adversarial_loss(outs)
        l_fm = feature_matching_loss(outs)
        loss_g = l_adv + l_fm + config.c_mel * l_mel + config.c_kl * l_kl
        l_f0 = torch.zeros((), device=device)
        if cfg.family == "sovits" and cfg.f0_predictor:
            x_in = gen._sovits_input(b["content"], b["uv"],
                                     b["vol"] if cfg.vol_embedding else None, mask)
            lf0 = 2595.0 * torch.log10(1.0 + b["f0"][:, None] / 700.0) / 500.0
            n = b["uv"].sum(dim=1, keepdim=True).clamp_min(1.0)
            norm = lf0 - ((lf0[:, 0] * b["uv"]).sum(1, keepdim=True) / n)[:, :, None]
            l_f0 = torch.nn.functional.mse_loss(gen.f0_decoder(x_in, norm, mask, g), norm)
            loss_g = loss_g + l_f0
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        rec = {"step": step + 1, **{k: float(v.detach()) for k, v in (
            ("d", loss_d), ("mel", l_mel), ("kl", l_kl), ("adv", l_adv), ("fm", l_fm),
            ("f0", l_f0))}}
        if not all(math.isfinite(v) for v in rec.values()):
            raise AisingerError(f"vits training diverged at step {step + 1} ({rec})")
        history.append(rec)
    gen.eval()
    gen = gen.cpu()
    minutes = (time.time() - t_start) / 60
    last = history[-1] if history else {}
    meta = {"source": f"aisinger-vits-{cfg.family}", "content_encoder": enc_spec,
            "speakers": {name: 0}, "speaker": 0}
    card = {"name": name,
            "training": {"steps": config.steps, "minutes": minutes, "device": device.type,
                         "base": Path(base).name if base else None},
            "model": {"decoder": f"vits/{cfg.family}", "sample_rate": cfg.sample_rate,
                      "parameters": sum(p.numel() for p in gen.parameters())},
            "losses": {k: v for k, v in last.items() if k != "step"}}

    rec = load_consent(consent)
    card["consent"] = (f"{rec.voice_owner} ({rec.scope}, {rec.date}, uses: "
                       f"{', '.join(rec.permitted_uses)})")
    save_vits_voice(out, gen, meta, card, consent=consent)
    tdir = out / TRAINING_DIR
    tdir.mkdir(parents=True, exist_ok=True)
    _save_tensors(tdir / "generator.safetensors",
                  {**{k: v.float() for k, v in gen.state_dict().items()},
                   **{f"enc_q.{k}": v.float().cpu() for k, v in enc_q.state_dict().items()}})
    _save_tensors(tdir / "discriminator.safetensors",
                  {k: v.float().cpu() for k, v in disc.state_dict().items()})
    write_json(tdir / "history.json", {"config": dataclasses.asdict(config), "history": history})
    return VitsTrainResult(voice_dir=out, steps=config.steps, losses=card["losses"],
                           device=device.type, minutes=minutes)
