"""Frame-level features of a voice: content, F0 and loudness on one frame grid.

``extract(audio_or_path, sr=None)`` returns a :class:`Features` whose arrays all
have ``T = n_frames(n_samples, sr)`` frames at ``FRAME_RATE`` = 100 frames/s
(frame i centred at t = i / 100 s; see :mod:`aisinger.dsp.frames`):

* ``content`` (T, 512): Whisper-base encoder features (:mod:`.content`, native
  50 frames/s, linearly interpolated onto the grid);
* ``f0`` (T,): F0 in Hz, 0 = unvoiced (:mod:`.pitch`);
* ``loudness_db`` (T,): short-time RMS level in dBFS (:mod:`.loudness`).

Each feature is cached separately (:mod:`.cache`) under the audio's content
hash and its own extractor config, so changing e.g. the pitch method does not
recompute the content features.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger.dsp.frames import FRAME_RATE, n_frames, resample_f0, resample_frames
from aisinger.dsp.loudness import LoudnessConfig, loudness_db
from aisinger.errors import AisingerError
from aisinger.features.cache import audio_key, cached
from aisinger.features.content import ContentConfig, content_features, CONTENT_FRAME_RATE
from aisinger.features.pitch import PitchConfig, estimate_f0
from aisinger.io.audio import load, to_mono
from aisinger.io.fileio import atomic_path, write_json

__all__ = ["FeatureConfig", "Features", "extract", "save_features", "load_features",
           "ContentConfig", "PitchConfig", "LoudnessConfig", "FRAME_RATE",
           "content_features", "estimate_f0", "loudness_db"]

FEATURES_FORMAT = 1  # version of the save_features file layout


@dataclass(frozen=True)
class FeatureConfig:
    """Configuration of :func:`extract` (one sub-config per feature)."""

    content: ContentConfig = field(default_factory=ContentConfig)
    pitch: PitchConfig = field(default_factory=PitchConfig)
    loudness: LoudnessConfig = field(default_factory=LoudnessConfig)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able) of the whole config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored, missing keys default)."""
        return _from_dict(cls, d)


def _from_dict(cls, d: dict):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        value = d[f.name]
        ftype = hints.get(f.name)
        if dataclasses.is_dataclass(ftype) and isinstance(value, dict):
            value = _from_dict(ftype, value)
        kwargs[f.name] = value
    return cls(**kwargs)


@dataclass
class Features:
    """Features of one mono signal on the shared frame grid.

    content: (T, 512) float32; f0: (T,) float32 Hz (0 = unvoiced);
    loudness_db: (T,) float32 dBFS; frame_rate: frames/s (frame i at i / frame_rate s);
    sr: sample rate of the analysed audio (Hz); duration: its length in seconds;
    config: the FeatureConfig used (None when unknown).
    """

    content: np.ndarray
    f0: np.ndarray
    loudness_db: np.ndarray
    frame_rate: int = FRAME_RATE
    sr: int = 0
    duration: float = 0.0
    config: FeatureConfig | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.f0.shape[0])

    def __post_init__(self) -> None:
        t = self.f0.shape[0]
        if self.content.ndim != 2 or self.content.shape[0] != t or self.loudness_db.shape != (t,):
            raise ValueError(f"inconsistent feature lengths: content {self.content.shape}, "
                             f"f0 {self.f0.shape}, loudness {self.loudness_db.shape}")


def _load_input(audio_or_path, sr: int | None) -> tuple[np.ndarray, int, str]:
    """(mono float32 (samples,), sample rate, cache audio key)."""
    if isinstance(audio_or_path, (str, Path)):
        audio, rate = load(audio_or_path, sr=sr, mono=True)
        key = audio_key(audio_or_path) + f"-mono-sr{rate}"
        return audio, int(rate), key
    if sr is None:
        raise AisingerError("extract: a sample rate (sr=) is needed with an audio array")
    audio = np.asarray(audio_or_path)
    if audio.ndim == 2:
        audio = to_mono(audio)
    if audio.ndim != 1:
        raise AisingerError(f"extract: audio must be (samples,) or (channels, samples), "
                            f"got shape {audio.shape}")
    if audio.shape[0] == 0:
        raise AisingerError("extract: empty audio")
    if not np.all(np.isfinite(audio)):
        raise AisingerError("extract: audio contains NaN or infinite samples")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    return audio, int(sr), audio_key(audio, int(sr))


