"""``aisinger dataset build``: turn recordings of one voice into a training dataset.

:func:`build_dataset` is the one entry point (the CLI is a thin wrapper).  Per input file, a
block of :attr:`~DatasetConfig.block_s` seconds at a time:

1. read the block (:mod:`aisinger.dataset.reader`; inputs are never modified);
2. skip it if it is silent (nothing above ``silence_floor_dbfs``);
3. separate the vocals when the block has accompaniment (``separate="auto"``: probe up to
   :data:`PROBE_WINDOWS` Spleeter segments, :func:`~aisinger.dataset.quality.
   accompaniment_level_db` >= ``accompaniment_threshold_db``), or always/never;
4. downmix to mono and resample to ``sample_rate``;
5. slice at silences into ``min_clip_s`` … ``max_clip_s`` clips (:mod:`aisinger.dataset.slicing`);
   a clip that reaches the end of a block is deferred and the next block starts at it, so
   block borders never cut a phrase;
6. reject clips that are ``too_short``, ``clipped`` (input samples), ``near_silent`` or
   ``noisy`` (few voiced frames), normalise the rest to ``target_lufs`` (EBU R128), track their
   F0 and write ``clips/<id>.wav``.

Then the clips are split into train/validation by a hash of their id (deterministic), and
``dataset.json``, ``report.md``, ``pitch_histogram.png`` and ``consent.json`` are written.

Resuming: each finished input leaves ``.work/sources/<sha256>.json``; a re-run with the same
config reuses it (same file content, clips present) and only processes new or changed inputs.
A config change that affects the clips (:meth:`DatasetConfig.fingerprint`) removes the old
clips and rebuilds; a change of only the split/report settings reprocesses nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aisinger.consent import ConsentRecord, check_scope, load_consent, require_consent, save_consent
from aisinger.dataset.config import PIPELINE_VERSION, DatasetConfig
from aisinger.dataset.quality import (ACCOMPANIMENT_ACTIVE_DB, MIDI_HIGH, MIDI_LOW,
                                      accompaniment_level_db, clipped_fraction, f0_histogram,
                                      f0_stats, integrated_lufs, normalise_loudness,
                                      voiced_share)
from aisinger.dataset.reader import BlockReader, open_source
from aisinger.dataset.report import plot_pitch_histogram, render_report
from aisinger.dataset.slicing import (SliceSettings, frame_levels_db, plan_clips,
                                      silence_threshold_db)
from aisinger.dsp.frames import FRAME_RATE
from aisinger.errors import AisingerError, AudioError
from aisinger.features.pitch import PitchConfig, estimate_f0, midi_to_note_name
from aisinger.io.audio import resample, save, to_mono
from aisinger.io.fileio import sha256_file, write_json, write_text
from aisinger.layout import (CLIPS_DIR, CONSENT_FILE, DATASET_JSON, DATASET_WORK_DIR,
                             HISTOGRAM_PNG, REPORT_MD)
from aisinger.progress import track
from aisinger.separation import get_separator

PROBE_WINDOW_S = 512 * 1024 / 44_100
"""Auto separation probes windows of one Spleeter model segment (11.9 s)."""
PROBE_WINDOWS = 4
"""Loudest windows probed per block; blocks up to this many windows are probed whole."""
SLUG_CHARS = 40
"""Longest source-name part of a clip id."""
ID_HASH_CHARS = 8
"""Hex digits of the source file's SHA-256 in a clip id."""
CONSENT_USE = "train"
"""The use a dataset's consent record must allow (:func:`aisinger.consent.check_scope`)."""
NO_CONSENT_MESSAGE = (
    "refusing to build a dataset without the voice owner's consent: pass --consent FILE (a "
    "consent record of the singer, format in docs/labelling.md) or --consent-self if the voice "
    "is your own")


@dataclass
class DatasetResult:
    """What :func:`build_dataset` made (the same numbers as ``dataset.json``'s totals)."""

    path: Path
    name: str
    clips: int
    train: int
    validation: int
    minutes: float
    rejected: list[dict[str, Any]]
    warnings: list[str]
    pitch_range: tuple[str, str]
    """5th and 95th percentile of the voiced F0 as note names."""
    sources_processed: int
    sources_reused: int
    report: Path = field(default=Path())


# ----------------------------------------------------------------------------------------------
# inputs


