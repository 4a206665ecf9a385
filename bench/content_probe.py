"""Content speaker-identity probe (issue 16, item 3): how much of the singer the content
features carry, before and after the conversion's retrieval blend.

    .venv/bin/python bench/content_probe.py [--corpus DIR] [--retrieval 0.5,1.0]
        [--protect 0.33] [--segment 0.5] [--json PATH]

1. Corpus: the human-like lab of ``bench/quality.py`` (8 voices, 4 Mandarin + 4 English, each
   singing 4 train + 2 test phrases of its language; parallel renditions: every voice of a
   language sings the same phrases); built with ``quality.ensure_corpus`` when missing,
   otherwise only read.
2. Features per clip: the content the voice models use (:func:`aisinger.features.extract`,
   the default config: Whisper-base encoder, 512 dims, 100 frames/s; cached on disk) and, as
   the reference, Whisper's own input (80-band normalised log-mel, 100 frames/s: "how
   identifiable is the singer from the plain spectrum").  Frames are *active* when their
   level is within :data:`ACTIVE_RANGE_DB` of the clip's loudest frame; features are
   mean-pooled over the active frames of consecutive ``--segment`` windows
   (:func:`aisinger.eval.speaker_probe.pool_segments`).
3. Probe (:func:`aisinger.eval.speaker_probe.probe`): multinomial logistic regression,
   trained on the segments of the *train* phrases, L2 penalty chosen by leave-one-phrase-out
   cross-validation, tested on the segments of the *test* phrases (phrases no clip of the
   training set sings).  Reported: segment accuracy, clip accuracy, chance.  Three label
   sets: all 8 voices (the classifier may use the language, so the 4-way per-language rows
   are the stricter measure) and the 4 voices of each language.
4. Retrieval: each test clip's content blended toward another voice's index exactly as
   :func:`aisinger.convert.ddsp.convert_ddsp` does (``retrieve_content(content, index,
   retrieval * (1 - protect_mask(f0, loudness, protect)))``; the index = the voiced content
   frames of that voice's train clips, as voice training builds it), for every other voice
   as the target; the 8-voice content probe (trained on unblended content) then says whose
   the blended content is: ``->source`` = share of segments still classified as the source
   singer, ``->target`` = as the retrieval target.

Prints the tables and writes JSON (default ``bench/results/content_probe.json``).
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

from quality import (DEFAULT_CORPUS, DEFAULT_PHRASES, DEFAULT_SHARED,  # noqa: E402
                     DEFAULT_VOICES, ensure_corpus, machine_info, write_json)

DEFAULT_JSON = BENCH_DIR / "results" / "content_probe.json"
ACTIVE_RANGE_DB = 30.0  # active frames: level within 30 dB of the clip's loudest frame
INDEX_MAX_FRAMES = 8000  # as aisinger.voice.train_ddsp (voice index size)


def load_clips(manifest: dict, corpus: Path, voices: list[str]) -> list[dict]:
    """Features of every clip of ``voices``: content (T, 512), log-mel (T, 80), f0, loudness, active."""
    from aisinger.features import extract
    from aisinger.features.whisper import SAMPLE_RATE, log_mel_spectrogram
    from aisinger.io.audio import load, resample
    from aisinger.progress import track

    clips = []
    wanted = [c for c in manifest["clips"] if c["voice"] in voices]
    for c in track(wanted, total=len(wanted), description="features"):
        path = corpus / c["audio"]
        feats = extract(path, progress=False)
        audio, sr = load(path, mono=True)
        mel = log_mel_spectrogram(resample(audio, sr, SAMPLE_RATE)).T
        t = min(feats.n_frames, mel.shape[0])
        loud = feats.loudness_db[:t]
        clips.append({"voice": c["voice"], "language": c["language"], "phrase": c["phrase"],
                      "split": c["split"], "id": c["id"], "content": feats.content[:t],
                      "logmel": mel[:t], "f0": feats.f0[:t], "loudness": loud,
                      "active": loud >= loud.max() - ACTIVE_RANGE_DB})
    return clips


def segments(clips: list[dict], key: str, segment: int, content=None):
    """(x (n, D), voices, phrases, clip ids) of the pooled segments of ``clips``' feature
    ``key`` (``content`` overrides the feature per clip, same order)."""
    from aisinger.eval.speaker_probe import pool_segments

    xs, voices, phrases, ids = [], [], [], []
    for i, c in enumerate(clips):
        frames = c[key] if content is None else content[i]
        pooled = pool_segments(frames, c["active"], segment)
        xs.append(pooled)
        voices += [c["voice"]] * len(pooled)
        phrases += [c["phrase"]] * len(pooled)
        ids += [c["id"]] * len(pooled)
    return np.concatenate(xs), voices, phrases, ids


def voice_index(clips: list[dict], voice: str, seed: int = 0) -> np.ndarray:
    """The retrieval index a voice trained on ``voice``'s train clips would hold: its voiced
    content frames (subsampled to INDEX_MAX_FRAMES like aisinger.voice.train_ddsp)."""
    frames = np.concatenate([c["content"][c["f0"] > 0] for c in clips
                             if c["voice"] == voice and c["split"] == "train"])
    if frames.shape[0] > INDEX_MAX_FRAMES:
        keep = np.sort(np.random.default_rng(seed).choice(frames.shape[0], INDEX_MAX_FRAMES,
                                                          replace=False))
        frames = frames[keep]
    return frames


def run_probe(train: list[dict], test: list[dict], key: str, segment: int):
    from aisinger.eval.speaker_probe import probe

    x, y, g, _ = segments(train, key, segment)
    xt, yt, _, ct = segments(test, key, segment)
    return probe(x, y, g, xt, yt, test_clips=ct)


def _table(rows: list[dict], columns: list[tuple]) -> str:
    """Plain-text table: ``columns`` = (header, key | "{format}" | fn(row), "<" or ">")."""
    def cell(r: dict, spec) -> str:
        if callable(spec):
            return spec(r)
        return spec.format(**r) if "{" in spec else str(r[spec])

    cells = [[h for h, _, _ in columns]] + [[cell(r, spec) for _, spec, _ in columns]
                                            for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" ".join(c.ljust(w) if a == "<" else c.rjust(w)
                      for c, w, (_, _, a) in zip(row, widths, columns)) for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv=None) -> int:
    from aisinger.convert.retrieval import DEFAULT_PROTECT

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                    help=f"lab corpus (default {DEFAULT_CORPUS}; built if missing)")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    ap.add_argument("--voices", default=",".join(DEFAULT_VOICES))
    ap.add_argument("--segment", type=float, default=0.5, help="pooling window, s (default 0.5)")
    ap.add_argument("--retrieval", default="0.5,1.0",
                    help="retrieval ratios to probe (default 0.5,1.0)")
    ap.add_argument("--protect", type=float, default=DEFAULT_PROTECT,
                    help=f"protect share, as convert (default {DEFAULT_PROTECT}); rows with "
                         "protect 0 are added for retrieval 1.0")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from aisinger.convert.retrieval import protect_mask, retrieve_content
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    voices = [v for v in args.voices.split(",") if v]
    manifest, built, _ = ensure_corpus(args.corpus, voices, args.seed, n_phrases=DEFAULT_PHRASES,
                                       n_shared=DEFAULT_SHARED)
    segment = max(1, round(args.segment * 100))
    clips = [c for c in load_clips(manifest, args.corpus, voices) if c["voice"] in voices
             and c["language"] == manifest["voices"][c["voice"]]["language"]]
    t_feat = time.perf_counter() - t0
    train = [c for c in clips if c["split"] == "train"]
    test = [c for c in clips if c["split"] == "test"]
    languages = sorted({c["language"] for c in clips})

    rows = []
    probes = {}
    for key, label in (("logmel", "log-mel (Whisper input)"), ("content", "content (Whisper)")):
        for lang in [None] + languages:
            tr = [c for c in train if lang is None or c["language"] == lang]
            te = [c for c in test if lang is None or c["language"] == lang]
            res = run_probe(tr, te, key, segment)
            probes[(key, lang)] = res
            rows.append({"feature": label, "key": key, "voices": lang or "all",
                         **res.as_dict()})

    # retrieval toward every other voice, classified by the all-voice content probe
    model = probes[("content", None)].probe
    index = {v: voice_index(clips, v) for v in voices}
    settings = [(float(r), args.protect) for r in args.retrieval.split(",") if r.strip()]
    if args.protect > 0 and 1.0 in [r for r, _ in settings]:
        settings.append((1.0, 0.0))
    retrieval_rows, retrieval_clips = [], []
    for ratio, protect in [(0.0, 0.0)] + settings:
        counts = {"same": [0, 0, 0, 0], "cross": [0, 0, 0, 0]}  # source, target, other, n
        per_clip = []
        for c in test:
            keep = protect_mask(c["f0"], c["loudness"], protect)
            for target in voices:
                if target == c["voice"]:
                    continue
                blended = retrieve_content(c["content"], index[target], ratio * (1 - keep))
                x, _, _, _ = segments([c], "content", segment, content=[blended])
                pred = model.predict(x)
                kind = "same" if manifest["voices"][target]["language"] == c["language"] \
                    else "cross"
                n_src = sum(p == c["voice"] for p in pred)
                n_tgt = sum(p == target for p in pred)
                cnt = counts[kind]
                cnt[0] += n_src
                cnt[1] += n_tgt
                cnt[2] += len(pred) - n_src - n_tgt
                cnt[3] += len(pred)
                per_clip.append({"clip": c["id"], "target": target, "segments": len(pred),
                                 "to_source": n_src, "to_target": n_tgt})
        for kind, (s, t, o, n) in counts.items():
            if n == 0:  # e.g. no voice of another language in the corpus
                continue
            retrieval_rows.append({"retrieval": ratio, "protect": protect, "targets": kind,
                                   "segments": n, "to_source": s / n, "to_target": t / n,
                                   "to_other": o / n})
        retrieval_clips.append({"retrieval": ratio, "protect": protect, "clips": per_clip})
    wall = time.perf_counter() - t0

    print(f"content speaker-ID probe — corpus {args.corpus} ({len(voices)} voices, "
          f"{len(train)} train / {len(test)} test clips, {'built' if built else 'reused'}); "
          f"segments {args.segment} s of active frames (within {ACTIVE_RANGE_DB:.0f} dB of "
          f"the clip's peak)")
    print(_table(rows, [("feature", "feature", "<"), ("voices", "voices", "<"),
                        ("classes", lambda r: str(len(r["classes"])), ">"),
                        ("chance", "{chance:.3f}", ">"), ("seg_acc", "{accuracy:.3f}", ">"),
                        ("clip_acc", "{clip_accuracy:.3f}", ">"), ("train", "{n_train}", ">"),
                        ("test", "{n_test}", ">"), ("l2", "{l2:g}", ">")]))
    print(f"\nretrieval toward another voice's index ({len(voices)}-voice content probe, "
          f"chance {1 / len(voices):.3f}): share of segments classified as ...")
    print(_table(retrieval_rows, [
        ("retrieval", "{retrieval:.2f}", ">"), ("protect", "{protect:.2f}", ">"),
        ("targets", "targets", "<"), ("segments", "{segments}", ">"),
        ("->source", "{to_source:.3f}", ">"), ("->target", "{to_target:.3f}", ">"),
        ("->other", "{to_other:.3f}", ">")]))
    print(f"\n(targets: same = the other voices of the source's language, cross = the other "
          f"language's voices)\nwall {wall:.0f} s (features {t_feat:.0f} s); load "
          f"{load0[0]:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    doc = {"benchmark": "content_probe", "version": 1,
           "config": {"corpus": args.corpus, "seed": args.seed, "voices": voices,
                      "segment_s": args.segment, "active_range_db": ACTIVE_RANGE_DB,
                      "retrieval": settings, "train_clips": len(train),
                      "test_clips": len(test)},
           "probes": rows, "retrieval": retrieval_rows,
           "retrieval_per_clip": retrieval_clips,
           "timing": {"wall_s": wall, "features_s": t_feat},
           "machine": {**machine_info(), "loadavg_start": load0, "loadavg_end": os.getloadavg()}}
    write_json(args.json, doc)
    print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
