"""The nsf base model: a multi-voice pretraining of the nsf voice model that per-voice training
starts from (``NsfTrainConfig.init``).

Recipe (:func:`train_base`, ``scripts/train_base.py``; one seeded, resumable command):

1. data: the train-split phrases of a lab corpus (``aisinger lab make``; every voice in it
   unless ``voices`` names some — new lab singers are picked up by rebuilding the corpus with
   them), plus pitch/formant-shifted copies for range (WORLD analysis/resynthesis:
   F0 × 2^(s/12), spectral envelope warped by 2^(s/24), for each ``augment`` shift s; written
   once to ``OUT/augmented/``, deterministic);
2. training: :func:`aisinger.train_nsf.train_nsf` on all of it (one model, no speaker input:
   the voice is what the content and pitch frames imply, as in per-voice training), with the
   same kill -9 safe checkpoint in ``OUT/training/``;
3. result: ``OUT/base.safetensors`` (:func:`save_base`): generator ``g.*`` and discriminator
   ``d.*`` weights, metadata = format, model config, discriminator width, recipe, steps.

A base is used through ``init``: ``"base"`` names the committed base of
:data:`BASE_ASSET` (its SHA-256 is pinned in the asset registry; a missing or tampered file is
a one-line error naming the file and the expected hash); a path uses that file (hash recorded
in the model card).  A base whose model config differs from the training's is refused with
both configs' differences named.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError

__all__ = ["BASE_FORMAT", "BASE_ASSET", "save_base", "load_base", "init_from", "train_base",
           "committed_base", "augment_clip"]

BASE_FORMAT = "aisinger-nsf-base"
BASE_FILE = "base.safetensors"
BASE_ASSET = "nsf-base"
"""Registry name of the committed base (aisinger.assets); absent while none is committed."""
DEFAULT_AUGMENT = (-4.0, 4.0)
FORMANT_RATIO = 0.5  # the envelope moves by this fraction of the pitch shift (in octaves)


def save_base(path: str | Path, model, model_cfg, disc_width: float, info: dict) -> Path:
    """Write a base-model file (generator + discriminator, atomic)."""
    from safetensors.torch import save_file

    from aisinger.fileio import atomic_path

    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": BASE_FORMAT, "model_config": json.dumps(model_cfg.to_dict()),
            "disc_width": json.dumps(disc_width), "info": json.dumps(info)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def committed_base() -> tuple[Path, str]:
    """(path, pinned sha256) of the committed base, from the asset registry."""
    from aisinger import assets

    try:
        asset = assets.get(BASE_ASSET)
    except Exception:  # noqa: BLE001 - AssetError: none registered
        raise AisingerError("init='base': no nsf base model is committed in this aisinger yet; "
                            "train one with scripts/train_base.py and pass its base.safetensors "
                            "as init, or init=None") from None
    af = asset.files[0]
    return Path(asset.extra["path"]), af.sha256


def _check_hash(path: Path, expected: str) -> None:
    from aisinger.fileio import sha256_file

    if not path.is_file():
        raise AisingerError(f"{path}: base model missing (expected sha256 {expected})")
    got = sha256_file(path)
    if got != expected:
        raise AisingerError(f"{path}: base model does not match its pinned hash (expected "
                            f"sha256 {expected}, file has {got}); restore it from git")


def load_base(path: str | Path, expected_sha256: str | None = None) -> tuple[dict, dict]:
    """(state dict, metadata dict with model_config/disc_width/info decoded) of a base file;
    with ``expected_sha256`` the file's hash is checked first."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if expected_sha256 is not None:
        _check_hash(path, expected_sha256)
    if not path.is_file():
        raise AisingerError(f"{path}: base model not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != BASE_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, not {BASE_FORMAT}")
        info = {"model_config": json.loads(meta["model_config"]),
                "disc_width": json.loads(meta["disc_width"]), "info": json.loads(meta["info"])}
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise AisingerError(f"{path}: not an nsf base model ({str(exc)[:100]})") from None
    return state, info


def _config_diff(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: base {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:3])


