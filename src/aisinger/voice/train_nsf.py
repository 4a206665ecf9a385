"""Training the "nsf" voice model (neural source-filter decoder, :mod:`aisinger.nn.nsf_voice`).

``aisinger train DATASET -o VOICE --model nsf`` / :func:`train_nsf`.  Same data path, resume
and determinism contract as the DDSP trainer (:mod:`aisinger.voice.train_ddsp`, whose clip loading,
batching, checkpoint and voice-writing helpers are reused):

* features (Whisper-base content, F0, loudness at 100 frames/s, cached) + audio at the model
  rate; each step draws ``batch_size`` random segments of ``segment_s``;
* loss: ``c_mel`` × log-mel L1 + ``c_stft`` × multi-resolution STFT loss; from step
  ``adversarial_from`` on, least-squares adversarial + feature-matching losses against the
  project's scale + period discriminators (:class:`aisinger.nn.vits_train.
  MultiPeriodDiscriminator`, channel width ``disc_width``);
* generator and discriminator are one :class:`torch.nn.ModuleDict` (``g``, ``d``) with one
  AdamW optimizer (two parameter groups; each update steps only the parameters that received
  a gradient), so the whole state is one atomic checkpoint file
  (``VOICE/training/checkpoint.safetensors``) — kill -9 safe, rerun to resume, bit-identical
  to an uninterrupted run on the same machine and thread count;
* ``init``: ``"base"`` (the default: the committed base model, hash-checked, see
  :mod:`aisinger.voice.base_model`; without ``model`` overrides the voice takes the base's
  model config),
  a base-model file (``*.safetensors`` written by :func:`aisinger.voice.base_model.save_base`), a
  voice folder of the nsf family (generator only), or None (random init from the seed).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError
from aisinger.features import FeatureConfig
from aisinger.features.pitch import PitchConfig
from aisinger.io.audio import save as save_audio
from aisinger.io.fileio import atomic_path
from aisinger.progress import track
from aisinger.voice.base_model import base_model_config, init_from
from aisinger.voice.train_ddsp import (CHECKPOINT_FILE, LOSS_PNG, LOSS_SMOOTH_STEPS,
    SAMPLES_DIR, TRAINING_DIR, TrainResult, VALIDATION_CLIPS, VALIDATION_SECONDS, _batch,
    _load_checkpoint, _plot_losses, _save_checkpoint, _step_seed, _write_voice, prepare_dataset)

__all__ = ["NsfTrainConfig", "train_nsf", "model_config", "build_training_model", "mel_loss_fn",
           "CONTENT_PATH"]

MEL_N_FFT_S = 1024 / 24000  # log-mel loss window (1024 samples at 24 kHz; scaled with the rate)
MEL_BANDS = 80
MINUTES_PNG = "loss_minutes.png"
CONTENT_PATH = ("net.content_norm", "net.content_proj")
"""The first layer of the frame network, which reads the content features: the ``freeze``
measured in docs/voice-model.md ("Session 6"): on quick voices it made one target more natural
and the other less (DistillMOS +0.13 / -0.07 from base v4) with no clear change of CER, so it
is not the default."""


def plot_minutes(path: Path, state: dict, label: str = "") -> None:
    """Training-time curve: smoothed training and validation log-mel L1 vs training minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots(figsize=(7, 3.5))
    if state.get("curve"):
        _, m, v = np.array(state["curve"]).T
        ax.plot(m, v, label=f"train{label}")
    if state.get("val_minutes"):
        _, m, v = np.array(state["val_minutes"]).T
        ax.plot(m, v, "o-", label=f"validation{label}")
    ax.set_xlabel("training minutes (wall time)")
    ax.set_ylabel("log-mel L1")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


@dataclass(frozen=True)
class NsfTrainConfig:
    """Training settings of the nsf voice model.

    steps: total steps (resuming continues up to this); batch_size / segment_s: segments per
    step and their length; learning_rate: AdamW (betas 0.8/0.99) for both networks;
    checkpoint_every / validate_every: in steps; pitch_method: F0 method of the features;
    c_mel / c_stft: weights of the log-mel L1 and multi-resolution STFT losses;
    adversarial_from: first step with adversarial + feature-matching losses (-1 = never);
    c_adv / c_fm: their weights; disc_width: discriminator channel scale; model:
    NsfVoiceConfig overrides; init: see the module docstring; freeze: generator parameter-name
    prefixes kept at their initial values (fine-tuning only the rest of a base; e.g.
    :data:`CONTENT_PATH`); default: nothing frozen.
    """

    steps: int = 3000
    batch_size: int = 4
    segment_s: float = 0.5
    learning_rate: float = 5e-4
    checkpoint_every: int = 100
    validate_every: int = 500
    pitch_method: str = "fcpe"
    c_mel: float = 45.0
    c_stft: float = 2.5
    adversarial_from: int = 0
    c_adv: float = 1.0
    c_fm: float = 2.0
    disc_width: float = 0.25
    model: dict = field(default_factory=dict)
    init: str | None = "base"
    freeze: tuple = ()

    def to_dict(self) -> dict:
        """JSON-able dict."""
        return asdict(self)


