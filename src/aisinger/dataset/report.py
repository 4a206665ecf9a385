"""The human-readable side of a dataset: ``report.md`` and ``pitch_histogram.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aisinger.dataset.quality import MIDI_LOW
from aisinger.dsp.frames import FRAME_RATE
from aisinger.features.pitch import midi_to_note_name
from aisinger.io.fileio import atomic_path

REJECTED_ROWS = 200
"""At most this many rejected clips are listed one by one in report.md (all are in
dataset.json)."""
HISTOGRAM_MARGIN = 2
"""Semitones shown beyond the shown range of voiced notes."""
SHOWN_TAIL = 0.002
"""Share of voiced time left out at each end of the plot (stray octave errors)."""


def plot_pitch_histogram(hist: np.ndarray, path: str | Path,
                         title: str = "pitch histogram") -> Path:
    """Save a bar chart of voiced time per semitone (x: note names, y: seconds) as PNG.

    Args:
        hist: ``(bins,)`` voiced frames per semitone from MIDI :data:`MIDI_LOW` upwards.
        path: output ``.png`` (written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    hist = np.asarray(hist, dtype=np.float64)
    if hist.sum() > 0:
        cum = np.cumsum(hist) / hist.sum()
        lo = int(np.searchsorted(cum, SHOWN_TAIL, side="left")) - HISTOGRAM_MARGIN
        hi = int(np.searchsorted(cum, 1 - SHOWN_TAIL, side="left")) + HISTOGRAM_MARGIN
    else:
        lo, hi = 60 - MIDI_LOW - 12, 60 - MIDI_LOW + 12  # an empty plot around C4
    lo, hi = max(lo, 0), min(hi, hist.shape[0] - 1)
    midi = np.arange(lo, hi + 1) + MIDI_LOW
    seconds = hist[lo:hi + 1] / FRAME_RATE
    fig = Figure(figsize=(max(6.0, min(16.0, 0.3 * midi.size + 2)), 3.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(midi, seconds, width=0.85, color="tab:blue")
    ticks = [m for m in midi if m % 12 in (0, 4, 7) or midi.size <= 16]
    ax.set_xticks(ticks)
    ax.set_xticklabels([midi_to_note_name(m) for m in ticks])
    ax.set_xlabel("note (nearest semitone)")
    ax.set_ylabel("voiced time (s)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def _fmt_time(s: float | None) -> str:
    if s is None:
        return ""
    m, sec = divmod(float(s), 60)
    return f"{int(m)}:{sec:05.2f}"


def _consent_lines(record: Any) -> list[str]:
    """The consent facts (:meth:`aisinger.consent.ConsentRecord.card_summary`) as list items."""
    return [f"- {k.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in record.card_summary().items()]


def render_report(doc: dict[str, Any], consent: Any) -> str:
    """The Markdown report of a dataset from its ``dataset.json`` content."""
    t, p, cfg = doc["totals"], doc["pitch"], doc["config"]
    lines = [f"# Dataset report: {doc['name']}", ""]
    if doc["warnings"]:
        lines += ["## Warnings", ""] + [f"- **{w}**" for w in doc["warnings"]] + [""]
    lines += [
        "## Summary", "",
        "| | |", "|---|---|",
        f"| minutes kept | {t['minutes']:.2f} (train {t['train_minutes']:.2f}) |",
        f"| clips | {t['clips']} (train {t['train']}, validation {t['validation']}) |",
        f"| input files | {t['input_files']} ({t['input_minutes']:.2f} min) |",
        f"| rejected | {t['rejected']} ({t['rejected_minutes']:.2f} min of clips) |",
        f"| clip format | mono, {doc['sample_rate']} Hz, 32-bit float WAV, "
        f"{cfg['target_lufs']:g} LUFS (EBU R128) |",
        "",
    ]
    if t["rejected_by_reason"]:
        lines += ["Rejections by reason: " + ", ".join(f"{k} {v}" for k, v in
                                                      t["rejected_by_reason"].items()), ""]
    lines += ["## Pitch range", ""]
    if p.get("voiced_minutes", 0) > 0:
        lines += [f"- 5th–95th percentile: **{p['p5_note']}–{p['p95_note']}** "
                  f"({p['range_semitones']} semitones); median {p['median_note']}",
                  f"- 1st–99th percentile: {p['p1_note']}–{p['p99_note']}",
                  f"- voiced time: {p['voiced_minutes']:.2f} min", "",
                  f"![pitch histogram]({doc['pitch_histogram']})", ""]
    else:
        lines += ["No voiced frames.", ""]
    lines += ["## Sources", "", "| file | minutes | blocks separated | clips |",
              "|---|---|---|---|"]
    per_source: dict[str, int] = {}
    for c in doc["clips"]:
        per_source[c["source"]] = per_source.get(c["source"], 0) + 1
    for s in doc["sources"]:
        blocks = [b for b in s["blocks"] if not b.get("silent")]
        sep = sum(bool(b.get("separated")) for b in blocks)
        lines.append(f"| {s['source']} | {s['duration'] / 60:.2f} | {sep}/{len(blocks)} | "
                     f"{per_source.get(s['source'], 0)} |")
    lines.append("")
    if doc["rejected"]:
        lines += ["## Rejected", "", "| file | from | to | reason | detail |",
                  "|---|---|---|---|---|"]
        for r in doc["rejected"][:REJECTED_ROWS]:
            lines.append(f"| {r['source']} | {_fmt_time(r.get('start'))} | "
                         f"{_fmt_time(r.get('end'))} | {r['reason']} | "
                         f"{str(r.get('detail', '')).replace('|', '/')} |")
        if len(doc["rejected"]) > REJECTED_ROWS:
            lines.append(f"| … | | | | {len(doc['rejected']) - REJECTED_ROWS} more in "
                         "dataset.json |")
        lines.append("")
    lines += ["## Consent", ""] + _consent_lines(consent) + [f"- stored in: {doc['consent']}", ""]
    lines += ["## Settings", "", "```json"]
    import json

    lines += [json.dumps(cfg, indent=2), "```", ""]
    return "\n".join(lines)
