"""Labelling: AIGC metadata in every format, label_file / detect_file, audible cues, policy."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aisinger.io import audio
from aisinger.errors import AisingerError
from aisinger.label import (LabelPolicy, detect_file, label_audio, label_file, policy_for,
                            tag_file)
from aisinger.label import cue as cue_mod
from aisinger.label import metadata as md
from aisinger.label import watermark as wm

SR = 44100
FORMATS = ["wav", "flac", "ogg", "mp3", "m4a"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """An unlabelled 8 s stereo song (lab vocal + accompaniment) as FLAC."""
    from aisinger import lab

    notes = [n for n in lab.make_melody(12, seed=5) if n.end < 7.5]
    sung = lab.sing((["la", "mi"] * len(notes))[: len(notes)], notes, "flite-awb", sr=SR)
    mix, _, _ = lab.mix(sung, lab.accompany(notes, sr=SR, seconds=8.0, seed=5))
    return audio.save(tmp_path_factory.mktemp("src") / "song.flac", mix[:, : 8 * SR], SR)


@pytest.fixture(scope="module")
def labelled(source, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("out")
    return {ext: label_file(source, out / f"song.{ext}", voice_id="jane-v1") for ext in FORMATS}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ffprobe_tags(path: Path) -> dict:
    """Container and stream tags as ffprobe (an independent reader) sees them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags",
                          "-of", "json", str(path)], capture_output=True, text=True,
                         check=True).stdout
    data = json.loads(out)
    tags = dict(data.get("format", {}).get("tags", {}))
    for stream in data.get("streams", []):
        tags.update(stream.get("tags", {}))
    return {k.upper(): v for k, v in tags.items()}


@pytest.mark.parametrize("ext", FORMATS)
def test_metadata_round_trip_every_format(labelled, ext):
    path = labelled[ext]
    check = md.check_metadata(path)
    assert check.found == 1 and check.valid, check.problems
    label = check.label
    assert label.Label == "1" and label.ContentProducer == md.DEFAULT_PRODUCER
    assert len(label.ProduceID) == 32
    assert all(0x20 <= ord(c) < 0x7F for c in label.to_json())
    assert list(label.to_dict()["AIGC"]) == list(md.FIELDS)
    if ext != "wav":  # third-party readers see it too (ffmpeg maps the WAV RIFF chunk nowhere)
        tags = _ffprobe_tags(path)
        assert "AIGC" in tags and json.loads(tags["AIGC"]) == label.to_dict()
    r = detect_file(path, known_voices={"jane-v1": "Jane v1", "bob": "Bob"})
    assert r.labelled and r.exit_code == 0
    assert r.watermark.present and r.voice == "Jane v1"
    assert r.binding == "match"
    assert md.binding_payload(label) == r.watermark.payload
    json.dumps(r.to_dict())
    assert "LABELLED" in r.summary()


def test_input_untouched_and_no_temp_files(source, tmp_path):
    before = _sha(source)
    out = label_file(source, tmp_path / "x.wav")
    assert _sha(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]
    assert out.stat().st_size > 0
    with pytest.raises(AisingerError):
        label_file(source, source)
    with pytest.raises(AisingerError):
        label_file(source, tmp_path / "x.xyz")


def test_unlabelled_file_exits_1(source):
    r = detect_file(source)
    assert not r.labelled and r.exit_code == 1
    assert r.metadata.found == 0 and not r.watermark.present


def test_stripped_metadata_still_detected_by_watermark(labelled, tmp_path):
    stripped = tmp_path / "stripped.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(labelled["flac"]), "-map_metadata",
                    "-1", "-c:a", "libmp3lame", "-b:a", "128k", str(stripped)], check=True)
    r = detect_file(stripped)
    assert r.metadata.found == 0
    assert r.watermark.present and r.labelled and r.exit_code == 0


def test_one_label_per_file_and_mismatch(labelled, tmp_path):
    path = labelled["flac"]
    # relabelling a labelled file keeps one label and the existing watermark
    again = label_file(path, tmp_path / "again.flac", voice_id="someone-else")
    check = md.check_metadata(again)
    assert check.found == 1 and check.valid
    assert detect_file(again).watermark.payload == detect_file(path).watermark.payload
    # a forged label whose binding names another payload is flagged
    forged = md.make_label(wm.payload_for("forger", 1))
    out = md.write_label(path, forged, tmp_path / "forged.flac")
    r = detect_file(out)
    assert r.binding == "mismatch" and "DISAGREE" in r.summary()
    # two different AIGC comments are reported
    from mutagen.flac import FLAC

    f = FLAC(out)
    f.tags["AIGC"] = [forged.to_json(), md.make_label().to_json()]
    f.save()
    check = md.check_metadata(out)
    assert check.found == 2 and not check.valid


