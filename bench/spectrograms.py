"""Spectrograms side by side (the docs' listen-equivalents): a source phrase of the lab
benchmark, the target voice singing the same phrase (its parallel rendition, the ground
truth) and the outputs of trained voices converting that source.

    .venv/bin/python bench/spectrograms.py --target kokoro-alpha --source kokoro-kumo
        --voice bench/results/q16-ddsp-alpha --voice bench/results/q16-base-alpha
        [--label DDSP --label "nsf from the base"] [--png docs/nsf-spectrograms.png]

The phrase is the source voice's first test phrase in the quality corpus
(``bench/results/lab-corpus``); transpose = the target's register minus the source's, as in
``bench/train.py``.  Conversion uses :func:`aisinger.convert.convert` defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from quality import DEFAULT_CORPUS  # noqa: E402
from train import ground_truth, plan  # noqa: E402

MAX_HZ = 12000  # the lab voices' band (24 kHz material)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--voice", action="append", default=[], help="voice folder (repeatable)")
    ap.add_argument("--label", action="append", default=[], help="title per --voice")
    ap.add_argument("--png", type=Path, default=BENCH_DIR / "results" / "spectrograms.png")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Mandarin lyrics in the title: the CJK font scripts/setup.sh installs (fonts-wqy-microhei)
    plt.rcParams["font.sans-serif"] = ["WenQuanYi Micro Hei", "DejaVu Sans"]

    from aisinger.convert import convert
    from aisinger.io.audio import load
    from aisinger.io.fileio import atomic_path
    from aisinger.lab.corpus import load_manifest
    from aisinger.voice.folder import load_voice

    man = load_manifest(DEFAULT_CORPUS)
    task = plan(man, DEFAULT_CORPUS, [args.source], args.target, 1)[0]
    src = load(task["wav"], mono=True)
    rows = [(f"source: {args.source} (transpose {task['transpose']:+.0f})", src)]
    gt_tasks, gt_audio = ground_truth(man, DEFAULT_CORPUS, args.target, [task])
    if gt_tasks:
        rows.append((f"target: {args.target}, same phrase", gt_audio[0]))
    labels = args.label + [Path(v).name for v in args.voice[len(args.label):]]
    for voice, label in zip(args.voice, labels):
        rows.append((f"output: {label}", convert(load_voice(voice), *src,
                                                 transpose=task["transpose"])))
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.2), sharey=True)
    for ax, (title, (x, sr)) in zip(axes, rows):
        ax.specgram(x, NFFT=1024, Fs=sr, noverlap=768, cmap="magma", vmin=-120)
        ax.set_ylim(0, MAX_HZ)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("s")
    axes[0].set_ylabel("Hz")
    fig.suptitle(f"\u201c{task['lyrics']}\u201d", fontsize=8)
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    print(f"wrote {args.png} ({task['phrase']}: {task['lyrics']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
