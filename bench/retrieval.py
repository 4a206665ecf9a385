"""Retrieval × protect sweep for one voice (issue 16, item 3): what the conversion's content
retrieval and consonant protection do to words (CER) and timbre (similarity).

    .venv/bin/python bench/retrieval.py --voice VOICE_DIR [--refs DATASET_JSON|DIR]
        [--corpus DIR] [--sources A,B,...] [--per-language 2] [--target LABVOICE]
        [--retrieval 0,0.25,0.5,0.75] [--protect 0,0.33,0.5] [--no-dnsmos] [--json PATH]

1. Sources: held-out (*test*-split) phrases of other lab voices in their own language, from
   the quality benchmark's corpus (``--corpus``, default ``bench/results/lab-corpus``, built
   for ``--sources`` if missing, otherwise only read): ``--per-language`` clips per language,
   taken round-robin over the source voices of that language (default sources: those of
   ``bench/train.py``: flite-awb, espeak-en-m3, espeak-en-f3 in English, espeak-cmn,
   espeak-cmn-f2 in Mandarin).
2. Transpose: the lab registers (target register − the source clip's, +12 male → female) when
   the target is a lab voice (``--target``, default the voice's name when it is one);
   otherwise the automatic key of covers (:func:`aisinger.convert.key.choose_transpose` on
   the source F0 and the voice's trained range).
3. Each source's features are extracted once (the voice's feature config); every grid point
   calls :func:`aisinger.convert.convert` with ``retrieval`` and ``protect`` (the defaults of
   convert are :data:`aisinger.convert.retrieval.DEFAULT_RETRIEVAL` /
   :data:`~aisinger.convert.retrieval.DEFAULT_PROTECT`; the row with both marks them).
4. Scores (``bench/quality.py``'s Scorer): Resemblyzer similarity to the target (mean
   embedding of the reference clips: ``--refs``, default the training dataset
   ``<voice>-dataset/dataset.json`` that ``bench/train.py`` writes beside the voice; at most
   30 train clips) and to the source, Whisper CER against the lyrics (English; the espeak-ng
   Mandarin voices are not intelligible to Whisper, their CER is shown in parentheses), F0
   median error, DNSMOS OVRL, and the long-term spectrum's largest octave-band difference to
   the references (:mod:`aisinger.eval.spectrum`; per clip, and of all the group's outputs
   pooled: ``spectrum_pooled`` in the JSON holds the per-band table).

Prints one table (settings × language) and writes JSON (default
``bench/results/retrieval-<voice folder name>.json``).
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

from quality import (DEFAULT_CORPUS, ScoreConfig, Scorer, ensure_corpus,  # noqa: E402
                     machine_info, pooled_spectrum, write_json)

DEFAULT_SOURCES = ("flite-awb", "espeak-en-m3", "espeak-en-f3", "espeak-cmn", "espeak-cmn-f2")
"""The source voices of ``bench/train.py`` (the lab voices its target corpus does not use)."""
DEFAULT_RETRIEVAL = (0.0, 0.25, 0.5, 0.75)
DEFAULT_PROTECT = (0.0, 0.33, 0.5)
MAX_REFS = 30  # reference clips for similarity / spectrum (as bench/train.py)
KEYS = ("similarity_target", "similarity_source", "similarity_margin", "cer",
        "f0_median_cents", "dnsmos_ovrl", "spectrum_max_abs_db")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def reference_clips(voice_dir: Path, refs: Path | None) -> list[Path]:
    """The target's reference clips: a dataset.json (its train clips), a folder of audio, or
    the ``<voice>-dataset/dataset.json`` beside the voice folder."""
    from aisinger.errors import AisingerError
    from aisinger.eval import AUDIO_EXTENSIONS

    path = refs or voice_dir.parent / f"{voice_dir.name}-dataset" / "dataset.json"
    if path.is_dir():
        clips = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    elif path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        clips = [Path(c["file"]) if Path(c["file"]).is_absolute() else path.parent / c["file"]
                 for c in doc.get("clips", []) if c.get("split", "train") == "train"]
    else:
        raise AisingerError(f"{path}: no reference clips for the target voice (pass --refs "
                            "DATASET_JSON or a folder of its clips)")
    if not clips:
        raise AisingerError(f"{path}: no reference clips found")
    return clips[:MAX_REFS]


def pick_sources(manifest: dict, sources: list[str], per_language: int) -> list[dict]:
    """Test clips of ``sources`` in their own language: ``per_language`` per language,
    round-robin over that language's voices, phrases in order."""
    from aisinger.errors import AisingerError

    by_lang: dict[str, list[list[dict]]] = {}
    for v in sources:
        if v not in manifest["voices"]:
            raise AisingerError(f"source voice {v} is not in the corpus "
                                f"({', '.join(manifest['voices'])})")
        lang = manifest["voices"][v]["language"]
        clips = sorted((c for c in manifest["clips"] if c["voice"] == v and c["split"] == "test"
                        and c["language"] == lang), key=lambda c: c["phrase"])
        by_lang.setdefault(lang, []).append(clips)
    picked = []
    for lang, lists in by_lang.items():
        n = 0
        for i in range(max(len(x) for x in lists)):
            for clips in lists:
                if i < len(clips) and n < per_language:
                    picked.append(clips[i])
                    n += 1
    return picked


