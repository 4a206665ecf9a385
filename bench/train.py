"""Training benchmark (issue 5): train a voice on ~10 minutes of one lab voice on this CPU, then
convert held-out phrases sung by other lab voices (English and Mandarin) to it, at several
points of training time.

    .venv/bin/python bench/train.py [--quick] [--minutes 3,10,20,30] [--train-minutes 10]
        [--target flite-slt] [--sources A,B,...] [--threads 2] [--json PATH] [--png PATH]

1. Target data: a lab corpus of the target voice alone (seed 1, so its phrases are not the
   evaluation phrases) in ``bench/results/train-target-<voice>``, enough phrases for
   ``--train-minutes`` of train-split singing, used directly as a dataset (``dataset.json`` +
   a self-consent record; the clips are already mono, level-normalised single phrases).
2. Evaluation data: the quality benchmark's corpus (``bench/results/lab-corpus``, seed 0): the
   *test*-split phrases of every source voice in its own language (Mandarin voices sing
   Mandarin).  ``transpose`` = target register minus source register (+12 male → female).
3. Training runs in stages up to each ``--minutes`` mark of training wall time (resumed from
   the checkpoint, so the curve is one run); after each stage every task is converted
   (``aisinger.convert``, default settings) and scored with ``bench/quality.py``'s Scorer:
   Resemblyzer similarity to the target (mean embedding of its train clips) and to the source,
   F0 RMSE and median error vs source + transpose (and ``f0_imp``: RMSE vs the F0 the lab
   imposed on the source, immune to tracker errors on the source), Whisper CER (English only: espeak-ng
   Mandarin is unintelligible), DNSMOS.  The ``source`` row scores the unconverted sources;
   the ``ground-truth`` row the target voice's own renditions of the same phrases where the
   evaluation corpus has them (the ceiling; English phrases for an English target).
4. Bar (issue 16, ``BARS``): a *full* voice (more than ``QUICK_DATA_MINUTES`` of singing):
   similarity to the target >= 0.85 and >= similarity to the source + 0.15, CER <= the
   sources' CER + 0.05, DistillMOS gap to the target's own references <= 0.3, F0 median
   error <= 5 cents, gross errors (> 50 cents) <= 2 % of voiced frames, and the outputs'
   pooled long-term spectrum within 3 dB of the target references' per octave band; a *quick* voice:
   similarity >= 0.80 and CER <= sources + 0.10.  DNSMOS OVRL and F0 RMSE are reported.

Prints a table per checkpoint, writes JSON (default ``bench/results/train.json``) and a PNG of
the curve (default ``bench/results/train.png``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from quality import (DEFAULT_CORPUS, ScoreConfig, Scorer, ensure_corpus,  # noqa: E402
                     machine_info, pooled_spectrum, write_json)

DEFAULT_SOURCES = ("flite-awb", "espeak-en-m3", "espeak-en-f3", "espeak-cmn", "espeak-cmn-f2")
PHRASE_SECONDS = 5.0  # lab phrase length used to size the target corpus (150 phrases: 9.97 train min)
BARS = {
    # issue 16 targets.  "full": <= 10 min of singing, <= 30 min of training; "quick": 2 min of
    # singing, 5 min of training.  None = not part of that bar.
    "full": {"similarity": 0.85, "margin": 0.15, "cer_delta": 0.05, "naturalness_gap": 0.3,
             "f0_median_cents": 5.0, "f0_gross": 0.02, "spectrum_db": 3.0},
    "quick": {"similarity": 0.80, "margin": None, "cer_delta": 0.10, "naturalness_gap": None,
              "f0_median_cents": None, "f0_gross": None, "spectrum_db": None},
}
QUICK_DATA_MINUTES = 3.0  # datasets up to this long are judged by the quick-voice bar
TARGET_CORPUS_SEED = 1


def build_target(voice: str, minutes: float, test_fraction: float = 0.2) -> tuple[Path, dict]:
    """Lab corpus of ``voice`` alone with about ``minutes`` of train-split singing."""
    from aisinger.lab.corpus import load_manifest, make_corpus

    n = max(3, math.ceil(minutes * 60 / PHRASE_SECONDS / (1 - test_fraction)))
    root = BENCH_DIR / "results" / f"train-target-{voice}-{n}"
    if (root / "manifest.json").is_file():
        m = load_manifest(root)
        if m["config"]["n_phrases"] == n and m["config"]["seed"] == TARGET_CORPUS_SEED:
            return root, m
    make_corpus(root, seed=TARGET_CORPUS_SEED, voices=[voice], n_phrases=n, n_shared=1,
                n_songs=0, workers=2)
    return root, load_manifest(root)


def write_dataset(root: Path, manifest: dict, out: Path, name: str) -> tuple[Path, list[Path]]:
    """dataset.json (train clips + 2 validation clips) + consent.json; returns (dir, train)."""
    from aisinger.consent import save_consent, self_consent

    out.mkdir(parents=True, exist_ok=True)
    train = [root / c["audio"] for c in manifest["clips"] if c["split"] == "train"]
    val = [root / c["audio"] for c in manifest["clips"] if c["split"] == "test"][:2]
    doc = {"name": name, "clips": [{"file": str(p), "split": "train"} for p in train]
           + [{"file": str(p), "split": "validation"} for p in val]}
    (out / "dataset.json").write_text(json.dumps(doc, indent=1))
    save_consent(self_consent(f"lab voice {name}"), out / "consent.json")
    return out, train


def plan(manifest: dict, corpus: Path, sources, target: str, per_voice: int | None):
    from aisinger.lab.corpus import voice_transpose

    tasks = []
    for v in sources:
        lang = manifest["voices"][v]["language"]
        clips = sorted((c for c in manifest["clips"] if c["voice"] == v and c["split"] == "test"
                        and c["language"] == lang), key=lambda c: c["phrase"])[:per_voice]
        for c in clips:
            tasks.append({"source_voice": v, "language": lang, "phrase": c["phrase"],
                          "wav": corpus / c["audio"], "lyrics": c["text"],
                          "intelligible": bool(c["intelligible"]),
                          "transpose": float(voice_transpose(target) - c["transpose"])})
    return tasks


def ground_truth(manifest: dict, corpus: Path, target: str, tasks):
    """(tasks, audio) of the target voice's own parallel renditions of the task phrases, where
    the evaluation corpus has them (English phrases when the target is an English voice): the
    ceiling of what a conversion can score."""
    from aisinger.io.audio import load

    by_phrase = {c["phrase"]: c for c in manifest["clips"] if c["voice"] == target}
    have = [t for t in tasks if t["phrase"] in by_phrase]
    return have, [load(corpus / by_phrase[t["phrase"]]["audio"], mono=True) for t in have]


def rmse_vs_imposed(f0_out: np.ndarray, task: dict) -> float | None:
    """F0 RMSE (cents) of an output's FCPE track against the F0 the lab imposed on the source
    (``<phrase>.f0.npy``, the score's truth) + transpose, over frames voiced in both: unlike
    ``f0_rmse_cents`` it is not moved by pitch-tracker errors on the source."""
    path = Path(task["wav"]).with_suffix(".f0.npy")
    if not path.is_file():
        return None
    imposed = np.load(path) * 2.0 ** (task["transpose"] / 12)
    n = min(f0_out.shape[0], imposed.shape[0])
    both = (f0_out[:n] > 0) & (imposed[:n] > 0)
    if both.sum() < 10:
        return None
    err = 1200 * np.log2(f0_out[:n][both] / imposed[:n][both])
    return float(np.sqrt(np.mean(err ** 2)))


def gross_errors(f0_out: np.ndarray, f0_src: np.ndarray, transpose: float,
                 cents: float = 50.0) -> float | None:
    """Share of the frames voiced in both tracks where the output is more than ``cents`` off
    the source + transpose."""
    n = min(f0_out.shape[0], f0_src.shape[0])
    both = (f0_out[:n] > 0) & (f0_src[:n] > 0)
    if both.sum() < 10:
        return None
    err = 1200 * np.log2(f0_out[:n][both] / (f0_src[:n][both] * 2.0 ** (transpose / 12)))
    return float(np.mean(np.abs(err) > cents))


def score_all(scorer: Scorer, outputs, tasks, refs):
    from aisinger.io.audio import load

    rows = []
    for out, t in zip(outputs, tasks):
        src = load(t["wav"], mono=True)
        r = scorer.score(out, src, refs, t["transpose"], t["lyrics"], t["language"])
        f_out = scorer.f0(out)
        r["f0_rmse_imposed_cents"] = rmse_vs_imposed(f_out, t)
        r["f0_gross"] = gross_errors(f_out, scorer.f0(src), t["transpose"])
        r.update({k: t[k] for k in ("source_voice", "language", "phrase", "intelligible",
                                    "transpose")})
        r["target_voice"] = "target"
        rows.append(r)
    return rows


KEYS = ("similarity_target", "similarity_source", "similarity_margin", "f0_rmse_cents",
        "f0_median_cents", "f0_rmse_imposed_cents", "f0_gross", "cer", "dnsmos_ovrl",
        "naturalness", "naturalness_gap")


def aggregate(rows, label: str) -> list[dict]:
    out = []
    for lang in ["all"] + sorted({r["language"] for r in rows}):
        rs = [r for r in rows if lang == "all" or r["language"] == lang]
        agg = {"system": label, "language": lang, "clips": len(rs)}
        for k in KEYS:
            src = [r for r in rs if r["intelligible"]] if k == "cer" else rs
            vals = [float(r[k]) for r in src if r.get(k) is not None and np.isfinite(r[k])]
            agg[k] = float(np.mean(vals)) if vals else None
        # long-term spectrum of all these outputs pooled vs the target's references (issue 16:
        # within +-3 dB per octave band; single clips are not comparable, see
        # docs/content-and-spectrum.md)
        pooled = pooled_spectrum(rs).get("target")
        agg["spectrum_pooled_max_abs_db"] = pooled["max_abs_db"] if pooled else None
        agg["spectrum_pooled"] = pooled
        out.append(agg)
    return out


def bar(agg: dict, source: dict, kind: str = "full") -> dict:
    """Which parts of the ``BARS[kind]`` bar an aggregate meets (None = not measurable or not
    part of that bar)."""
    b = BARS[kind]

    def at_most(key, limit):
        return None if limit is None or agg.get(key) is None else agg[key] <= limit

    res = {"similarity": agg["similarity_target"] >= b["similarity"],
           "margin": None if b["margin"] is None else agg["similarity_margin"] >= b["margin"],
           "cer": None if agg["cer"] is None or source["cer"] is None
           else agg["cer"] <= source["cer"] + b["cer_delta"],
           "naturalness": at_most("naturalness_gap", b["naturalness_gap"]),
           "f0": at_most("f0_median_cents", b["f0_median_cents"]),
           "gross": at_most("f0_gross", b["f0_gross"]),
           "spectrum": at_most("spectrum_pooled_max_abs_db", b["spectrum_db"])}
    res["all"] = all(v for v in res.values() if v is not None)
    return res


def trained_minutes(voice: Path) -> float:
    """Training minutes so far of the voice's checkpoint (0 if none)."""
    from safetensors import safe_open

    from aisinger.voice.train_ddsp import CHECKPOINT_FILE

    ckpt = voice / "training" / CHECKPOINT_FILE
    if not ckpt.is_file():
        return 0.0
    with safe_open(str(ckpt), "pt") as f:
        return json.loads(f.metadata()["state"])["seconds"] / 60


def _saved_result(voice: Path):
    """A TrainResult-like record of the voice's checkpoint (for --eval-only)."""
    from types import SimpleNamespace

    from safetensors import safe_open

    from aisinger.voice.train_ddsp import CHECKPOINT_FILE

    with safe_open(str(voice / "training" / CHECKPOINT_FILE), "pt") as f:
        st = json.loads(f.metadata()["state"])
    recent = [x[1] for x in st["history"][-50:]]
    return SimpleNamespace(minutes=st["seconds"] / 60, step=st["step"],
                           train_loss=float(np.mean(recent)),
                           validation_loss=st["val_history"][-1][1] if st["val_history"] else None)


def fmt(v, f):
    return "-" if v is None else f.format(v)


def table(aggs: list[dict]) -> str:
    cols = [("sim_tgt", "similarity_target", "{:.3f}"), ("sim_src", "similarity_source", "{:.3f}"),
            ("margin", "similarity_margin", "{:+.3f}"), ("f0_rmse", "f0_rmse_cents", "{:.1f}"),
            ("f0_med", "f0_median_cents", "{:.1f}"), ("f0_imp", "f0_rmse_imposed_cents", "{:.1f}"),
            ("gross", "f0_gross", "{:.3f}"),
            ("cer", "cer", "{:.3f}"),
            ("ovrl", "dnsmos_ovrl", "{:.2f}"), ("nat", "naturalness", "{:.2f}"),
            ("nat_gap", "naturalness_gap", "{:+.2f}"),
            ("spec", "spectrum_pooled_max_abs_db", "{:.1f}")]
    head = ["system", "lang", "clips"] + [c[0] for c in cols] + ["bar"]
    lines = [head]
    for a in aggs:
        lines.append([a["system"], a["language"], str(a["clips"])] +
                     [fmt(a[k], f) for _, k, f in cols] +
                     ["" if "bar" not in a else ("MET" if a["bar"]["all"] else "no: " + ",".join(
                         k for k, v in a["bar"].items() if v is False and k != "all"))])
    w = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in lines)


