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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=str(ROOT / "bench" / "results" / "base-corpus-v2"))
    ap.add_argument("--val", default=str(ROOT / "bench" / "results" / "lab-corpus"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=2,
                    help="use every N-th training file (sorted by path; bounds the teacher "
                         "features' one-off cost on a 2-core machine)")
    ap.add_argument("--lookahead", type=int, default=4, help="frames of future (10 ms each)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "live-content"))
    a = ap.parse_args(argv)
    from aisinger.live.train_content import StudentTrainConfig, train_student
    from aisinger.nn.live_content import LiveContentConfig

    summary = train_student(wavs(Path(a.train))[::max(1, a.every)], wavs(Path(a.val)), a.out,
                            LiveContentConfig(lookahead=a.lookahead),
                            StudentTrainConfig(steps=a.steps, minutes=a.minutes, seed=a.seed))
    path = Path(a.out) / "live-content.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(json.dumps({k: summary[k] for k in ("val_cosine", "training")}))
    print(f"{path}: sha256 {digest} size {path.stat().st_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
