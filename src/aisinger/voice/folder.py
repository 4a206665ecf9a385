"""Voice folders: a trained voice model on disk.

Layout of ``VOICE/``::

    model.safetensors   model weights (float32)
    config.json         {"format": "aisinger-voice", "version": 2, "family": "ddsp" | "nsf",
                         "model": DdspConfig, "features": FeatureConfig, "files": {...}}
                        or, for imported community models (see aisinger.voice.community),
                        {"format", "version": 2, "family": "vits", "model": VitsConfig,
                         "source": "sovits-4.1" | "rvc-v2" | ..., "content_encoder": {...},
                         "speakers": {name: id}, "speaker": id, "files": {...}}
    index.safetensors   optional: "content" (N, D) float16 content frames for k-NN retrieval
                        (DDSP: a subsample of the training frames, D = 512; RVC: the
                        vectors of the model's .index file)
    consent.json        copied from the dataset when it has one
    model_card.json/.md voice name, training minutes/steps, pitch range, data summary, losses

Version 1 folders (written before model families existed) are DDSP voices and load
unchanged.  Every file is written atomically; :func:`load_voice` checks the folder and raises a
one-line :class:`~aisinger.errors.AisingerError` naming the file and the problem (also for a
model family this aisinger does not know).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.errors import AisingerError
from aisinger.features import FeatureConfig
from aisinger.io.fileio import atomic_path, read_json_object, write_json, write_text
from aisinger.layout import CARD_JSON, CARD_MD, CONSENT_FILE, VOICE_CONFIG, VOICE_INDEX, VOICE_MODEL

__all__ = ["Voice", "save_voice", "load_voice", "write_model_card", "model_card_markdown",
           "VOICE_FORMAT", "VOICE_VERSION", "FAMILIES", "save_vits_voice"]

VOICE_FORMAT = "aisinger-voice"
VOICE_VERSION = 2
READABLE_VERSIONS = (1, 2)
FAMILIES = ("ddsp", "vits", "nsf")


@dataclass
class Voice:
    """A loaded voice: ``family`` ("ddsp", "nsf" or "vits"), ``model`` (an
    :class:`aisinger.nn.ddsp.Decoder`, :class:`aisinger.nn.nsf_voice.NsfVoice` or
    :class:`aisinger.nn.vits.SvcGenerator` in eval mode),
    ``model_config`` (DdspConfig / VitsConfig), ``features`` (FeatureConfig; for vits the
    defaults, used only by analysis around conversion),
    ``card`` (dict), ``index`` ((N, D) float32 content frames for retrieval, or None),
    ``meta`` (vits: source, content_encoder, speakers, speaker), ``path``."""

    path: Path
    model: object
    model_config: object
    features: object
    card: dict = field(default_factory=dict)
    index: np.ndarray | None = None
    family: str = "ddsp"
    meta: dict = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        """Synthesis rate of the model (Hz)."""
        return int(self.model_config.sample_rate)

    @property
    def name(self) -> str:
        """Voice name from the model card (folder name if none)."""
        return str(self.card.get("name") or self.path.name)


def _save_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata=metadata)


def _save_index_and_consent(out: Path, files: dict, index: np.ndarray | None,
                            consent: str | Path | None) -> None:
    """Write the retrieval index (float16) and copy the consent record, when given; list them
    in ``files``."""
    if index is not None:
        import torch

        _save_tensors(out / VOICE_INDEX, {"content": torch.from_numpy(
            np.ascontiguousarray(index, dtype=np.float16))})
        files["index"] = VOICE_INDEX
    if consent is not None and Path(consent).is_file():
        with atomic_path(out / CONSENT_FILE) as tmp:
            shutil.copyfile(consent, tmp)
        files["consent"] = CONSENT_FILE


def save_voice(voice_dir: str | Path, model, features_config, card: dict | None = None,
               index: np.ndarray | None = None, consent: str | Path | None = None) -> Path:
    """Write a voice folder (atomic per file) and return its path.

    model: a Decoder with ``.cfg`` (DdspConfig); features_config: the FeatureConfig the model
    was trained with; card: model-card dict (also rendered to model_card.md); index: (N, D)
    content frames for retrieval; consent: a consent.json to copy in.
    """
    out = Path(voice_dir)
    out.mkdir(parents=True, exist_ok=True)
    _save_tensors(out / VOICE_MODEL, dict(model.state_dict()),
                  metadata={"format": VOICE_FORMAT})
    files = {"model": VOICE_MODEL}
    _save_index_and_consent(out, files, index, consent)
    write_json(out / VOICE_CONFIG, {"format": VOICE_FORMAT, "version": VOICE_VERSION,
                                   "family": getattr(model, "voice_family", "ddsp"),
                                   "model": model.cfg.to_dict(),
                                   "features": features_config.to_dict(), "files": files})
    if card is not None:
        write_model_card(out, card)
    return out


def save_vits_voice(voice_dir: str | Path, model, meta: dict, card: dict,
                    index: np.ndarray | None = None, consent: str | Path | None = None) -> Path:
    """Write a "vits"-family voice folder (an imported So-VITS-SVC / RVC model).

    model: SvcGenerator with ``.cfg`` (VitsConfig); meta: {"source", "content_encoder",
    "speakers", "speaker"}; index: (N, content_dim) retrieval vectors; consent: a consent
    record to copy in.
    """
    import torch

    out = Path(voice_dir)
    out.mkdir(parents=True, exist_ok=True)
    _save_tensors(out / VOICE_MODEL, {k: v.to(torch.float32) for k, v in model.state_dict().items()},
                  metadata={"format": VOICE_FORMAT, "family": "vits"})
    files = {"model": VOICE_MODEL}
    _save_index_and_consent(out, files, index, consent)
    write_json(out / VOICE_CONFIG, {"format": VOICE_FORMAT, "version": VOICE_VERSION,
                                   "family": "vits", "model": model.cfg.to_dict(),
                                   **{k: meta[k] for k in ("source", "content_encoder",
                                                           "speakers", "speaker")},
                                   "files": files})
    write_model_card(out, card)
    return out


def write_model_card(voice_dir: str | Path, card: dict) -> None:
    """Write ``model_card.json`` and ``model_card.md`` (atomic)."""
    out = Path(voice_dir)
    write_json(out / CARD_JSON, card)
    write_text(out / CARD_MD, model_card_markdown(card))


def model_card_markdown(card: dict) -> str:
    """Human-readable model card from the card dict."""
    lines = [f"# Voice: {card.get('name', '?')}", ""]
    imported = card.get("imported")
    if imported:
        lines += ["## Imported community model", "",
                  *[f"- {k}: {v}" for k, v in imported.items()], ""]
    tr = card.get("training", {})
    lines += ["## Training", "",
              f"- steps: {tr.get('steps', '?')}",
              f"- training time: {tr.get('minutes', 0):.1f} min on {tr.get('device', 'cpu')}",
              f"- model: {card.get('model', {}).get('decoder', '?')}, "
              f"{card.get('model', {}).get('parameters', '?')} parameters, "
              f"{card.get('model', {}).get('sample_rate', '?')} Hz", ""]
    pitch = card.get("pitch_range", {})
    if pitch:
        lines += ["## Pitch range (5th–95th percentile of the training F0)", "",
                  f"- {pitch.get('low_hz', 0):.1f} Hz ({pitch.get('low_note', '?')}) – "
                  f"{pitch.get('high_hz', 0):.1f} Hz ({pitch.get('high_note', '?')})", ""]
    data = card.get("data", {})
    if data:
        lines += ["## Data", ""] + [f"- {k}: {v}" for k, v in data.items()] + [""]
    losses = card.get("losses", {})
    if losses:
        lines += ["## Final losses (multi-resolution STFT)", ""]
        lines += [f"- {k}: {v:.4f}" if isinstance(v, (int, float)) else f"- {k}: {v}"
                  for k, v in losses.items()] + [""]
    consent = card.get("consent")
    lines += ["## Consent", "", f"- {consent}" if consent else "- no consent record", ""]
    return "\n".join(lines)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise AisingerError(f"{path}: missing (not a voice folder?)")
    return read_json_object(path)


def _load_tensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise AisingerError(f"{path}: missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AisingerError(f"{path}: not a readable safetensors file "
                            f"({str(exc).splitlines()[0][:100]})") from None


def load_voice(voice_dir: str | Path) -> Voice:
    """Load and check a voice folder (AisingerError with one line on any problem)."""
    from aisinger.nn.ddsp import DdspConfig, build_decoder

    root = Path(voice_dir)
    if not root.is_dir():
        raise AisingerError(f"{root}: voice folder not found")
    cfg_path = root / VOICE_CONFIG
    doc = _read_json(cfg_path)
    if doc.get("format") != VOICE_FORMAT:
        raise AisingerError(f"{cfg_path}: not an aisinger voice config (format "
                            f"{doc.get('format')!r})")
    if doc.get("version") not in READABLE_VERSIONS:
        raise AisingerError(f"{cfg_path}: unsupported voice version {doc.get('version')!r} "
                            f"(this aisinger reads versions "
                            f"{', '.join(map(str, READABLE_VERSIONS))})")
    family = doc.get("family", "ddsp") if doc.get("version") >= 2 else "ddsp"
    if family not in FAMILIES:
        raise AisingerError(f"{cfg_path}: unknown model family {family!r} (this aisinger "
                            f"knows {', '.join(FAMILIES)}; a newer aisinger may read it)")
    if family == "vits":
        return _load_vits(root, doc)
    try:
        if family == "nsf":  # neural source-filter voices (aisinger.nn.nsf_voice)
            from aisinger.nn.nsf_voice import NsfVoice, NsfVoiceConfig

            model_cfg = NsfVoiceConfig.from_stored(doc["model"])
            model = NsfVoice(model_cfg)
        else:
            model_cfg = DdspConfig.from_dict(doc["model"])
            model = build_decoder(model_cfg)
        features = FeatureConfig.from_dict(doc["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AisingerError(f"{cfg_path}: bad model config ({str(exc)[:120]})") from None
    index, card = _load_weights(root, doc, model, model_cfg.content_dim)
    return Voice(path=root, model=model, model_config=model_cfg, features=features, card=card,
                 index=index, family=family)


def _load_weights(root: Path, doc: dict, model, content_dim: int
                  ) -> tuple[np.ndarray | None, dict]:
    """Load ``model.safetensors`` into ``model`` (checked against the config, eval mode) and
    return the voice's retrieval index and model card."""
    state = _load_tensors(root / VOICE_MODEL)
    _check_state(root, model, state)
    model.load_state_dict(state)
    model.eval()
    return _index_and_card(root, doc, content_dim)


