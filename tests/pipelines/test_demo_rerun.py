"""Rerunning the README's main job (issue #15 item 16): a finished demo is reused in seconds,
an interrupted one finishes its training, and ``--train-minutes`` with more trains further."""

from __future__ import annotations

import json
import logging


def _stamp(out):
    files = [out / "voice" / "model.safetensors", out / "voice" / "training" /
             "checkpoint.safetensors", out / "cover.mp3",
             out / "cover.mp3.stems" / "accompaniment.wav"]
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def test_demo_rerun_reuses_a_finished_demo(tmp_path, caplog):
    from aisinger.pipelines.demo import run_demo

    out = tmp_path / "demo"
    with caplog.at_level(logging.INFO, logger="aisinger"):
        first = run_demo(out, train_minutes=0.05, phrases=2)
    said = "\n".join(caplog.messages)     # item 14: every stage says what it does
    for line in ("demo 1/3", "demo voice data: singing phrase 2/2", "demo 2/3", "demo 3/3"):
        assert line in said, said
    caplog.clear()
    assert first.train_step > 0 and first.cover.is_file()
    before = _stamp(out)
    with caplog.at_level(logging.INFO, logger="aisinger"):
        again = run_demo(out, train_minutes=0.05, phrases=2)
    assert "demo voice: reusing" in "\n".join(caplog.messages)
    assert again.train_step == first.train_step, "a rerun trained again"
    assert _stamp(out) == before             # not trained, not covered again: nothing rewritten
    assert first.reused == () and again.reused == ("voice", "cover"), again
    assert again.key_reason == first.key_reason
    # asked to train more: it trains, and the cover follows the new voice
    more = run_demo(out, train_minutes=0.15, phrases=2)
    assert more.reused == () and more.train_step > first.train_step, more
    assert _stamp(out)["cover.mp3"] != before["cover.mp3"]
    doc = json.loads((out / "demo.json").read_text())
    assert doc["train_step"] == more.train_step and doc["reused"] == []