def model_config(config: NsfTrainConfig):
    """The :class:`~aisinger.nn.nsf_voice.NsfVoiceConfig` a training with ``config`` uses: its
    ``model`` overrides, or without any the config stored in the base ``init`` names (so a
    later change of the code's defaults cannot make a base unusable), else the defaults."""
    from aisinger.nn.nsf_voice import NsfVoiceConfig

    try:
        return NsfVoiceConfig.from_dict(dict(config.model) or base_model_config(config.init)
                                        or {})
    except (TypeError, ValueError) as exc:
        raise AisingerError(f"train: bad nsf model config ({exc})") from None


def build_training_model(model_cfg, disc_width: float):
    """ModuleDict {"g": NsfVoice, "d": MultiPeriodDiscriminator} (the unit that is trained,
    checkpointed and stored in a base-model file)."""
    from torch import nn

    from aisinger.nn.nsf_voice import NsfVoice
    from aisinger.nn.vits_train import MultiPeriodDiscriminator

    return nn.ModuleDict({"g": NsfVoice(model_cfg), "d": MultiPeriodDiscriminator(disc_width)})


def _freeze(g, prefixes) -> None:
    """No gradient (so no AdamW update, weight decay included) for the generator parameters
    whose names start with one of ``prefixes``; a prefix naming none is an error."""
    names = [n for n, _ in g.named_parameters()]
    tops = ", ".join(sorted({n.split(".")[0] for n in names}))
    for pre in prefixes:
        if not any(n.startswith(pre) for n in names):
            raise AisingerError(f"train: freeze {pre!r} names no parameter of the nsf model "
                                f"(they start with {tops})")
    for n, p in g.named_parameters():
        if any(n.startswith(pre) for pre in prefixes):
            p.requires_grad_(False)


def mel_loss_fn(model_cfg):
    """The log-mel L1 used for training and validation at the model rate."""
    from aisinger.nn.vits_train import MelLoss

    n_fft = int(2 ** round(np.log2(MEL_N_FFT_S * model_cfg.sample_rate)))
    return MelLoss(model_cfg.sample_rate, n_fft, model_cfg.hop, MEL_BANDS)


def _validation(model, clips, model_cfg, mel, seed: int):
    """(mean log-mel L1 over the validation excerpts, first excerpt's audio)."""
    import torch


    frames = int(VALIDATION_SECONDS * model_cfg.frame_rate)
    losses, first = [], None
    g = model["g"]
    g.eval()
    with torch.no_grad():
        for c in clips[:VALIDATION_CLIPS]:
            n = min(frames, c.f0.shape[0])
            # with the source noise (fixed seed), as in training and conversion: without it
            # unvoiced frames have no excitation at all
            y = g(*(torch.from_numpy(a[:n])[None] for a in (c.content, c.f0, c.voiced,
                                                             c.loudness)),
                  generator=torch.Generator().manual_seed(seed))
            target = torch.from_numpy(c.audio[:n * model_cfg.hop])[None]
            losses.append(float(mel(target, y)))
            if first is None:
                first = y[0].numpy()
    g.train()
    return float(np.mean(losses)), first


