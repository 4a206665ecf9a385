"""Typed options shared by several commands, each defined once (name, help text, and a default
that comes from the library, so the CLI, the request service and the library cannot drift).

Use them as annotations with the library's default, e.g.
``f0: F0Method = DEFAULT_METHOD`` or ``retrieval: Retrieval = DEFAULT_RETRIEVAL``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from aisinger.convert.key import KEY_MODES
from aisinger.features.pitch import METHODS

VoiceDir = Annotated[Path, typer.Option(
    "--voice", help="Voice folder ('aisinger train' or 'aisinger voice import').")]
OutAudio = Annotated[Path, typer.Option(
    "-o", "--out", help="Output file: .wav, .flac, .mp3 or .ogg.")]
F0Method = Annotated[str, typer.Option(
    "--f0", help=f"Pitch method: {', '.join(METHODS)}.")]
Transpose = Annotated[float, typer.Option(
    "--transpose", help="Pitch shift in semitones.")]
AutoTranspose = Annotated[Optional[float], typer.Option(
    "--transpose", help="Pitch shift in semitones (default: automatic key).")]
KeyShift = Annotated[str, typer.Option(
    "--key-shift", help=f"Automatic key moves by {' or '.join(repr(m) for m in KEY_MODES)} "
                        "('octave' keeps the song's key).")]
Retrieval = Annotated[float, typer.Option(
    "--retrieval", help="0-1: how much of each content frame is replaced by its nearest frames "
                        "of the voice's own training data (against timbre leakage; RVC's "
                        "index_rate for imported voices).")]
Protect = Annotated[float, typer.Option(
    "--protect", help="0-1: share of the source kept on consonants and breaths (0 = off).")]
OutRate = Annotated[Optional[int], typer.Option(
    "--sr", help="Output sample rate in Hz (default: the voice model's).")]
NoLabel = Annotated[bool, typer.Option(
    "--no-label", help="Do NOT label the output as AI-generated (prints a warning and logs "
                       "it).")]
ContentEncoder = Annotated[Optional[Path], typer.Option(
    "--content-encoder", help="HuBERT/ContentVec weights for imported So-VITS/RVC voices "
                              "(default: $AISINGER_MODELS_DIR or the model cache).")]
Seed = Annotated[int, typer.Option(
    "--seed", help="Random seed: the same seed and inputs give the same result.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def library_default(fn: Callable, name: str):
    """The default of parameter ``name`` of the library function ``fn``: a command that shows
    and uses it stays equal to the library (the signature is the one source)."""
    return inspect.signature(fn).parameters[name].default


def num(x: float) -> str:
    """A default as help shows it: ``2.0`` → ``2``, ``0.1`` → ``0.1``, ``-23.0`` → ``-23``."""
    return f"{x:g}"


def choices(values, last: str = "or") -> str:
    """``a, b or c`` from ``("a", "b", "c")``."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} {last} {values[-1]}"
AssetNames = Annotated[Optional[list[str]], typer.Argument(
    help="Asset names (default: every offline asset).")]
