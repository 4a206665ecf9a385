"""The file names of the folders aisinger writes, defined once.

A **voice folder** (``aisinger train`` / ``aisinger voice import``)::

    config.json  model.safetensors  index.safetensors  consent.json
    model_card.json  model_card.md  training/ (resumable checkpoint, loss plot, samples)

A **dataset folder** (``aisinger dataset build``)::

    dataset.json  consent.json  clips/  report.md  pitch_histogram.png  .work/ (resume state)

Every module that reads or writes these folders (voice, training, dataset, consent, the CLI
and the request service) takes the names from here.
"""

from __future__ import annotations

CONSENT_FILE = "consent.json"
"""The voice owner's consent record, in voice and dataset folders alike."""

# voice folder
VOICE_CONFIG = "config.json"
VOICE_MODEL = "model.safetensors"
VOICE_INDEX = "index.safetensors"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
TRAINING_DIR = "training"
"""Training state inside a voice folder (not needed to use the voice)."""
VOICE_FILES = (VOICE_CONFIG, VOICE_MODEL, VOICE_INDEX, CONSENT_FILE, CARD_JSON, CARD_MD)
"""The files that make up a usable voice (``TRAINING_DIR`` aside)."""

# dataset folder
DATASET_JSON = "dataset.json"
CLIPS_DIR = "clips"
REPORT_MD = "report.md"
HISTOGRAM_PNG = "pitch_histogram.png"
DATASET_WORK_DIR = ".work"