def init_from(model, init: str, model_cfg, disc_width: float) -> str:
    """Load starting weights into the training ModuleDict (g, d); returns the model-card note.

    init: "base" (the committed base), a base file, or an nsf voice folder / model file
    (generator only)."""
    from aisinger.fileio import sha256_file
    from aisinger.voice import state_mismatch

    expected = None
    path = Path(init)
    if init == "base":
        path, expected = committed_base()
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors" and path.is_file() and _is_base(path) or expected:
        state, info = load_base(path, expected)
        own = json.loads(json.dumps(model_cfg.to_dict()))
        if info["model_config"] != own or info["disc_width"] != disc_width:
            diff = _config_diff({**info["model_config"], "disc_width": info["disc_width"]},
                                {**own, "disc_width": disc_width})
            raise AisingerError(f"{path}: base model config does not match this training "
                                f"({diff}); train with the base's config or init=None")
        why = state_mismatch(model, state, "the base's config")
        if why:
            raise AisingerError(f"{path}: base weights do not fit ({why})")
        model.load_state_dict(state)
    else:
        from aisinger.voice import _load_tensors

        state = _load_tensors(path)
        why = state_mismatch(model["g"], state, "the model config")
        if why:
            raise AisingerError(f"{path}: initial weights do not match the model config ({why}); "
                                f"use the model config they were trained with, or init=None")
        model["g"].load_state_dict(state)
    return f"{path} sha256:{sha256_file(path)[:16]}"


def _is_base(path: Path) -> bool:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == BASE_FORMAT
    except (SafetensorError, OSError):
        return False


# --------------------------------------------------------------------------------------------
# recipe


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
    from aisinger.audio import load, save
    from aisinger.progress import track

    paths = []
    if not shifts or share <= 0:
        return paths
    every = max(1, round(1 / share))
    picked = clips[::every]
    jobs = [(p, shifts[i % len(shifts)]) for i, p in enumerate(picked)]
    for p, s in track(jobs, total=len(jobs), description="augmenting (WORLD shifts)"):
        dst = out / "augmented" / f"{p.parent.name}__{p.stem}__{s:+.1f}.wav"
        if not dst.is_file():
            x, _ = load(p, sr=sr, mono=True)
            save(dst, augment_clip(x, sr, s), sr)
        paths.append(dst)
    return paths


def base_clips(corpus: str | Path, voices=None) -> tuple[list[Path], list[Path], list[str]]:
    """(train clip paths, validation clip paths, voices) of a lab corpus: the train split of
    every listed voice (default: all voices of the corpus) and one test clip of the first
    two voices for validation."""
    from aisinger.lab.corpus import load_manifest

    root = Path(corpus)
    man = load_manifest(root)
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


def train_base(corpus: str | Path, out_dir: str | Path, voices=None,
               augment=DEFAULT_AUGMENT, config=None, max_minutes: float | None = None,
               seed: int = 0, augment_share: float = 1.0):
    """Train (or resume) the base model; writes ``OUT/base.safetensors`` and returns
    (TrainResult, path of the base file).  See the module docstring."""
    from aisinger.features import FeatureConfig
    from aisinger.features.pitch import PitchConfig
    from aisinger.nn.nsf_voice import NsfVoiceConfig
    from aisinger.progress import track
    from aisinger.train import _prepare_clip
    from aisinger.train_nsf import NsfTrainConfig, train_nsf

    config = config or NsfTrainConfig(steps=100_000)
    model_cfg = NsfVoiceConfig.from_dict(dict(config.model))
    out = Path(out_dir)
    train_paths, val_paths, voices = base_clips(corpus, voices)
    train_paths = train_paths + _augmented(out, train_paths, list(augment),
                                           model_cfg.sample_rate, augment_share)
    features_cfg = FeatureConfig(pitch=PitchConfig(method=config.pitch_method))
    train_clips = [_prepare_clip(p, features_cfg, model_cfg)
                   for p in track(train_paths, description="features (base)")]
    val_clips = [_prepare_clip(p, features_cfg, model_cfg) for p in val_paths]
    result = train_nsf(None, out, config, max_minutes=max_minutes, seed=seed,
                       clips=("nsf-base", train_clips, val_clips, None), write_voice=False)
    recipe = {"corpus": str(corpus), "voices": voices, "augment": list(augment),
              "augment_share": augment_share, "seed": seed,
              "clips": len(train_clips), "steps": result.step,
              "minutes": round(result.minutes, 2), "train_config": config.to_dict()}
    model = _trained_model(out, model_cfg, config)
    path = save_base(out / BASE_FILE, model, model_cfg, config.disc_width, recipe)
    return result, path


def _trained_model(out: Path, model_cfg, config):
    """The (g, d) ModuleDict restored from the run's checkpoint."""
    import torch

    from aisinger.train import CHECKPOINT_FILE, TRAINING_DIR, _load_checkpoint
    from aisinger.train_nsf import build_training_model

    model = build_training_model(model_cfg, config.disc_width)
    opt = torch.optim.AdamW([{"params": list(model["g"].parameters())},
                             {"params": list(model["d"].parameters())}], lr=config.learning_rate)
    _load_checkpoint(out / TRAINING_DIR / CHECKPOINT_FILE, model, opt)
    return model
