"""Watermark benchmark: robustness (incl. speed / tempo / pitch edits), false positives,
inaudibility (SNR, DNSMOS) and speed.

    .venv/bin/python bench/watermark.py --part marked [--marked 21] [--json J1]   # robustness
    .venv/bin/python bench/watermark.py --part fp [--unmarked 2000] [--json J2]   # FP scan
    .venv/bin/python bench/watermark.py --merge J1 J2 [--json bench/results/watermark.json]
    .venv/bin/python bench/watermark.py --table bench/results/watermark.json     # reprint

Marked set: lab-corpus song renditions (full mixes and a-cappella vocals), the real example
song and, with ``--kinds``, "vocal takes" (consecutive phrase clips of one voice joined to
≥ 12 s).  Each is marked with a random payload; a 13 s source excerpt at a random offset is
attacked and a random **10 s excerpt of the result** is detected (so every row includes
cropping).  Attacks: the v2 set (MP3/AAC 128k, resampling, ±6 dB, noise 20 dB, a codec
chain), single speed / tempo / pitch edits (sox ``speed``, ``tempo -m``, ``pitch``) and
chains of them with MP3/AAC, "slowed + reverb", a 16 kHz channel, noise 20 dB, mixing 6 dB
under speech or another song (see ``aisinger.label.attacks``).

Unmarked set (``--part fp``): ≥ 2,000 10 s excerpts — lab songs (mix, vocals,
accompaniment, also sped up / slowed / pitch-shifted), joined lab phrase takes, the example
song (plus reversed, speed / tempo / pitch edited), TTS speech, white / pink / brown noise,
sines (tones, chords, sweeps, vibrato), silence and near-silence, other generated audio
(General-MIDI accompaniments, clicks, square and sawtooth waves) — detected with the same
settings; reported with the Clopper–Pearson 95 % upper bound of the false-positive rate.

Targets (issue 17): detection ≥ 99 % and exact payload ≥ 95 % after every single attack,
≥ 95 % / 90 % after the chains; 0 false positives of ≥ 2,000; SNR ≥ 25 dB; DNSMOS of marked
vs unmarked vocals within measurement noise; embed + detect ≤ 0.1 × real time (CPU time of
this process, the search included).  The corpus defaults to ``bench/results/lab-corpus``
(built with ``make_corpus(DIR, seed=0)`` when missing).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

EXCERPT_S = 10.0
SOURCE_S = 13.0
TAKE_S = 12.0
TARGETS = {"single_detection": 0.99, "single_payload": 0.95, "chain_detection": 0.95,
           "chain_payload": 0.90, "false_positives": 0, "min_unmarked": 2000, "snr_db": 25.0,
           "rtf": 0.1}


def attack_names() -> tuple[list[str], list[str]]:
    """(single attacks, chains) benchmarked."""
    from aisinger.label import attacks

    single = [a for a in attacks.ATTACKS if a != "chain"] + list(attacks.SCALE_ATTACKS)
    return single, ["chain"] + list(attacks.CHAINS)


def corpus(path: Path) -> tuple[Path, dict]:
    from aisinger.lab import load_manifest, make_corpus

    if not (path / "manifest.json").is_file():
        print(f"building the lab corpus in {path} (~2 min) ...", file=sys.stderr)
        make_corpus(path, seed=0)
    return path, load_manifest(path / "manifest.json")


def marked_items(root: Path, manifest: dict, limit: int,
                 kinds: tuple[str, ...]) -> list[tuple[str, str, np.ndarray, int]]:
    """(name, kind, audio, sr): song mixes and vocals, phrase takes, the example song."""
    from aisinger import assets
    from aisinger.io import audio

    items = []
    for s in manifest.get("song_renditions", []):
        for stem in ("mix", "vocals"):
            if stem in kinds:
                x, sr = audio.load(root / s[stem])
                items.append((f"{s['id']}:{stem}", stem, x, sr))
    if "take" in kinds:
        items += [(n, "take", x, sr) for n, x, sr in _takes(root, manifest, TAKE_S)]
    if "mix" in kinds:
        x, sr = audio.load(assets.fetch("example-song"))
        if x.shape[-1] / sr < SOURCE_S + 0.5:  # the example is ~11 s: loop it once
            x = np.concatenate([x, x], axis=-1)
        items.append(("example-song", "mix", x, sr))
    rng = np.random.default_rng(0)
    if len(items) > limit:
        keep = sorted(rng.choice(len(items), limit, replace=False))
        items = [items[i] for i in keep]
    return items


def _takes(root: Path, manifest: dict, seconds: float, start_skip: int = 0):
    """Consecutive phrase clips of one voice joined with 0.3 s pauses to ≥ ``seconds``."""
    from aisinger.io import audio

    by_voice: dict[str, list[dict]] = {}
    for c in manifest["clips"]:
        by_voice.setdefault(c["voice"], []).append(c)
    for voice, clips in sorted(by_voice.items()):
        parts, total = [], 0.0
        for c in clips[start_skip:]:
            x, sr = audio.load(root / c["audio"], mono=True)
            parts += [x, np.zeros(int(0.3 * sr), np.float32)]
            total += len(x) / sr + 0.3
            if total >= seconds:
                yield f"take:{voice}:{c['phrase']}", np.concatenate(parts), sr
                parts, total = [], 0.0


def interferers(sr: int) -> dict[str, np.ndarray]:
    """Unmarked speech (TTS) and another song (a lab accompaniment) to mix the marks under."""
    from aisinger import lab

    text = ("Welcome back to the channel. Today we are listening to a new cover, and I want "
            "to tell you what I think about the arrangement and the vocal.")
    speech = lab.speak(text, "flite-rms", sr=sr)
    notes = lab.make_melody(40, seed=99)
    song = lab.accompany(notes, sr=sr, seconds=SOURCE_S + 1, seed=99)
    return {"speech": np.asarray(speech, np.float32), "song": np.asarray(song, np.float32)}


def _bits_correct(a: bytes | None, b: bytes) -> float:
    if a is None:
        return 0.5  # no guess: chance level
    x = np.unpackbits(np.frombuffer(a, np.uint8)) == np.unpackbits(np.frombuffer(b, np.uint8))
    return float(x.mean())


def _snr(x: np.ndarray, y: np.ndarray) -> float:
    w = y.astype(np.float64) - x
    return float(10 * np.log10((x.astype(np.float64) ** 2).sum() / max((w ** 2).sum(), 1e-30)))


def run_marked(args) -> dict:
    from aisinger.label import attacks
    from aisinger.label import watermark as wm

    root, manifest = corpus(Path(args.corpus))
    kinds = tuple(args.kinds.split(","))
    marked = marked_items(root, manifest, args.marked, kinds)
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    single, chains = attack_names()
    names = single + chains
    only = set(args.attacks.split(",")) if args.attacks else set(names)
    if only - set(names):
        raise SystemExit(f"unknown attacks: {', '.join(sorted(only - set(names)))}")
    single, chains = [a for a in single if a in only], [a for a in chains if a in only]
    rows: dict[str, dict[str, list]] = {a: {"present": [], "exact": [], "bits": [], "z": [],
                                            "kind": [], "speed": [], "pitch": []}
                                        for a in single + chains}
    snrs: dict[str, list[float]] = {}
    mos: list[dict] = []
    cpu = {"embed": 0.0, "embed_s": 0.0, "detect": 0.0, "detect_s": 0.0}
    others_cache: dict[int, dict] = {}
    for n, (name, kind, x, sr) in enumerate(marked):
        if n % n_shards != shard:
            continue
        rng = np.random.default_rng(2026 + n)  # per clip: shards give the same draws
        payload = wm.payload_for(f"voice-{n}", int(rng.integers(0, 1 << wm.CONTENT_BITS)))
        t0 = time.process_time()
        y = wm.embed(x, sr, payload)
        cpu["embed"] += time.process_time() - t0
        cpu["embed_s"] += x.shape[-1] / sr
        snrs.setdefault(kind, []).append(_snr(x, y))
        if sr not in others_cache:
            others_cache[sr] = interferers(sr)
        dur = x.shape[-1] / sr
        start = float(rng.uniform(0, dur - SOURCE_S)) if dur > SOURCE_S + 0.5 else 0.0
        source = attacks.crop(y, sr, start, SOURCE_S)
        for a in names:
            if a not in only:  # same draws as a full run: one excerpt offset per attack
                rng.uniform()
                continue
            ya, sra = attacks.apply(a, source, sr, seed=n, others=others_cache[sr])
            got = ya.shape[-1] / sra
            off = float(rng.uniform(0, got - EXCERPT_S)) if got > EXCERPT_S else 0.0
            ya = attacks.crop(ya, sra, off, EXCERPT_S)
            t0 = time.process_time()
            r = wm.detect(ya, sra)
            if a == "none" or "none" not in only:  # else: CPU of the rows run
                cpu["detect"] += time.process_time() - t0
                cpu["detect_s"] += ya.shape[-1] / sra
            rows[a]["present"].append(bool(r.present))
            rows[a]["exact"].append(r.payload == payload)
            rows[a]["bits"].append(_bits_correct(r.raw_payload, payload))
            rows[a]["z"].append(r.score)
            rows[a]["kind"].append(kind)
            rows[a]["speed"].append(r.speed_factor)
            rows[a]["pitch"].append(r.pitch_semitones)
        if args.partial:  # raw rows so far, so an interrupted run still counts
            part = Path(args.json).with_suffix(".partial.json")
            tmp = part.with_suffix(".tmp")
            tmp.write_text(json.dumps({"raw_marked": {
                "machine": platform.platform(), "python": platform.python_version(),
                "corpus": str(root), "excerpt_s": EXCERPT_S, "single": single,
                "chains": chains, "rows": rows, "snrs": snrs, "mos_pairs": mos, "cpu": cpu,
                "targets": TARGETS}}))
            tmp.replace(part)
        misses = [a for a in names if a in only and not rows[a]["exact"][-1]]
        print(f"  [{n + 1}/{len(marked)}] {name[:36]:36s} SNR {snrs[kind][-1]:5.1f} dB  "
              f"payload lost in: {', '.join(misses) or '-'}", file=sys.stderr, flush=True)

    return {"machine": platform.platform(), "python": platform.python_version(),
            "corpus": str(root), "n_marked": len(next(iter(rows.values()))["kind"]), "excerpt_s": EXCERPT_S,
            "single": single, "chains": chains, "rows": rows, "snrs": snrs, "mos_pairs": mos,
            "cpu": cpu, "targets": TARGETS}


def summarise_marked(raw: dict) -> dict:
    """Per-attack and per-kind rates from the raw rows of one or more shards."""
    rows, snrs, mos, cpu = raw["rows"], raw["snrs"], raw["mos_pairs"], raw["cpu"]
    names = raw["single"] + raw["chains"]

    def summary(a: str, kind: str | None = None) -> dict:
        sel = [i for i, k in enumerate(rows[a]["kind"]) if kind is None or k == kind]
        pick = lambda key: [rows[a][key][i] for i in sel]  # noqa: E731
        found = [i for i in sel if rows[a]["present"][i]]
        return {"n": len(sel), "detection": float(np.mean(pick("present"))),
                "payload_exact": float(np.mean(pick("exact"))),
                "bit_accuracy": float(np.mean(pick("bits"))),
                "median_z": float(np.median(pick("z"))),
                "median_speed": float(np.median([rows[a]["speed"][i] for i in found]))
                if found else None,
                "median_pitch_st": float(np.median([rows[a]["pitch"][i] for i in found]))
                if found else None}

    kinds_seen = sorted(set(next(iter(rows.values()))["kind"]))
    res = {
        **{k: raw[k] for k in ("machine", "python", "corpus", "excerpt_s", "single", "chains")},
        "n_marked": len(next(iter(rows.values()))["kind"]),
        "attacks": {a: {"all": summary(a), **{k: summary(a, k) for k in kinds_seen}}
                    for a in names},
        "snr_db": {k: {"min": float(min(v)), "median": float(np.median(v))}
                   for k, v in snrs.items()},
        "speed": {"embed_rtf_cpu": cpu["embed"] / max(cpu["embed_s"], 1e-9),
                  "detect_rtf_cpu_marked": cpu["detect"] / max(cpu["detect_s"], 1e-9)},
        "targets": TARGETS,
    }
    if mos:
        res["dnsmos"] = _mos_summary(mos)
    return res


def merge_marked(parts: list[dict]) -> dict:
    """Join the raw rows of marked-clip shards and summarise them."""
    raw = dict(parts[0])
    raw["rows"] = {a: {k: [v for p in parts for v in p["rows"][a][k]] for k in rows}
                   for a, rows in parts[0]["rows"].items()}
    raw["snrs"] = {}
    for p in parts:
        for k, v in p["snrs"].items():
            raw["snrs"].setdefault(k, []).extend(v)
    raw["mos_pairs"] = [m for p in parts for m in p["mos_pairs"]]
    raw["cpu"] = {k: sum(p["cpu"][k] for p in parts) for k in parts[0]["cpu"]}
    return raw


def _mos_pair(x: np.ndarray, y: np.ndarray, sr: int) -> dict:
    """DNSMOS of the unmarked and the marked clip (mono downmix), and — as the measurement
    noise — of the unmarked clip delayed by 10 ms (an inaudible change that only moves the
    9 s analysis segments)."""
    from aisinger.io.audio import to_mono
    from aisinger.eval.dnsmos import dnsmos

    xm, ym = to_mono(x), to_mono(y)
    shifted = np.concatenate([np.zeros(int(0.01 * sr), np.float32), xm])[: len(xm)]
    a, b, c = (dnsmos(v, sr, p808=True, hop_seconds=2) for v in (xm, ym, shifted))
    return {k: (a[k], b[k], c[k]) for k in a}


def run_mos(args) -> dict:
    """DNSMOS of marked vs unmarked a-cappella vocals (every lab song rendition)."""
    from aisinger.io import audio
    from aisinger.label import watermark as wm

    root, manifest = corpus(Path(args.corpus))
    pairs = []
    for n, s in enumerate(manifest.get("song_renditions", [])):
        x, sr = audio.load(root / s["vocals"])
        y = wm.embed(x, sr, wm.payload_for(f"voice-{n}", n))
        pairs.append(_mos_pair(x, y, sr))
        print(f"  mos [{n + 1}] {s['id']}: " + ", ".join(
            f"{k} {v[0]:.3f}->{v[1]:.3f}" for k, v in pairs[-1].items()), file=sys.stderr,
            flush=True)
    return {"dnsmos": _mos_summary(pairs), "mos_pairs_vocals": pairs}


def _mos_summary(pairs: list[dict]) -> dict:
    """Paired difference marked − unmarked per DNSMOS score: mean, 95 % CI (t), spread."""
    from scipy import stats

    out = {}
    for k in pairs[0]:
        d = np.array([p[k][1] - p[k][0] for p in pairs])
        noise = np.array([p[k][2] - p[k][0] for p in pairs])
        n = len(d)
        half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)) if n > 1 else None
        out[k] = {"n": n, "unmarked_mean": float(np.mean([p[k][0] for p in pairs])),
                  "marked_mean": float(np.mean([p[k][1] for p in pairs])),
                  "diff_mean": float(d.mean()), "diff_ci95": half,
                  "diff_sd": float(d.std(ddof=1)) if n > 1 else None,
                  "shift10ms_diff_mean": float(noise.mean()),
                  "shift10ms_abs_max": float(np.abs(noise).max()),
                  "shift10ms_sd": float(noise.std(ddof=1)) if n > 1 else None}
    return out


# ----------------------------------------------------------------------------------------------
# false-positive scan


def unmarked_sources(root: Path, manifest: dict, minimum: int, seed: int = 1) -> list:
    """Thunks, each returning a list of ``(family, name, audio, sr)`` unmarked 10 s excerpts;
    together at least ``minimum`` excerpts.  Sources are generated lazily, so shards of the
    scan (``--shard k/n``: sources ``j`` with ``j % n == k``) generate only their own."""
    from aisinger import assets, lab
    from aisinger.io import audio
    from aisinger.label import attacks

    sr = 44100
    n_ex = int(EXCERPT_S * sr)
    src: list = []

    def windows(x, rate, hop_s):
        step, w = max(1, int(hop_s * rate)), int(EXCERPT_S * rate)
        return [(s / rate, x[..., s: s + w]) for s in range(0, max(1, x.shape[-1] - w + 1), step)]

    # 1. lab songs: every stem, 0.5 s hop; edited copies of the mixes
    def song_stem(s, stem):
        x, r = audio.load(root / s[stem])
        return [("lab-song", f"{s['id']}:{stem}@{t:.1f}s", w, r) for t, w in windows(x, r, 0.5)]

    def song_edit(s, a):
        x, r = audio.load(root / s["mix"])
        y, r2 = attacks.apply(a, x, r)
        return [("lab-song-edited", f"{s['id']}:mix:{a}@{t:.0f}s", w, r2)
                for t, w in windows(y, r2, 3.0)]

    for s in manifest.get("song_renditions", []):
        for stem in ("mix", "vocals", "accompaniment"):
            src.append(lambda s=s, stem=stem: song_stem(s, stem))
        for a in ("speed0.85", "speed1.2", "tempo1.1", "pitch+150", "pitch-120"):
            src.append(lambda s=s, a=a: song_edit(s, a))

    # 2. joined phrase takes (a-cappella singing) at two clip offsets
    def takes(skip):
        return [("lab-take", f"{name}+{skip}@{t:.1f}s", w, r)
                for name, x, r in _takes(root, manifest, 21.0, skip) for t, w in windows(x, r, 2.5)]

    src += [lambda: takes(0), lambda: takes(1)]

    # 3. the example song (real recording), reversed, looped, edited
    def example_loop():
        x, r = audio.load(assets.fetch("example-song"))
        return np.concatenate([x, x[..., ::-1], x], axis=-1), r

    def example(a):
        loop, r = example_loop()
        if a == "none":
            return [("example-song", f"example-loop@{t:.1f}s", w, r)
                    for t, w in windows(loop, r, 0.5)]
        y, r2 = attacks.apply(a, loop, r)
        return [("example-song-edited", f"example:{a}@{t:.0f}s", w, r2)
                for t, w in windows(y, r2, 2.0)]

    for a in ("none", "speed0.8", "speed0.9", "speed1.1", "speed1.25", "tempo0.85", "tempo1.15",
              "pitch-200", "pitch-100", "pitch+100", "pitch+200", "slowed+reverb", "mp3"):
        src.append(lambda a=a: example(a))

    # 4. TTS speech
    sentences = ["The quick brown fox jumps over the lazy dog near the river bank.",
                 "Please remember to bring your umbrella, the forecast says rain all afternoon.",
                 "In the beginning the studio was empty, and then the musicians arrived.",
                 "Numbers like three hundred and forty two are hard to hear on the radio.",
                 "This is a test of the emergency broadcast system, this is only a test."]

    def speech(v):
        parts = [lab.speak(sen, v, sr=sr) for sen in sentences]
        sp = np.concatenate([np.concatenate([p, np.zeros(int(0.4 * sr), np.float32)])
                             for p in parts])
        return [("tts-speech", f"speech:{v}@{t:.0f}s", w, sr) for t, w in windows(sp, sr, 1.0)]

    for v in ("flite-slt", "flite-rms", "flite-awb", "flite-kal", "espeak-en-f3"):
        src.append(lambda v=v: speech(v))

    # 5. generated: accompaniments, clicks, square / sawtooth
    def accompaniment(i):
        acc = lab.accompany(lab.make_melody(30, seed=1000 + i), sr=sr, seconds=24.0,
                            seed=1000 + i)
        return [("generated-accompaniment", f"acc{i}@{t:.0f}s", w, sr)
                for t, w in windows(acc, sr, 2.0)]

    src += [lambda i=i: accompaniment(i) for i in range(12)]
    t = np.arange(n_ex) / sr

    def synthetic(i):
        rng = np.random.default_rng(seed * 1000 + i)
        f = float(rng.uniform(50, 2000))
        kind = ("square", "saw", "clicks", "pulses")[i % 4]
        if kind == "square":
            x = 0.2 * np.sign(np.sin(2 * np.pi * f * t))
        elif kind == "saw":
            x = 0.2 * (2 * ((f * t) % 1.0) - 1)
        elif kind == "clicks":
            x = np.zeros(n_ex)
            x[:: max(1, int(sr / rng.uniform(1, 12)))] = 0.8
        else:
            x = 0.3 * np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * rng.uniform(1, 8) * t) > 0)
        return [("generated-synthetic", f"{kind}{i}", x.astype(np.float32), sr)]

    src += [lambda i=i: synthetic(i) for i in range(40)]

    # 6. noise, 7. sines, 8. silence: FILL_K of each kind (enough to reach `minimum`)
    def noise_sines(k):
        rng = np.random.default_rng(seed * 100000 + k)
        kind = k % 3
        white = rng.normal(0, 1, n_ex)
        if kind == 0:
            x = white
        else:  # pink (1/f) or brown (1/f²) by spectral shaping
            spec = np.fft.rfft(white)
            f = np.maximum(np.fft.rfftfreq(n_ex, 1 / sr), 1.0)
            spec /= f ** (0.5 if kind == 1 else 1.0)
            x = np.fft.irfft(spec, n_ex)
        x = x / np.abs(x).max() * 10 ** rng.uniform(-3, -0.3)
        out = [("noise", f"noise{('white', 'pink', 'brown')[kind]}{k}", x.astype(np.float32), sr)]
        m = int(rng.integers(1, 5))
        f0 = rng.uniform(60, 4000, m)
        vib = rng.uniform(0, 0.02)
        sweep = rng.uniform(-0.5, 0.5)
        x = sum(np.sin(2 * np.pi * (fi * (1 + sweep * t / EXCERPT_S) * t +
                                    vib * fi / 5.0 * np.sin(2 * np.pi * 5.0 * t)))
                for fi in f0) * (0.3 / m)
        out.append(("sines", f"sines{k}:{m}@{f0[0]:.0f}Hz", x.astype(np.float32), sr))
        if k % 3 == 0:
            level = (0.0, 2.0 ** -17, 1e-4, 1e-3)[(k // 3) % 4]
            x = rng.normal(0, level, n_ex) if level else np.zeros(n_ex)
            out.append(("silence", f"silence{k}:{level:g}", x.astype(np.float32), sr))
        return out

    fill_k = max(100, int(math.ceil((minimum - FP_BASE_EXCERPTS) / 2.33)) + 1)
    src += [lambda k=k: noise_sines(k) for k in range(fill_k)]
    return src


FP_BASE_EXCERPTS = 1450
"""A lower bound of the excerpts before the noise / sines / silence fill (~1,530 counted; the
fill adds ~2.33 excerpts per step)."""


def clopper_pearson_upper(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided upper ``conf`` bound of a binomial rate with ``k`` of ``n`` observed."""
    from scipy import stats

    if k >= n:
        return 1.0
    return float(stats.beta.ppf(conf, k + 1, n - k))


