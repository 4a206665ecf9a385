"""Live (streaming) conversion benchmark (issue 18): latency, per-block compute, streamed vs
offline quality, underruns in a long simulated session.

    PYTHONPATH=src nice -n 19 .venv/bin/python bench/live.py --voice VOICE_DIR
        [--corpus bench/results/lab-corpus] [--refs DATASET_JSON] [--block-ms 80]
        [--languages en,zh] [--splits test] [--session-minutes 10] [--paced] [--threads 1]
        [--student PATH] [--whole] [--reuse-offline PREVIOUS_JSON] [--json PATH]

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
   compute exceeded their duration (``--paced``: output later than one block after the
   block arrived, in real time), each put down to the converter (CPU time over the block) or
   the machine (waiting for a core: the thread's run-queue wait); see :func:`run_session`.

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


def content_choice(clips, corpus: Path, voice, block_frames: int, lookahead: int,
                   student_path=None) -> dict:
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

    student = StudentContent(student_path)
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


def _thread_sched() -> tuple[float, float] | None:
    """(ms on a CPU, ms waiting in the run queue) of the calling thread so far, from Linux's
    /proc/thread-self/schedstat; None where the kernel does not provide it."""
    try:
        run_ns, wait_ns = open("/proc/thread-self/schedstat").read().split()[:2]
        return int(run_ns) / 1e6, int(wait_ns) / 1e6
    except (OSError, ValueError):
        return None


def _cpu_busy() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine (/proc/stat), or None."""
    try:
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v) - idle, sum(v)
    except (OSError, ValueError):
        return None


