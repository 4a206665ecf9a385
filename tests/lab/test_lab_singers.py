"""Human-like lab singers (issue 13): Kokoro / piper voices sung by the lab renderer.

Checks the singers are listed, deterministic, distinct from each other (Resemblyzer: a
voice's two phrases are closer than two voices singing the same phrase), and that the
naturalness metric hears the difference between a neural and a flite voice.  ~1 min.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def _phrase(i: int):
    from aisinger.lab.melody import make_melody

    lines = ("月亮代表我的心", "春天来了")
    return list(lines[i]), make_melody(len(lines[i]), seed=11 + i, register="mid", tempo_bpm=110)


def test_lab_voices_lists_human_like_singers():
    from aisinger.tts.classic import VOICES

    proc = subprocess.run([sys.executable, "-m", "aisinger", "lab", "voices"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    neural = [v for v in VOICES.values() if v.engine in ("kokoro", "piper")]
    assert len(neural) > 6
    for v in neural:
        assert v.name in proc.stdout


def test_kokoro_singer_deterministic_and_distinct():
    from aisinger.eval.similarity import cosine, embed_utterances
    from aisinger.lab.sing import render

    voices = ("kokoro-alpha", "kokoro-gongitsune")
    clips = {}
    for v in voices:
        for i in range(2):
            syl, notes = _phrase(i)
            r = render(syl, notes, v, sr=22050, seed=3, language="zh")
            clips[v, i] = r.audio
    again = render(*_phrase(0), "kokoro-alpha", sr=22050, seed=3, language="zh").audio
    assert np.array_equal(again, clips["kokoro-alpha", 0])  # same seed -> same samples
    emb = dict(zip(clips, embed_utterances([(a, 22050) for a in clips.values()])))
    for v, other in (voices, voices[::-1]):
        same = cosine(emb[v, 0], emb[v, 1])  # one voice, two different phrases
        cross = cosine(emb[v, 0], emb[other, 0])  # two voices, the same phrase
        assert same > cross, (v, same, cross)


def test_formant_and_range_make_a_new_singer():
    from aisinger.lab.corpus import voice_transpose
    from aisinger.tts.classic import voice_spec

    deep = voice_spec("kokoro-mix-deep")
    assert deep.formant < 1 and len(deep.kokoro) == 2
    assert voice_transpose("kokoro-mix-deep") == -12 + deep.pitch_offset
    assert voice_transpose("kokoro-alpha") == 0


def test_naturalness_hears_neural_above_flite():
    from aisinger.eval import evaluate
    from aisinger.tts.classic import speak
    from aisinger.tts import synthesize

    text = "The weather is lovely today, so we are going for a walk."
    kokoro = synthesize(text, "en", "kokoro-alpha")
    flite = (speak(text, "flite-slt", sr=16000), 16000)
    r = evaluate(kokoro, target_refs=[flite], metrics=["naturalness"])
    assert 1 <= r["naturalness_refs"] < r["naturalness"] - 0.5 <= 4.5
    assert r["naturalness_gap"] == pytest.approx(r["naturalness_refs"] - r["naturalness"])