def run_fp(args) -> dict:
    from aisinger.label import watermark as wm

    root, manifest = corpus(Path(args.corpus))
    fp, scores, fams, worst = [], [], {}, ("", -1.0)
    cpu, secs = 0.0, 0.0
    t_start = time.time()
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    log = Path(args.json).with_suffix(".jsonl")
    log.unlink(missing_ok=True)
    sources = list(enumerate(unmarked_sources(root, manifest, args.unmarked)))
    for j, make in (sources[::-1] if args.reverse else sources):
        if j % n_shards != shard:
            continue
        for fam, name, x, sr in make():
            t0 = time.process_time()
            r = wm.detect(x, sr)
            cpu += time.process_time() - t0
            secs += x.shape[-1] / sr
            scores.append(r.score)
            f = fams.setdefault(fam, {"n": 0, "fp": 0, "max_z": 0.0})
            f["n"] += 1
            f["max_z"] = max(f["max_z"], r.score)
            if r.present:
                fp.append(name)
                f["fp"] += 1
            if r.score > worst[1]:
                worst = (name, r.score)
            with log.open("a") as fh:  # progress that survives an interrupted scan
                fh.write(json.dumps({"family": fam, "name": name, "present": bool(r.present),
                                     "z": round(float(r.score), 3),
                                     "cpu_s": round(time.process_time() - t0, 3)}) + "\n")
            if len(scores) % 50 == 0:
                print(f"  fp scan {args.shard}: {len(scores)} excerpts, {len(fp)} positives, "
                      f"max z {worst[1]:.2f} [{worst[0]}], {time.time() - t_start:.0f} s",
                      file=sys.stderr, flush=True)
    n = len(scores)
    return {
        "n_unmarked": n, "false_positives": len(fp), "false_positive_names": fp[:50],
        "scores": [round(float(v), 3) for v in scores], "cpu_s": cpu, "audio_s": secs,
        "fp_rate_upper95": clopper_pearson_upper(len(fp), n),
        "families": fams,
        "null_score": {"median": float(np.median(scores)), "p99": float(np.percentile(scores, 99)),
                       "max": float(max(scores)), "max_clip": worst[0],
                       "thresholds": {"v3_payload": wm.Z3_PAYLOAD, "v3_mark_only": wm.Z3_MARK_ONLY,
                                      "v2_payload": wm.Z_PAYLOAD, "v2_mark_only": wm.Z_MARK_ONLY,
                                      "v3_decode_list": wm.DECODE_LIST},
                       "search_candidates_per_window": wm.search_candidates()},
        "detect_rtf_cpu_unmarked": cpu / max(secs, 1e-9),
    }