def _index_and_card(root: Path, doc: dict, content_dim: int) -> tuple[np.ndarray | None, dict]:
    """The voice's retrieval index ((N, content_dim) float32, or None when it has none) and
    its model card ({} when absent)."""
    index = None
    if "index" in doc.get("files", {}):
        t = _load_tensors(root / VOICE_INDEX)
        if "content" not in t or t["content"].ndim != 2 or t["content"].shape[1] != content_dim:
            raise AisingerError(f"{root / VOICE_INDEX}: expected a (N, {content_dim}) "
                                f"'content' tensor")
        index = t["content"].float().numpy()
    card = _read_json(root / CARD_JSON) if (root / CARD_JSON).exists() else {}
    return index, card


def state_mismatch(model, state: dict, config_name: str) -> str | None:
    """Why ``state`` does not fit ``model`` (the first missing, unexpected or mis-shaped key,
    and how many more), or None when it fits."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or extra or bad):
        return None
    what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
            else f"{bad[0]} has shape {tuple(state[bad[0]].shape)}, {config_name} says "
                 f"{tuple(own[bad[0]].shape)}")
    more = len(missing) + len(extra) + len(bad) - 1
    return what + (f" and {more} more" if more > 0 else "")


def _check_state(root: Path, model, state: dict) -> None:
    why = state_mismatch(model, state, "config")
    if why:
        raise AisingerError(f"{root / VOICE_MODEL}: weights do not match {VOICE_CONFIG} ({why})")


def _load_vits(root: Path, doc: dict) -> Voice:
    from aisinger.nn.vits import SvcGenerator, VitsConfig

    cfg_path = root / VOICE_CONFIG
    try:
        model_cfg = VitsConfig.from_dict(doc["model"])
        model = SvcGenerator(model_cfg)
        meta = {k: doc[k] for k in ("source", "content_encoder", "speakers", "speaker")}
        enc = meta["content_encoder"]
        if not isinstance(enc, dict) or not {"asset", "layer", "final_proj", "dim"} <= set(enc):
            raise ValueError("content_encoder needs asset, layer, final_proj, dim")
        if not 0 <= int(meta["speaker"]) < model_cfg.n_speakers:
            raise ValueError(f"speaker {meta['speaker']} not in 0..{model_cfg.n_speakers - 1}")
    except (KeyError, TypeError, ValueError) as exc:
        raise AisingerError(f"{cfg_path}: bad model config ({str(exc)[:120]})") from None
    index, card = _load_weights(root, doc, model, model_cfg.content_dim)

    # features: only what analysis steps around conversion use (cover's key choice, speak);
    # the model itself runs on HuBERT/ContentVec content (meta["content_encoder"])
    return Voice(path=root, model=model, model_config=model_cfg, features=FeatureConfig(),
                 card=card, index=index, family="vits", meta=meta)
