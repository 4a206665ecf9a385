"""Labelling commands: ``label`` (mark a file as AI-generated) and ``detect``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aisinger.cli.options import choices
from aisinger.io import audio as audio_io
from aisinger.label import detect_file, label_file
from aisinger.label.cue import CUE_KINDS, CUE_TEXT, DEFAULT_CUE, DEFAULT_CUE_LANG

CUE_MEANING = {"voice": "voice (spoken 'AI-generated')", "rhythm": "rhythm (Morse 'AI' tones)"}

app = typer.Typer()


@app.command()
def label(
    audio_path: Path = typer.Argument(..., help="Audio made elsewhere (any format aisinger "
                                                "reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="Labelled copy: .wav, .flac, .mp3, .ogg "
                                                      "or .m4a."),
    voice_id: Optional[str] = typer.Option(None, "--voice-id", help="ID of the voice model that "
                                           "made it (its 16-bit hash goes into the watermark)."),
    content_id: Optional[int] = typer.Option(None, "--content-id", help="16-bit content number "
                                             "for the watermark (default: derived from the "
                                             "audio)."),
    explicit: str = typer.Option(DEFAULT_CUE, "--explicit-label", help="Audible notice at the "
                                 "start: " + choices(CUE_MEANING.get(k, k) for k in CUE_KINDS)
                                 + "."),
    lang: str = typer.Option(DEFAULT_CUE_LANG, "--lang", help="Language of the spoken notice: "
                             f"{choices(CUE_TEXT)}."),
) -> None:
    """Mark a file as AI-generated: GB 45438-2025 metadata label (AIGC tag) plus an inaudible
    watermark (32 bits: voice-model hash + content ID), optionally an audible notice.

    The input is never modified; the output is written atomically.
    """
    audio_io.check_output_not_input(out, audio_path)
    path = label_file(audio_path, out, voice_id=voice_id, content_id=content_id,
                      explicit=explicit, lang=lang)
    typer.echo(f"labelled: {path}")


@app.command()
def detect(
    files: list[Path] = typer.Argument(..., help="Audio files to check."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per file)."),
) -> None:
    """Check files for aisinger's AI-content labels: metadata label (found / valid / bound to
    the watermark) and watermark (present, payload, confidence, and the speed / tempo / pitch
    change it was found under: sped-up, slowed and pitch-shifted copies are searched).

    Exit code 0 when every file is labelled, 1 when any is not (2 on errors).
    """
    results = [detect_file(f) for f in files]
    if as_json:
        data = [r.to_dict() for r in results]
        typer.echo(json.dumps(data if len(data) > 1 else data[0], indent=2, ensure_ascii=False))
    else:
        for r in results:
            typer.echo(r.summary())
    raise typer.Exit(max(r.exit_code for r in results))
