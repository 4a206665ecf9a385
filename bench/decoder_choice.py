"""Which generator for the nsf voice model (issue 16): NSF-HiFiGAN vs an iSTFT head, both
driven by the same harmonic + noise source and the same frame network.

    .venv/bin/python bench/decoder_choice.py --generator hifigan [--minutes 5] [--threads 1]
    .venv/bin/python bench/decoder_choice.py --generator istft ...
    .venv/bin/python bench/decoder_choice.py --table    # compare the JSON files written

For one generator: train on the quick benchmark voice (flite-slt, 2 minutes of singing, the
``bench/train.py`` target corpus) with reconstruction losses only (log-mel L1 + multi-resolution
STFT; adversarial training costs the same extra for both), validating every ``--every`` steps
(log-mel L1 on 2 held-out clips) to get loss vs training minutes; then the model's synthesis
speed (10 s of frames, best of 3, ``--threads``) and the quality of 5 conversions (one test
phrase per source voice of bench/train.py): similarity to the target, CER (English), DNSMOS.
Writes ``bench/results/decoder-<generator>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import train as bt  # noqa: E402
from quality import DEFAULT_CORPUS, ScoreConfig, Scorer, ensure_corpus, write_json  # noqa: E402


def synthesis_rtf(model, seconds: float = 10.0) -> float:
    import torch

    t = int(seconds * 100)
    x = (torch.randn(1, t, 512), torch.full((1, t), 220.0), torch.ones(1, t),
         torch.full((1, t), -20.0))
    best = float("inf")
    with torch.no_grad():
        model(*x)
        for _ in range(3):
            a = time.perf_counter()
            model(*x)
            best = min(best, time.perf_counter() - a)
    return best / seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", choices=("hifigan", "istft"))
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        for g in ("hifigan", "istft"):
            p = BENCH_DIR / "results" / f"decoder-{g}.json"
            if p.is_file():
                d = json.loads(p.read_text())
                print(g, json.dumps({k: d[k] for k in ("params", "rtf", "steps", "minutes",
                                                        "val_curve", "quality")}))
        return 0

    import torch

    from aisinger.io.audio import load
    from aisinger.convert import convert
    from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf
    from aisinger.voice import load_voice

    torch.set_num_threads(args.threads)
    troot, tman = bt.build_target("flite-slt", 2.0)
    out = BENCH_DIR / "results" / f"decoder-{args.generator}"
    ds, train_clips = bt.write_dataset(troot, tman, out.parent / f"{out.name}-dataset",
                                       "flite-slt")
    cfg = NsfTrainConfig(steps=10 ** 6, adversarial_from=-1, validate_every=args.every,
                         model={"generator": args.generator}, init=None)  # from scratch
    res = train_nsf(ds, out, cfg, max_minutes=args.minutes - bt.trained_minutes(out), seed=0)
    from safetensors import safe_open

    with safe_open(str(out / "training" / "checkpoint.safetensors"), "pt") as f:
        st = json.loads(f.metadata()["state"])
    voice = load_voice(out)
    rtf = synthesis_rtf(voice.model)
    qman, _, _ = ensure_corpus(DEFAULT_CORPUS, sorted(set(bt.DEFAULT_SOURCES)), 0)
    tasks = bt.plan(qman, DEFAULT_CORPUS, list(bt.DEFAULT_SOURCES), "flite-slt", 1)
    refs = [load(p, mono=True) for p in train_clips[:30]]
    outputs = [convert(voice, *load(t["wav"], mono=True), transpose=t["transpose"])
               for t in tasks]
    rows = bt.score_all(Scorer(ScoreConfig()), outputs, tasks, refs)
    quality = bt.aggregate(rows, args.generator)
    doc = {"generator": args.generator, "params": sum(p.numel() for p in voice.model.parameters()),
           "rtf": rtf, "threads": args.threads, "steps": res.step, "minutes": res.minutes,
           "val_curve": st.get("val_minutes", []), "quality": quality, "rows": rows,
           "machine": bt.machine_info()}
    write_json(BENCH_DIR / "results" / f"decoder-{args.generator}.json", doc)
    print(json.dumps({k: doc[k] for k in ("params", "rtf", "steps", "minutes", "val_curve")}))
    print(bt.table(quality))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
