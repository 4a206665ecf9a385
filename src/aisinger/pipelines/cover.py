"""One command from song to finished AI cover: ``aisinger cover SONG --voice VOICE -o OUT``.

Stages (each one public function of its module)::

    song ─ separation.get_separator().separate_vocals ─┬─ vocals ─ features.extract ─ key.choose_transpose
                                                       │            └─ convert.convert (retrieval, protect)
                                                       └─ accompaniment ─────────────┐         │
                                    remix.remix (pan, loudness balance) ◄────────────┴─────────┘
                                    label.label_audio (watermark, optional cue) ─ dsp.peak.limit_true_peak
                                    label.write_labelled (encode + AIGC metadata, one rename)

* Channels: mono songs give mono covers, stereo stereo; 5.1 (and other layouts) are
  downmixed to stereo first (ITU-R BS.775, see :func:`aisinger.io.audio.to_stereo`).
* No vocals: the cover is refused with a one-line error (no "cover" of an instrumental is
  made) when the separated vocal stem holds less than ``MIN_SUNG_S`` of *sung frames*:
  frames the pitch estimator finds voiced (periodic, harmonic: its confidence gate), audible
  (above ``SUNG_LEVEL_DB``) and prominent in the song (the stem's frame level at most
  ``PROMINENT_DB`` below the song's level in the same frame).  Separation leaves faint
  residue of instruments and of earlier separations in the vocal stem; one integrated
  loudness cut (-25 LU) let Spleeter's own accompaniment of the example song through
  (-24.6 LU, 1.2 s voiced), the frame evidence does not (0.0 s prominent vs 5.0 s in the
  song itself, 8.1 s in the lab song).
* The output rate is the song's; the length is the song's (plus the spoken notice, when the
  explicit label is on, which is put in front).
* Every output is labelled (metadata + watermark; the audible notice per
  :func:`aisinger.label.policy_for`), including the converted-vocal stem; the accompaniment
  stem is the song's own material and is written as separated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from aisinger.consent import check_voice
from aisinger.convert import DEFAULT_PROTECT, DEFAULT_RETRIEVAL, convert, feature_config
from aisinger.convert.key import (KEY_MODES, KeyChoice, choose_transpose, out_of_range_share,
                                  voice_range)
from aisinger.dsp.loudness import integrated_lufs
from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP, limit_true_peak
from aisinger.errors import AisingerError
from aisinger.features import FRAME_RATE, extract
from aisinger.features.pitch import DEFAULT_METHOD, METHODS
from aisinger.io import audio as audio_io
from aisinger.io.audio import to_stereo
from aisinger.io.fileio import atomic_dir
from aisinger.label import label_audio, policy_for, write_labelled
from aisinger.label.cue import DEFAULT_CUE_LANG
from aisinger.remix import VocalReference, remix
from aisinger.separation import DEFAULT_BACKEND, get_separator
from aisinger.voice.folder import load_voice

log = logging.getLogger("aisinger")

__all__ = ["CoverOptions", "CoverResult", "cover", "stems_dir_for", "NO_VOCALS_LU", "MIN_SUNG_S",
           "PROMINENT_DB", "sung_seconds", "frame_levels_db"]

NO_VOCALS_LU = -25.0
"""Integrated loudness of the vocal stem relative to the song, reported in the no-vocals
error (no longer a decision by itself; see ``PROMINENT_DB``)."""
MIN_SUNG_S = 1.0
"""Fewer seconds of sung frames (voiced, audible, prominent) than this means "no vocals"."""
PROMINENT_DB = -12.0
"""A voiced vocal-stem frame counts as sung only when its level is within this many dB of the
song's level in the same frame.  Measured (Spleeter, 10 ms frames, seconds of voiced frames
above the cut): lab song 8.1 s, real example song 5.0 s, Spleeter's accompaniment of the
example song 0.0 s (0.06 s at -15 dB, 0.37 s at -20 dB); fluidsynth-only accompaniment 0 s."""
MIN_SONG_S = MIN_SUNG_S
"""Shorter songs are refused at once (they cannot hold ``MIN_SUNG_S`` of singing)."""
SUNG_LEVEL_DB = -50.0
"""Frames of the vocal stem above this level (dBFS) count as audible."""
STAGE_WEIGHTS = {"separate": 0.30, "analyse": 0.25, "convert": 0.25, "remix": 0.10,
                 "label": 0.10}
"""Share of the whole job per stage, for the progress callback."""

Progress = Callable[[str, float], None]


@dataclass
class CoverOptions:
    """Options of :func:`cover` (the CLI and the request service share these defaults).

    transpose: semitones, or None for the automatic key (:mod:`aisinger.convert.key`);
    key_shift: ``"octave"`` (keeps the song's key) or ``"semitone"`` for the automatic key;
    retrieval: 0..1 k-NN retrieval of the voice's own content (against timbre leakage);
    protect: 0..1 share of the source kept on consonants and breaths;
    f0_method: pitch method of the source analysis; stems: also write the converted vocal and
    the accompaniment next to the output; explicit_label: audible notice ``"voice"``,
    ``"rhythm"`` or ``"none"`` (None: the stage's default); no_label: turn labelling off
    (explicit opt-out: warns and logs); service: label as the request service does (audible
    notice on by default); lang: language of the spoken notice; separator: backend name.
    """

    transpose: float | None = None
    key_shift: str = "octave"
    retrieval: float = DEFAULT_RETRIEVAL
    protect: float = DEFAULT_PROTECT
    f0_method: str = DEFAULT_METHOD
    stems: bool = False
    explicit_label: str | None = None
    no_label: bool = False
    service: bool = False
    lang: str = DEFAULT_CUE_LANG
    separator: str = DEFAULT_BACKEND

    def check(self) -> None:
        if self.key_shift not in KEY_MODES:
            raise AisingerError(f"cover: key shift must be one of {', '.join(KEY_MODES)}, got "
                                f"{self.key_shift!r}")
        if self.f0_method not in METHODS:
            raise AisingerError(f"cover: unknown F0 method {self.f0_method!r} (use one of "
                                f"{', '.join(METHODS)})")
        for name in ("retrieval", "protect"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise AisingerError(f"cover: {name} must be in [0, 1], got {v}")
        if self.transpose is not None and not np.isfinite(self.transpose):
            raise AisingerError(f"cover: transpose must be a number, got {self.transpose}")


@dataclass
class CoverResult:
    """What :func:`cover` made and measured.

    out_path: the cover; transpose: semitones used; key: the automatic choice (None when
    ``transpose`` was given); key_reason: one sentence; stems: name -> path; label: the
    metadata label written ({} when labelling was off); seconds: stage -> wall seconds;
    balance_lu: original vocal minus accompaniment loudness, which the cover keeps;
    shift_ms: timing offset of the converted vocal that alignment undid;
    vocal_gain_db, limiter_db, true_peak_dbtp: remix measurements.
    """

    out_path: Path
    transpose: float
    key: KeyChoice | None
    key_reason: str
    stems: dict = field(default_factory=dict)
    label: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    balance_lu: float = 0.0
    shift_ms: float = 0.0
    vocal_gain_db: float = 0.0
    limiter_db: float = 0.0
    true_peak_dbtp: float = float("-inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out_path"] = str(self.out_path)
        d["stems"] = {k: str(v) for k, v in self.stems.items()}
        return d


STEM_FILES = ("vocals_converted.wav", "accompaniment.wav")
"""Files of ``OUT.stems/`` (``--stems``)."""


def stems_dir_for(out_path: str | Path) -> Path:
    """Folder of the ``--stems`` files: ``OUT.stems/`` beside the cover."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".stems")


class _Clock:
    """Stage timings and progress reports."""

    def __init__(self, progress: Progress | None):
        self.progress, self.seconds, self.done, self.t = progress, {}, 0.0, time.perf_counter()

    def stage(self, name: str) -> None:
        if self.progress:
            self.progress(name, round(self.done, 4))

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self.t, 3)
        self.t = now
        self.done = min(1.0, self.done + STAGE_WEIGHTS.get(name, 0.0))
        if self.progress:
            self.progress(name, round(self.done, 4))


def _song_layout(audio: np.ndarray) -> np.ndarray:
    if audio.ndim == 1:
        return audio[None, :]
    if audio.shape[0] in (1, 2):
        return audio
    return to_stereo(audio)


def frame_levels_db(x: np.ndarray, sr: int, frame_rate: int) -> np.ndarray:
    """Mean-square level (dB) of mono ``x`` per frame of the feature grid (frame i covers
    samples round(i*sr/frame_rate) up to the next frame)."""
    x = np.asarray(x, dtype=np.float32)
    n = int(x.shape[0] * frame_rate // sr)
    if n == 0:
        return np.zeros(0, np.float32)
    edges = np.round(np.arange(n) * sr / frame_rate).astype(np.int64)
    sq = np.add.reduceat(np.square(x, dtype=np.float64), edges)
    counts = np.diff(np.append(edges, x.shape[0]))
    return (10 * np.log10(sq / np.maximum(counts, 1) + 1e-12)).astype(np.float32)


def sung_seconds(f0: np.ndarray, loudness_db: np.ndarray, vocal_db: np.ndarray,
                 mix_db: np.ndarray, frame_rate: int) -> float:
    """Seconds of sung frames in a separated vocal stem: voiced (``f0 > 0``: the pitch
    estimator's periodicity gate), audible (``loudness_db > SUNG_LEVEL_DB``) and prominent
    (stem level - song level > ``PROMINENT_DB`` in the frame)."""
    n = min(len(f0), len(loudness_db), len(vocal_db), len(mix_db))
    sung = (f0[:n] > 0) & (loudness_db[:n] > SUNG_LEVEL_DB) & \
        (vocal_db[:n] - mix_db[:n] > PROMINENT_DB)
    return float(np.sum(sung)) / frame_rate


def _check_vocals(song_path: Path, mix_lufs: float, vocal_lufs: float, feats,
                  vocal_db: np.ndarray, mix_db: np.ndarray) -> None:
    sung_s = sung_seconds(feats.f0, feats.loudness_db, vocal_db, mix_db, feats.frame_rate)
    rel = vocal_lufs - mix_lufs if np.isfinite(mix_lufs) else -np.inf
    if sung_s < MIN_SUNG_S:
        raise AisingerError(f"{song_path}: no vocals detected ({sung_s:.1f} s of sung frames "
                            f"in the separated vocal, {MIN_SUNG_S:g} s needed; vocal stem "
                            f"{rel:.1f} LU vs the song); nothing to cover")


def _label(audio, sr, voice_id, policy):
    if not policy.enabled:
        return audio, {}
    return label_audio(audio, sr, voice_id=voice_id, policy=policy)


def _write(path: Path, audio: np.ndarray, sr: int, label: dict):
    """Through the one labelled writer: OUT appears labelled (and at or below the true-peak
    ceiling, measured on the written file) or not at all."""
    return write_labelled(audio, sr, path, label, ceiling_dbtp=TRUE_PEAK_CEILING_DBTP)


def cover(song: str | Path, voice_dir: str | Path, out_path: str | Path,
          options: CoverOptions = CoverOptions(), progress: Progress | None = None
          ) -> CoverResult:
    """Make a finished, labelled cover of ``song`` in the voice ``voice_dir``.

    Args:
        song: any audio file aisinger reads (mono, stereo, 5.1; up to the length limit).
        voice_dir: a voice folder (``aisinger train`` / ``voice import``) whose consent record
            permits ``cover``.
        out_path: .wav, .flac, .mp3 or .ogg (format by extension; written atomically).
        options: see :class:`CoverOptions`.
        progress: ``progress(stage, fraction_of_job_done)`` after each stage.
    Raises:
        AisingerError: one line naming the file and the problem (bad song, no vocals, voice
            folder missing files or with a mismatched config, consent refusing the use).
    """
    options.check()
    song, voice_dir, out_path = Path(song), Path(voice_dir), Path(out_path)
    if out_path.suffix.lower() not in audio_io.WRITE_EXTENSIONS:
        raise AisingerError(f"{out_path}: cannot write '{out_path.suffix or 'no extension'}'; "
                            f"use one of {', '.join(audio_io.WRITE_EXTENSIONS)}")
    sdir = stems_dir_for(out_path)
    audio_io.check_outputs_not_inputs(
        [out_path] + ([sdir / n for n in STEM_FILES] if options.stems else []), [song],
        folders=[sdir] if options.stems else [])
    voice = load_voice(voice_dir)  # checks the folder before any heavy work
    check_voice(voice_dir, "cover")
    policy = policy_for("cover", no_label=options.no_label, service=options.service,
                        explicit=options.explicit_label, lang=options.lang)
    voice_id = voice_dir.resolve().name
    clock = _Clock(progress)

    clock.stage("separate")
    audio, sr = audio_io.load(song)
    if audio.shape[-1] < MIN_SONG_S * sr:
        raise AisingerError(f"{song}: {audio.shape[-1] / sr:.3f} s long; a cover needs a song "
                            f"of at least {MIN_SONG_S:g} s")
    audio = _song_layout(audio)
    vocals = get_separator(options.separator).separate_vocals(audio, sr)
    mix_lufs = integrated_lufs(audio, sr)
    mix_db = frame_levels_db(audio_io.to_mono(audio), sr, FRAME_RATE)
    accompaniment = np.subtract(audio, vocals, out=audio)  # the song's buffer is reused
    del audio
    clock.end("separate")

    clock.stage("analyse")
    vocal_mono = audio_io.to_mono(vocals)
    feats = extract(vocal_mono, sr, config=feature_config(voice, options.f0_method),
                    progress=False)
    reference = VocalReference.of(vocals, sr)  # what the remix needs of the stem
    del vocals
    _check_vocals(song, mix_lufs, reference.lufs, feats,
                  frame_levels_db(vocal_mono, sr, feats.frame_rate), mix_db)
    if options.transpose is None:
        key = choose_transpose(feats.f0, voice_range(voice.card), options.key_shift)
        transpose, reason = float(key.semitones), key.reason
    else:
        key, transpose = None, float(options.transpose)
        share = out_of_range_share(feats.f0, voice_range(voice.card), transpose)
        reason = f"transpose {transpose:+g} semitones given by the user" + (
            "" if share is None else f"; {share:.0%} of sung frames fall outside the voice's "
            "range")
    log.debug("key: %s", reason)
    clock.end("analyse")

    clock.stage("convert")
    converted, _ = convert(voice, vocal_mono, sr, feats, transpose=transpose,
                           f0_method=options.f0_method, retrieval=options.retrieval,
                           protect=options.protect, out_sr=sr)
    del vocal_mono, feats
    clock.end("convert")

    clock.stage("remix")
    # without stems the mix is summed into the accompaniment's buffer (memory on long songs)
    mixed = remix(converted, reference, accompaniment, sr, inplace=not options.stems,
                  keep_vocal=options.stems)
    del converted
    placed, mixed.vocal = mixed.vocal, None
    if not options.stems:
        del accompaniment
    clock.end("remix")

    clock.stage("label")
    y, label = _label(mixed.mix, sr, voice_id, policy)
    mixed.mix = None  # labelling returned a new array: free the unlabelled one
    y, reduction = limit_true_peak(y, sr, inplace=True)
    stems: dict[str, Path] = {}
    if options.stems:
        # the stems folder is built under a temp name and renamed into place whole
        with atomic_dir(sdir) as tmp_dir:
            v, v_label = _label(placed, sr, voice_id, policy_for(
                "cover", no_label=options.no_label, explicit="none"))
            del placed
            v, _ = limit_true_peak(v, sr, inplace=True)
            _write(tmp_dir / STEM_FILES[0], v, sr, v_label)
            del v
            write_labelled(accompaniment, sr, tmp_dir / STEM_FILES[1], {})  # the song's own
            del accompaniment
        stems = {"vocals_converted": sdir / STEM_FILES[0], "accompaniment": sdir / STEM_FILES[1]}
    written = _write(out_path, y, sr, label)
    clock.end("label")

    return CoverResult(out_path=out_path, transpose=transpose, key=key, key_reason=reason,
                       stems=stems, label=label, seconds=clock.seconds,
                       balance_lu=round(mixed.balance_lu, 2), shift_ms=round(mixed.shift_ms, 2),
                       vocal_gain_db=round(mixed.vocal_gain_db, 2),
                       limiter_db=round(reduction, 2),
                       true_peak_dbtp=round(written.true_peak_dbtp, 2))
