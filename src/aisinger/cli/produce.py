"""Commands that make AI audio (each output labelled): ``convert``, ``cover``, ``speak`` and
``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aisinger.cli.options import (AutoTranspose, ContentEncoder, F0Method, KeyShift, NoLabel,
                                  OutAudio, OutRate, Protect, Retrieval, Transpose, VoiceDir,
                                  choices, num)
from aisinger.convert import DEFAULT_PROTECT, DEFAULT_RETRIEVAL
from aisinger.dsp.peak import TRUE_PEAK_CEILING_DBTP
from aisinger.features.pitch import DEFAULT_METHOD
from aisinger.label.cue import CUE_KINDS, DEFAULT_CUE
from aisinger.pipelines.conversion import ConvertOptions, convert_file
from aisinger.pipelines.cover import CoverOptions
from aisinger.pipelines.cover import cover as run_cover
from aisinger.pipelines.demo import DEMO_TRAIN_MINUTES, run_demo
from aisinger.pipelines.speak import DEFAULT_LANG, LANGS, TTS_VOICES, SpeakOptions
from aisinger.pipelines.speak import speak as run_speak
from aisinger.progress import stage_bar

app = typer.Typer()

LANG_NAMES = {"en": "English", "zh": "Mandarin", "ja": "Japanese", "yue": "Cantonese"}


@app.command()
def convert(
    vocals: Path = typer.Argument(..., help="Dry vocal to convert (any format aisinger reads)."),
    voice: VoiceDir = ...,
    out: OutAudio = ...,
    transpose: Transpose = ConvertOptions.transpose,
    f0: F0Method = DEFAULT_METHOD,
    retrieval: Retrieval = DEFAULT_RETRIEVAL,
    protect: Protect = DEFAULT_PROTECT,
    sr: OutRate = None,
    no_label: NoLabel = False,
    content_encoder: ContentEncoder = None,
) -> None:
    """Convert a vocal into the trained voice; timing is kept exactly (same duration).

    The output is labelled as AI-generated (AIGC metadata + watermark) unless --no-label.
    The voice's consent record must permit conversion.
    """
    result = convert_file(vocals, voice, out, ConvertOptions(
        transpose=transpose, f0_method=f0, retrieval=retrieval, protect=protect, sr=sr,
        no_label=no_label, content_encoder=content_encoder))
    typer.echo(f"converted: {out}{'' if result.label else ' (NOT labelled)'}")


COVER_HELP = f"""Make a finished AI cover in one step: separate the song, convert its vocal into the
voice (automatic key, timbre-leakage control, breath protection), put it back over the
accompaniment sample-aligned at the original vocal/accompaniment balance, true-peak limit
to {num(TRUE_PEAK_CEILING_DBTP)} dBTP and label it (AIGC metadata + watermark).

Prints the chosen key and why.  Refuses a song without vocals.
"""


@app.command(help=COVER_HELP)
def cover(
    song: Path = typer.Argument(..., help="The song (with accompaniment): any format aisinger "
                                          "reads; mono, stereo or 5.1."),
    voice: VoiceDir = ...,
    out: OutAudio = ...,
    transpose: AutoTranspose = None,
    key_shift: KeyShift = CoverOptions.key_shift,
    retrieval: Retrieval = DEFAULT_RETRIEVAL,
    protect: Protect = DEFAULT_PROTECT,
    f0: F0Method = DEFAULT_METHOD,
    stems: bool = typer.Option(False, "--stems", help="Also write OUT.stems/vocals_converted.wav"
                               " and OUT.stems/accompaniment.wav."),
    explicit: Optional[str] = typer.Option(None, "--explicit-label", help="Audible AI notice "
                                           f"at the start: {choices(CUE_KINDS)} (default "
                                           f"{CoverOptions.explicit_label or DEFAULT_CUE} here; "
                                           "metadata and watermark are always on)."),
    no_label: NoLabel = False,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    opts = CoverOptions(transpose=transpose, key_shift=key_shift, retrieval=retrieval,
                        protect=protect, f0_method=f0, stems=stems, explicit_label=explicit,
                        no_label=no_label)
    with stage_bar("cover") as progress:
        result = run_cover(song, voice, out, opts, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(f"key: {result.key_reason}")
    for name, path in result.stems.items():
        typer.echo(f"{name}: {path}")
    typer.echo(f"cover: {out}{'' if result.label else ' (NOT labelled)'}")


@app.command()
def speak(
    text: str = typer.Argument(..., help="The text to read (Chinese characters, English "
                                         "or Japanese)."),
    voice: VoiceDir = ...,
    out: OutAudio = ...,
    lang: str = typer.Option(DEFAULT_LANG, "--lang", help="Language of the text: " + choices(
        f"{lang} ({LANG_NAMES.get(lang, lang)}, {TTS_VOICES[lang]})" for lang in LANGS)
        + ".  Cantonese is still espeak-ng: robotic and hard to understand, until an "
          "intelligible offline Cantonese voice exists."),
    transpose: Optional[float] = typer.Option(None, "--transpose", help="Pitch shift in "
                                              "semitones (default: speech placed in the "
                                              "lower part of the voice's range)."),
    sr: OutRate = None,
    no_label: NoLabel = False,
) -> None:
    """Read a text aloud in a trained voice: offline neural TTS (Kokoro-82M / piper; espeak-ng
    for Cantonese) with a natural speech contour, converted into the voice, labelled as
    AI-generated."""
    with stage_bar("speak") as progress:
        result = run_speak(text, voice, out, lang=lang, progress=progress,
                           options=SpeakOptions(transpose=transpose, sr=sr, no_label=no_label))
    typer.echo(f"pitch: {result.reason}")
    typer.echo(f"speech: {out} ({result.seconds:.1f} s){'' if result.label else ' (NOT labelled)'}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo"), "-o", "--out", help="Folder for the demo voice "
                                 "and cover. A rerun reuses a finished voice and cover "
                                 "(seconds) and finishes an interrupted training."),
    train_minutes: float = typer.Option(DEMO_TRAIN_MINUTES, "--train-minutes", help="CPU "
                                        "minutes of demo-voice training in all; more than a "
                                        "finished voice had trains it further."),
) -> None:
    """The main job on the embedded default: make a demo voice from project-made lab singing
    (training it on the CPU), then cover the real example song with it.

    Writes OUT/voice/ (the voice), OUT/cover.mp3 (the labelled cover) and
    OUT/cover.mp3.stems/.  The demo voice is synthetic (the human-like Kokoro alpha TTS
    voice sung to melodies, trained for minutes): expect a clear change of timbre and a
    synthetic sound.
    """
    result = run_demo(out_dir, train_minutes=train_minutes)
    typer.echo(f"key: {result.key_reason}")
    more = "; reused: --train-minutes N trains longer" if "voice" in result.reused else ""
    typer.echo(f"voice: {result.voice_dir} (step {result.train_step}, "
               f"{result.train_minutes:.1f} min of training{more})")
    if "cover" in result.reused:
        typer.echo("cover: reused (made from this voice by an earlier run)")
    for name, path in result.stems.items():
        typer.echo(f"{name}: {path}")
    typer.echo(f"cover: {result.cover}")