def transposer(voice, target: str | None):
    """(description, fn(clip, f0) -> semitones) for the sources."""
    from aisinger.convert.key import choose_transpose, voice_range
    from aisinger.errors import AisingerError
    from aisinger.lab.corpus import voice_transpose

    name = target or voice.card.get("name")
    try:
        register = voice_transpose(name) if name else None
    except (AisingerError, KeyError, ValueError):
        if target:
            raise AisingerError(f"--target {target}: not a lab voice") from None
        register = None
    if register is not None:
        return (f"lab registers (target {name})",
                lambda clip, f0: float(register - clip["transpose"]))
    rng = voice_range(voice.card)
    return ("automatic key (octave steps, the voice's trained range)",
            lambda clip, f0: float(choose_transpose(f0, rng).semitones))


def aggregate(rows: list[dict]) -> list[dict]:
    """Means per (retrieval, protect, language); CER over intelligible clips only (the rest
    as ``cer_unintelligible``)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["retrieval"], r["protect"], r["language"]), []).append(r)
    out = []
    for (ret, prot, lang), rs in groups.items():
        agg = {"retrieval": ret, "protect": prot, "language": lang, "clips": len(rs)}
        for k in KEYS:
            use = [r for r in rs if r["intelligible"]] if k == "cer" else rs
            vals = [float(r[k]) for r in use if r.get(k) is not None and np.isfinite(r[k])]
            agg[k] = float(np.mean(vals)) if vals else None
        bad = [float(r["cer"]) for r in rs if not r["intelligible"] and r.get("cer") is not None]
        agg["cer_unintelligible"] = float(np.mean(bad)) if bad else None
        pooled = pooled_spectrum(rs)  # all of the group's outputs vs the references
        agg["spectrum_pooled"] = next(iter(pooled.values()), None)
        agg["spectrum_pooled_max_abs_db"] = agg["spectrum_pooled"]["max_abs_db"] \
            if agg["spectrum_pooled"] else None
        out.append(agg)
    return out


def table(aggs: list[dict], defaults: tuple[float, float]) -> str:
    cols = [("sim_tgt", "similarity_target", "{:.3f}"), ("sim_src", "similarity_source", "{:.3f}"),
            ("margin", "similarity_margin", "{:+.3f}"), ("cer", "cer", "{:.3f}"),
            ("f0_med", "f0_median_cents", "{:.1f}"), ("ovrl", "dnsmos_ovrl", "{:.2f}"),
            ("spec_d", "spectrum_max_abs_db", "{:.1f}"),
            ("spec_pool", "spectrum_pooled_max_abs_db", "{:.1f}")]
    head = ["retrieval", "protect", "lang", "clips"] + [c[0] for c in cols]
    lines = [head]
    for a in aggs:
        if a["retrieval"] is None:
            cells = ["source", "-"]
        else:
            mark = " *" if (a["retrieval"], a["protect"]) == defaults else ""
            cells = [f"{a['retrieval']:.2f}{mark}", f"{a['protect']:.2f}"]
        cells += [a["language"], str(a["clips"])]
        for _, k, f in cols:
            v = a.get(k)
            if k == "cer" and v is None and a.get("cer_unintelligible") is not None:
                cells.append("(" + f.format(a["cer_unintelligible"]) + ")")
            else:
                cells.append("-" if v is None else f.format(v))
        lines.append(cells)
    w = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w[i]) if i == 2 else c.rjust(w[i]) for i, c in enumerate(r))
           for r in lines]
    out.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voice", type=Path, required=True, help="voice folder to sweep")
    ap.add_argument("--refs", type=Path, default=None,
                    help="the target's reference clips: its dataset.json (train clips) or a "
                         "folder (default: <voice>-dataset/dataset.json beside the voice)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                    help=f"lab corpus with the sources (default {DEFAULT_CORPUS})")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    ap.add_argument("--sources", default=",".join(DEFAULT_SOURCES))
    ap.add_argument("--per-language", type=int, default=2,
                    help="source clips per language (default 2)")
    ap.add_argument("--target", default=None,
                    help="lab voice the model was trained on, for the transpose (default: "
                         "the voice's name if it is a lab voice, else the automatic key)")
    ap.add_argument("--retrieval", default=",".join(map(str, DEFAULT_RETRIEVAL)))
    ap.add_argument("--protect", default=",".join(map(str, DEFAULT_PROTECT)))
    ap.add_argument("--f0", default=None, help="F0 method of the conversion (default: convert's)")
    ap.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import torch

    from aisinger.convert import DEFAULT_PROTECT as CONVERT_PROTECT
    from aisinger.convert import DEFAULT_RETRIEVAL as CONVERT_RETRIEVAL
    from aisinger.convert import convert, feature_config
    from aisinger.errors import AisingerError
    from aisinger.features import extract
    from aisinger.features.pitch import DEFAULT_METHOD
    from aisinger.io.audio import load
    from aisinger.progress import track
    from aisinger.voice.folder import load_voice

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    try:
        voice = load_voice(args.voice)
        refs_paths = reference_clips(args.voice, args.refs)
        sources = [s for s in args.sources.split(",") if s]
        manifest, _, _ = ensure_corpus(args.corpus, sources, args.seed)
        picked = pick_sources(manifest, sources, args.per_language)
        how, transpose_of = transposer(voice, args.target)
    except AisingerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    f0_method = args.f0 or DEFAULT_METHOD
    refs = [load(p, mono=True) for p in refs_paths]
    scorer = Scorer(ScoreConfig(dnsmos=not args.no_dnsmos, naturalness=False))
    tasks = []
    for c in picked:
        path = args.corpus / c["audio"]
        audio, sr = load(path, mono=True)
        feats = extract(audio, sr, config=feature_config(voice, f0_method), progress=False)
        tasks.append({"clip": c["id"], "source_voice": c["voice"], "language": c["language"],
                      "phrase": c["phrase"], "lyrics": c["text"],
                      "intelligible": bool(c["intelligible"]), "audio": (audio, sr),
                      "features": feats, "transpose": transpose_of(c, feats.f0)})
    grid = [(r, p) for r in _floats(args.retrieval) for p in _floats(args.protect)]
    name = voice.card.get("name", args.voice.name)

    def score(out, t) -> dict:
        row = scorer.score(out, t["audio"], refs, t["transpose"], t["lyrics"], t["language"])
        return {**{k: t[k] for k in ("clip", "source_voice", "language", "phrase",
                                      "intelligible", "transpose")}, "target_voice": name,
                **row}

    rows = [{"retrieval": None, "protect": None, **score(t["audio"], t)} for t in tasks]
    convert_s = 0.0
    for ret, prot in track(grid, total=len(grid), description="retrieval x protect"):
        for t in tasks:
            a = time.perf_counter()
            out = convert(voice, *t["audio"], features=t["features"], transpose=t["transpose"],
                          f0_method=f0_method, retrieval=ret, protect=prot, warn_range=False)
            convert_s += time.perf_counter() - a
            rows.append({"retrieval": ret, "protect": prot, **score(out, t)})
    aggs = aggregate(rows)
    wall = time.perf_counter() - t0
    print(f"retrieval × protect sweep — voice {args.voice} ({voice.family}, {name}, "
          f"{voice.sample_rate} Hz, index {0 if voice.index is None else voice.index.shape[0]}"
          f" frames); {len(tasks)} source clips ({', '.join(t['clip'] for t in tasks)}); "
          f"transpose: {how}; {len(refs)} reference clips")
    print(table(aggs, (CONVERT_RETRIEVAL, CONVERT_PROTECT)))
    print(f"* = convert's defaults (retrieval {CONVERT_RETRIEVAL}, protect {CONVERT_PROTECT}); "
          "sim = Resemblyzer cosine to the target refs / the source; cer = Whisper-base vs the "
          "lyrics, (x) = sources Whisper cannot understand; f0_med = median |error| in cents vs "
          "source + transpose; ovrl = DNSMOS; spec_d = largest octave-band |difference| (dB) "
          "of the long-term spectrum vs the refs, mean over clips; spec_pool = the same for "
          "the group's outputs pooled")
    print(f"wall {wall:.0f} s (conversions {convert_s:.0f} s, metrics "
          + ", ".join(f"{k} {v:.0f} s" for k, v in scorer.seconds.items())
          + f"); load {load0[0]:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
          f"{args.threads} torch thread(s)")
    json_path = args.json or BENCH_DIR / "results" / f"retrieval-{args.voice.name}.json"
    doc = {"benchmark": "retrieval", "version": 1,
           "config": {"voice": args.voice, "family": voice.family, "name": name,
                      "refs": [str(p) for p in refs_paths], "corpus": args.corpus,
                      "sources": sources, "clips": [t["clip"] for t in tasks],
                      "transpose": how, "f0_method": f0_method, "grid": grid,
                      "convert_defaults": [CONVERT_RETRIEVAL, CONVERT_PROTECT]},
           "aggregates": aggs, "rows": rows,
           "timing": {"wall_s": wall, "convert_s": convert_s, "metrics_s": scorer.seconds},
           "machine": {**machine_info(), "loadavg_start": load0, "loadavg_end": os.getloadavg()}}
    write_json(json_path, doc)
    print(f"json: {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
