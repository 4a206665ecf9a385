"""Training a voice model on CPU: ``aisinger train DATASET -o VOICE``.

Recipe (lean, CPU): features (Whisper-base content, F0, loudness at 100 frames/s) are
extracted once per clip through the feature cache; each step draws a small batch of short
random segments (``segment_s``) and trains the DDSP decoder (:mod:`aisinger.nn.ddsp`) with a
multi-resolution STFT loss at the model rate (24 kHz by default).

Resuming and determinism
------------------------
The whole training state (weights, Adam moments, step, loss history, elapsed time) is one
safetensors file ``VOICE/training/checkpoint.safetensors`` (optimizer state flattened into
tensors + JSON metadata) written atomically every ``checkpoint_every`` steps and on exit.  A
killed run (even ``kill -9``) restarts from the last checkpoint.  All randomness of step ``s``
(segment choice, dropout, noise) is derived from ``(seed, s)`` alone, so an interrupted and
resumed run ends bit-identical to an uninterrupted one on the same machine/thread count.

Outputs in ``VOICE/``: the voice files (:mod:`aisinger.voice.folder`, refreshed at every validation and
at the end), ``training/loss.png``, ``training/samples/step_NNNNNN.wav`` (validation audio).
"""

from __future__ import annotations

import math
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aisinger.consent import check_scope, load_consent
from aisinger.errors import AisingerError
from aisinger.features import FeatureConfig, extract
from aisinger.features.pitch import PitchConfig, f0_to_note_name, fill_unvoiced
from aisinger.io.audio import info, load, save as save_audio
from aisinger.io.fileio import atomic_path, sha256_file
from aisinger.layout import CONSENT_FILE, DATASET_JSON, TRAINING_DIR, VOICE_MODEL
from aisinger.progress import track
from aisinger.voice.folder import save_voice

__all__ = ["TrainConfig", "TrainResult", "train", "load_clips", "prepare_dataset",
           "CHECKPOINT_FILE"]

log = logging.getLogger("aisinger.voice.train_ddsp")

CHECKPOINT_FILE = "checkpoint.safetensors"
SAMPLES_DIR = "samples"
LOSS_PNG = "loss.png"
INDEX_MAX_FRAMES = 8000  # training content frames kept in index.safetensors (float16, ~8 MB)
VALIDATION_SECONDS = 4.0  # length of each validation excerpt
VALIDATION_CLIPS = 2  # validation excerpts scored / written
LOSS_SMOOTH_STEPS = 50  # window of the running mean reported as the final training loss
MAX_CLIP_SECONDS = 60.0  # longest accepted training clip (the dataset builder makes 2-15 s)
MIN_VOICED_SECONDS = 1.0  # training needs at least this much voiced singing
SEED_STRIDE = 1_000_003  # prime; mixes seed and step into one torch seed


@dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    steps: total optimisation steps (resuming continues up to this); batch_size: segments per
    step; segment_s: segment length in seconds; learning_rate: Adam step size;
    checkpoint_every / validate_every: in steps; model: DdspConfig as a dict (None = defaults);
    pitch_method: F0 method of the training features; fft_sizes: STFT loss resolutions;
    init: starting weights: None (random, from the seed) or the path of a voice folder /
    ``model.safetensors`` trained with the same model config (fine-tuning from another voice).
    """

    steps: int = 3000
    batch_size: int = 4
    segment_s: float = 1.0
    learning_rate: float = 1e-3
    checkpoint_every: int = 100
    validate_every: int = 500
    pitch_method: str = "fcpe"
    fft_sizes: tuple[int, ...] = (2048, 512, 128)
    model: dict = field(default_factory=dict)
    init: str | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "validate_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AisingerError(f"train: {name} must be a whole number >= 1, got {v!r}")
        for name in ("segment_s", "learning_rate"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise AisingerError(f"train: {name} must be a number > 0, got {v!r}")

    def to_dict(self) -> dict:
        """JSON-able dict."""
        d = asdict(self)
        d["fft_sizes"] = list(self.fft_sizes)
        return d


@dataclass
class TrainResult:
    """What :func:`train` did: voice folder, steps done, whether it finished all steps, the
    last smoothed training loss and validation loss, minutes of training so far."""

    voice_dir: Path
    step: int
    finished: bool
    train_loss: float
    validation_loss: float | None
    minutes: float

    def summary(self) -> str:
        """The one-line report of ``aisinger train``."""
        state = "finished" if self.finished else "paused (run again to continue)"
        return (f"voice: {self.voice_dir} — step {self.step}, {state}, train loss "
                f"{self.train_loss:.3f}")


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class _Clip:
    """One clip on the frame grid: content (T, D), f0 (T,) filled Hz, voiced (T,), loud (T,)
    dBFS, raw_f0 (T,) Hz (0 = unvoiced), audio (T * hop,) at the model rate."""

    path: Path
    content: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    loudness: np.ndarray
    raw_f0: np.ndarray
    audio: np.ndarray


def load_clips(dataset_dir: str | Path) -> tuple[str, list[Path], list[Path], Path | None]:
    """(name, train clip paths, validation clip paths, consent.json) of a dataset.

    A dataset is a folder with ``dataset.json`` (from ``aisinger dataset build``: clips with
    ``file`` and ``split``) or, failing that, audio files (``clips/*.wav`` or ``*.wav``); then
    every clip trains and the first also validates.  Either way it must hold ``consent.json``,
    a valid consent record that permits training: a voice without one cannot be trained.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise AisingerError(f"{root}: dataset folder not found")
    doc_path = root / DATASET_JSON
    consent = root / CONSENT_FILE
    if not consent.is_file():
        raise AisingerError(f"{root}: no consent.json — a voice cannot be trained without its "
                            "owner's consent; build the dataset with 'aisinger dataset build "
                            "… --consent FILE' (or --consent-self for your own voice)")
    check_scope(load_consent(consent), "train")
    if doc_path.is_file():
        try:
            doc = json.loads(doc_path.read_text(encoding="utf-8"))
            clips = doc["clips"]
            name = str(doc.get("name") or root.name)
            train_set = [root / c["file"] for c in clips if c.get("split", "train") == "train"]
            val_set = [root / c["file"] for c in clips if c.get("split") == "validation"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AisingerError(f"{doc_path}: unreadable dataset description "
                                f"({type(exc).__name__}: {str(exc)[:80]})") from None
    else:
        files = sorted((root / "clips").glob("*.wav")) or sorted(root.glob("*.wav"))
        name, train_set, val_set = root.name, files, files[:1]
    for p in train_set + val_set:
        if not p.is_file():
            raise AisingerError(f"{p}: clip listed in the dataset is missing")
    if not train_set:
        raise AisingerError(f"{root}: no training clips (dataset.json or *.wav)")
    return name, train_set, val_set or train_set[:1], consent


def _check_lengths(paths: list[Path]) -> None:
    """Refuse unreadable clips and clips longer than MAX_CLIP_SECONDS (header only, so a
    2-hour file costs no memory): a dataset holds short clips (``aisinger dataset build``)."""
    for p in paths:
        seconds = info(p).duration
        if seconds > MAX_CLIP_SECONDS:
            raise AisingerError(f"{p}: {seconds / 60:.1f} min long; training clips must be at "
                                f"most {MAX_CLIP_SECONDS:.0f} s — slice long recordings with "
                                f"'aisinger dataset build'")


def _prepare_clip(path: Path, features_cfg, model_cfg) -> _Clip:
    """Features (cached) + audio at the model rate, cut/padded to T * hop samples."""
    feats = extract(path, config=features_cfg, progress=False)
    audio, _ = load(path, sr=model_cfg.sample_rate, mono=True)
    n = feats.n_frames * model_cfg.hop
    audio = np.pad(audio, (0, max(0, n - audio.shape[0])))[:n].astype(np.float32)
    f0, voiced = fill_unvoiced(feats.f0)
    return _Clip(path, feats.content.astype(np.float32), f0, voiced,
                 feats.loudness_db.astype(np.float32), feats.f0.astype(np.float32), audio)


def _batch(clips: list[_Clip], rng: np.random.Generator, frames: int, batch_size: int,
           hop: int):
    """Random segments: content (B, L+1, D), f0, voiced, loud (B, L+1), audio (B, L*hop).
    Clips are drawn in proportion to their length; short clips are edge-padded."""
    import torch

    lengths = np.array([c.f0.shape[0] for c in clips], dtype=np.float64)
    which = rng.choice(len(clips), size=batch_size, p=lengths / lengths.sum())
    out = {k: [] for k in ("content", "f0", "voiced", "loudness", "audio")}
    for i in which:
        c = clips[i]
        t = c.f0.shape[0]
        a = int(rng.integers(0, max(1, t - frames - 1) + 1)) if t > frames + 1 else 0
        sl = _frame_slice(t, a, frames + 1)
        out["content"].append(c.content[sl])
        out["f0"].append(c.f0[sl])
        out["voiced"].append(c.voiced[sl])
        out["loudness"].append(c.loudness[sl])
        seg = c.audio[a * hop:(a + frames) * hop]
        out["audio"].append(np.pad(seg, (0, frames * hop - seg.shape[0])))
    return {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}


def _frame_slice(t: int, a: int, n: int) -> np.ndarray:
    """Indices a..a+n-1 clamped into [0, t) (edge padding)."""
    return np.clip(np.arange(a, a + n), 0, t - 1)


# ---------------------------------------------------------------------------------------------
# checkpoint


def _save_checkpoint(path: Path, model, optimizer, state: dict) -> None:
    """Weights + flattened Adam state as tensors, everything else as JSON metadata (atomic)."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in
               model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict = {}
    for idx, st in opt["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().clone().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    meta = {"state": json.dumps(state), "param_groups": json.dumps(opt["param_groups"]),
            "optim_scalars": json.dumps(scalars)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_checkpoint(path: Path, model, optimizer) -> dict:
    """Restore model and optimizer from :func:`_save_checkpoint`; returns the JSON state."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = json.loads(meta["state"])
        groups = json.loads(meta["param_groups"])
        scalars = json.loads(meta["optim_scalars"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise AisingerError(f"{path}: unreadable checkpoint ({str(exc)[:100]}); delete it to "
                            f"start over") from None
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError:
        raise AisingerError(f"{path}: checkpoint does not match the model config; delete it "
                            f"or train into a new folder") from None
    opt_state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    for k, v in scalars.items():
        idx, name = k.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    return state


# ---------------------------------------------------------------------------------------------
# training


def _init_weights(model, init: str) -> str:
    """Load starting weights into ``model``; returns a description for the model card.

    init: a voice folder or a safetensors file of weights (they must match the config)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(init)
    if path.is_dir():
        path = path / VOICE_MODEL
    if not path.is_file():
        raise AisingerError(f"{path}: initial weights not found (TrainConfig.init={init!r})")
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AisingerError(f"{path}: not a readable safetensors file ({str(exc)[:80]})") from None
    own = model.state_dict()
    bad = sorted(k for k in own if k not in weights or weights[k].shape != own[k].shape)
    if bad or set(weights) - set(own):
        raise AisingerError(f"{path}: initial weights do not match the model config "
                            f"({(bad or sorted(set(weights) - set(own)))[0]}); use the "
                            f"model config they were trained with, or init=None")
    model.load_state_dict(weights)
    return f"{path} sha256:{sha256_file(path)[:16]}"


def _step_seed(seed: int, step: int) -> int:
    return (seed * SEED_STRIDE + step) % (2 ** 63)


def _validation_loss(model, clips: list[_Clip], cfg, fft_sizes, seed: int):
    """(mean STFT loss over the validation excerpts, first excerpt's audio (n,))."""
    import torch

    from aisinger.nn.ddsp import multi_resolution_stft_loss

    hop = cfg.hop
    frames = int(VALIDATION_SECONDS * cfg.frame_rate)
    losses, first = [], None
    model.eval()
    with torch.no_grad():
        for c in clips[:VALIDATION_CLIPS]:
            n = min(frames, c.f0.shape[0] - 1)
            sl = slice(0, n + 1)
            gen = torch.Generator().manual_seed(seed)
            y = model(torch.from_numpy(c.content[sl])[None], torch.from_numpy(c.f0[sl])[None],
                      torch.from_numpy(c.voiced[sl])[None],
                      torch.from_numpy(c.loudness[sl])[None], n_samples=n * hop, generator=gen)
            target = torch.from_numpy(c.audio[:n * hop])[None]
            losses.append(float(multi_resolution_stft_loss(y, target, fft_sizes)))
            if first is None:
                first = y[0].numpy()
    model.train()
    return float(np.mean(losses)), first


def _plot_losses(path: Path, history: list, val_history: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    if history:
        steps, losses = np.array(history).T
        ax.plot(steps, losses, lw=0.5, alpha=0.4, label="train")
        k = min(LOSS_SMOOTH_STEPS, len(losses))
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, label=f"train (mean of {k})")
    if val_history:
        vs, vl = np.array(val_history).T
        ax.plot(vs, vl, "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("multi-resolution STFT loss")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _pitch_range(clips: list[_Clip]) -> dict:
    f0 = np.concatenate([c.raw_f0[c.raw_f0 > 0] for c in clips] or [np.zeros(0)])
    if f0.size == 0:
        return {}
    lo, hi = (float(x) for x in np.percentile(f0, [5, 95]))
    return {"low_hz": round(lo, 1), "high_hz": round(hi, 1), "low_note": f0_to_note_name(lo),
            "high_note": f0_to_note_name(hi)}


def _build_index(clips: list[_Clip], seed: int) -> np.ndarray:
    """Up to INDEX_MAX_FRAMES voiced training content frames (deterministic subsample)."""
    frames = np.concatenate([c.content[c.voiced > 0] for c in clips] or
                            [np.zeros((0, clips[0].content.shape[1]), np.float32)])
    if frames.shape[0] == 0:
        frames = np.concatenate([c.content for c in clips])
    if frames.shape[0] > INDEX_MAX_FRAMES:
        keep = np.sort(np.random.default_rng(seed).choice(frames.shape[0], INDEX_MAX_FRAMES,
                                                          replace=False))
        frames = frames[keep]
    return frames


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def _progress_line(state: dict, target_steps: int, elapsed_s: float,
                   max_minutes: float | None, new_validation: bool) -> str:
    """One training progress line: ``step 985/3000 · 3:12/4:00 (time budget) · loss 0.1234``,
    plus ``· validation 0.2345`` when a validation was just run (not repeated after)."""
    parts = [f"step {state['step']}/{target_steps}"]
    if max_minutes is not None:
        parts.append(f"{_clock(elapsed_s)}/{_clock(max_minutes * 60)} (time budget)")
    else:
        parts.append(f"{_clock(elapsed_s)}")
    recent = [x[1] for x in state["history"][-LOSS_SMOOTH_STEPS:]]
    parts.append(f"loss {float(np.mean(recent)) if recent else float('nan'):.4f}")
    if new_validation and state["val_history"]:
        parts.append(f"validation {state['val_history'][-1][1]:.4f}")
    return " · ".join(parts)


def _write_voice(out: Path, model, features_cfg, name, state, train_clips, val_clips,
                 consent, seed, n_params) -> None:
    hist = state["history"]
    recent = [x[1] for x in hist[-LOSS_SMOOTH_STEPS:]]
    val = state["val_history"][-1][1] if state["val_history"] else None
    card = {
        "name": name,
        "model": {**model.cfg.to_dict(), "parameters": n_params},
        "training": {"steps": state["step"], "target_steps": state["config"]["steps"],
                     "minutes": round(state["seconds"] / 60, 2), "device": "cpu",
                     "seed": seed, "init": state.get("init"), "config": state["config"]},
        "pitch_range": _pitch_range(train_clips),
        "data": {"train_clips": len(train_clips), "validation_clips": len(val_clips),
                 "train_minutes": round(sum(c.f0.shape[0] for c in train_clips) / 100 / 60, 2),
                 "validation_minutes": round(sum(c.f0.shape[0] for c in val_clips) / 100 / 60,
                                             2)},
        "losses": {"train": round(float(np.mean(recent)), 4) if recent else None,
                   "validation": round(val, 4) if val is not None else None,
                   "validation_step": state["val_history"][-1][0] if state["val_history"]
                   else None},
        "consent": "consent.json copied from the dataset" if consent else None,
    }
    model.eval()
    save_voice(out, model, features_cfg, card=card, index=_build_index(train_clips, seed),
               consent=consent)
    model.train()


def train(dataset_dir: str | Path, out_dir: str | Path, config: TrainConfig = TrainConfig(),
          max_minutes: float | None = None, seed: int = 0) -> TrainResult:
    """Train (or resume training) a voice on a dataset; write the voice folder ``out_dir``.

    Runs until ``config.steps`` steps are done or ``max_minutes`` of wall time pass in this
    call; a rerun continues from the last checkpoint.  Returns a :class:`TrainResult`.
    """
    import torch

    from aisinger.nn.ddsp import DdspConfig, build_decoder, multi_resolution_stft_loss

    if max_minutes is not None and not (math.isfinite(max_minutes) and max_minutes > 0):
        raise AisingerError(f"train: max_minutes must be a number > 0, got {max_minutes}")
    try:
        model_cfg = DdspConfig.from_dict(dict(config.model))
    except (TypeError, ValueError) as exc:
        raise AisingerError(f"train: bad model config ({exc})") from None
    features_cfg = FeatureConfig(pitch=PitchConfig(method=config.pitch_method))
    name, train_clips, val_clips, consent = prepare_dataset(dataset_dir, features_cfg, model_cfg)
    out = Path(out_dir)
    work = out / TRAINING_DIR
    ckpt = work / CHECKPOINT_FILE

    torch.manual_seed(seed)
    model = build_decoder(model_cfg)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    state = {"step": 0, "seconds": 0.0, "history": [], "val_history": [],
             "config": config.to_dict(), "model_config": model_cfg.to_dict(), "seed": seed,
             "init": None}
    if ckpt.exists():
        saved = _load_checkpoint(ckpt, model, optimizer)
        if saved.get("seed") != seed or saved.get("model_config") != model_cfg.to_dict() \
                or saved.get("config", {}).get("init") != config.init:
            raise AisingerError(f"{ckpt}: was trained with another seed, model config or "
                                f"initialisation; use a new output folder")
        state.update(saved, config=config.to_dict())
    elif config.init is not None:
        state["init"] = _init_weights(model, config.init)
    state.setdefault("runs", []).append({"start_step": state["step"]})  # resume record
    model.train()

    frames = int(round(config.segment_s * model_cfg.frame_rate))
    import matplotlib  # loss plots: a first-ever import builds the font cache; not on the clock

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    start = time.monotonic()
    last_time = start
    step0 = state["step"]
    steps = range(step0, config.steps)

    shown_validations = len(state["val_history"])

    def checkpoint() -> None:
        nonlocal last_time, shown_validations
        now = time.monotonic()
        state["seconds"] += now - last_time
        last_time = now
        _save_checkpoint(ckpt, model, optimizer, state)
        log.info(_progress_line(state, config.steps, time.monotonic() - start, max_minutes,
                                len(state["val_history"]) > shown_validations))
        shown_validations = len(state["val_history"])

    def validate() -> None:
        done = state["step"]
        vloss, audio = _validation_loss(model, val_clips, model_cfg, config.fft_sizes, seed)
        state["val_history"].append([done, round(vloss, 5)])
        save_audio(work / SAMPLES_DIR / f"step_{done:06d}.wav", audio, model_cfg.sample_rate)
        _plot_losses(work / LOSS_PNG, state["history"], state["val_history"])

    budget = (f" (stops at the {_clock(max_minutes * 60)} time budget)"
              if max_minutes is not None else "")
    for step in track(steps, total=len(steps), description=f"training {name}{budget}"):
        if max_minutes is not None and time.monotonic() - start > max_minutes * 60:
            break
        torch.manual_seed(_step_seed(seed, step))
        rng = np.random.default_rng([seed, step])
        batch = _batch(train_clips, rng, frames, config.batch_size, model_cfg.hop)
        y = model(batch["content"], batch["f0"], batch["voiced"], batch["loudness"],
                  n_samples=frames * model_cfg.hop)
        loss = multi_resolution_stft_loss(y, batch["audio"], tuple(config.fft_sizes))
        if not torch.isfinite(loss):  # never write a voice from diverged weights
            raise AisingerError(f"{dataset_dir}: training diverged (loss {loss.item()} at step "
                                f"{step + 1}); the last checkpoint is kept: lower the learning "
                                "rate or check the clips")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["step"] = step + 1
        state["history"].append([step + 1, round(loss.detach().item(), 5)])
        done = state["step"]
        if done % config.validate_every == 0 or done == config.steps:
            validate()
            checkpoint()
            _write_voice(out, model, features_cfg, name, state, train_clips, val_clips,
                         consent, seed, n_params)
        elif done % config.checkpoint_every == 0:
            checkpoint()
    if state["step"] != step0 and val_clips and \
            (not state["val_history"] or state["val_history"][-1][0] != state["step"]):
        validate()  # stopped between validations (time budget): the card's loss is this one
    checkpoint()
    if not (out / VOICE_MODEL).exists() or state["step"] != step0:
        _plot_losses(work / LOSS_PNG, state["history"], state["val_history"])
        _write_voice(out, model, features_cfg, name, state, train_clips, val_clips, consent,
                     seed, n_params)
    recent = [x[1] for x in state["history"][-LOSS_SMOOTH_STEPS:]]
    return TrainResult(voice_dir=out, step=state["step"], finished=state["step"] >= config.steps,
                       train_loss=float(np.mean(recent)) if recent else float("nan"),
                       validation_loss=state["val_history"][-1][1] if state["val_history"]
                       else None, minutes=state["seconds"] / 60)


def prepare_dataset(dataset_dir, features_cfg, model_cfg):
    """(name, train clips, validation clips, consent) of a dataset folder, with the same
    checks for every family (consent, clip lengths, enough voiced singing)."""

    name, train_paths, val_paths, consent = load_clips(dataset_dir)
    _check_lengths(train_paths + val_paths[:VALIDATION_CLIPS])
    train_clips = [_prepare_clip(p, features_cfg, model_cfg)
                   for p in track(train_paths, description="features (train)")]
    val_clips = [_prepare_clip(p, features_cfg, model_cfg) for p in val_paths[:VALIDATION_CLIPS]]
    voiced_s = sum(float(c.voiced.sum()) for c in train_clips) / model_cfg.frame_rate
    if voiced_s < MIN_VOICED_SECONDS:
        raise AisingerError(f"{dataset_dir}: the training clips hold {voiced_s:.1f} s of voiced "
                            f"singing (at least {MIN_VOICED_SECONDS:.0f} s needed): silence or "
                            f"noise only?")
    return name, train_clips, val_clips, consent