def collect_inputs(inputs: Sequence[str | Path], exclude: Path | None = None) -> list[Path]:
    """Files named in ``inputs``, folders searched recursively (sorted, hidden files and
    anything under ``exclude`` skipped, duplicates dropped).

    Raises AisingerError when an input does not exist or nothing is found at all.
    """
    if not inputs:
        raise AisingerError("no inputs given: name audio files or folders to build from")
    exclude = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        r = p.resolve()
        if r in seen or (exclude is not None and r.is_relative_to(exclude)):
            return
        seen.add(r)
        found.append(p)

    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise AisingerError(f"{p}: input not found")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            for f in files:
                add(f)
        else:
            add(p)
    if not found:
        names = ", ".join(str(i) for i in inputs)
        raise AisingerError(f"{names}: no files found (empty folder?); give audio files or "
                            "folders that contain them")
    return found


def _slug(path: Path) -> str:
    """A file-name-safe short name from a source file's stem."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-")
    return (s or "source")[:SLUG_CHARS]


# ----------------------------------------------------------------------------------------------
# consent


def resolve_consent(consent: Any, consent_self: bool, name: str, out_dir: Path | None = None):
    """The :class:`aisinger.consent.ConsentRecord` for this build, or AisingerError.

    ``consent`` may be a record or the path of one; ``consent_self`` makes a self-consent
    record with ``name`` as the owner (the voice is the user's own).  A self-consent record
    already stored in ``out_dir`` for the same owner is kept (re-runs do not re-date it).
    The record must permit :data:`CONSENT_USE`.
    """
    if consent is not None and consent_self:
        raise AisingerError("give either a consent record (--consent FILE) or --consent-self, "
                            "not both")
    if isinstance(consent, ConsentRecord):
        check_scope(consent, CONSENT_USE)
        return consent
    if consent_self and out_dir is not None and (out_dir / CONSENT_FILE).is_file():
        try:
            old = load_consent(out_dir / CONSENT_FILE)
        except AisingerError:
            old = None
        if old is not None and old.self_consent and old.voice_owner == name:
            check_scope(old, CONSENT_USE)
            return old
    if consent is None and not consent_self:
        raise AisingerError(NO_CONSENT_MESSAGE)
    return require_consent(consent, CONSENT_USE, self_owner=name if consent_self else None)


# ----------------------------------------------------------------------------------------------
# per block


@dataclass
class _Context:
    """What processing one source needs besides the audio."""

    config: DatasetConfig
    slicing: SliceSettings
    clips_dir: Path
    separator_cache: dict = field(default_factory=dict)

    def separator(self):
        """The separation backend (created once per build)."""
        if "sep" not in self.separator_cache:
            self.separator_cache["sep"] = get_separator(self.config.separator)
        return self.separator_cache["sep"]


def _probe_accompaniment(block: np.ndarray, sr: int,
                         ctx: _Context) -> tuple[float, np.ndarray | None]:
    """Accompaniment level (dB re mixture) of a block and, when the probe covered the whole
    block, its vocals (else None).  See :data:`PROBE_WINDOWS`."""
    sep = ctx.separator()
    w = int(round(PROBE_WINDOW_S * sr))
    n = block.shape[1]
    if n <= PROBE_WINDOWS * w:
        vocals = sep.separate_vocals(block, sr)
        return accompaniment_level_db(block, vocals, sr), vocals
    starts = list(range(0, n - w + 1, w))
    if starts[-1] + w < n:
        starts.append(n - w)  # the tail too
    windows = [block[:, a:a + w] for a in starts]
    energy = np.array([np.einsum("ij,ij->", x, x, dtype=np.float64) for x in windows])
    loud = np.argsort(energy)[::-1][:PROBE_WINDOWS]
    # windows of silence or near-silence tell nothing and cost a separation each
    picks = sorted(int(i) for i in loud
                   if energy[i] >= energy.max() * 10 ** (-ACCOMPANIMENT_ACTIVE_DB / 10))
    mix = np.concatenate([windows[i] for i in picks], axis=1)
    voc = np.concatenate([sep.separate_vocals(np.ascontiguousarray(windows[i]), sr)
                          for i in picks], axis=1)
    return accompaniment_level_db(mix, voc, sr), None


def _vocals_of_block(block: np.ndarray, sr: int,
                     ctx: _Context) -> tuple[np.ndarray, bool, float | None]:
    """The voice of a block ``(C, n)``: ``(audio (C, n), separated, accompaniment_db)``."""
    mode = ctx.config.separate
    if mode == "never":
        return block, False, None
    if mode == "always":
        return ctx.separator().separate_vocals(block, sr), True, None
    level, vocals = _probe_accompaniment(block, sr, ctx)
    if level < ctx.config.accompaniment_threshold_db:
        return block, False, level
    if vocals is None:
        vocals = ctx.separator().separate_vocals(block, sr)
    return vocals, True, level


def _frames_to_samples(f: int, sr: int) -> int:
    return int(round(f * sr / FRAME_RATE))


def _process_block(block: np.ndarray, sr_in: int, block_start: int, is_last: bool,
                   source: Path, sha: str, ctx: _Context, out: dict) -> int:
    """Slice, check and write the clips of one block; return the next block's start sample.

    ``out`` collects ``clips``, ``rejected``, ``histogram`` and block notes in place.
    """
    cfg = ctx.config
    n_in = block.shape[1]
    end_of_block = block_start + n_in
    if max(float(block.max()), -float(block.min())) < 10 ** (cfg.silence_floor_dbfs / 20):
        out["blocks"].append({"start": round(block_start / sr_in, 3), "silent": True})
        return end_of_block
    voice, separated, acc_db = _vocals_of_block(block, sr_in, ctx)
    out["blocks"].append({"start": round(block_start / sr_in, 3), "silent": False,
                          "separated": separated,
                          "accompaniment_db": None if acc_db is None else round(acc_db, 2)})
    sr = cfg.sample_rate
    mono = resample(to_mono(voice), sr_in, sr)
    del voice
    levels = frame_levels_db(mono, sr)
    threshold = silence_threshold_db(levels, ctx.slicing)
    pieces = plan_clips(levels, ctx.slicing, threshold)
    next_start = end_of_block
    if not is_last:
        # pieces near the block end may continue in the next block: redo them there
        guard = int(round((cfg.max_gap_s + cfg.pad_s + cfg.min_silence_s) * FRAME_RATE))
        tail = [p for p in pieces if p.b >= levels.shape[0] - guard]
        first_a = min((p.a for p in tail), default=0)
        if tail and first_a > 0:  # (block_s >= 4 * max_clip_s makes first_a > 0)
            next_start = block_start + _frames_to_samples(first_a, sr_in)
            pieces = [p for p in pieces if p.b < levels.shape[0] - guard]
    t0 = block_start / sr_in
    pitch_cfg = PitchConfig(method=cfg.pitch_method)
    for p in pieces:
        start_s, end_s = t0 + p.a / FRAME_RATE, t0 + p.b / FRAME_RATE
        where = {"source": str(source), "start": round(start_s, 3), "end": round(end_s, 3),
                 "duration": round(p.seconds, 3)}

        def reject(reason: str, detail: str) -> None:
            out["rejected"].append({**where, "reason": reason, "detail": detail})

        if p.kind == "too_short":
            reject("too_short", f"{p.seconds:.2f} s of sound between pauses "
                                f"(minimum {cfg.min_clip_s:g} s)")
            continue
        original = block[:, _frames_to_samples(p.a, sr_in):_frames_to_samples(p.b, sr_in)]
        clipped = clipped_fraction(original, cfg.clip_level)
        if clipped > cfg.max_clipped_fraction:
            reject("clipped", f"{100 * clipped:.2f} % of the input samples at |x| >= "
                              f"{cfg.clip_level:g} (limit {100 * cfg.max_clipped_fraction:g} %)")
            continue
        seg = mono[_frames_to_samples(p.a, sr):_frames_to_samples(p.b, sr)]
        before = integrated_lufs(seg, sr)
        if not before >= cfg.near_silent_lufs:
            reject("near_silent", f"loudness {before:.1f} LUFS (limit {cfg.near_silent_lufs:g})")
            continue
        y, gain_db, after = normalise_loudness(seg, sr, cfg.target_lufs, cfg.peak_ceiling_dbfs)
        f0 = estimate_f0(y, sr, pitch_cfg)
        share = voiced_share(f0, levels[p.a:p.b], threshold)
        if share < cfg.min_voiced_share:
            reject("noisy", f"{100 * share:.0f} % of the sound is voiced (minimum "
                            f"{100 * cfg.min_voiced_share:g} %): mostly noise")
            continue
        clip_id = f"{_slug(source)}-{sha[:ID_HASH_CHARS]}-{int(round(start_s * 1000)):08d}"
        save(ctx.clips_dir / f"{clip_id}.wav", y, sr)
        out["histogram"] += f0_histogram(f0)
        peak = float(np.max(np.abs(y)))
        out["clips"].append({
            "id": clip_id, "file": f"{CLIPS_DIR}/{clip_id}.wav", **where,
            "source_sha256": sha, "separated": separated,
            "loudness_lufs": round(after, 2), "input_loudness_lufs": round(before, 2),
            "gain_db": round(gain_db, 2),
            "peak_dbfs": round(20 * math.log10(peak), 2) if peak > 0 else None,
            "voiced_share": round(share, 3), "f0": f0_stats(f0)})
    return next_start


def process_source(reader: BlockReader, sha: str, ctx: _Context) -> dict[str, Any]:
    """Process one input file block by block; return its work record (clips, rejections,
    F0 histogram, block notes).  Raises AudioError if the file turns out undecodable."""
    cfg = ctx.config
    sr_in = reader.sr
    block_n = int(round(cfg.block_s * sr_in))
    out: dict[str, Any] = {"clips": [], "rejected": [], "blocks": [],
                           "histogram": np.zeros(MIDI_HIGH - MIDI_LOW + 1, dtype=np.int64)}
    start = 0
    while start < reader.frames:
        block = reader.read(start, block_n)
        if block.shape[1] == 0:
            break
        is_last = block.shape[1] < block_n or start + block.shape[1] >= reader.frames
        start = _process_block(block, sr_in, start, is_last, reader.path, sha, ctx, out)
        del block
    return {"pipeline": PIPELINE_VERSION, "sha256": sha, "source": str(reader.path),
            "duration": round(reader.frames / sr_in, 3), "sample_rate": sr_in,
            "channels": reader.channels, "blocks": out["blocks"], "clips": out["clips"],
            "rejected": out["rejected"], "histogram": out["histogram"].tolist()}


# ----------------------------------------------------------------------------------------------
# split and totals


def split_unit(clip_id: str, seed: int) -> float:
    """A clip's position in [0, 1) for the split: SHA-256 of ``"{seed}:{clip_id}"``."""
    h = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2 ** 64


def assign_split(clips: list[dict], fraction: float, seed: int) -> None:
    """Set ``clip["split"]`` to ``"validation"`` when its :func:`split_unit` < ``fraction``,
    else ``"train"``.  With two or more clips and ``fraction > 0`` at least one clip goes to
    each side (the lowest / highest unit).  Depends only on the ids: deterministic."""
    units = {c["id"]: split_unit(c["id"], seed) for c in clips}
    for c in clips:
        c["split"] = "validation" if units[c["id"]] < fraction else "train"
    if len(clips) >= 2 and fraction > 0:
        ranked = sorted(clips, key=lambda c: units[c["id"]])
        if not any(c["split"] == "validation" for c in clips):
            ranked[0]["split"] = "validation"
        if not any(c["split"] == "train" for c in clips):
            ranked[-1]["split"] = "train"


def histogram_percentile(hist: np.ndarray, q: float) -> int:
    """MIDI note of the ``q``-th percentile (0–100) of a :func:`f0_histogram`."""
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, q / 100 * cum[-1], side="left"))
    return MIDI_LOW + min(k, hist.shape[0] - 1)


