#!/usr/bin/env python
"""Train (or resume) the nsf base model on the multi-voice lab corpus (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/train_base.py [--corpus bench/results/base-corpus]
        [--voices A,B,...] [--exclude flite-slt] [--augment -4,4] [--augment-share 1]
        [--minutes 45]
        [--steps 100000] [--seed 0] [--threads 2] [--out bench/results/nsf-base]

1. The corpus is built first if missing (``aisinger lab make`` equivalent: every lab voice
   except ``--exclude``, ``--phrases`` per language, seed ``--corpus-seed``; add new lab singers
   by listing them in ``--voices`` or by rebuilding the corpus with them).
2. Training: :func:`aisinger.voice.base_recipe.train_base` (WORLD pitch/formant-shifted copies for
   range, the nsf trainer, kill -9 safe; rerun the same command to continue; ``--minutes``
   bounds this call's training wall time).
3. Writes OUT/base.safetensors (+ OUT/training/loss_minutes.png, the training-time curve) and
   prints its SHA-256 and size: commit it under src/aisinger/models/ and register that hash
   as the ``nsf-base`` asset (src/aisinger/assets.py) to make it the per-voice default.
   ``OUT/stages.json`` (and the base file's metadata) lists every stage the run went through:
   a run resumed on another corpus or with another ``--train-config`` is a new stage.  The
   committed base's exact stages are in docs/voice-model.md ("Session 5").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(ROOT / "bench" / "results" / "base-corpus"),
                    help="lab corpus folder, or several separated by commas (trained together; "
                    "only the first is built when missing)")
    ap.add_argument("--corpus-seed", type=int, default=3)
    ap.add_argument("--phrases", type=int, default=36,
                    help="phrases per language when the corpus is built (base v4: 36)")
    ap.add_argument("--voices", default=None, help="comma-separated lab voices (default: all "
                    "voices of the corpus)")
    ap.add_argument("--exclude", default="flite-slt",
                    help="voices left out when the corpus is built (held-out benchmark target)")
    ap.add_argument("--augment", default="-4,4", help="pitch/formant shifts in semitones")
    ap.add_argument("--augment-share", type=float, default=1.0,
                    help="share of the clips that get one shifted copy (the shifts in turn)")
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--train-config", default="{}", help="JSON NsfTrainConfig overrides")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "nsf-base"))
    args = ap.parse_args(argv)

    import torch

    from aisinger.voice.base_recipe import train_base
    from aisinger.io.fileio import sha256_file
    from aisinger.lab.corpus import load_manifest, make_corpus
    from aisinger.tts.classic import VOICES
    from aisinger.voice.train_nsf import NsfTrainConfig

    torch.set_num_threads(args.threads)
    corpora = [Path(c) for c in args.corpus.split(",") if c]
    voices = [v for v in args.voices.split(",") if v] if args.voices else None
    if not (corpora[0] / "manifest.json").is_file():
        exclude = set(args.exclude.split(","))
        make_corpus(corpora[0], seed=args.corpus_seed,
                    voices=voices or [v for v in VOICES if v not in exclude],
                    n_phrases=args.phrases,
                    n_songs=0, workers=2)
    overrides = {"steps": args.steps, "adversarial_from": 1500, "init": None, "freeze": [],
                 "validate_every": 250,
                 "checkpoint_every": 50, **json.loads(args.train_config)}
    config = NsfTrainConfig(**overrides)
    augment = [float(s) for s in args.augment.split(",") if s]
    result, path = train_base(corpora, [load_manifest(c) for c in corpora], args.out,
                              voices=voices,
                              augment=augment, config=config,
                              max_minutes=args.minutes, seed=args.seed,
                              augment_share=args.augment_share)
    print(f"base: {path} step {result.step}, {result.minutes:.1f} training minutes, mel L1 "
          f"{result.train_loss:.3f} (validation {result.validation_loss}); sha256 "
          f"{sha256_file(path)}, {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
