"""Live (streaming) conversion benchmark (issue 18): latency, per-block compute, streamed vs
offline quality, underruns in a long simulated session.

    PYTHONPATH=src nice -n 19 .venv/bin/python bench/live.py --voice VOICE_DIR
        [--corpus bench/results/lab-corpus] [--refs DATASET_JSON] [--block-ms 80]
        [--languages en,zh] [--session-minutes 10] [--threads 1] [--json PATH]

1. Latency: the converter's algorithmic latency (block + lookahead; target <= 150 ms).
2. Quality: every *test*-split phrase of the lab corpus in ``--languages`` is converted
   offline (:func:`aisinger.convert.convert`) and streamed block by block
   (:func:`aisinger.live.convert_stream`), same voice and settings (lab register transpose:
   +12 for male sources into a female voice, as bench/retrieval.py).  Scores
   (bench/quality.py's Scorer, the project's eval metrics): Resemblyzer similarity to the
   target (its training clips, ``--refs``, default ``<voice>-dataset/dataset.json``) and
   Whisper CER against the lyrics.  Target: streamed within 0.03 similarity and 0.05 CER of
   offline (mean over the phrases).
3. Compute: per-block compute time (1 torch thread by default) over those phrases and over a
   ``--session-minutes`` simulated session (the lab corpus's clips, all splits, looped with
   0.5 s gaps); p50/p99 against the target p99 <= 50 % of the block; underruns = blocks whose
   compute exceeded their duration.

Prints a table and writes JSON (default ``bench/results/live.json``).  The machine's load is
recorded (``machine.loadavg``): per-block compute is wall time on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from quality import DEFAULT_CORPUS, ScoreConfig, Scorer, machine_info, write_json  # noqa: E402

MAX_REFS = 30
TARGETS = {"latency_ms": 150.0, "p99_share_of_block": 0.5, "similarity_gap": 0.03,
           "cer_gap": 0.05, "underruns": 0}


def refs_of(voice: Path, refs: str | None) -> list[Path]:
    path = Path(refs) if refs else voice.parent / f"{voice.name}-dataset" / "dataset.json"
    doc = json.loads(path.read_text())
    return [Path(c["file"]) for c in doc["clips"] if c.get("split", "train") == "train"][:MAX_REFS]


def content_choice(clips, corpus: Path, voice, block_frames: int, lookahead: int) -> dict:
    """Mean frame cosine to the offline content features (Whisper-base, 30 s window, the
    features every voice is trained on) of (a) Whisper re-run on the last 1 s / 2 s of audio
    every block with the stream's lookahead and (b) the causal student; and the compute per
    block of each encoder (ms, 1 thread)."""
    import torch

    from aisinger.convert import feature_config
    from aisinger.features import extract, whisper as wh
    from aisinger.io.audio import load, resample
    from aisinger.live.features import StudentContent, WhisperWindow
    from aisinger.nn.live_content import log_mel

    def cos(a, b):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-8)

    student = StudentContent()
    windows = {w: WhisperWindow(window_s=w, threads=1) for w in (1.0, 2.0)}
    res = {"student": [], "whisper_1s": [], "whisper_2s": []}
    ms = {k: [] for k in res}
    for c in clips:
        x, sr = load(corpus / c["audio"], mono=True)
        off = extract(x, sr, config=feature_config(voice, "fcpe")).content
        x16 = resample(x, sr, 16000)
        t = off.shape[0]
        with torch.inference_mode():
            lm = log_mel(torch.from_numpy(wh.mel_power(x16)))[None]
            la = student.lookahead
            lm = torch.cat([lm, lm[:, :, -1:].expand(-1, -1, la)], dim=2)
            st = student.net(lm)[0, la:].numpy()[:t]
        res["student"].append(cos(st, off[:st.shape[0]]))
        student.reset()
        for a in range(0, t - block_frames, block_frames):  # student cost, streamed
            end = (a + block_frames + lookahead) * 160
            t0 = time.perf_counter()
            student.frames(x16[:end], 0, a, a + block_frames)
            ms["student"].append((time.perf_counter() - t0) * 1000)
        for w, ww in windows.items():
            key = f"whisper_{w:g}s"
            for a in range(0, t - block_frames - lookahead, block_frames):
                end = (a + block_frames + lookahead) * 160
                t0 = time.perf_counter()
                f = ww.frames(x16[:end], 0, a, a + block_frames)
                ms[key].append((time.perf_counter() - t0) * 1000)
                res[key].append(cos(f, off[a:a + block_frames]))
    return {k: {"cosine": round(float(np.mean(np.concatenate(v))), 4),
                "block_p50_ms": round(float(np.percentile(ms[k], 50)), 2),
                "block_p99_ms": round(float(np.percentile(ms[k], 99)), 2)}
            for k, v in res.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voice", required=True)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--refs", default=None)
    ap.add_argument("--block-ms", type=float, default=None)
    ap.add_argument("--languages", default="en,zh")
    ap.add_argument("--session-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--content", default="student", help="student or whisper-window")
    ap.add_argument("--no-quality", action="store_true",
                    help="skip the streamed-vs-offline conversions (timing and encoders only)")
    ap.add_argument("--retrieval", type=float, default=None,
                    help="retrieval blend for both conversions (default: the library's)")
    ap.add_argument("--json", default=str(BENCH_DIR / "results" / "live.json"))
    a = ap.parse_args(argv)

    import torch

    from aisinger.convert import convert
    from aisinger.io.audio import load
    from aisinger.live import DEFAULT_BLOCK_MS, StreamingConverter, convert_stream
    from aisinger.voice.folder import load_voice

    torch.set_num_threads(a.threads)
    voice_dir = Path(a.voice)
    corpus = Path(a.corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    langs = a.languages.split(",")
    block_ms = a.block_ms or DEFAULT_BLOCK_MS
    from aisinger.convert import DEFAULT_RETRIEVAL

    retrieval = DEFAULT_RETRIEVAL if a.retrieval is None else a.retrieval
    conv = StreamingConverter(voice_dir, block_ms=block_ms, threads=a.threads,
                              content=a.content, retrieval=retrieval)
    voice = load_voice(voice_dir)
    target_gender = "female"
    scorer = Scorer(ScoreConfig(dnsmos=False, naturalness=False, spectrum=False))
    refs = [load(p, mono=True) for p in refs_of(voice_dir, a.refs)]
    clips = [c for c in manifest["clips"] if c["split"] == "test" and c["language"] in langs
             and c.get("intelligible", True)]
    rows, block_times, block_cpu = [], [], []
    for c in ([] if a.no_quality else clips):
        x, sr = load(corpus / c["audio"], mono=True)
        gender = manifest["voices"][c["voice"]].get("gender")
        transpose = 12.0 if gender == "male" and target_gender == "female" else 0.0
        t0 = time.perf_counter()
        y_off, rate = convert(voice, x, sr, transpose=transpose, retrieval=retrieval,
                              warn_range=False)
        t_off = time.perf_counter() - t0
        conv.transpose = transpose
        y_str, st = convert_stream(voice_dir, x, sr, converter=conv)
        block_times += st.compute_ms
        block_cpu += st.cpu_ms
        lyrics = c.get("text") or "".join(c.get("lyrics", []))
        row = {"clip": c["id"], "language": c["language"], "seconds": round(len(x) / sr, 2),
               "transpose": transpose, "offline_seconds": round(t_off, 2),
               "stream_p99_ms": round(st.p99_ms, 1)}
        for kind, y in (("offline", y_off), ("stream", y_str)):
            s = scorer.score((y, rate), (x, sr), refs, transpose, lyrics, c["language"])
            row[f"{kind}_similarity"] = round(s["similarity_target"], 4)
            row[f"{kind}_cer"] = round(s["cer"], 4)
            row[f"{kind}_transcript"] = s.get("transcript")
        rows.append(row)
        print(f"{c['id']:28s} sim off {row['offline_similarity']:.3f} str "
              f"{row['stream_similarity']:.3f}  CER off {row['offline_cer']:.3f} str "
              f"{row['stream_cer']:.3f}  p99 {row['stream_p99_ms']:.1f} ms", flush=True)
    conv.transpose = 0.0

    # long session: the whole corpus looped with gaps
    session = None
    if a.session_minutes > 0:
        from aisinger.io.audio import resample

        rate = conv.sample_rate
        parts = []
        for c in manifest["clips"]:
            x, sr = load(corpus / c["audio"], mono=True)
            parts += [resample(x, sr, rate), np.zeros(rate // 2, np.float32)]
        loop = np.concatenate(parts)
        n_blocks = int(a.session_minutes * 60 * 1000 / block_ms)
        bs = conv.block_samples
        conv.reset()
        times, cpu = [], []
        t_start = time.time()
        for i in range(n_blocks):
            s0 = (i * bs) % (loop.shape[0] - bs)
            t0, c0 = time.perf_counter(), time.thread_time()
            conv.process(loop[s0:s0 + bs])
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
            if i % 1000 == 0:
                print(f"session block {i}/{n_blocks}", flush=True)
        times, cpu = np.array(times), np.array(cpu)
        session = {"minutes": a.session_minutes, "blocks": n_blocks,
                   "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
                   "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
                   "cpu_max_ms": round(float(cpu.max()), 2),
                   "cpu_underruns": int((cpu > block_ms).sum()),
                   "p50_ms": round(float(np.percentile(times, 50)), 2),
                   "p99_ms": round(float(np.percentile(times, 99)), 2),
                   "max_ms": round(float(times.max()), 2),
                   "underruns": int((times > block_ms).sum()),
                   "wall_minutes": round((time.time() - t_start) / 60, 2)}
        print("session:", json.dumps(session), flush=True)

    print("content encoders ...", flush=True)
    choice = content_choice(clips, corpus, voice, conv.block_frames, conv.lookahead)
    for k, v in choice.items():
        print(f"content {k:12s} cosine to offline {v['cosine']:.3f}  per block p50 "
              f"{v['block_p50_ms']:.1f} ms p99 {v['block_p99_ms']:.1f} ms", flush=True)
    bt = np.array(block_times or [np.nan])
    bc = np.array(block_cpu or [np.nan])

    def mean(key):
        return round(float(np.mean([r[key] for r in rows])), 4) if rows else float("nan")

    sim_gap = mean("offline_similarity") - mean("stream_similarity")
    cer_gap = mean("stream_cer") - mean("offline_cer")
    summary = {
        "latency_ms": conv.latency_ms, "block_ms": block_ms,
        "lookahead_ms": conv.latency_ms - block_ms, "content": a.content, "threads": a.threads,
        "retrieval": retrieval,
        "phrases": len(rows),
        "phrase_p50_ms": round(float(np.percentile(bt, 50)), 2),
        "phrase_p99_ms": round(float(np.percentile(bt, 99)), 2),
        "p99_share_of_block": round(float(np.percentile(bt, 99)) / block_ms, 3),
        "phrase_cpu_p50_ms": round(float(np.percentile(bc, 50)), 2),
        "phrase_cpu_p99_ms": round(float(np.percentile(bc, 99)), 2),
        "offline_similarity": mean("offline_similarity"),
        "stream_similarity": mean("stream_similarity"),
        "similarity_gap": round(sim_gap, 4),
        "offline_cer": mean("offline_cer"), "stream_cer": mean("stream_cer"),
        "cer_gap": round(cer_gap, 4),
        "session": session,
        "content_choice": choice,
    }
    ok = {"latency_ms": summary["latency_ms"] <= TARGETS["latency_ms"],
          "p99_share_of_block": summary["p99_share_of_block"] <= TARGETS["p99_share_of_block"],
          "similarity_gap": summary["similarity_gap"] <= TARGETS["similarity_gap"],
          "cer_gap": summary["cer_gap"] <= TARGETS["cer_gap"],
          "underruns": session is not None and session["underruns"] <= TARGETS["underruns"],
          "cpu_p99_share_of_block": session is not None and
          session["cpu_p99_ms"] <= TARGETS["p99_share_of_block"] * block_ms}
    print()
    print(f"{'measure':34s} {'value':>12s} {'target':>10s}  ok")
    lines = [("algorithmic latency (ms)", summary["latency_ms"], "<= 150", ok["latency_ms"]),
             ("block compute p50, phrases (ms)", summary["phrase_p50_ms"], "", None),
             ("block compute p99, phrases (ms)", summary["phrase_p99_ms"],
              f"<= {block_ms / 2:g}", ok["p99_share_of_block"]),
             ("similarity offline", summary["offline_similarity"], "", None),
             ("similarity streamed", summary["stream_similarity"], "", None),
             ("similarity gap (offline - stream)", summary["similarity_gap"], "<= 0.03",
              ok["similarity_gap"]),
             ("CER offline", summary["offline_cer"], "", None),
             ("CER streamed", summary["stream_cer"], "", None),
             ("CER gap (stream - offline)", summary["cer_gap"], "<= 0.05", ok["cer_gap"])]
    if session:
        lines += [(f"session {a.session_minutes:g} min: p50 (ms)", session["p50_ms"], "", None),
                  (f"session {a.session_minutes:g} min: p99 (ms)", session["p99_ms"],
                   f"<= {block_ms / 2:g}", session["p99_ms"] <= block_ms / 2),
                  (f"session {a.session_minutes:g} min: underruns", session["underruns"],
                   "0", ok["underruns"]),
                  (f"session: CPU p50 (ms)", session["cpu_p50_ms"], "", None),
                  (f"session: CPU p99 (ms)", session["cpu_p99_ms"], f"<= {block_ms / 2:g}",
                   ok["cpu_p99_share_of_block"]),
                  (f"session: CPU-time underruns", session["cpu_underruns"], "0",
                   session["cpu_underruns"] == 0)]
    for name, v, t, good in lines:
        print(f"{name:34s} {v:>12} {t:>10s}  {'' if good is None else 'yes' if good else 'NO'}")
    doc = {"summary": summary, "targets": TARGETS, "met": ok, "rows": rows,
           "machine": {**machine_info(), "loadavg": os.getloadavg()}}
    write_json(Path(a.json), doc)
    print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