def _pitch_summary(hist: np.ndarray) -> dict[str, Any]:
    if hist.sum() == 0:
        return {"voiced_minutes": 0.0}
    notes = {f"p{q}": histogram_percentile(hist, q) for q in (1, 5, 95, 99)}
    notes["median"] = histogram_percentile(hist, 50)
    return {"voiced_minutes": round(float(hist.sum()) / FRAME_RATE / 60, 2),
            **{f"{k}_midi": v for k, v in notes.items()},
            **{f"{k}_note": midi_to_note_name(v) for k, v in notes.items()},
            "range_semitones": notes["p95"] - notes["p5"],
            "histogram": {"midi_low": MIDI_LOW, "frames": hist.tolist()}}


def _warnings(cfg: DatasetConfig, minutes: float, pitch: dict, clips: list[dict]) -> list[str]:
    out = []
    if minutes < cfg.min_minutes:
        out.append(f"only {minutes:.1f} min of usable singing (recommended: at least "
                   f"{cfg.min_minutes:g} min); the voice model will be weak")
    if "range_semitones" in pitch and pitch["range_semitones"] < cfg.min_range_semitones:
        out.append(f"narrow pitch range {pitch['p5_note']}–{pitch['p95_note']} "
                   f"({pitch['range_semitones']} semitones between the 5th and 95th percentile, "
                   f"recommended: at least {cfg.min_range_semitones:g}); the model will sing "
                   "poorly outside it")
    if cfg.validation_fraction > 0 and len(clips) < 2:
        out.append("only one clip: the validation split is empty")
    return out