def fp_from_jsonl(files: list[str]) -> dict:
    """FP-scan result from the per-excerpt JSONL logs of any shards (an excerpt scanned by
    two shards, e.g. a forward and a ``--reverse`` one, counts once)."""
    from aisinger.label import watermark as wm

    seen: dict[str, dict] = {}
    for f in files:
        for line in Path(f).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                seen.setdefault(r["name"], r)
    recs = list(seen.values())
    fams: dict[str, dict] = {}
    for r in recs:
        f = fams.setdefault(r["family"], {"n": 0, "fp": 0, "max_z": 0.0})
        f["n"] += 1
        f["fp"] += int(r["present"])
        f["max_z"] = max(f["max_z"], r["z"])
    scores = [r["z"] for r in recs]
    worst = max(recs, key=lambda r: r["z"])
    k = sum(r["present"] for r in recs)
    cpu = sum(r["cpu_s"] for r in recs)
    return {"n_unmarked": len(recs), "false_positives": k,
            "false_positive_names": [r["name"] for r in recs if r["present"]],
            "scores": scores, "cpu_s": cpu, "audio_s": EXCERPT_S * len(recs),
            "fp_rate_upper95": clopper_pearson_upper(k, len(recs)), "families": fams,
            "null_score": {"median": float(np.median(scores)),
                           "p99": float(np.percentile(scores, 99)), "max": worst["z"],
                           "max_clip": worst["name"],
                           "thresholds": {"v3_payload": wm.Z3_PAYLOAD,
                                          "v3_mark_only": wm.Z3_MARK_ONLY,
                                          "v2_payload": wm.Z_PAYLOAD,
                                          "v2_mark_only": wm.Z_MARK_ONLY,
                                          "v3_decode_list": wm.DECODE_LIST},
                           "search_candidates_per_window": wm.search_candidates()},
            "detect_rtf_cpu_unmarked": cpu / max(EXCERPT_S * len(recs), 1e-9)}


