"""Singing-renderer comparison for the human-like lab singers (issue 13; docs/lab.md).

    .venv/bin/python bench/renderers.py [--phrases 3] [--json bench/results/renderers.json]

For each voice and each of ``--phrases`` lab phrases (the corpus planner's melodies and
lyrics, seed 0), the phrase is sung with every renderer of :func:`aisinger.lab.sing.render`
and scored against the voice's *spoken* line (the same lyrics as one utterance):

* ``mos_sung`` / ``mos_spoken``: DistillMOS of the sung clip / of the spoken line, and
  ``mos_drop`` = spoken - sung (how much naturalness the renderer costs; speech-trained
  metric, so only the comparison between renderers is meaningful);
* ``sim_spoken``: Resemblyzer cosine of the sung clip to the spoken line (timbre kept?);
* ``cer``: Whisper base CER against the lyrics;
* ``f0_med_cents`` / ``f0_gross``: median |error| (cents) of the FCPE track of the sung clip
  against the imposed F0, and the fraction of frames off by more than 50 cents.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

VOICES = ("kokoro-alpha", "kokoro-kumo", "kokoro-nezumi", "piper-joe")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phrases", type=int, default=3)
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "renderers.json")
    args = ap.parse_args(argv)

    from aisinger.eval import evaluate
    from aisinger.features.pitch import PitchConfig, estimate_f0
    from aisinger.lab.corpus import CorpusConfig, _item_json, plan_phrases, tts_syllables, voice_transpose
    from aisinger.lab.melody import Note, transpose
    from aisinger.lab.sing import RENDERERS, render
    from aisinger.tts.classic import voice_spec
    from aisinger.tts import KokoroVoice, synthesize

    rows = []
    t0 = time.time()
    for voice in args.voices.split(","):
        spec = voice_spec(voice)
        cfg = CorpusConfig(voices=(voice,), n_phrases=max(args.phrases, 3), n_shared=0)
        phrases = [p for p in plan_phrases(cfg) if p.language == spec.language][:args.phrases]
        for p in phrases:
            item = _item_json(p)
            texts = tts_syllables(voice, item)
            notes = transpose([Note(**n) for n in item["notes"]], voice_transpose(voice))
            lang = p.language
            tts_voice = KokoroVoice(spec.kokoro) if spec.engine == "kokoro" else "piper-joe"
            line = p.lyrics.text if lang != "en" else " ".join(p.lyrics.syllables)
            spoken = synthesize(line, lang, tts_voice)
            for rd in RENDERERS:
                r = render(texts, notes, voice, sr=44100, seed=p.expr_seed,
                           vibrato_cents=p.vibrato_cents, vibrato_hz=p.vibrato_hz,
                           portamento_s=p.portamento_s, language=lang, renderer=rd)
                ev = evaluate((r.audio, r.sr), target_refs=[spoken], lyrics=p.lyrics.text,
                              lang=lang, metrics=["similarity", "intelligibility", "naturalness"])
                f0 = estimate_f0(r.audio, r.sr, PitchConfig())
                n = min(len(f0), len(r.f0))
                both = (f0[:n] > 0) & (r.f0[:n] > 0)
                err = np.abs(1200 * np.log2(f0[:n][both] / r.f0[:n][both])) if both.any() else np.array([np.nan])
                row = {"voice": voice, "phrase": p.id, "renderer": rd, "lyrics": p.lyrics.text,
                       "mos_sung": ev["naturalness"], "mos_spoken": ev["naturalness_refs"],
                       "mos_drop": ev["naturalness_gap"], "sim_spoken": ev["similarity_target"],
                       "cer": ev["cer"], "transcript": ev["info"].get("transcript"),
                       "f0_med_cents": float(np.median(err)), "f0_gross": float(np.mean(err > 50))}
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    summary = {}
    for rd in RENDERERS:
        sel = [r for r in rows if r["renderer"] == rd]
        summary[rd] = {k: float(np.nanmean([r[k] for r in sel])) for k in
                       ("mos_sung", "mos_spoken", "mos_drop", "sim_spoken", "cer", "f0_med_cents",
                        "f0_gross")}
    print(f"\n{'renderer':10s} {'mos_sung':>8s} {'mos_spk':>8s} {'drop':>6s} {'sim':>6s} "
          f"{'cer':>6s} {'f0_med':>7s} {'gross':>6s}   ({len(rows) // len(RENDERERS)} clips each)")
    for rd, s in summary.items():
        print(f"{rd:10s} {s['mos_sung']:8.2f} {s['mos_spoken']:8.2f} {s['mos_drop']:6.2f} "
              f"{s['sim_spoken']:6.3f} {s['cer']:6.3f} {s['f0_med_cents']:7.1f} {s['f0_gross']:6.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "summary": summary,
                                     "seconds": round(time.time() - t0, 1)}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