def extract(
    audio_or_path,
    sr: int | None = None,
    config: FeatureConfig = FeatureConfig(),
    cache: bool | str | Path = True,
    *,
    progress: bool = True,
) -> Features:
    """Compute (or fetch from the cache) content, F0 and loudness of a voice.

    Parameters
    ----------
    audio_or_path : np.ndarray (samples,) or (channels, samples), or a path
        Channels are averaged (see :func:`aisinger.io.audio.to_mono`).
    sr : int, optional
        Sample rate of an array (required); for a path, resample to ``sr``
        first (None: the file's rate).
    config : FeatureConfig
    cache : bool or path
        True: the user cache (``cache_dir()/features``); a path: that folder;
        False: no caching.
    progress : bool
        Progress bar over the content windows of long inputs.

    Returns
    -------
    Features with T = n_frames(n_samples, sr) frames at 100 frames/s.
    """
    audio, rate, key = _load_input(audio_or_path, sr)
    n_out = n_frames(audio.shape[0], rate)
    enabled = cache is not False
    root = None if isinstance(cache, bool) else Path(cache)

    content = cached("content", key, config.content,
                     lambda: content_features(audio, rate, config.content, progress=progress),
                     root=root, enabled=enabled)
    # The cache key holds the *effective* voicing threshold, so changing a method's default
    # threshold invalidates old entries.
    pitch_key = dataclasses.replace(config.pitch, threshold=config.pitch.voicing_threshold())
    f0 = cached("f0", key, pitch_key, lambda: estimate_f0(audio, rate, config.pitch),
                root=root, enabled=enabled)
    loud = cached("loudness", key, config.loudness,
                  lambda: loudness_db(audio, rate, config.loudness), root=root, enabled=enabled)

    return Features(
        content=resample_frames(content, n_out, rate_in=CONTENT_FRAME_RATE),
        f0=resample_f0(f0, n_out, rate_in=FRAME_RATE) if f0.shape[0] != n_out
        else f0.astype(np.float32),
        loudness_db=resample_frames(loud, n_out, rate_in=FRAME_RATE) if loud.shape[0] != n_out
        else loud.astype(np.float32),
        frame_rate=FRAME_RATE,
        sr=rate,
        duration=audio.shape[0] / rate,
        config=config,
    )


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_features(features: Features, path: str | Path) -> Path:
    """Write ``features`` to ``path`` (.npz: content, f0, loudness_db) and its
    metadata (frame_rate, sr, duration, config) to the .json beside it.
    Both writes are atomic. Returns the .npz path."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    meta = {"format": FEATURES_FORMAT, "frame_rate": features.frame_rate, "sr": features.sr,
            "duration": features.duration, "n_frames": features.n_frames,
            "config": features.config.to_dict() if features.config is not None else None}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, content=features.content.astype(np.float32), f0=features.f0.astype(np.float32),
                 loudness_db=features.loudness_db.astype(np.float32))
    write_json(_meta_path(path), meta)
    return path


def load_features(path: str | Path) -> Features:
    """Read features written by :func:`save_features` (AisingerError if unreadable)."""
    import zipfile

    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    try:
        meta = json.loads(_meta_path(path).read_text())
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in ("content", "f0", "loudness_db")}
        config = FeatureConfig.from_dict(meta["config"]) if meta.get("config") else None
        return Features(**arrays, frame_rate=int(meta["frame_rate"]), sr=int(meta["sr"]),
                        duration=float(meta["duration"]), config=config)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise AisingerError(f"{path}: cannot read saved features ({type(exc).__name__}: "
                            f"{str(exc)[:120]})") from None
