"""Objective evaluation of a voice conversion: ``aisinger eval`` is a thin layer over this.

One call, :func:`evaluate`, compares a converted OUTPUT with its SOURCE and the target voice's
reference clips and returns a flat dict of numbers.  Each metric lives in its own module and
registers itself in :data:`aisinger.eval.registry.METRICS`:

================  ==================================================  =====================
metric            keys                                                needs
================  ==================================================  =====================
similarity        similarity_target, similarity_source,               source or target refs
                  similarity_margin (Resemblyzer cosine)
f0                f0_rmse_cents, f0_corr, vuv_error, f0_voiced_frames  source
intelligibility   cer, wer (Whisper base vs lyrics / source's text)   lyrics or source
dnsmos            dnsmos_sig, dnsmos_bak, dnsmos_ovrl, dnsmos_p808    (output only)
naturalness       naturalness, naturalness_refs, naturalness_gap      (output; refs for gap)
                  (DistillMOS 1-5, trained on speech: compare, do not
                  read alone)
spectrum          spectrum_max_abs_db (largest per-octave-band        target refs
                  difference of the long-term spectra, dB; per-band
                  table in info["spectrum"])
rtf               rtf, processing_seconds                             timing
================  ==================================================  =====================

A metric whose input is missing is skipped and listed under ``"skipped"`` with the reason.
Besides the numbers, a result holds ``"output"`` (the file, or ``"<array>"``), ``"skipped"``
(metric -> reason), ``"notes"`` (warnings such as a length mismatch), ``"info"`` (transcripts,
VAD and F0 method used) and ``"metric_seconds"`` (compute time per metric).  Undefined values
are NaN; :func:`to_jsonable` turns them into ``null`` for JSON.

Batch evaluation (:func:`evaluate_batch`) reads a folder laid out as described there;
:func:`format_table` renders results as a plain-text table.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aisinger.errors import AisingerError
from aisinger.eval.registry import (METRICS, Audio, EvalContext, Metric, Timing, as_audio,
                                    get_metric, register)

METRIC_MODULES = ("similarity", "f0", "intelligibility", "dnsmos", "naturalness", "spectrum",
                  "rtf")
"""Built-in metric modules; importing one registers its metric (this order is the run order)."""
for _module in METRIC_MODULES:
    importlib.import_module(f"aisinger.eval.{_module}")

from aisinger.eval.intelligibility import check_language  # noqa: E402 (after registration)
from aisinger.progress import track

__all__ = [
    "METRICS", "Metric", "EvalContext", "Timing", "register", "evaluate", "evaluate_batch",
    "format_table", "to_jsonable", "REPORT_KEYS", "AUDIO_EXTENSIONS", "MANIFEST_NAMES",
]

AudioInput = str | Path | Audio | np.ndarray
"""A file path, an ``(audio, sr)`` pair, or an array (then ``sr=`` must be given)."""

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac",
                              ".aif", ".aiff"})
"""File extensions taken as audio when a folder of target references is scanned."""

REPORT_KEYS = ("similarity_target", "similarity_source", "similarity_margin", "f0_rmse_cents",
               "f0_corr", "vuv_error", "cer", "wer", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
               "dnsmos_p808", "naturalness", "naturalness_refs", "naturalness_gap",
               "spectrum_max_abs_db", "rtf")
"""Keys :func:`to_jsonable` always includes (``null`` when not computed), in display order."""

MANIFEST_NAMES = ("eval.json", "eval.csv")
"""Manifest file names looked for in a batch folder."""

TABLE_DIGITS = 3  # decimals shown by format_table


# ----------------------------------------------------------------------------------------------
# inputs


def _reference_paths(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not paths:
        raise AisingerError(f"{folder}: no audio files found for the target references")
    return paths


def _as_refs(refs: Any, sr: int | None) -> list[Audio]:
    """Target references: a folder of audio files, one input, or a list of inputs."""
    if refs is None:
        return []
    if isinstance(refs, (str, Path)) and Path(refs).is_dir():
        refs = _reference_paths(Path(refs))
    elif isinstance(refs, (str, Path, np.ndarray)) or (isinstance(refs, tuple) and len(refs) == 2
                                                       and isinstance(refs[0], np.ndarray)):
        refs = [refs]
    return [as_audio(r, sr, "target reference")[0] for r in refs]


def _as_timing(timing: Any) -> Timing | None:
    if timing is None or isinstance(timing, Timing):
        return timing
    if isinstance(timing, (int, float)):
        return Timing(float(timing))
    if isinstance(timing, dict) and "processing_seconds" in timing:
        audio_s = timing.get("audio_seconds")
        return Timing(float(timing["processing_seconds"]), None if audio_s is None else float(audio_s))
    raise AisingerError("timing: expected seconds, a Timing, or a dict with 'processing_seconds'")


# ----------------------------------------------------------------------------------------------
# evaluation


def evaluate(output: AudioInput, source: AudioInput | None = None, target_refs: Any = None,
             transpose: float = 0.0, lyrics: str | None = None, lang: str = "en",
             metrics: Sequence[str] | None = None, timing: Any = None, *, sr: int | None = None,
             f0_method: str = "fcpe") -> dict[str, Any]:
    """Evaluate one converted file.

    Args:
        output: the converted audio (path, ``(audio, sr)`` pair, or array with ``sr=``).
        source: the audio that was converted (same forms), or None.
        target_refs: the target voice's reference clips: a folder of audio files, one input,
            or a list of inputs; None for none.
        transpose: semitones the conversion shifted the pitch by (expected output F0 =
            source F0 * 2^(transpose/12)).
        lyrics: reference text for CER; None = the source's transcription.
        lang: ``zh``, ``yue``, ``en`` or ``ja`` (Whisper language and text normalisation).
        metrics: names of metrics to run (default: all registered, see
            :data:`~aisinger.eval.registry.METRICS`).
        timing: processing time of the conversion: seconds, a :class:`Timing`, or
            ``{"processing_seconds": s, "audio_seconds": d}``; enables ``rtf``.
        sr: sample rate of inputs given as bare arrays.
        f0_method: pitch estimator for the F0 metric (see :mod:`aisinger.features.pitch`).
    Returns:
        A flat dict: metric values (floats, NaN where undefined) plus ``output``, ``skipped``,
        ``notes``, ``info`` and ``metric_seconds`` (see the module doc).
    Raises:
        AisingerError: unreadable input, unknown metric or language, bad timing.
    """
    names = list(METRICS) if metrics is None else list(metrics)
    selected = [get_metric(n) for n in names]
    check_language(lang)
    out_audio, label = as_audio(output, sr, "output")
    ctx = EvalContext(
        output=out_audio,
        source=None if source is None else as_audio(source, sr, "source")[0],
        target_refs=_as_refs(target_refs, sr),
        transpose=float(transpose),
        lyrics=lyrics,
        lang=lang,
        timing=_as_timing(timing),
        f0_method=f0_method,
    )
    result: dict[str, Any] = {"output": label}
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for metric in selected:
        reason = metric.missing(ctx)
        if reason is not None:
            skipped[metric.name] = reason
            continue
        start = time.perf_counter()
        result.update(metric.compute(ctx))
        seconds[metric.name] = time.perf_counter() - start
    result.update(skipped=skipped, notes=list(ctx.notes), info=dict(ctx.info),
                  metric_seconds=seconds)
    return result


# ----------------------------------------------------------------------------------------------
# batch


def _manifest_items(path: Path) -> list[dict[str, Any]]:
    """Items of an ``eval.json`` / ``eval.csv`` manifest, paths resolved against its folder."""
    base = path.parent
    try:
        if path.suffix.lower() == ".json":
            items = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise AisingerError(f"{path}: expected a JSON list of objects")
        else:
            with open(path, newline="", encoding="utf-8") as f:
                items = [dict(row) for row in csv.DictReader(f)]
            for item in items:  # several target files in one CSV cell are ';'-separated
                if item.get("target") and ";" in item["target"]:
                    item["target"] = [t.strip() for t in item["target"].split(";") if t.strip()]
    except (OSError, ValueError, csv.Error) as err:
        raise AisingerError(f"{path}: cannot read the manifest ({err})") from err

    def resolve(p: Any) -> Any:
        if isinstance(p, list):
            return [resolve(q) for q in p]
        return base / p if isinstance(p, str) and p else None

    out = []
    for i, item in enumerate(items):
        if not item.get("output"):
            raise AisingerError(f"{path}: item {i + 1} has no 'output'")
        item = {k: v for k, v in item.items() if v not in ("", None)}
        for key in ("output", "source", "target"):
            if key in item:
                item[key] = resolve(item[key])
        out.append(item)
    return out


def _first_audio(folder: Path, stem: str) -> Path | None:
    hits = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    return hits[0] if hits else None


def _folder_items(folder: Path) -> list[dict[str, Any]]:
    """Items of a folder of per-case subfolders (``output.*``, ``source.*``, ``target/`` or
    ``target.*``, ``lyrics.txt``)."""
    items = []
    for case in sorted(p for p in folder.iterdir() if p.is_dir()):
        output = _first_audio(case, "output")
        if output is None:
            continue
        item: dict[str, Any] = {"output": output}
        source = _first_audio(case, "source")
        if source is not None:
            item["source"] = source
        target = case / "target" if (case / "target").is_dir() else _first_audio(case, "target")
        if target is not None:
            item["target"] = target
        if (case / "lyrics.txt").is_file():
            item["lyrics"] = (case / "lyrics.txt").read_text(encoding="utf-8")
        items.append(item)
    if not items:
        raise AisingerError(f"{folder}: no {' or '.join(MANIFEST_NAMES)} and no subfolders with "
                            "an output.* file to evaluate")
    return items


def _batch_items(folder_or_triples: Any) -> list[dict[str, Any]]:
    if isinstance(folder_or_triples, (str, Path)):
        path = Path(folder_or_triples)
        if path.is_file():
            return _manifest_items(path)
        if not path.is_dir():
            raise AisingerError(f"{path}: batch folder or manifest not found")
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return _manifest_items(path / name)
        return _folder_items(path)
    items = []
    for entry in folder_or_triples:
        if isinstance(entry, dict):
            items.append(dict(entry))
        else:
            output, source, target = (list(entry) + [None, None])[:3]
            items.append({"output": output, "source": source, "target": target})
    return items


def evaluate_batch(folder_or_triples: Any, *, lang: str = "en", transpose: float = 0.0,
                   metrics: Sequence[str] | None = None, f0_method: str = "fcpe",
                   stop_on_error: bool = False) -> list[dict[str, Any]]:
    """Evaluate many conversions; model loads are shared across items.

    ``folder_or_triples`` is one of:

    * a folder holding ``eval.json`` — a list of objects with ``output`` (required),
      ``source``, ``target`` (a file, a folder, or a list of files), ``transpose``, ``lyrics``,
      ``lang``, ``processing_seconds`` — or ``eval.csv`` with those columns (several target
      files in one cell separated by ``;``); relative paths are relative to the manifest;
    * the path of such a manifest file;
    * a folder of case subfolders, each with ``output.<ext>`` and optionally ``source.<ext>``,
      ``target/`` (a folder of clips) or ``target.<ext>``, and ``lyrics.txt``;
    * an iterable of ``(output, source, target)`` triples or of dicts as in ``eval.json``.

    Per-item ``transpose``/``lang`` override the keyword defaults.  An item that fails with an
    :class:`AisingerError` gives ``{"output": ..., "error": message}`` unless
    ``stop_on_error``.
    """
    results = []
    items = _batch_items(folder_or_triples)
    for item in track(items, total=len(items), description="evaluating"):
        processing = item.get("processing_seconds")
        try:
            results.append(evaluate(
                item["output"], source=item.get("source"), target_refs=item.get("target"),
                transpose=float(item.get("transpose", transpose)), lyrics=item.get("lyrics"),
                lang=item.get("lang", lang), metrics=metrics,
                timing=None if processing is None else float(processing), f0_method=f0_method))
        except AisingerError as err:
            if stop_on_error:
                raise
            label = item["output"] if isinstance(item["output"], (str, Path)) else "<array>"
            results.append({"output": str(label), "error": str(err)})
    return results


# ----------------------------------------------------------------------------------------------
# reporting


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)


def to_jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``result`` safe for ``json.dumps``: NaN/inf -> None, numpy scalars -> float, and
    every :data:`REPORT_KEYS` key present (None when not computed)."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if _is_number(v):
            return float(v) if math.isfinite(float(v)) else None
        return v

    out = {k: None for k in REPORT_KEYS}
    out.update(clean(result))
    return out


def _column_keys(results: Iterable[dict[str, Any]]) -> list[str]:
    present = {k for r in results for k, v in r.items() if _is_number(v)}
    ordered = [k for m in METRICS.values() for k in m.keys if k in present]
    return ordered + sorted(present - set(ordered))


def _cell(key: str, v: Any) -> str:
    if not (_is_number(v) and math.isfinite(v)):
        return "-"
    return f"{v:.0f}" if key.endswith("_frames") else f"{v:.{TABLE_DIGITS}f}"


def format_table(results: dict[str, Any] | list[dict[str, Any]]) -> str:
    """Plain-text table of one or several results: one row per output, one column per metric
    value (``-`` where undefined or not computed), a ``mean`` row over several results, then
    one line per failed item and per skipped metric."""
    rows_in = [results] if isinstance(results, dict) else list(results)
    keys = _column_keys(rows_in)
    header = ["output"] + keys
    rows = [[Path(str(r.get("output", "?"))).name] + [_cell(k, r.get(k)) for k in keys]
            for r in rows_in]
    if len(rows_in) > 1 and keys:
        means = ["mean"]
        for k in keys:
            vals = [float(r[k]) for r in rows_in if _is_number(r.get(k)) and math.isfinite(r[k])]
            means.append(_cell(k, float(np.mean(vals))) if vals else "-")
        rows.append(means)
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                       for i, c in enumerate(row)) for row in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows_in:
        name = Path(str(r.get("output", "?"))).name
        if "error" in r:
            lines.append(f"{name}: error: {r['error']}")
        for metric, reason in (r.get("skipped") or {}).items():
            lines.append(f"{name}: {metric} skipped ({reason})")
    return "\n".join(lines)
