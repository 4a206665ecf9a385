"""Distil the offline content features into the causal live encoder
(:class:`aisinger.nn.live_content.LiveContentNet`); run by ``scripts/train_live_content.py``.

Teacher: the offline content features every voice is trained on
(:func:`aisinger.features.content.content_features`, Whisper-base, positional subspace
removed, linearly interpolated to 100 frames/s), cached in the feature cache.  Student input:
Whisper's 80-band mel power of the 16 kHz audio (10 ms hop, frame ``i`` centred on sample
``i * 160``: the same grid) through :func:`aisinger.nn.live_content.log_mel`.  Loss: mean
squared error over the teacher's per-channel variance + (1 - cosine), on frames whose whole
receptive field lies inside the clip.  Random crops, a random gain of +-6 dB per crop; seeded
(same seed, same data -> the same weights on one machine).  Validation: mean frame cosine to
the teacher on held-out files (the lab test corpus, whose phrases the benchmark converts).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aisinger.dsp.frames import n_frames, resample_frames
from aisinger.features import whisper as wh
from aisinger.features.cache import audio_key, cached, lookup
from aisinger.features.content import CONTENT_FRAME_RATE, ContentConfig, content_features
from aisinger.io.audio import load, resample
from aisinger.io.fileio import atomic_path, write_json
from aisinger.live.features import load_student

__all__ = ["StudentTrainConfig", "load_pairs", "train_student", "evaluate_student"]


@dataclass(frozen=True)
class StudentTrainConfig:
    """Training settings: steps (at most), minutes (wall-time bound of the run), batch of
    ``batch`` crops of ``crop_frames`` frames, Adam at ``lr`` with a cosine decay, ``gain_db``
    random gain, ``seed``, ``threads`` torch threads, ``eval_every`` steps between
    validations, ``cached_only``: train only on files whose teacher features are already in
    the feature cache (skips the one-off Whisper cost of the others)."""

    steps: int = 6000
    minutes: float = 35.0
    batch: int = 8
    crop_frames: int = 192
    lr: float = 2e-3
    gain_db: float = 6.0
    seed: int = 0
    threads: int = 1
    eval_every: int = 250
    cached_only: bool = False


def _cached_teacher(key: str) -> np.ndarray | None:
    """The teacher features of ``key`` if the feature cache holds them under any thread count
    (the thread count does not change the features; the voice trainers use 0 = all cores)."""
    for threads in (1, 0):
        hit = lookup("content", key, ContentConfig(threads=threads))
        if hit is not None:
            return hit
    return None


def _teacher(path: Path, config: ContentConfig, cached_only: bool = False
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """(mel power (80, T) float32, teacher content (T, 512) float16) of one file; None when
    ``cached_only`` and the feature cache does not hold its teacher features."""
    audio, rate = load(path, mono=True)
    key = audio_key(path) + f"-mono-sr{rate}"
    c50 = _cached_teacher(key)
    if c50 is None:
        if cached_only:
            return None
        c50 = cached("content", key, config,
                     lambda: content_features(audio, rate, config, progress=False))
    x16 = resample(audio, rate, wh.SAMPLE_RATE)
    mel = wh.mel_power(x16)
    t = min(mel.shape[1], n_frames(audio.shape[0], rate))
    c100 = resample_frames(c50, n_frames(audio.shape[0], rate), rate_in=CONTENT_FRAME_RATE)
    return mel[:, :t].astype(np.float32), c100[:t].astype(np.float16)


def load_pairs(files: list[Path], progress: bool = True, cached_only: bool = False
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mel power, teacher) of every file (teacher content computed once, then cached; with
    ``cached_only``, files whose teacher features are not cached yet are skipped)."""
    config = ContentConfig(threads=1)
    out = []
    for i, f in enumerate(files):
        pair = _teacher(f, config, cached_only)
        if pair is not None:
            out.append(pair)
        if progress and (i % 20 == 0 or i == len(files) - 1):
            print(f"teacher features {i + 1}/{len(files)}", flush=True)
    return out


def evaluate_student(model, pairs) -> float:
    """Mean frame cosine of the student (run causally over each whole file) to the teacher,
    over frames past the receptive field."""
    import torch

    from aisinger.nn.live_content import log_mel

    la, rf = model.cfg.lookahead, model.cfg.receptive_frames
    cos = []
    model.eval()
    with torch.inference_mode():
        for mel, tgt in pairs:
            x = log_mel(torch.from_numpy(mel))[None]
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, la)], dim=2)  # the end: hold
            y = model(x)[0, la:].numpy()
            t = np.asarray(tgt, np.float32)[rf:]
            y = y[rf:t.shape[0] + rf]
            cos.append((y * t).sum(1) / (np.linalg.norm(y, axis=1) * np.linalg.norm(t, axis=1)
                                        + 1e-8))
    model.train()
    return float(np.mean(np.concatenate(cos)))


