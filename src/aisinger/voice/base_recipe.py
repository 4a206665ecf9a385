"""The nsf base-model recipe (see :mod:`aisinger.voice.base_model` for the file and its checks):
lab-corpus clips + WORLD pitch/formant-shifted copies -> :func:`aisinger.voice.train_nsf.train_nsf`
-> ``OUT/base.safetensors``.  Command: ``scripts/train_base.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError
from aisinger.voice.base_model import BASE_FILE, save_base
from aisinger.features import FeatureConfig
from aisinger.features.pitch import PitchConfig
from aisinger.io.audio import load, save
from aisinger.io.fileio import write_json
from aisinger.progress import track
from aisinger.voice.train_ddsp import (CHECKPOINT_FILE, TRAINING_DIR, _load_checkpoint,
    _prepare_clip)
from aisinger.voice.train_nsf import (NsfTrainConfig, build_training_model, model_config,
    train_nsf)

__all__ = ["train_base", "base_clips", "corpora_clips", "augment_clip", "DEFAULT_AUGMENT"]

DEFAULT_AUGMENT = (-4.0, 4.0)
FORMANT_RATIO = 0.5  # the envelope moves by this fraction of the pitch shift (in octaves)

def augment_clip(audio: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Pitch- and formant-shifted copy (WORLD): F0 × 2^(s/12), envelope warped by
    2^(s·FORMANT_RATIO/12) along frequency (a smaller/larger vocal tract)."""
    import pyworld

    x = np.asarray(audio, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    alpha = 2.0 ** (semitones * FORMANT_RATIO / 12.0)
    bins = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(bins / alpha, 0, sp.shape[1] - 1)
    sp2 = np.stack([np.interp(src, bins, row) for row in sp])
    ap2 = np.stack([np.interp(src, bins, row) for row in ap])
    y = pyworld.synthesize(f0 * 2.0 ** (semitones / 12.0), np.ascontiguousarray(sp2),
                           np.ascontiguousarray(ap2), sr, frame_period=5.0)
    peak = np.abs(y).max() or 1.0
    y = y * min(1.0, 0.95 / peak)
    return y[:x.shape[0]].astype(np.float32)


def _augmented(out: Path, clips: list[Path], shifts, sr: int, share: float = 1.0
               ) -> list[Path]:
    """Write (once) shifted copies; returns their paths.  Every ``1/share``-th clip gets one
    copy, the shifts taken in turn (share 1: every clip once; the WORLD analysis is the costly
    part of the recipe on a CPU)."""

    paths = []
    if not shifts or share <= 0:
        return paths
    every = max(1, round(1 / share))
    picked = clips[::every]
    jobs = [(p, shifts[i % len(shifts)]) for i, p in enumerate(picked)]
    for p, s in track(jobs, total=len(jobs), description="augmenting (WORLD shifts)"):
        # corpus/voice/phrase: a later stage on another corpus (same phrase ids, other
        # lyrics) must not reuse these copies
        dst = out / "augmented" / f"{p.parents[2].name}__{p.parent.name}__{p.stem}__{s:+.1f}.wav"
        if not dst.is_file():
            x, _ = load(p, sr=sr, mono=True)
            save(dst, augment_clip(x, sr, s), sr)
        paths.append(dst)
    return paths


def base_clips(corpus: str | Path, man: dict, voices=None
               ) -> tuple[list[Path], list[Path], list[str]]:
    """(train clip paths, validation clip paths, voices) of a lab corpus (folder + its loaded
    manifest, :func:`aisinger.lab.corpus.load_manifest`; the lab stage sits above this one):
    the train split of every listed voice (default: all voices of the corpus) and one test
    clip of the first two voices for validation."""
    root = Path(corpus)
    have = list(man["voices"])
    voices = list(voices) if voices else have
    missing = [v for v in voices if v not in have]
    if missing:
        raise AisingerError(f"{root}: lab corpus has no voice {missing[0]!r} (it has "
                            f"{', '.join(have)}); rebuild it with 'aisinger lab make'")
    train = [root / c["audio"] for c in man["clips"] if c["voice"] in voices
             and c["split"] == "train"]
    val = []
    for v in voices[:2]:
        val += [root / c["audio"] for c in man["clips"] if c["voice"] == v
                and c["split"] == "test"][:1]
    return train, val or train[:1], voices


def corpora_clips(corpora, manifests, voices=None) -> tuple[list[Path], list[Path], list[str]]:
    """:func:`base_clips` over several corpora (folders + loaded manifests): every corpus
    holding one of ``voices`` (default: all of every corpus) adds its clips of them; a listed
    voice that no corpus has is an error naming it."""
    train, val, used = [], [], []
    for root, man in zip(corpora, manifests):
        have = set(man["voices"])
        if voices and not have & set(voices):
            continue
        t, v, vs = base_clips(root, man, [x for x in voices if x in have] if voices else None)
        train += t
        val += v
        used += [x for x in vs if x not in used]
    missing = [v for v in voices or () if v not in used]
    if missing or not train:
        which = (missing or voices or ["?"])[0]
        raise AisingerError(f"{', '.join(str(c) for c in corpora)}: no lab corpus has voice "
                            f"{which!r}; rebuild with 'aisinger lab make'")
    return train, val, used


def train_base(corpus, manifest, out_dir: str | Path, voices=None,
               augment=DEFAULT_AUGMENT, config=None, max_minutes: float | None = None,
               seed: int = 0, augment_share: float = 1.0):
    """Train (or resume) the base model; writes ``OUT/base.safetensors`` and returns
    (TrainResult, path of the base file).  See the module docstring.

    ``corpus`` / ``manifest``: one lab corpus folder and its loaded manifest, or lists of both
    (several corpora trained together: e.g. a corpus of new singers built with another seed
    beside the earlier one, so neither is rebuilt).  ``voices`` filters every corpus (a voice
    must be in at least one); validation takes one test clip of the first two voices of each.
    """
    corpora = [corpus] if isinstance(corpus, (str, Path)) else list(corpus)
    manifests = [manifest] if isinstance(manifest, dict) else list(manifest)
    if len(corpora) != len(manifests) or not corpora:
        raise AisingerError("train_base: give one manifest per corpus")
    config = config or NsfTrainConfig(steps=100_000, init=None)
    model_cfg = model_config(config)  # the trainer's own rule (overrides, else init's base)
    out = Path(out_dir)
    train_paths, val_paths, used = corpora_clips(corpora, manifests, voices)
    train_paths = train_paths + _augmented(out, train_paths, list(augment),
                                           model_cfg.sample_rate, augment_share)
    features_cfg = FeatureConfig(pitch=PitchConfig(method=config.pitch_method))
    train_clips = [_prepare_clip(p, features_cfg, model_cfg)
                   for p in track(train_paths, description="features (base)")]
    val_clips = [_prepare_clip(p, features_cfg, model_cfg) for p in val_paths]
    result = train_nsf(None, out, config, max_minutes=max_minutes, seed=seed,
                       clips=("nsf-base", train_clips, val_clips, None), write_voice=False)
    recipe = {"corpus": ",".join(str(c) for c in corpora), "voices": used,
              "augment": list(augment), "augment_share": augment_share, "seed": seed,
              "clips": len(train_clips), "steps": result.step,
              "minutes": round(result.minutes, 2), "train_config": config.to_dict()}
    recipe["stages"] = _record_stage(out, recipe)
    model = _trained_model(out, model_cfg, config)
    path = save_base(out / BASE_FILE, model, model_cfg, config.disc_width, recipe)
    return result, path


STAGES_FILE = "stages.json"
"""``OUT/stages.json``: one entry per (corpus, train config) a base was trained with, in order,
with the step and the cumulative training minutes it reached — a base resumed on a bigger corpus or with another schedule keeps
its whole recipe (copied into the base file's metadata as ``stages``)."""


def _record_stage(out: Path, recipe: dict) -> list[dict]:
    """Append ``recipe`` to ``OUT/stages.json`` (or update the last entry when it is the same
    stage resumed); returns the list."""
    path = out / STAGES_FILE
    stages = json.loads(path.read_text()) if path.is_file() else []
    stage = {k: recipe[k] for k in ("corpus", "augment", "augment_share", "seed", "clips",
                                    "steps", "minutes", "train_config")}
    same = ("corpus", "augment", "augment_share", "seed", "train_config")
    if stages and all(stages[-1].get(k) == stage[k] for k in same):
        stages[-1] = stage
    else:
        stages.append(stage)
    write_json(path, stages, indent=1)
    return stages


def _trained_model(out: Path, model_cfg, config):
    """The (g, d) ModuleDict restored from the run's checkpoint."""
    import torch


    model = build_training_model(model_cfg, config.disc_width)
    opt = torch.optim.AdamW([{"params": list(model["g"].parameters())},
                             {"params": list(model["d"].parameters())}], lr=config.learning_rate)
    _load_checkpoint(out / TRAINING_DIR / CHECKPOINT_FILE, model, opt)
    return model