# ----------------------------------------------------------------------------------------------
# the build


def _prepare_out_dir(out: Path, fingerprint: str) -> None:
    """Create or check the dataset folder; clear its clips when the config changed."""
    if out.exists() and not out.is_dir():
        raise AisingerError(f"{out}: exists and is not a folder")
    work = out / DATASET_WORK_DIR
    if out.exists() and any(out.iterdir()) and not (out / DATASET_JSON).exists() \
            and not work.exists():
        raise AisingerError(f"{out}: folder is not empty and is not an aisinger dataset; "
                            "choose a new or empty folder")
    state_path = work / "state.json"
    state = {}
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except ValueError:
            state = {}
    if state.get("fingerprint") != fingerprint:
        # different clip settings (or a different pipeline version): start over
        shutil.rmtree(work / "sources", ignore_errors=True)
        clips = out / CLIPS_DIR
        if clips.exists():
            for f in clips.glob("*.wav"):
                f.unlink()
        write_json(state_path, {"fingerprint": fingerprint, "pipeline": PIPELINE_VERSION})
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    (work / "sources").mkdir(parents=True, exist_ok=True)


def _load_record(path: Path, out: Path) -> dict | None:
    """A finished source record whose clips all exist, else None."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("pipeline") != PIPELINE_VERSION:
        return None
    if not all((out / c["file"]).exists() for c in record.get("clips", [])):
        return None
    return record


def _relocate(record: dict, source: Path) -> dict:
    """A reused record with its source path updated (the file may have moved)."""
    s = str(source)
    record["source"] = s
    for item in record["clips"] + record["rejected"]:
        item["source"] = s
    return record


def build_dataset(inputs: Sequence[str | Path], out_dir: str | Path, *, name: str,
                  consent: Any = None, consent_self: bool = False,
                  config: DatasetConfig | None = None) -> DatasetResult:
    """Build a training dataset of one voice from songs or dry recordings.

    Args:
        inputs: audio files and/or folders (searched recursively; hidden files skipped).
            Files that are not audio are listed as rejected and the build continues.
        out_dir: the dataset folder (created; re-running resumes, see the module docstring).
        name: the dataset's (voice's) name, stored in ``dataset.json``; with ``consent_self``
            also the owner's name in the self-consent record.
        consent: a :class:`aisinger.consent.ConsentRecord` or the path of a consent JSON.
        consent_self: the voice is the user's own (makes a self-consent record).
        config: processing settings (default :class:`DatasetConfig`).
    Returns:
        A :class:`DatasetResult` (counts, minutes, rejections, warnings).
    Raises:
        AisingerError: no consent, no inputs, bad config, or no usable audio at all.
    """
    cfg = (config or DatasetConfig()).validate()
    name = " ".join(str(name).split())
    if not name:
        raise AisingerError("dataset name is empty: give --name NAME")
    out = Path(out_dir)
    record_consent = resolve_consent(consent, consent_self, name, out)
    files = collect_inputs(inputs, exclude=out)
    fingerprint = cfg.fingerprint()
    _prepare_out_dir(out, fingerprint)
    ctx = _Context(cfg, SliceSettings.from_config(cfg), out / CLIPS_DIR)

    records: list[dict] = []
    rejected: list[dict] = []
    seen: dict[str, Path] = {}
    processed = reused = 0
    for path in track(files, total=len(files), description="dataset"):
        try:
            reader = open_source(path)
            sha = sha256_file(path)
        except AudioError as err:
            rejected.append({"source": str(path), "reason": "unreadable", "detail": str(err)})
            continue
        if sha in seen:
            rejected.append({"source": str(path), "reason": "duplicate",
                             "detail": f"same content as {seen[sha]}"})
            continue
        seen[sha] = path
        rec_path = out / DATASET_WORK_DIR / "sources" / f"{sha}.json"
        record = _load_record(rec_path, out) if rec_path.exists() else None
        if record is not None:
            records.append(_relocate(record, path))
            reused += 1
            continue
        try:
            record = process_source(reader, sha, ctx)
        except AudioError as err:
            rejected.append({"source": str(path), "reason": "unreadable", "detail": str(err)})
            continue
        if not record["clips"] and not record["rejected"]:
            record["rejected"].append({"source": str(path), "reason": "silent",
                                       "detail": f"no sound above {cfg.silence_floor_dbfs:g} dBFS"})
        write_json(rec_path, record, indent=None)
        records.append(record)
        processed += 1

    clips = sorted((c for r in records for c in r["clips"]), key=lambda c: c["id"])
    rejected = rejected + [x for r in records for x in r["rejected"]]
    if not clips:
        raise AisingerError(f"no usable audio in {', '.join(str(i) for i in inputs)}: "
                            f"{len(files)} file(s), {_reason_counts_text(rejected)}")
    assign_split(clips, cfg.validation_fraction, cfg.split_seed)
    hist = np.sum([np.asarray(r["histogram"], dtype=np.int64) for r in records], axis=0)
    pitch = _pitch_summary(hist)
    minutes = sum(c["duration"] for c in clips) / 60
    warnings = _warnings(cfg, minutes, pitch, clips)
    _remove_stale_clips(out, {c["id"] for c in clips})

    n_val = sum(c["split"] == "validation" for c in clips)
    totals = {
        "clips": len(clips), "train": len(clips) - n_val, "validation": n_val,
        "minutes": round(minutes, 3),
        "train_minutes": round(sum(c["duration"] for c in clips if c["split"] == "train") / 60, 3),
        "input_files": len(files),
        "input_minutes": round(sum(r["duration"] for r in records) / 60, 3),
        "rejected": len(rejected), "rejected_by_reason": _reason_counts(rejected),
        "rejected_minutes": round(sum(x.get("duration", 0) or 0 for x in rejected) / 60, 3),
    }
    save_consent(record_consent, out / CONSENT_FILE)

    plot_pitch_histogram(hist, out / HISTOGRAM_PNG, title=f"{name}: pitch histogram")
    doc = {
        "format": "aisinger-dataset", "version": 1, "name": name,
        "sample_rate": cfg.sample_rate, "config": cfg.to_dict(), "config_fingerprint": fingerprint,
        "consent": CONSENT_FILE, "report": REPORT_MD, "pitch_histogram": HISTOGRAM_PNG,
        "totals": totals, "pitch": pitch, "warnings": warnings,
        "sources": [{k: r[k] for k in ("source", "sha256", "duration", "sample_rate", "channels",
                                        "blocks")} for r in records],
        "clips": clips, "rejected": rejected,
    }
    report_path = write_text(out / REPORT_MD, render_report(doc, record_consent))
    write_json(out / DATASET_JSON, doc)
    return DatasetResult(path=out, name=name, clips=len(clips), train=len(clips) - n_val,
                         validation=n_val, minutes=round(minutes, 3), rejected=rejected,
                         warnings=warnings,
                         pitch_range=(pitch.get("p5_note", ""), pitch.get("p95_note", "")),
                         sources_processed=processed, sources_reused=reused, report=report_path)


def _reason_counts(rejected: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for x in rejected:
        counts[x["reason"]] = counts.get(x["reason"], 0) + 1
    return dict(sorted(counts.items()))


def _reason_counts_text(rejected: list[dict]) -> str:
    counts = _reason_counts(rejected)
    if not counts:
        return "nothing to slice"
    return "rejected: " + ", ".join(f"{n} {reason}" for reason, n in counts.items())


def _remove_stale_clips(out: Path, keep: set[str]) -> None:
    """Delete clip files of inputs no longer in the build (only ``clips/*.wav``)."""
    for f in (out / CLIPS_DIR).glob("*.wav"):
        if f.stem not in keep:
            f.unlink()