def train_student(train_files: list[Path], val_files: list[Path], out_dir: str | Path,
                  net_config=None, config: StudentTrainConfig = StudentTrainConfig(),
                  init: str | Path | None = None,
                  val_groups: dict[str, list[Path]] | None = None) -> dict:
    """Train a :class:`LiveContentNet` and write OUT/live-content.safetensors (+ .json with
    its config, training settings and curve).  ``init``: a live-content.safetensors to
    continue from (its config is used, except the ``lookahead`` of ``net_config`` when one is
    given: the weights' shapes do not depend on it, so a student can be re-targeted to a
    longer lookahead).  ``val_groups``: named subsets of the validation files (e.g. by
    language), each also scored at the start and the end.  Returns the summary dict."""
    import torch
    from safetensors.torch import save_file

    from aisinger.nn.live_content import LiveContentConfig, LiveContentNet, log_mel

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    init_model = None
    if init is not None:
        init_model = load_student(init).train()
    cfg = init_model.cfg if init_model is not None else (net_config or LiveContentConfig())
    if init_model is not None and net_config is not None \
            and net_config.lookahead != cfg.lookahead:
        cfg = LiveContentConfig.from_dict({**cfg.to_dict(), "lookahead": net_config.lookahead})
        init_model.cfg = cfg
    t_prep = time.time()
    train = load_pairs(train_files, cached_only=config.cached_only)
    val = load_pairs(val_files)
    groups = {name: load_pairs(files, progress=False)
              for name, files in (val_groups or {}).items()}
    prep_min = (time.time() - t_prep) / 60
    var = np.var(np.concatenate([np.asarray(t, np.float32) for _, t in train]), axis=0) + 1e-6
    w_var = torch.from_numpy((1.0 / var).astype(np.float32))
    crop, la, rf = config.crop_frames, cfg.lookahead, cfg.receptive_frames
    long = [p for p in train if p[0].shape[1] >= crop + la]
    weights = np.array([p[0].shape[1] for p in long], np.float64)
    weights /= weights.sum()
    model = init_model if init_model is not None else LiveContentNet(cfg)
    init_val = evaluate_student(model, val) if init_model is not None else None
    init_groups = {name: round(evaluate_student(model, g), 4) for name, g in groups.items()} \
        if init_model is not None else {}
    if init_val is not None:
        print(f"start: validation cosine {init_val:.4f} {init_groups}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    curve = []
    t0 = time.time()
    step = 0
    print(f"student: {sum(p.numel() for p in model.parameters())} parameters, {len(long)} "
          f"training files, receptive {rf} frames, lookahead {la}", flush=True)
    while step < config.steps and (time.time() - t0) / 60 < config.minutes:
        frac = min(1.0, (time.time() - t0) / 60 / config.minutes, step / config.steps)
        for g in opt.param_groups:
            g["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * frac))
        xs, ys = [], []
        for i in rng.choice(len(long), size=config.batch, p=weights):
            mel, tgt = long[i]
            s = int(rng.integers(0, mel.shape[1] - crop - la + 1))
            gain = 10 ** (rng.uniform(-config.gain_db, config.gain_db) / 10)
            xs.append(mel[:, s:s + crop + la] * gain)
            ys.append(np.asarray(tgt[s:s + crop], np.float32))
        x = log_mel(torch.from_numpy(np.stack(xs)))
        y = torch.from_numpy(np.stack(ys))
        pred = model(x)[:, la:]  # output j + la describes frame j
        p, t = pred[:, rf:], y[:, rf:]  # loss only where the whole receptive field is real
        mse = ((p - t) ** 2 * w_var).mean()
        cos = torch.nn.functional.cosine_similarity(p, t, dim=-1).mean()
        loss = mse + (1 - cos)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % config.eval_every == 0:
            v = evaluate_student(model, val)
            curve.append({"step": step, "minutes": round((time.time() - t0) / 60, 2),
                          "train_loss": round(float(loss), 4), "train_cos": round(float(cos), 4),
                          "val_cos": round(v, 4)})
            print(json.dumps(curve[-1]), flush=True)
    minutes = (time.time() - t0) / 60
    val_cos = evaluate_student(model, val)
    val_by_group = {name: round(evaluate_student(model, g), 4) for name, g in groups.items()}
    model_path = out_dir / "live-content.safetensors"
    # float16 on disk (half the size; the network runs in float32)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(model_path) as tmp:
        save_file(state, str(tmp), metadata={"format": "aisinger-live-content",
                                             "config": json.dumps(cfg.to_dict())})
    summary = {"format": "aisinger-live-content", "config": cfg.to_dict(),
               "training": {**asdict(config), "steps_done": step,
                            "minutes": round(minutes, 2),
                            "teacher_prep_minutes": round(prep_min, 2),
                            "train_files": len(train), "val_files": len(val_files),
                            "init": None if init is None else Path(init).name,
                            "init_val_cosine": None if init_val is None else round(init_val, 4),
                            "init_val_cosine_groups": init_groups},
               "val_cosine": round(val_cos, 4), "val_cosine_groups": val_by_group,
               "curve": curve}
    write_json(out_dir / "live-content.json", summary)
    return summary
