"""HuBERT / ContentVec content features for the community voice models.

``hubert_features(audio, sr, path, layer, project)`` -> (T, D) float32 at 50 frames/s
(frame i centred at (i·320 + 200) / 16000 s).  Weights come from a local file: a fairseq
checkpoint (``hubert_base.pt``, ``checkpoint_best_legacy_500.pt``; read with
:func:`aisinger.io.safeload.torch_load_inert`: its config objects become inert stand-ins, nothing
runs), a transformers ``.bin``/``.safetensors`` state dict, or a folder with one of those.
:func:`encoder_path` resolves the file for a voice: an explicit path, else the asset registry
(``AISINGER_MODELS_DIR/<asset>/<file>``, the cache, or — for users online — the hub).

Long inputs run in windows of :data:`WINDOW_S` seconds with :data:`CONTEXT_S` of context on
each side (memory stays bounded; attention sees 32 s at a time).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from aisinger import assets
from aisinger.errors import AisingerError
from aisinger.io.audio import resample
from aisinger.io.safeload import torch_load_inert

__all__ = ["hubert_features", "load_encoder", "encoder_path", "HUBERT_SR", "HUBERT_HOP",
           "HUBERT_RATE", "frame_times_hubert", "content_on_grid"]

HUBERT_SR = 16000
HUBERT_HOP = 320
HUBERT_WIN = 400
HUBERT_RATE = HUBERT_SR / HUBERT_HOP  # 50 frames/s
WINDOW_S = 30.0
CONTEXT_S = 1.0


def frame_times_hubert(n: int) -> np.ndarray:
    """Centre times (s) of ``n`` HuBERT frames."""
    return (np.arange(n) * HUBERT_HOP + HUBERT_WIN / 2) / HUBERT_SR


def content_on_grid(content: np.ndarray, n: int, rate: float) -> np.ndarray:
    """Nearest HuBERT frame (50/s, centred at (i·320+200)/16000 s) for each model frame."""
    t = np.arange(n) / rate
    idx = np.rint((t * HUBERT_SR - HUBERT_WIN / 2) / HUBERT_HOP).astype(np.int64)
    return content[np.clip(idx, 0, content.shape[0] - 1)]


def _read_state(path: Path) -> dict:
    import torch

    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin", "checkpoint_best_legacy_500.pt",
                     "hubert_base.pt"):
            if (path / name).is_file():
                return _read_state(path / name)
        raise AisingerError(f"{path}: no HuBERT/ContentVec weights in this folder")
    if not path.is_file():
        raise AisingerError(f"{path}: content encoder weights not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise AisingerError(f"{path}: not a readable safetensors file ({exc})") from None
    doc = torch_load_inert(path)
    if isinstance(doc, dict) and isinstance(doc.get("model"), dict):
        doc = doc["model"]  # fairseq: {"args"/"cfg": ..., "model": state_dict, ...}
    if not isinstance(doc, dict) or not all(isinstance(v, torch.Tensor) for v in doc.values()):
        raise AisingerError(f"{path}: not a HuBERT/ContentVec checkpoint (no state dict)")
    return doc


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, layer: int, project: bool):
    from aisinger.nn.hubert import ContentEncoder

    state = _read_state(Path(path))
    try:
        return ContentEncoder.from_state(state, layer, project)
    except (ValueError, KeyError) as exc:
        raise AisingerError(f"{path}: {exc}") from None


def load_encoder(path: str | Path, layer: int, project: bool):
    """The content encoder in ``path`` truncated at ``layer`` (cached per process)."""
    p = Path(path).resolve()
    if not p.exists():
        raise AisingerError(f"{path}: content encoder weights not found")
    return _cached(str(p), p.stat().st_mtime_ns, int(layer), bool(project))


def encoder_path(spec: dict, explicit: str | Path | None = None) -> Path:
    """Weights file for a voice's content encoder ``spec`` ({"asset": ...})."""
    if explicit is not None:
        return Path(explicit)

    return assets.fetch(spec["asset"])


def hubert_features(audio: np.ndarray, sr: int, path: str | Path, layer: int,
                    project: bool) -> np.ndarray:
    """(T, D) float32 content features of mono ``audio`` at ``sr``; T = HuBERT frames."""
    import torch

    enc = load_encoder(path, layer, project)
    x = np.asarray(audio, dtype=np.float32)
    if sr != HUBERT_SR:
        x = resample(x, sr, HUBERT_SR)
    if x.shape[0] < HUBERT_WIN:
        x = np.pad(x, (0, HUBERT_WIN - x.shape[0]))
    n_frames = (x.shape[0] - HUBERT_WIN) // HUBERT_HOP + 1
    win = int(WINDOW_S * HUBERT_RATE)
    ctx = int(CONTEXT_S * HUBERT_RATE)
    parts = []
    with torch.inference_mode():
        for a in range(0, n_frames, win):
            b = min(n_frames, a + win)
            lo, hi = max(0, a - ctx), min(n_frames, b + ctx)
            # the last window runs to the end of the signal (the first conv layer's group
            # norm takes its statistics over the whole input, as the original does)
            end = x.shape[0] if hi == n_frames else (hi - 1) * HUBERT_HOP + HUBERT_WIN
            seg = x[lo * HUBERT_HOP:end]
            y = enc(torch.from_numpy(np.ascontiguousarray(seg))[None])[0].numpy()
            parts.append(y[a - lo:b - lo])
    return np.concatenate(parts, axis=0).astype(np.float32)
