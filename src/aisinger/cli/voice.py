"""Voice commands: ``train`` and ``aisinger voice`` (import, info)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from aisinger.cli.options import AsJson, ContentEncoder, Seed
from aisinger.errors import AisingerError
from aisinger.consent import voice_info
from aisinger.voice import DEFAULT_FAMILY, train_ddsp, train_nsf, train_vits
from aisinger.voice import train as run_training
from aisinger.voice.community import import_voice

commands = typer.Typer()
app = typer.Typer(help="Inspect voices (consent record, model card); import community "
                       "So-VITS-SVC / RVC models.", no_args_is_help=True)


@commands.command()
def train(
    dataset: Path = typer.Argument(..., help="Dataset folder from 'aisinger dataset build' "
                                             "(must hold the consent record)."),
    out_dir: Path = typer.Option(..., "-o", "--out", help="Voice folder (created; re-running "
                                                          "resumes from the last checkpoint)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (default: ddsp "
                                        f"{train_ddsp.TrainConfig.steps}, nsf "
                                        f"{train_nsf.NsfTrainConfig.steps}, vits "
                                        f"{train_vits.VitsTrainConfig.steps})."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop (resumably) "
                                                "after this many minutes."),
    seed: Seed = 0,
    model: str = typer.Option(DEFAULT_FAMILY, "--model", help="Model family: nsf (neural "
                              "source-filter voice fine-tuned from aisinger's committed base "
                              "model; see docs/voice-model.md), ddsp (the small DDSP voice, "
                              "trained from scratch) or vits (So-VITS-SVC/RVC architecture, for "
                              "GPUs; see docs/compat.md)."),
    base: Optional[Path] = typer.Option(None, "--base", help="nsf: start from another "
                                        "base.safetensors (scripts/train_base.py) or nsf voice "
                                        "instead of the committed base; vits: fine-tune from a "
                                        "community So-VITS-SVC G_0.pth (config.json beside it)."),
    base_d: Optional[Path] = typer.Option(None, "--base-d", help="vits: its D_0.pth."),
    content_encoder: ContentEncoder = None,
) -> None:
    """Train a voice on the CPU, starting from the base model that ships with aisinger.

    The default model (nsf) is a frame network driven by Whisper content, F0 and loudness that
    filters a harmonic-plus-noise source, trained with mel, STFT and adversarial losses;
    --model ddsp trains the small DDSP synthesiser from scratch, --model vits the So-VITS-SVC
    architecture (on the GPU when present).

    Writes OUT/model.safetensors, config.json, index.safetensors (content frames for
    retrieval), consent.json and model_card.{json,md}; OUT/training/ holds the resumable
    checkpoint, a loss-curve PNG and validation samples.  Kill it at any time and run the same
    command again to continue.  Experimental: see docs/voice-model.md for what to expect.
    """
    if steps is not None and steps < 1:  # both families: never a voice from no training
        raise AisingerError(f"--steps must be >= 1, got {steps}")
    result = run_training(dataset, out_dir, model, steps=steps, max_minutes=max_minutes,
                          seed=seed, base=base, base_d=base_d, content_encoder=content_encoder)
    typer.echo(result.summary())


@app.command("import")
def voice_import_cmd(
    model: Path = typer.Argument(..., help="So-VITS-SVC G_*.pth or RVC .pth model file "
                                           "(opened without executing any code in it)."),
    out: Path = typer.Option(..., "-o", "--out", help="Voice folder to create."),
    consent: Optional[Path] = typer.Option(None, "--consent", help="Consent record of the "
                                           "voice's owner permitting 'convert' (required; see "
                                           "docs/labelling.md)."),
    config: Optional[Path] = typer.Option(None, "--config", help="So-VITS-SVC config.json "
                                          "(default: config.json beside the model)."),
    index: Optional[Path] = typer.Option(None, "--index", help="RVC .index file for feature "
                                         "retrieval (convert --retrieval = RVC's index_rate)."),
    speaker: Optional[str] = typer.Option(None, "--speaker", help="Speaker name or id of a "
                                          "multi-speaker model (default: the first)."),
) -> None:
    """Import a community So-VITS-SVC 4.0/4.1 or RVC v1/v2 voice model into an aisinger voice
    folder (safetensors + JSON + model card), checked by key and shape.  Afterwards
    'aisinger convert --voice OUT' uses it like any other voice.
    """
    path = import_voice(model, out, consent, config=config, index=index, speaker=speaker)
    typer.echo(f"imported: {path}")


@app.command("info")
def voice_info_cmd(
    voice: Path = typer.Argument(..., help="A voice folder (with consent.json) or a consent "
                                           "record file."),
    as_json: AsJson = False,
) -> None:
    """Print the voice's consent record: owner, who collected consent, date, scope, permitted
    uses and the evidence (statement or recording)."""
    info = voice_info(voice)
    if as_json:
        typer.echo(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        for key, value in info.items():
            if value not in (None, "", []):
                typer.echo(f"{key}: {value}")
