"""``aisinger lab``: the synthetic lab corpus used by tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aisinger.cli.options import Seed, library_default
from aisinger.lab import VOICES, make_corpus

app = typer.Typer(help="Make synthetic lab audio (TTS voices sung to melodies with WORLD, "
                       "fluidsynth accompaniment) with ground truth for tests and benchmarks.",
                  no_args_is_help=True)


@app.command("make")
def lab_make(
    out_dir: Path = typer.Option(..., "-o", "--out", help="Corpus folder (created; an existing "
                                                          "one is resumed)."),
    seed: Seed = 0,
    voices: Optional[list[str]] = typer.Option(None, "--voice", help="Lab voices to include "
                                               "(repeatable; default: the standard set). See "
                                               "'aisinger lab voices'."),
    size: float = typer.Option(library_default(make_corpus, "size"), "--size",
                               help="Scale of the corpus: 1 ≈ 1 minute of singing per voice, "
                                    "10 ≈ 10 minutes."),
    workers: int = typer.Option(library_default(make_corpus, "workers"), "--workers",
                                help="Parallel processes."),
) -> None:
    """Build the lab corpus: every voice sings parallel phrases (same melody and timing), plus
    songs over a fluidsynth accompaniment, with ground-truth F0 and stems.

    Layout: OUT/voices/<voice>/<clip>.wav, OUT/songs/<song>/<voice>/{mix,vocals,
    accompaniment}.flac and OUT/manifest.json (voice, language, lyrics, notes, train/test split
    of every clip).  Deterministic from --seed (bit-identical audio); re-running skips finished
    files.
    """
    manifest = make_corpus(out_dir, seed=seed, voices=voices or None, size=size, workers=workers)
    typer.echo(f"manifest: {manifest}")


@app.command("voices")
def lab_voices() -> None:
    """List the lab voices (TTS engine, language, gender, intelligible to Whisper; blends).

    kokoro-* and piper-joe* are the human-like singers (neural speech voices); flite-* and
    espeak-* are robotic timbres kept for variety."""
    for name, v in VOICES.items():
        extra = ""
        if v.kokoro and (len(v.kokoro) > 1 or v.formant != 1.0 or v.pitch_offset):
            extra = (f"  blend {'+'.join(f'{w:g}*{b}' for b, w in v.kokoro)}"
                     f", formant x{v.formant:g}, range {v.pitch_offset:+d} st")
        elif v.formant != 1.0 or v.pitch_offset:
            extra = f"  formant x{v.formant:g}, range {v.pitch_offset:+d} st"
        typer.echo(f"{name:<18} {v.engine:<9} {v.language:<4} {v.gender:<6}  "
                   f"{'intelligible' if v.intelligible else 'timbre only'}{extra}")