def plot(path: Path, curve: list[dict], kind: str = "full") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aisinger.io.fileio import atomic_path

    mins = [c["minutes"] for c in curve]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for lang, style in (("all", "o-"), ("en", "s--"), ("zh", "^--")):
        get = lambda k: [next((a[k] for a in c["aggregates"] if a["language"] == lang), None)
                         for c in curve]
        axes[0].plot(mins, get("similarity_target"), style, label=f"to target ({lang})")
        axes[0].plot(mins, get("similarity_source"), style, alpha=0.4,
                     label=f"to source ({lang})")
        axes[1].plot(mins, get("cer"), style, label=lang)
    axes[0].axhline(BARS[kind]["similarity"], color="k", lw=0.5)
    axes[0].set_title("Resemblyzer similarity")
    axes[1].set_title("CER (Whisper)")
    axes[2].plot(mins, [c["train_loss"] for c in curve], "o-", label="train")
    axes[2].plot(mins, [c["validation_loss"] for c in curve], "s-", label="validation")
    axes[2].set_title("training loss")
    for ax in axes:
        ax.set_xlabel("training minutes")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1-minute dataset, checkpoints at 1 and 2 minutes, 1 phrase per source")
    ap.add_argument("--minutes", default=None, help="training-time checkpoints (default 3,10,20,30)")
    ap.add_argument("--train-minutes", type=float, default=None,
                    help="minutes of target singing (default 10)")
    ap.add_argument("--target", default="flite-slt")
    ap.add_argument("--sources", default=",".join(DEFAULT_SOURCES))
    ap.add_argument("--per-voice", type=int, default=None, help="test phrases per source voice")
    ap.add_argument("--eval-corpus", default=None,
                    help="an existing lab corpus whose test phrases the sources sing (default: "
                    "the quality corpus, 2 test phrases per voice; e.g. bench/results/"
                    "base-corpus-v3: 8 per voice, phrases the base model never saw)")
    ap.add_argument("--retrieval", type=float, default=None,
                    help="convert(retrieval=...) (default: convert's default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="TrainConfig.init (default: random init)")
    ap.add_argument("--model", default="ddsp", choices=("ddsp", "nsf"),
                    help="voice model family to train (nsf: aisinger.voice.train_nsf)")
    ap.add_argument("--train-config", default="{}",
                    help="JSON overrides of the trainer's config (TrainConfig / NsfTrainConfig)")
    ap.add_argument("--out", default=None, help="voice folder (default bench/results/train-voice)")
    ap.add_argument("--reference-rows", action="store_true",
                    help="only score the source and ground-truth rows (no training)")
    ap.add_argument("--eval-only", action="store_true",
                    help="score the existing voice once, without training")
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None)
    args = ap.parse_args(argv)

    import torch

    from aisinger.convert import convert
    from aisinger.io.audio import load
    from aisinger.voice.folder import load_voice
    from aisinger.voice.train_ddsp import TrainConfig, train

    torch.set_num_threads(args.threads)
    marks = [float(x) for x in (args.minutes or ("1,2" if args.quick else "3,10,20,30")).split(",")]
    if args.eval_only:
        marks = marks[:1]
    train_minutes = args.train_minutes or (1.0 if args.quick else 10.0)
    per_voice = args.per_voice or (1 if args.quick else None)
    sources = [s for s in args.sources.split(",") if s]
    suffix = "-quick" if args.quick else ""
    out = Path(args.out or BENCH_DIR / "results" / f"train-voice{suffix}")
    json_path = Path(args.json or BENCH_DIR / "results" / f"train{suffix}.json")
    png_path = Path(args.png or BENCH_DIR / "results" / f"train{suffix}.png")
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    troot, tman = build_target(args.target, train_minutes)
    corpus_s = time.perf_counter() - t0
    ds, train_clips = write_dataset(troot, tman, out.parent / f"{out.name}-dataset", args.target)
    qcorpus = Path(args.eval_corpus) if args.eval_corpus else DEFAULT_CORPUS
    if args.eval_corpus:
        from aisinger.lab.corpus import load_manifest

        qman, qs = load_manifest(qcorpus), 0.0
        missing = [v for v in sources if v not in qman["voices"]]
        if missing:
            raise SystemExit(f"error: {qcorpus}: no source voice {missing[0]!r} in this corpus")
    else:
        qman, _, qs = ensure_corpus(DEFAULT_CORPUS, sorted(set(sources)), 0)
    tasks = plan(qman, qcorpus, sources, args.target, per_voice)
    refs = [load(p, mono=True) for p in train_clips[:30]]
    data_minutes = sum(r[0].shape[0] / r[1] for r in (load(p, mono=True) for p in train_clips)) / 60
    bar_kind = "quick" if data_minutes <= QUICK_DATA_MINUTES else "full"
    print(f"target {args.target}: {len(train_clips)} train clips, {data_minutes:.2f} min "
          f"({bar_kind}-voice bar); "
          f"{len(tasks)} conversions per checkpoint; corpora {corpus_s + qs:.0f} s", flush=True)

    scorer = Scorer(ScoreConfig())
    src_rows = score_all(scorer, [load(t["wav"], mono=True) for t in tasks], tasks, refs)
    source_aggs = aggregate(src_rows, "source")
    gt_tasks, gt_audio = ground_truth(qman, qcorpus, args.target, tasks)
    gt_rows = score_all(scorer, gt_audio, gt_tasks, refs) if gt_tasks else []
    source_aggs += aggregate(gt_rows, "ground-truth") if gt_rows else []
    if args.reference_rows:
        print(table(source_aggs))
        return 0
    by_lang = {a["language"]: a for a in source_aggs if a["system"] == "source"}
    overrides = json.loads(args.train_config)
    if args.model == "nsf":
        from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf

        cfg = NsfTrainConfig(**{"steps": 10 ** 6, "init": args.init, **overrides})
        train = train_nsf  # noqa: F811 - same signature as train_ddsp.train
    else:
        cfg = TrainConfig(**{"steps": 10 ** 6, "init": args.init, **overrides})
    curve = []
    for mark in marks:
        done = trained_minutes(out)
        tt = time.perf_counter()
        # --eval-only: score the saved voice as it is
        result = train(ds, out, cfg, max_minutes=max(0.0, mark - done), seed=args.seed) \
            if not args.eval_only else _saved_result(out)
        train_wall = time.perf_counter() - tt
        tc = time.perf_counter()
        kw = {} if args.retrieval is None else {"retrieval": args.retrieval}
        model = load_voice(out)
        outputs = [convert(model, *load(t["wav"], mono=True), transpose=t["transpose"], **kw)
                   for t in tasks]
        convert_s = time.perf_counter() - tc
        audio_s = sum(len(o[0]) / o[1] for o in outputs)
        rows = score_all(scorer, outputs, tasks, refs)
        aggs = aggregate(rows, f"{result.minutes:.1f} min")
        for a in aggs:
            a["bar"] = bar(a, by_lang[a["language"]], bar_kind)
        curve.append({"mark": mark, "minutes": result.minutes, "step": result.step,
                      "train_loss": result.train_loss, "validation_loss": result.validation_loss,
                      "call_wall_s": train_wall, "convert_s": convert_s,
                      "convert_rtf": convert_s / audio_s,
                      "load_avg": os.getloadavg()[0], "aggregates": aggs, "rows": rows})
        print(f"\n== {result.minutes:.1f} training minutes, step {result.step}, loss "
              f"{result.train_loss:.3f} (validation {result.validation_loss}), load "
              f"{os.getloadavg()[0]:.1f}, convert {convert_s:.1f} s = {convert_s / audio_s:.3f} x "
              f"real time (incl. features)", flush=True)
        print(table(source_aggs + aggs), flush=True)
        plot(png_path, curve, bar_kind)
        doc = {"version": 1, "target": args.target, "train_clips": len(train_clips),
               "train_minutes_of_data": data_minutes, "sources": sources,
               "eval_corpus": str(qcorpus), "tasks": len(tasks),
               "threads": args.threads, "seed": args.seed, "init": args.init,
               "model": args.model, "train_config": overrides,
               "retrieval": args.retrieval,
               "bar_kind": bar_kind, "bar": BARS[bar_kind],
               "source": {"aggregates": source_aggs, "rows": src_rows},
               "ground_truth_rows": gt_rows, "curve": curve,
               "reached": next((c["minutes"] for c in curve
                                if next(a for a in c["aggregates"]
                                        if a["language"] == "all")["bar"]["all"]), None),
               "seconds": time.perf_counter() - t_start, "machine": machine_info()}
        write_json(json_path, doc)
    print(f"\nbar (all languages) first met at: {doc['reached']} training minutes; "
          f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
