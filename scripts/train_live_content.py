#!/usr/bin/env python
"""Train the causal live content encoder (issue 18; docs/live.md).

    PYTHONPATH=src nice -n 19 .venv/bin/python scripts/train_live_content.py \
        [--train bench/results/base-corpus-v2] [--val bench/results/lab-corpus] \
        [--minutes 30] [--steps 6000] [--every 2] [--seed 0] [--out bench/results/live-content]

Student: :class:`aisinger.nn.live_content.LiveContentNet`; recipe:
:func:`aisinger.live.train_content.train_student` (teacher features are computed once and
cached, then training runs for ``--minutes`` or ``--steps``, 1 torch thread).  Writes
OUT/live-content.safetensors and OUT/live-content.json (config, settings, validation curve)
and prints the SHA-256: copy the file to src/aisinger/models/ and register that hash as the
``live-content`` asset in src/aisinger/assets.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wavs(corpus: Path) -> list[Path]:
    files = sorted((corpus / "voices").glob("*/*.wav"))
    if not files:
        sys.exit(f"error: {corpus}: no voices/*/*.wav (build it with 'aisinger lab make')")
    return files


def by_language(corpus: Path) -> dict[str, list[Path]]:
    """The corpus's files grouped by the language of their clip (manifest.json), e.g.
    ``{"en": [...], "zh": [...]}``; empty when the corpus has no manifest."""
    manifest = corpus / "manifest.json"
    if not manifest.is_file():
        return {}
    groups: dict[str, list[Path]] = {}
    for clip in json.loads(manifest.read_text())["clips"]:
        groups.setdefault(clip["language"], []).append(corpus / clip["audio"])
    return groups


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=str(ROOT / "bench" / "results" / "base-corpus-v2"),
                    help="training corpus; comma-separated for several")
    ap.add_argument("--val", default=str(ROOT / "bench" / "results" / "lab-corpus"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=2,
                    help="use every N-th training file (sorted by path; bounds the teacher "
                         "features' one-off cost on a 2-core machine)")
    ap.add_argument("--lookahead", type=int, default=None,
                    help="frames of future (10 ms each; default 4, or --init's); the stream "
                         "gives the student one frame more than this (docs/live.md)")
    ap.add_argument("--init", default=None,
                    help="continue from this live-content.safetensors ('shipped' = the asset)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--cached-only", action="store_true",
                    help="train only on files whose teacher features are already cached")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "live-content"))
    a = ap.parse_args(argv)
    from aisinger.live.train_content import StudentTrainConfig, train_student
    from aisinger.nn.live_content import LiveContentConfig

    train = [f for c in a.train.split(",") for f in wavs(Path(c))[::max(1, a.every)]]
    init = a.init
    if init == "shipped":
        from aisinger.assets import fetch
        init = fetch("live-content")
    summary = train_student(train, wavs(Path(a.val)), a.out,
                            None if a.lookahead is None and init is not None else
                            LiveContentConfig(lookahead=4 if a.lookahead is None
                                              else a.lookahead),
                            StudentTrainConfig(steps=a.steps, minutes=a.minutes, seed=a.seed,
                                               lr=a.lr, cached_only=a.cached_only),
                            init=init, val_groups=by_language(Path(a.val)))
    path = Path(a.out) / "live-content.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(json.dumps({k: summary[k] for k in ("val_cosine", "val_cosine_groups", "training")}))
    print(f"{path}: sha256 {digest} size {path.stat().st_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
