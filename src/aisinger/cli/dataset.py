"""``aisinger dataset``: build a consented training dataset of one voice."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from aisinger.cli.options import choices, num
from aisinger.dataset import DatasetConfig, build_dataset
from aisinger.dataset.config import SEPARATE_MODES

D = DatasetConfig  # the defaults shown below are its fields' defaults

app = typer.Typer(help="Build a training dataset of one voice from songs or dry recordings "
                       "(separation, slicing, loudness, rejection, report).",
                  no_args_is_help=True)

BUILD_HELP = f"""Slice songs or recordings into clean {num(D.min_clip_s)}-{num(D.max_clip_s)} s
clips of one voice for training.

Separates vocals when accompaniment is present, cuts at silences, downmixes to mono, resamples,
normalises loudness (EBU R128), rejects clipped / too short / near-silent / noisy clips with a
reason, splits train/validation deterministically and writes OUT/clips/*.wav, OUT/dataset.json,
OUT/report.md, OUT/pitch_histogram.png and OUT/consent.json.  A consent record is required.
"""


@app.command("build", help=BUILD_HELP)
def dataset_build(
    inputs: list[Path] = typer.Argument(..., help="Songs (with accompaniment) or dry "
                                                  "recordings: files or folders (recursive)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Dataset folder (created; re-running "
                                                          "resumes)."),
    name: str = typer.Option(..., "--name", help="Name of the voice (and, with --consent-self, "
                                                 "of its owner)."),
    consent: Optional[Path] = typer.Option(None, "--consent", help="Consent record JSON of the "
                                           "voice owner (see docs/labelling.md)."),
    consent_self: bool = typer.Option(False, "--consent-self", help="The voice is your own: "
                                      "record self-consent."),
    separate_mode: Optional[str] = typer.Option(
        None, "--separate", help=f"{choices(SEPARATE_MODES)}: 'auto' separates when "
                                 f"accompaniment is detected (default {D.separate})."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Clip sample rate in "
                                              f"Hz (default {D.sample_rate})."),
    min_clip: Optional[float] = typer.Option(None, "--min-clip", help="Shortest clip, seconds "
                                             f"(default {num(D.min_clip_s)})."),
    max_clip: Optional[float] = typer.Option(None, "--max-clip", help="Longest clip, seconds "
                                             f"(default {num(D.max_clip_s)})."),
    target_lufs: Optional[float] = typer.Option(None, "--target-lufs", help="EBU R128 "
                                                "integrated loudness of every clip (default "
                                                f"{num(D.target_lufs)} LUFS)."),
    validation_fraction: Optional[float] = typer.Option(
        None, "--validation-fraction",
        help=f"Share of clips held out for validation (default {num(D.validation_fraction)})."),
) -> None:
    overrides = {k: v for k, v in {
        "separate": separate_mode, "sample_rate": sample_rate, "min_clip_s": min_clip,
        "max_clip_s": max_clip, "target_lufs": target_lufs,
        "validation_fraction": validation_fraction}.items() if v is not None}
    config = dataclasses.replace(DatasetConfig(), **overrides)
    result = build_dataset(inputs, out_dir, name=name, consent=consent,
                           consent_self=consent_self, config=config)
    typer.echo(f"dataset: {result.path} — {result.clips} clips, {result.minutes:.1f} min "
               f"(train {result.train}, validation {result.validation}), "
               f"{len(result.rejected)} rejected")
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(f"report: {result.report}")
