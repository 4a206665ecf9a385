"""The voice stage: a voice folder and its model card (``folder``), importing community
So-VITS-SVC / RVC models (``community``) and training (``train_ddsp`` for the voices aisinger
trains, ``train_vits`` for the So-VITS-SVC architecture).

:func:`train` is the one place that picks the training code for a model family (conversion
picks its code for a loaded voice's family in :func:`aisinger.convert.convert`; both use the
family names of :data:`aisinger.voice.folder.FAMILIES`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aisinger.errors import AisingerError
from aisinger.voice.folder import FAMILIES, Voice, load_voice
from aisinger.voice import train_ddsp, train_nsf, train_vits

__all__ = ["Voice", "load_voice", "train", "FAMILIES", "DEFAULT_FAMILY", "default_steps"]

DEFAULT_FAMILY = "nsf"
"""The model family ``aisinger train`` (and the demo) uses unless told otherwise: the neural
source-filter voice, fine-tuned from the committed base model (chosen by measurement, see
docs/voice-model.md; ``--model ddsp`` keeps the DDSP voice, which stays available)."""


def default_steps(family: str = DEFAULT_FAMILY) -> int:
    """Training steps a voice of ``family`` gets unless told otherwise."""
    if family == "vits":
        return train_vits.VitsTrainConfig().steps
    if family == "nsf":
        return train_nsf.NsfTrainConfig().steps
    return train_ddsp.TrainConfig().steps


def train(dataset_dir: str | Path, out_dir: str | Path, family: str = DEFAULT_FAMILY, *,
          steps: int | None = None, max_minutes: float | None = None, seed: int = 0,
          base: str | Path | None = None, base_d: str | Path | None = None,
          content_encoder: str | Path | None = None
          ) -> train_ddsp.TrainResult | train_vits.VitsTrainResult:
    """Train (or resume / fine-tune) a voice of model ``family`` on a dataset folder.

    ddsp: :func:`aisinger.voice.train_ddsp.train` (resumable; ``max_minutes`` pauses it);
    nsf: :func:`aisinger.voice.train_nsf.train_nsf` (resumable; ``base``: an nsf base file
    from scripts/train_base.py or an nsf voice to start from);
    vits: :func:`aisinger.voice.train_vits.train_vits` (``base``/``base_d``: a community
    G_0.pth/D_0.pth to fine-tune; ``content_encoder``: HuBERT/ContentVec weights).  ``steps``:
    None keeps the family's default.  Returns the family's result; its ``summary()`` is the
    one-line report the CLI prints.  (``base``, ``base_d`` and ``content_encoder`` are
    vits options; ddsp ignores them.)
    """
    if family not in FAMILIES:
        raise AisingerError(f"unknown model {family!r}; use {' or '.join(FAMILIES)}")
    if family == "vits":
        if max_minutes is not None:
            raise AisingerError("--max-minutes is not supported with --model vits (its runs are "
                                "not resumable yet); use --steps")
        vcfg = train_vits.VitsTrainConfig() if steps is None else \
            train_vits.VitsTrainConfig(steps=steps)
        return train_vits.train_vits(dataset_dir, out_dir, vcfg, base=base, base_d=base_d,
                          content_encoder=content_encoder, seed=seed)
    if family == "nsf":  # neural source-filter decoder; base: a base.safetensors or a voice
        ncfg = train_nsf.NsfTrainConfig(**({} if steps is None else {"steps": steps}),
                              **({} if base is None else {"init": str(base)}))
        return train_nsf.train_nsf(dataset_dir, out_dir, ncfg, max_minutes=max_minutes, seed=seed)
    config = train_ddsp.TrainConfig()
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    return train_ddsp.train(dataset_dir, out_dir, config=config, max_minutes=max_minutes,
                            seed=seed)