def run_session(conv, loop: np.ndarray, n_blocks: int, block_ms: float,
                paced: bool = False, max_wall_factor: float = 3.0) -> dict:
    """A long simulated session: ``n_blocks`` blocks of ``loop`` through one converter.

    Per block: wall time, the converting thread's CPU time (``time.thread_time``; torch with
    1 thread runs in it) and, on Linux, its run-queue wait (ready to run, no core free:
    /proc/thread-self/schedstat).  A block *underruns* when its output is not ready when the
    device needs it.  Back to back (default) that is wall time > the block; ``paced``: block
    ``i`` arrives at ``(i + 1) * block`` after the start (real time; the loop sleeps until
    then), waits for the previous block, and underruns when it finishes more than one block
    after its arrival (a device with one block of output buffer).  Every underrun is put
    down to one cause: ``slow`` (the converter's own CPU time exceeded the block: a
    free core would not have saved it), ``queued`` (paced only: the previous block finished
    late), ``no_core`` (CPU time within the block; at least half of the rest was spent in the
    run queue: ready, but other processes held the cores) or ``blocked`` (CPU time within the
    block; the thread waited on something other than a core: I/O, memory, a lock).  A
    session that falls so far behind that its wall time exceeds ``max_wall_factor`` times its
    audio stops there (``blocks_done`` says how far it got; the counts cover those blocks)."""
    bs = conv.block_samples
    conv.reset()
    wall, cpu, runq = [], [], []
    late, causes = [], {"slow": 0, "queued": 0, "no_core": 0, "blocked": 0}
    busy0, load0 = _cpu_busy(), os.getloadavg()
    t_start = time.perf_counter()
    finish_prev = 0.0
    for i in range(n_blocks):
        s0 = (i * bs) % (loop.shape[0] - bs)
        arrival = (i + 1) * block_ms / 1000
        if paced:
            delay = arrival - (time.perf_counter() - t_start)
            if delay > 0:
                time.sleep(delay)
        sched0 = _thread_sched()
        t0, c0 = time.perf_counter(), time.thread_time()
        conv.process(loop[s0:s0 + bs])
        t1 = time.perf_counter()
        w, c = (t1 - t0) * 1000, (time.thread_time() - c0) * 1000
        sched1 = _thread_sched()
        wall.append(w)
        cpu.append(c)
        runq.append(sched1[1] - sched0[1] if sched0 and sched1 else np.nan)
        if paced:
            started_late = (t0 - t_start) - arrival > block_ms / 1000 * 0.01 and \
                finish_prev > arrival + 1e-4
            is_late = (t1 - t_start) - arrival > block_ms / 1000
            finish_prev = t1 - t_start
        else:
            started_late, is_late = False, w > block_ms
        if is_late:
            waited = w - c
            cause = "slow" if c > block_ms else "queued" if started_late else \
                "no_core" if not np.isfinite(runq[-1]) or runq[-1] >= 0.5 * waited else "blocked"
            causes[cause] += 1
            late.append(i)
        if i % 1000 == 0:
            print(f"session block {i}/{n_blocks}", flush=True)
        if t1 - t_start > max_wall_factor * n_blocks * block_ms / 1000:
            print(f"session stopped after {i + 1} blocks: wall time over {max_wall_factor:g} "
                  f"times the audio", flush=True)
            break
    busy1, load1 = _cpu_busy(), os.getloadavg()
    wall, cpu, runq = np.array(wall), np.array(cpu), np.array(runq)

    def pct(v, q):
        return round(float(np.nanpercentile(v, q)), 2) if np.isfinite(v).any() else None

    over = wall > block_ms
    machine_busy = None
    if busy0 and busy1 and busy1[1] > busy0[1]:
        machine_busy = round((busy1[0] - busy0[0]) / (busy1[1] - busy0[1]), 3)
    return {"blocks": n_blocks, "blocks_done": len(wall), "paced": paced,
            "cpu_p50_ms": pct(cpu, 50), "cpu_p99_ms": pct(cpu, 99),
            "cpu_max_ms": round(float(cpu.max()), 2),
            "cpu_underruns": int((cpu > block_ms).sum()),
            "p50_ms": pct(wall, 50), "p99_ms": pct(wall, 99), "max_ms": round(float(wall.max()), 2),
            "runq_wait_p50_ms": pct(runq, 50), "runq_wait_p99_ms": pct(runq, 99),
            "runq_wait_total_s": None if not np.isfinite(runq).any()
            else round(float(np.nansum(runq)) / 1000, 1),
            "wall_over_block": int(over.sum()),
            "runq_share_of_over_block_wall": None if not over.any() or not np.isfinite(runq).any()
            else round(float(np.nansum(runq[over]) / wall[over].sum()), 3),
            "underruns": len(late), "underrun_causes": causes,
            "machine_cpu_busy_share": machine_busy,
            "loadavg_start": [round(x, 2) for x in load0],
            "loadavg_end": [round(x, 2) for x in load1],
            "wall_minutes": round((time.perf_counter() - t_start) / 60, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voice", required=True)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--refs", default=None)
    ap.add_argument("--block-ms", type=float, default=None)
    ap.add_argument("--languages", default="en,zh")
    ap.add_argument("--whole", action="store_true",
                    help="also score the same conversion on the whole signal at once "
                         "(aisinger.live.convert_whole: the streamed content encoder, offline "
                         "F0 and loudness): separates what the encoder loses from what "
                         "streaming loses")
    ap.add_argument("--splits", default="test",
                    help="corpus splits whose phrases are converted (comma-separated; the "
                         "target is defined on 'test'; 'train,test' gives 3 times the phrases, "
                         "a less noisy CER; the voice may have been trained on the target "
                         "singer's train-split clips)")
    ap.add_argument("--session-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paced", action="store_true",
                    help="run the session in real time (each block processed when it would "
                         "have arrived; underrun = output later than one block after arrival) "
                         "instead of back to back")
    ap.add_argument("--content", default="student", help="student or whisper-window")
    ap.add_argument("--no-quality", action="store_true",
                    help="skip the streamed-vs-offline conversions (timing and encoders only)")
    ap.add_argument("--retrieval", type=float, default=None,
                    help="retrieval blend for both conversions (default: the library's)")
    ap.add_argument("--student", default=None,
                    help="a live-content.safetensors to use instead of the shipped student")
    ap.add_argument("--f0-precision", default="int8", help="int8 or float32 (streaming FCPE)")
    ap.add_argument("--no-content-choice", action="store_true",
                    help="skip the content-encoder comparison (Whisper windows vs student)")
    ap.add_argument("--reuse-offline", default=None,
                    help="a previous run's JSON: take the offline conversions' scores from its "
                         "rows (same voice, corpus and settings: offline conversion is "
                         "deterministic) and run only the streamed side")
    ap.add_argument("--json", default=str(BENCH_DIR / "results" / "live.json"))
    a = ap.parse_args(argv)

    import torch

    from aisinger.convert import convert
    from aisinger.io.audio import load
    from aisinger.live import DEFAULT_BLOCK_MS, StreamingConverter, convert_stream, convert_whole
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
                              content=a.content, retrieval=retrieval,
                              content_model=a.student, f0_precision=a.f0_precision)
    voice = load_voice(voice_dir)
    target_gender = "female"
    scorer = Scorer(ScoreConfig(dnsmos=False, naturalness=False, spectrum=False))
    refs = [load(p, mono=True) for p in refs_of(voice_dir, a.refs)]
    splits = a.splits.split(",")
    clips = [c for c in manifest["clips"] if c["split"] in splits and c["language"] in langs
             and c.get("intelligible", True)]
    rows, block_times, block_cpu = [], [], []
    reuse = {}
    if a.reuse_offline:
        prev_doc = json.loads(Path(a.reuse_offline).read_text())
        if prev_doc["summary"].get("retrieval") != retrieval:
            sys.exit(f"error: {a.reuse_offline}: made with retrieval "
                     f"{prev_doc['summary'].get('retrieval')}, this run uses {retrieval}")
        reuse = {r["clip"]: r for r in prev_doc["rows"]}
    for c in ([] if a.no_quality else clips):
        x, sr = load(corpus / c["audio"], mono=True)
        gender = manifest["voices"][c["voice"]].get("gender")
        transpose = 12.0 if gender == "male" and target_gender == "female" else 0.0
        prev = reuse.get(c["id"])
        t0 = time.perf_counter()
        y_off, rate = (None, conv.sample_rate) if prev else \
            convert(voice, x, sr, transpose=transpose, retrieval=retrieval, warn_range=False)
        t_off = prev["offline_seconds"] if prev else time.perf_counter() - t0
        conv.transpose = transpose
        y_str, st = convert_stream(voice_dir, x, sr, converter=conv)
        block_times += st.compute_ms
        block_cpu += st.cpu_ms
        lyrics = c.get("text") or "".join(c.get("lyrics", []))
        row = {"clip": c["id"], "language": c["language"], "seconds": round(len(x) / sr, 2),
               "transpose": transpose, "offline_seconds": round(t_off, 2),
               "stream_p99_ms": round(st.p99_ms, 1)}
        if prev:
            for k in ("offline_similarity", "offline_cer", "offline_transcript"):
                row[k] = prev[k]
        y_whole = convert_whole(conv, x, sr) if a.whole else None
        for kind, y in (("offline", y_off), ("stream", y_str), ("whole", y_whole)):
            if y is None:
                continue
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
        session = run_session(conv, loop, n_blocks, block_ms, paced=a.paced)
        session["minutes"] = a.session_minutes
        print("session:", json.dumps(session), flush=True)

    choice = {}
    if not a.no_content_choice:
        print("content encoders ...", flush=True)
        choice = content_choice(clips, corpus, voice, conv.block_frames, conv.lookahead,
                                a.student)
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
        "student": a.student or "shipped", "f0_precision": a.f0_precision,
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
        "splits": splits,
        "cer_clipped_gap": round(float(np.mean([min(r["stream_cer"], 1.0)
                                                - min(r["offline_cer"], 1.0)
                                                for r in rows])), 4) if rows else None,
        "whole_cer": mean("whole_cer") if a.whole else None,
        "cer_gap_by_language": {
            lang: round(float(np.mean([r["stream_cer"] - r["offline_cer"] for r in rows
                                       if r["language"] == lang])), 4)
            for lang in sorted({r["language"] for r in rows})},
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
    lines += [(f"  CER gap, {lang}", g, "<= 0.05", g <= TARGETS["cer_gap"])
              for lang, g in summary["cer_gap_by_language"].items()]
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
                   session["cpu_underruns"] == 0),
                  ("session: run-queue wait p99 (ms)", session["runq_wait_p99_ms"], "", None)]
        lines += [(f"  underruns: {k}", v, "", None)
                  for k, v in session["underrun_causes"].items()]
    for name, v, t, good in lines:
        print(f"{name:34s} {v:>12} {t:>10s}  {'' if good is None else 'yes' if good else 'NO'}")
    doc = {"summary": summary, "targets": TARGETS, "met": ok, "rows": rows,
           "machine": {**machine_info(), "loadavg": os.getloadavg()}}
    write_json(Path(a.json), doc)
    print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