def merge_fp(shards: list[dict]) -> dict:
    """Join FP-scan shards (same settings, disjoint excerpts) into one result."""
    scores = [v for s in shards for v in s["scores"]]
    fams: dict[str, dict] = {}
    for s in shards:
        for k, v in s["families"].items():
            f = fams.setdefault(k, {"n": 0, "fp": 0, "max_z": 0.0})
            f["n"] += v["n"]
            f["fp"] += v["fp"]
            f["max_z"] = max(f["max_z"], v["max_z"])
    worst = max(shards, key=lambda s: s["null_score"]["max"])["null_score"]
    n, k = len(scores), sum(s["false_positives"] for s in shards)
    cpu, secs = sum(s["cpu_s"] for s in shards), sum(s["audio_s"] for s in shards)
    return {"n_unmarked": n, "false_positives": k,
            "false_positive_names": [x for s in shards for x in s["false_positive_names"]],
            "scores": scores, "cpu_s": cpu, "audio_s": secs,
            "fp_rate_upper95": clopper_pearson_upper(k, n), "families": fams,
            "null_score": {**worst, "median": float(np.median(scores)),
                           "p99": float(np.percentile(scores, 99))},
            "detect_rtf_cpu_unmarked": cpu / max(secs, 1e-9)}


# ----------------------------------------------------------------------------------------------
# table


