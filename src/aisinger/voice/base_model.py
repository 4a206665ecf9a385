"""The nsf base model: a multi-voice pretraining of the nsf voice model that per-voice training
starts from (``NsfTrainConfig.init``).

Recipe (:func:`aisinger.voice.base_recipe.train_base`, ``scripts/train_base.py``; one seeded,
resumable command):

1. data: the train-split phrases of a lab corpus (``aisinger lab make``; every voice in it
   unless ``voices`` names some — new lab singers are picked up by rebuilding the corpus with
   them), plus pitch/formant-shifted copies for range (WORLD analysis/resynthesis:
   F0 × 2^(s/12), spectral envelope warped by 2^(s/24), for each ``augment`` shift s; written
   once to ``OUT/augmented/``, deterministic);
2. training: :func:`aisinger.voice.train_nsf.train_nsf` on all of it (one model, no speaker input:
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
from aisinger import assets
from aisinger.io.fileio import atomic_path, sha256_file
from aisinger.voice.folder import _load_tensors, state_mismatch

__all__ = ["BASE_FORMAT", "BASE_ASSET", "BASE_FILE", "save_base", "load_base", "init_from",
           "committed_base", "base_model_config"]

BASE_FORMAT = "aisinger-nsf-base"
BASE_FILE = "base.safetensors"
BASE_ASSET = "nsf-base"
"""Registry name of the committed base (aisinger.assets); absent while none is committed."""


def save_base(path: str | Path, model, model_cfg, disc_width: float, info: dict) -> Path:
    """Write a base-model file (generator + discriminator, atomic)."""
    from safetensors.torch import save_file


    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": BASE_FORMAT, "model_config": json.dumps(model_cfg.to_dict()),
            "disc_width": json.dumps(disc_width), "info": json.dumps(info)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def committed_base() -> tuple[Path, str]:
    """(path, pinned sha256) of the committed base, from the asset registry."""

    try:
        asset = assets.get(BASE_ASSET)
    except Exception:  # noqa: BLE001 - AssetError: none registered
        raise AisingerError("init='base': no nsf base model is committed in this aisinger yet; "
                            "train one with scripts/train_base.py and pass its base.safetensors "
                            "as init, or init=None") from None
    return assets.local_path(BASE_ASSET), asset.files[0].sha256


def _check_hash(path: Path, expected: str) -> None:

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


def base_model_config(init: str | None) -> dict | None:
    """The model config stored in the base that ``init`` names ("base" = the committed one,
    hash-checked; or a base file), None when ``init`` is not a base (None, a voice folder or
    a plain weights file).  Training from a base without model overrides takes this config, so
    a later change of the code's defaults cannot make the base unusable."""
    from safetensors import SafetensorError, safe_open

    if init is None:
        return None
    if init == "base":
        path, expected = committed_base()
        _check_hash(path, expected)
    else:
        path = Path(init)
        if not (path.suffix == ".safetensors" and path.is_file() and _is_base(path)):
            return None
    from aisinger.nn.nsf_voice import with_legacy_defaults

    try:
        with safe_open(str(path), framework="pt") as f:
            return with_legacy_defaults(json.loads((f.metadata() or {})["model_config"]))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise AisingerError(f"{path}: not an nsf base model ({str(exc)[:100]})") from None


def _differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _config_diff(a: dict, b: dict) -> str:
    keys = _differing(a, b)
    return ", ".join(f"{k}: base {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:3])


def _grown(base_cfg: dict, own: dict) -> list[str] | None:
    """State keys a training with config ``own`` adds to a base with ``base_cfg`` (fresh,
    output-preserving parameters, :data:`aisinger.nn.nsf_voice.GROWABLE`); [] when the configs
    are equal, None when they differ in anything else."""
    from aisinger.nn.nsf_voice import GROWABLE

    keys = _differing(base_cfg, own)
    if any(k not in GROWABLE or base_cfg.get(k) != GROWABLE[k][0] for k in keys):
        return None
    return [f"g.{name}" for k in keys for name in GROWABLE[k][1]]


def init_from(model, init: str, model_cfg, disc_width: float) -> str:
    """Load starting weights into the training ModuleDict (g, d); returns the model-card note.

    init: "base" (the committed base), a base file, or an nsf voice folder / model file
    (generator only).  A base whose config differs only by features off that this training
    turns on (:data:`aisinger.nn.nsf_voice.GROWABLE`) loads, the new parameters at their
    output-preserving start."""

    expected = None
    path = Path(init)
    if init == "base":
        path, expected = committed_base()
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors" and path.is_file() and _is_base(path) or expected:
        state, info = load_base(path, expected)
        from aisinger.nn.nsf_voice import with_legacy_defaults

        own = json.loads(json.dumps(model_cfg.to_dict()))
        info["model_config"] = with_legacy_defaults(info["model_config"])
        grown = _grown(info["model_config"], own)
        if grown is None or info["disc_width"] != disc_width:
            diff = _config_diff({**info["model_config"], "disc_width": info["disc_width"]},
                                {**own, "disc_width": disc_width})
            raise AisingerError(f"{path}: base model config does not match this training "
                                f"({diff}); train with the base's config or init=None")
        fresh = model.state_dict()
        state = {**{k: fresh[k] for k in grown if k not in state}, **state}
        why = state_mismatch(model, state, "the base's config")
        if why:
            raise AisingerError(f"{path}: base weights do not fit ({why})")
        model.load_state_dict(state)
    else:

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
