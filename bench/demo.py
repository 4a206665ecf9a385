"""Demo benchmark: the README's main job, scored as a listener would hear it (issue 16).

    .venv/bin/python bench/demo.py [--out bench/results/demo] [--train-minutes N] [--seed 0]
        [--json bench/results/demo.json]

1. Runs (or, when ``--out`` holds a finished run, reuses) :func:`aisinger.pipelines.demo.run_demo`:
   the demo voice made from the lab's Kokoro alpha singer, then the labelled cover of the real
   example song (``OUT/cover.mp3`` + stems).
2. Scores the **finished cover** (the mix a listener gets), its converted vocal stem, and the
   original song and its separated vocal (the floor the conversion starts from): Whisper CER
   of the song's lyric ("It always seems like time stands still when I'm with you.", the
   transcription of the original vocal, see tests/test_main_job.py), Resemblyzer similarity
   of the converted vocal to the demo voice's own clips and to the original vocal,
   DistillMOS of the converted vocal and of the demo voice's clips, DNSMOS OVRL.

Target (issue 16): Whisper CER of the finished cover's lyric <= 0.15.  Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from quality import machine_info, write_json  # noqa: E402

LYRICS = "It always seems like time stands still when I'm with you."
TARGET_CER = 0.15


def main(argv=None) -> int:
    from aisinger.pipelines.demo import DEMO_TRAIN_MINUTES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "demo")
    ap.add_argument("--train-minutes", type=float, default=DEMO_TRAIN_MINUTES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "demo.json")
    args = ap.parse_args(argv)

    from aisinger import assets
    from aisinger.eval.dnsmos import dnsmos
    from aisinger.eval.intelligibility import error_rates, transcribe
    from aisinger.eval.naturalness import distillmos
    from aisinger.eval.similarity import cosine, embed_utterance as embed
    from aisinger.io import audio
    from aisinger.pipelines.demo import run_demo
    from aisinger.separation import get_separator

    t0 = time.perf_counter()
    res = run_demo(args.out, train_minutes=args.train_minutes, seed=args.seed)
    demo_s = time.perf_counter() - t0

    def mono16(x, sr):
        return audio.resample(audio.to_mono(x), sr, 16000).astype(np.float32), 16000

    song, ssr = audio.load(assets.fetch("example-song"))
    stems = get_separator().separate(song, ssr)
    items = {"original song (mix)": (song, ssr), "original vocal (separated)":
             (stems["vocals"], ssr), "finished cover (mix)": audio.load(res.cover),
             "converted vocal (stem)": audio.load(res.stems["vocals_converted"])}
    clips = sorted((args.out / "voice-data" / "clips").glob("*.wav"))
    refs = [mono16(*audio.load(p)) for p in clips]
    ref_emb = np.mean([embed(*r) for r in refs], axis=0)
    orig_emb = embed(*mono16(*items['original vocal (separated)']))
    ref_nat = float(np.mean([distillmos(*r) for r in refs]))
    rows = []
    for name, (x, sr) in items.items():
        a16, _ = mono16(x, sr)
        hyp = transcribe(a16, 16000, "en")
        row = {"audio": name, "transcript": hyp, **error_rates(LYRICS, hyp, "en")}
        if "vocal" in name:
            e = embed(a16, 16000)
            row.update(similarity_voice=cosine(e, ref_emb), similarity_original=cosine(e, orig_emb),
                       naturalness=distillmos(a16, 16000))
        row["dnsmos_ovrl"] = dnsmos(a16, 16000, p808=False)["dnsmos_ovrl"]
        rows.append(row)

    print(f"demo: voice step {res.train_step} ({res.train_minutes:.1f} training minutes), "
          f"key: {res.key_reason}; demo wall {demo_s:.0f} s (reused: {', '.join(res.reused) or '-'})")
    print(f"demo voice's own clips: DistillMOS {ref_nat:.2f} ({len(refs)} clips)")
    head = f"{'audio':28s} {'cer':>6s} {'wer':>6s} {'sim_voice':>9s} {'sim_orig':>8s} " \
           f"{'nat':>5s} {'ovrl':>5s}  transcript"
    print(head)
    for r in rows:
        f = lambda k, fmt: fmt.format(r[k]) if k in r else "-"
        print(f"{r['audio']:28s} {r['cer']:6.3f} {r['wer']:6.3f} {f('similarity_voice', '{:9.3f}'):>9s} "
              f"{f('similarity_original', '{:8.3f}'):>8s} {f('naturalness', '{:5.2f}'):>5s} "
              f"{r['dnsmos_ovrl']:5.2f}  {r['transcript']}")
    cover_cer = rows[2]["cer"]
    print(f"\nfinished cover CER {cover_cer:.3f} (target <= {TARGET_CER}): "
          f"{'MET' if cover_cer <= TARGET_CER else 'missed'}")
    write_json(args.json, {"version": 1, "lyrics": LYRICS, "target_cer": TARGET_CER,
                           "voice_step": res.train_step, "train_minutes": res.train_minutes,
                           "key": res.key_reason, "demo_seconds": res.seconds, "demo_wall_s": demo_s,
                           "reused": list(res.reused), "voice_clips_naturalness": ref_nat,
                           "rows": rows, "met": cover_cer <= TARGET_CER,
                           "load_avg": os.getloadavg()[0], "machine": machine_info()})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