def train_nsf(dataset_dir: str | Path | None, out_dir: str | Path,
              config: NsfTrainConfig = NsfTrainConfig(), max_minutes: float | None = None,
              seed: int = 0, clips=None, write_voice: bool = True):
    """Train (or resume) an nsf voice on a dataset; returns :class:`aisinger.voice.train_ddsp.TrainResult`.

    ``clips``: (name, train clips, validation clips, consent) prepared by the caller instead of
    a dataset folder (the base-model recipe passes its multi-voice clips); ``write_voice``:
    refresh the voice folder at validations and at the end.
    """
    import torch

    from aisinger.nn.ddsp import multi_resolution_stft_loss
    from aisinger.nn.vits_train import (discriminator_loss, feature_matching_loss,
                                        generator_adversarial_loss)

    model_cfg = model_config(config)
    features_cfg = FeatureConfig(pitch=PitchConfig(method=config.pitch_method))
    if clips is None:
        name, train_clips, val_clips, consent = prepare_dataset(dataset_dir, features_cfg,
                                                                model_cfg)
    else:
        name, train_clips, val_clips, consent = clips
    out = Path(out_dir)
    work = out / TRAINING_DIR
    ckpt = work / CHECKPOINT_FILE

    torch.manual_seed(seed)
    model = build_training_model(model_cfg, config.disc_width)
    _freeze(model["g"], config.freeze)
    g_params = list(model["g"].parameters())
    d_params = list(model["d"].parameters())
    n_params = sum(p.numel() for p in g_params)
    optimizer = torch.optim.AdamW([{"params": g_params}, {"params": d_params}],
                                  lr=config.learning_rate, betas=(0.8, 0.99))
    state = {"step": 0, "seconds": 0.0, "history": [], "val_history": [],
             "config": config.to_dict(), "seed": seed, "init": None, "family": "nsf",
             "model_config": json.loads(json.dumps(model_cfg.to_dict()))}  # tuples as lists
    if ckpt.exists():
        saved = _load_checkpoint(ckpt, model, optimizer)
        if saved.get("seed") != seed or saved.get("model_config") != state["model_config"] \
                or saved.get("config", {}).get("init") != config.init:
            raise AisingerError(f"{ckpt}: was trained with another seed, model config or "
                                f"initialisation; use a new output folder")
        state.update(saved, config=config.to_dict())
    elif config.init is not None:

        state["init"] = init_from(model, config.init, model_cfg, config.disc_width)
    state.setdefault("runs", []).append({"start_step": state["step"]})
    model.train()
    mel = mel_loss_fn(model_cfg)
    hop = model_cfg.hop
    frames = int(round(config.segment_s * model_cfg.frame_rate))
    start = last_time = time.monotonic()
    step0 = state["step"]
    steps = range(step0, config.steps)

    def checkpoint() -> None:
        nonlocal last_time
        now = time.monotonic()
        state["seconds"] += now - last_time
        last_time = now
        recent = [x[1] for x in state["history"][-LOSS_SMOOTH_STEPS:]]
        if recent:  # training-time curve: (step, minutes, smoothed mel L1)
            state.setdefault("curve", []).append(
                [state["step"], round(state["seconds"] / 60, 3), round(float(np.mean(recent)), 5)])
        _save_checkpoint(ckpt, model, optimizer, state)

    def write() -> None:
        if write_voice:
            _write_voice(out, model["g"], features_cfg, name, state, train_clips, val_clips,
                         consent, seed, n_params)

    for step in track(steps, total=len(steps), description=f"training {name} (nsf)"):
        if max_minutes is not None and time.monotonic() - start > max_minutes * 60:
            break
        torch.manual_seed(_step_seed(seed, step))
        gen = torch.Generator().manual_seed(_step_seed(seed, step))
        rng = np.random.default_rng([seed, step])
        b = _batch(train_clips, rng, frames, config.batch_size, hop)
        y = b["audio"]
        y_hat = model["g"](b["content"][:, :frames], b["f0"][:, :frames],
                           b["voiced"][:, :frames], b["loudness"][:, :frames], generator=gen)
        recon = config.c_mel * mel(y, y_hat) + config.c_stft * multi_resolution_stft_loss(y_hat, y)
        record = {"recon": float(recon.detach())}
        adversarial = 0 <= config.adversarial_from <= step
        if adversarial:
            outs = model["d"](y[:, None], y_hat.detach()[:, None])
            d_loss = discriminator_loss(outs)
            optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            optimizer.step()  # only the discriminator has gradients
            outs = model["d"](y[:, None], y_hat[:, None])
            adv = generator_adversarial_loss(outs)
            fm = feature_matching_loss(outs)
            loss = recon + config.c_adv * adv + config.c_fm * fm
            record.update(d=float(d_loss.detach()), adv=float(adv.detach()),
                          fm=float(fm.detach()))
        else:
            loss = recon
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in d_params:
            p.grad = None  # the generator update leaves the discriminator alone
        optimizer.step()
        state["step"] = step + 1
        state["history"].append([step + 1, round(record["recon"] / config.c_mel, 5)])
        state.setdefault("parts", []).append([step + 1] + [round(record.get(k, float("nan")), 4)
                                                            for k in ("recon", "d", "adv", "fm")])
        done = state["step"]
        if done % config.validate_every == 0 or done == config.steps:
            vloss, audio = _validation(model, val_clips, model_cfg, mel, seed)
            state["val_history"].append([done, round(vloss, 5)])
            state.setdefault("val_minutes", []).append(
                [done, round((state["seconds"] + time.monotonic() - last_time) / 60, 3),
                 round(vloss, 5)])
            save_audio(work / SAMPLES_DIR / f"step_{done:06d}.wav", audio, model_cfg.sample_rate)
            _plot_losses(work / LOSS_PNG, state["history"], state["val_history"])
            checkpoint()
            plot_minutes(work / MINUTES_PNG, state)
            write()
        elif done % config.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    if write_voice and (not (out / "model.safetensors").exists() or state["step"] != step0):
        _plot_losses(work / LOSS_PNG, state["history"], state["val_history"])
        write()
    recent = [x[1] for x in state["history"][-LOSS_SMOOTH_STEPS:]]
    return TrainResult(voice_dir=out, step=state["step"], finished=state["step"] >= config.steps,
                       train_loss=float(np.mean(recent)) if recent else float("nan"),
                       validation_loss=state["val_history"][-1][1] if state["val_history"]
                       else None, minutes=state["seconds"] / 60)