def table(res: dict) -> str:
    lines = []
    if "attacks" in res:
        kinds = [k for k in next(iter(res["attacks"].values())) if k != "all"]
        head = (f"{'attack':22s} {'detect':>7s} {'payload':>8s} {'bits':>7s} {'med z':>6s} "
                f"{'speed':>6s} {'semit':>6s}" +
                "".join(f" {('det ' + k)[:10]:>10s}" for k in kinds) +
                "".join(f" {('pay ' + k)[:10]:>10s}" for k in kinds))
        lines += [f"watermark bench (v3): {res['n_marked']} marked clips, {EXCERPT_S:.0f} s "
                  f"excerpts of the attacked audio", head, "-" * len(head)]
        for group, names in (("single", res["single"]), ("chains", res["chains"])):
            det_t = TARGETS[f"{'single' if group == 'single' else 'chain'}_detection"]
            pay_t = TARGETS[f"{'single' if group == 'single' else 'chain'}_payload"]
            for a in names:
                r = res["attacks"][a]
                al = r["all"]
                short = al["detection"] < det_t or al["payload_exact"] < pay_t
                sp = f"{al['median_speed']:6.3f}" if al["median_speed"] else f"{'-':>6s}"
                pt = f"{al['median_pitch_st']:+6.2f}" if al["median_speed"] else f"{'-':>6s}"
                lines.append(f"{a:22s} {al['detection']:7.1%} {al['payload_exact']:8.1%} "
                             f"{al['bit_accuracy']:7.2%} {al['median_z']:6.1f} {sp} {pt}" +
                             "".join(f" {r[k]['detection']:10.1%}" for k in kinds) +
                             "".join(f" {r[k]['payload_exact']:10.1%}" for k in kinds) +
                             ("   < target" if short else ""))
            lines.append("-" * len(head))
        s = res["snr_db"]
        lines.append("watermark SNR: " + ", ".join(f"{k} min {v['min']:.1f} / median "
                                                    f"{v['median']:.1f} dB" for k, v in s.items()))
        if "dnsmos" in res:
            lines.append("DNSMOS marked − unmarked (a-cappella vocals, paired, mean ± 95 % CI; "
                         "measurement noise = same vocal 10 ms later, SD): " + ", ".join(
                             f"{k[7:]} {v['diff_mean']:+.3f} ± {v['diff_ci95']:.3f} "
                             f"(noise SD {v['shift10ms_sd']:.3f}; unmarked "
                             f"{v['unmarked_mean']:.2f})"
                             for k, v in res["dnsmos"].items() if v["diff_ci95"] is not None))
        sp = res["speed"]
        lines.append(f"speed (CPU time): embed {sp['embed_rtf_cpu']:.4f}x RT, detect marked "
                     f"{sp['detect_rtf_cpu_marked']:.4f}x RT")
    if "fp" in res:
        f = res["fp"]
        n = f["null_score"]
        lines.append(f"false positives: {f['false_positives']} of {f['n_unmarked']} unmarked 10 s "
                     f"excerpts (95 % upper bound {f['fp_rate_upper95']:.2e}); null z median "
                     f"{n['median']:.2f}, p99 {n['p99']:.2f}, max {n['max']:.2f} [{n['max_clip']}]; "
                     f"thresholds v3 {n['thresholds']['v3_payload']}+CRC / "
                     f"{n['thresholds']['v3_mark_only']}"
                     + (f", list decoding {n['thresholds']['v3_decode_list']} paths"
                        if n["thresholds"].get("v3_decode_list", 1) > 1 else ""))
        lines.append("  by family: " + ", ".join(f"{k} {v['fp']}/{v['n']} (max z {v['max_z']:.1f})"
                                                 for k, v in f["families"].items()))
        lines.append(f"detect CPU time on unmarked audio (v3 search + v2): "
                     f"{f['detect_rtf_cpu_unmarked']:.4f}x RT")
        if "speed" in res:
            tot = res["speed"]["embed_rtf_cpu"] + f["detect_rtf_cpu_unmarked"]
            lines.append(f"embed + detect (worst case, unmarked): {tot:.4f}x RT "
                         f"(target ≤ {TARGETS['rtf']}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="bench/results/lab-corpus")
    p.add_argument("--part", choices=("marked", "fp", "mos", "all"), default="all")
    p.add_argument("--marked", type=int, default=21)
    p.add_argument("--kinds", default="mix,vocals", help="marked kinds: mix,vocals,take")
    p.add_argument("--attacks", default="", help="marked part: only these attacks "
                   "(comma-separated; the excerpts are the same as in a full run)")
    p.add_argument("--unmarked", type=int, default=2000)
    p.add_argument("--shard", default="0/1", help="run excerpts / marked clips i with "
                   "i %% n == k (k/n), to spread a part over processes; --merge joins them")
    p.add_argument("--no-mos", action="store_true", help="(kept for old command lines; the "
                   "DNSMOS comparison is its own part: --part mos)")
    p.add_argument("--reverse", action="store_true", help="FP scan: take the shard's sources "
                   "last-first (a second process on the same shard; --merge of the .jsonl "
                   "logs counts each excerpt once)")
    p.add_argument("--partial", action="store_true", help="marked part: rewrite the raw rows "
                   "after every clip (JSON.partial.json), so an interrupted run still counts")
    p.add_argument("--json", default="bench/results/watermark.json")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="merge stored part results")
    p.add_argument("--table", metavar="JSON", help="only print the table of a stored result")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    if args.merge:
        res: dict = {}
        shards, marked = [], []
        jsonl = [f for f in args.merge if f.endswith(".jsonl")]
        if jsonl:
            res["fp"] = fp_from_jsonl(jsonl)
        for f in args.merge:
            if f.endswith(".jsonl"):
                continue
            part = json.loads(Path(f).read_text())
            part.pop("table", None)
            if "fp" in part:
                shards.append(part.pop("fp"))
            if "raw_marked" in part:
                marked.append(part.pop("raw_marked"))
            res.update(part)
        if shards:
            res["fp"] = merge_fp(shards)
        if marked:
            res.update(summarise_marked(merge_marked(marked)))
            res["raw_marked"] = merge_marked(marked)
    else:
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        res = {}
        if args.part in ("marked", "all"):
            raw = run_marked(args)
            res.update(summarise_marked(raw))
            res["raw_marked"] = raw
        if args.part in ("fp", "all"):
            res["fp"] = run_fp(args)
        if args.part in ("mos", "all"):
            res.update(run_mos(args))
    text = table(res)
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({**res, "table": text}, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