def test_label_values_are_validated():
    with pytest.raises(AisingerError):
        md.AigcLabel(ContentProducer="café")  # not ASCII
    with pytest.raises(AisingerError):
        md.AigcLabel(ProduceID="x" * (md.MAX_FIELD_CHARS + 1))
    with pytest.raises(AisingerError):
        md.AigcLabel.from_json('{"AIGC": {"Label": "1"}}')
    with pytest.raises(AisingerError):
        md.AigcLabel.from_json('{"AIGC": {"Label": 1, "ContentProducer": "", "ProduceID": "",'
                               '"ReservedCode1": "", "ContentPropagator": "", "PropagateID": "",'
                               '"ReservedCode2": "", "Extra": ""}}')
    good = md.make_label(b"\x00\x01\x02\x03")
    assert md.AigcLabel.from_json(good.to_json()) == good
    assert md.AigcLabel.from_json(json.dumps(good.to_dict()["AIGC"])) == good
    assert md.binding_payload(good) == b"\x00\x01\x02\x03"
    tampered = md.AigcLabel(**{**good.to_dict()["AIGC"], "ProduceID": "0" * 32})
    assert md.binding_payload(tampered) is None


def test_label_audio_and_tag_file_for_stages(source, tmp_path):
    x, sr = audio.load(source)
    y, label = label_audio(x, sr, voice_id="jane-v1", content_id=42)
    assert y.shape == x.shape and label["AIGC"]["Label"] == "1"
    r = wm.detect(y, sr)
    assert r.present and r.content_id == 42 and r.voice_hash == wm.voice_hash("jane-v1")
    path = tag_file(audio.save(tmp_path / "stage.flac", y, sr), label)
    assert md.check_metadata(path).label.to_dict() == label


def test_policy_defaults_and_opt_out(source, caplog):
    assert policy_for("convert").explicit == "none" and policy_for("convert").enabled
    assert policy_for("serve", service=True).explicit == "voice"
    with pytest.raises(AisingerError):
        LabelPolicy(explicit="siren")
    x, sr = audio.load(source)
    with caplog.at_level(logging.WARNING, logger="aisinger.label"):
        with pytest.warns(UserWarning, match="labelling turned OFF"):
            off = policy_for("cover", no_label=True)
    assert not off.enabled
    assert any("labelling turned OFF" in r.message for r in caplog.records)
    y, label = label_audio(x, sr, policy=off)
    assert label == {} and np.array_equal(y, x)


def _segments(x: np.ndarray, sr: int) -> list[tuple[float, float]]:
    """(start, duration) in seconds of the non-silent stretches of a cue."""
    env = np.convolve(np.abs(x), np.ones(int(0.005 * sr)) / int(0.005 * sr), mode="same")
    on = env > 0.05 * env.max()
    edges = np.flatnonzero(np.diff(on.astype(int)))
    starts, ends = edges[::2] + 1, edges[1::2] + 1
    return [(s / sr, (e - s) / sr) for s, e in zip(starts, ends)]


def test_rhythm_cue_is_morse_ai():
    x = cue_mod.explicit_cue("rhythm", sr=SR)
    segs = _segments(x, SR)
    assert len(segs) == 4
    unit = cue_mod.MORSE_UNIT_S
    durations = [d / unit for _, d in segs]
    assert durations[0] < 1.5 and durations[1] > 2.5  # A: short-long
    assert durations[2] < 1.5 and durations[3] < 1.5  # I: short-short


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_voice_cue_and_add_cue(lang):
    import pyloudnorm

    c = cue_mod.explicit_cue("voice", lang, SR)
    assert 0.8 < len(c) / SR < 6.0
    level = pyloudnorm.Meter(SR).integrated_loudness(c.astype(np.float64))
    assert abs(level - cue_mod.CUE_LUFS) < 1.0
    prog = (0.1 * np.random.default_rng(0).normal(size=(2, 3 * SR))).astype(np.float32)
    out = cue_mod.add_cue(prog, SR, c)
    lead = len(c) + int(round(cue_mod.GAP_S * SR))
    assert out.shape == (2, lead + prog.shape[1])
    assert np.array_equal(out[:, lead:], prog)
    assert np.all(out[:, len(c): lead] == 0)
    assert np.array_equal(cue_mod.add_cue(prog, SR, cue_mod.explicit_cue("none")), prog)
    with pytest.raises(AisingerError):
        cue_mod.explicit_cue("voice", "fr", SR)


def test_label_file_with_cue_is_longer_and_labelled(source, tmp_path):
    out = label_file(source, tmp_path / "cue.wav", explicit="rhythm")
    info_in, info_out = audio.info(source), audio.info(out)
    assert info_out.frames > info_in.frames + 1.0 * SR
    assert detect_file(out).labelled
