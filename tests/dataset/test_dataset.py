"""aisinger.dataset: building a training dataset from lab singing (dry and with accompaniment).

All audio is made here with aisinger.lab (WORLD singing of TTS voices, fluidsynth
accompaniment) or numpy; expectations come from how it was made (melody notes, levels,
lengths), never from a previous run.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from aisinger.consent import ConsentRecord, load_consent, save_consent
from aisinger.dataset import DatasetConfig, build_dataset
from aisinger.dataset.build import assign_split
from aisinger.dataset.slicing import SliceSettings, plan_clips
from aisinger.errors import AisingerError
from aisinger.io.fileio import sha256_file

SR = 44100
TARGET = -23.0  # the default target loudness (LUFS)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Keep separation and pitch tracking on one core (the test machine is shared)."""
    import torch

    monkeypatch.setenv("AISINGER_THREADS", "1")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _phrase(n_notes: int, seed: int, voice: str = "flite-slt", sr: int = SR):
    """A sung phrase and its melody: (audio (samples,), notes)."""
    from aisinger.lab import make_melody, sing

    notes = make_melody(n_notes, seed)
    return sing(["la"] * n_notes, notes, voice, sr=sr, seed=seed), notes


def _lufs(x: np.ndarray, sr: int) -> float:
    import pyloudnorm

    return pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))


@pytest.fixture(scope="module")
def lab_inputs(tmp_path_factory):
    """A folder with a dry sung phrase, a song (stereo mix with accompaniment) in a subfolder,
    a text file and a broken WAV."""
    from aisinger.lab import accompany, mix

    root = tmp_path_factory.mktemp("inputs")
    dry, dry_notes = _phrase(9, seed=1)
    sf.write(root / "dry.wav", dry, SR, subtype="PCM_16")
    vocal, song_notes = _phrase(10, seed=2)
    acc = accompany(song_notes, sr=SR, seed=2)
    song = mix(vocal, acc, vocal_to_acc_db=3.0)[0]
    (root / "album").mkdir()
    sf.write(root / "album" / "song.flac", song.T, SR, subtype="PCM_24")
    (root / "notes.txt").write_text("lyrics, not audio\n")
    (root / "album" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    hashes = {p: sha256_file(p) for p in root.rglob("*") if p.is_file()}
    return {"root": root, "dry_notes": dry_notes, "song_notes": song_notes, "hashes": hashes}


@pytest.fixture(scope="module")
def built(lab_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "voice"
    result = build_dataset([lab_inputs["root"]], out, name="Lab Singer", consent_self=True)
    doc = json.loads((out / "dataset.json").read_text())
    return result, out, doc


def test_tiny_dataset_clips_loudness_separation(built, lab_inputs):
    result, out, doc = built
    assert result.clips == len(doc["clips"]) >= 3
    cfg = doc["config"]
    for c in doc["clips"]:
        audio, sr = sf.read(out / c["file"], dtype="float32")
        assert sr == SR and audio.ndim == 1  # mono at the model rate
        assert cfg["min_clip_s"] - 0.01 <= len(audio) / sr <= cfg["max_clip_s"] + 0.01
        assert abs(len(audio) / sr - c["duration"]) < 0.02
        assert abs(_lufs(audio, sr) - TARGET) <= 1.0  # measured again, independently
    by_source = {}
    for c in doc["clips"]:
        by_source.setdefault(os.path.basename(c["source"]), []).append(c)
    assert set(by_source) == {"dry.wav", "song.flac"}
    # auto separation: the song was separated, the dry phrase kept as it is
    assert all(c["separated"] for c in by_source["song.flac"])
    assert not any(c["separated"] for c in by_source["dry.wav"])
    blocks = {os.path.basename(s["source"]): s["blocks"][0] for s in doc["sources"]}
    assert blocks["song.flac"]["accompaniment_db"] > cfg["accompaniment_threshold_db"]
    assert blocks["dry.wav"]["accompaniment_db"] < cfg["accompaniment_threshold_db"]
    # the clips cover the sung notes (the melody's time span, within the padding)
    notes = lab_inputs["song_notes"]
    starts = [c["start"] for c in by_source["song.flac"]]
    ends = [c["end"] for c in by_source["song.flac"]]
    assert min(starts) <= notes[0].start and max(ends) >= notes[-1].end - 0.1
    # pitch statistics follow the melody: clip medians within the melody's range (±1 semitone)
    for key, src in (("dry_notes", "dry.wav"), ("song_notes", "song.flac")):
        midis = [n.midi for n in lab_inputs[key]]
        lo, hi = 440 * 2 ** ((min(midis) - 1 - 69) / 12), 440 * 2 ** ((max(midis) + 1 - 69) / 12)
        for c in by_source[src]:
            assert lo <= c["f0"]["median_hz"] <= hi
            assert c["voiced_share"] > 0.5


def test_tiny_dataset_report_consent_rejections(built, lab_inputs):
    result, out, doc = built
    assert {c["split"] for c in doc["clips"]} == {"train", "validation"}
    assert doc["totals"]["train"] + doc["totals"]["validation"] == result.clips
    assert abs(doc["totals"]["minutes"] - sum(c["duration"] for c in doc["clips"]) / 60) < 1e-3
    report = (out / "report.md").read_text()
    assert "minutes kept" in report and "Lab Singer" in report and "unreadable" in report
    png = (out / "pitch_histogram.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert doc["pitch"]["p5_midi"] <= doc["pitch"]["median_midi"] <= doc["pitch"]["p95_midi"]
    consent = load_consent(out / "consent.json")
    assert consent.self_consent and consent.voice_owner == "Lab Singer"
    bad = {os.path.basename(r["source"]): r for r in doc["rejected"] if r["reason"] == "unreadable"}
    assert set(bad) == {"notes.txt", "broken.wav"}
    assert "notes.txt" in bad["notes.txt"]["detail"]
    assert any("min of usable singing" in w for w in result.warnings)  # < 5 minutes
    # inputs are never modified
    assert {p: sha256_file(p) for p in lab_inputs["hashes"]} == lab_inputs["hashes"]


def test_split_deterministic_resume_and_rebuild(built, lab_inputs, tmp_path):
    _, out, doc = built
    root = lab_inputs["root"]
    # another build, inputs listed in another order: the same clips and the same split
    files = [root / "album" / "song.flac", root / "dry.wav"]
    other = build_dataset(files, tmp_path / "again", name="Lab Singer", consent_self=True)
    doc2 = json.loads((tmp_path / "again" / "dataset.json").read_text())
    def key(d):
        return sorted((c["id"], c["split"], c["start"], c["end"]) for c in d["clips"])
    assert key(doc2) == key(doc) and other.sources_processed == 2
    # re-running reuses the finished work; the result is byte-identical
    before = (tmp_path / "again" / "dataset.json").read_bytes()
    again = build_dataset(files, tmp_path / "again", name="Lab Singer", consent_self=True)
    assert again.sources_processed == 0 and again.sources_reused == 2
    assert (tmp_path / "again" / "dataset.json").read_bytes() == before
    # a split-only change reprocesses nothing; a slicing change rebuilds and drops old clips
    cfg = DatasetConfig(validation_fraction=0.5, split_seed=7)
    r = build_dataset(files, tmp_path / "again", name="Lab Singer", consent_self=True, config=cfg)
    assert r.sources_processed == 0
    cfg = DatasetConfig(min_clip_s=3.0, pad_s=0.2)
    r = build_dataset(files, tmp_path / "again", name="Lab Singer", consent_self=True, config=cfg)
    assert r.sources_processed == 2
    doc3 = json.loads((tmp_path / "again" / "dataset.json").read_text())
    on_disk = sorted(p.stem for p in (tmp_path / "again" / "clips").glob("*.wav"))
    assert on_disk == sorted(c["id"] for c in doc3["clips"])
    assert all(c["duration"] >= 3.0 - 0.01 for c in doc3["clips"])


def test_assign_split_is_a_function_of_the_ids():
    clips = [{"id": f"c{i:03d}"} for i in range(200)]
    assign_split(clips, 0.1, seed=0)
    first = [c["split"] for c in clips]
    shuffled = [{"id": c["id"]} for c in reversed(clips)]
    assign_split(shuffled, 0.1, seed=0)
    assert [c["split"] for c in reversed(shuffled)] == first
    assert 8 <= first.count("validation") <= 35  # ~10 % of 200
    assign_split(clips, 0.1, seed=1)
    assert [c["split"] for c in clips] != first


def test_refuses_without_consent(lab_inputs, tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(AisingerError, match="--consent-self") as err:
        build_dataset([lab_inputs["root"]], out, name="x")
    assert "--consent FILE" in str(err.value)
    assert not out.exists()
    # a record that does not permit training is refused as well
    path = tmp_path / "consent.json"
    save_consent(ConsentRecord(voice_owner="Jane", collected_by="Studio",
                               date=datetime.date(2025, 1, 2),
                               scope="commercial", permitted_uses=("convert",),
                               statement="I agree to conversion only."), path)
    with pytest.raises(AisingerError, match="does not permit 'train'"):
        build_dataset([lab_inputs["root"]], out, name="x", consent=path)
    assert not out.exists()


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AisingerError, match="no files found"):
        build_dataset([tmp_path / "empty"], tmp_path / "ds", name="x", consent_self=True)


def test_only_silence_and_noise_is_no_usable_audio(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sf.write(folder / "silence.wav", np.zeros(5 * SR, dtype=np.float32), SR)
    sf.write(folder / "hiss.wav", (1e-5 * rng.standard_normal(5 * SR)).astype(np.float32), SR)
    sf.write(folder / "noise.wav", (0.05 * rng.standard_normal(6 * SR)).astype(np.float32), SR)
    with pytest.raises(AisingerError, match="no usable audio") as err:
        build_dataset([folder], tmp_path / "ds", name="x", consent_self=True,
                      config=DatasetConfig(separate="never"))
    assert "silent" in str(err.value) and "noisy" in str(err.value)


def test_rejection_reasons(tmp_path):
    """One dry file with a good phrase, a clipped phrase, a noise burst and a short note."""
    good, _ = _phrase(7, seed=3)
    loud, _ = _phrase(7, seed=4)
    clipped = np.clip(loud * 30, -1.0, 1.0)  # hard clipping
    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    t = np.arange(int(0.6 * SR)) / SR
    short = (0.1 * np.sin(2 * np.pi * 220 * t) * np.hanning(t.size)).astype(np.float32)
    gap = np.zeros(2 * SR, dtype=np.float32)
    audio = np.concatenate([gap, good, gap, clipped, gap, noise, gap, short, gap])
    sf.write(tmp_path / "take.wav", audio, SR)
    r = build_dataset([tmp_path / "take.wav"], tmp_path / "ds", name="x", consent_self=True,
                      config=DatasetConfig(separate="never"))
    reasons = sorted(x["reason"] for x in r.rejected)
    assert reasons == ["clipped", "noisy", "too_short"]
    assert r.clips == 1
    doc = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    kept = doc["clips"][0]
    assert 2.0 - 0.15 <= kept["start"] <= 2.0 + 0.3  # the good phrase (after the first gap)
    clip = next(x for x in r.rejected if x["reason"] == "clipped")
    assert clip["start"] > kept["end"] and "%" in clip["detail"]


def test_single_three_second_clip_works_with_warnings(tmp_path):
    from aisinger.lab import Note, sing

    notes = [Note(60, 0.2, 0.9), Note(64, 1.1, 0.9), Note(67, 2.0, 0.7)]
    audio = sing(["la", "la", "la"], notes, "flite-slt", sr=22050)  # 22.05 kHz: resampled
    assert 2.8 < len(audio) / 22050 < 3.5
    sf.write(tmp_path / "one.wav", audio, 22050)
    r = build_dataset([tmp_path / "one.wav"], tmp_path / "ds", name="x", consent_self=True)
    assert r.clips == 1 and r.train == 1 and r.validation == 0
    assert any("min of usable singing" in w for w in r.warnings)
    assert any("only one clip" in w for w in r.warnings)
    assert any("narrow pitch range" in w for w in r.warnings)  # C4–G4: 7 semitones
    info = sf.info(str(next((tmp_path / "ds" / "clips").glob("*.wav"))))
    assert info.samplerate == SR and info.channels == 1


def test_config_is_validated(tmp_path):
    with pytest.raises(AisingerError, match="separate"):
        DatasetConfig(separate="sometimes").validate()
    with pytest.raises(AisingerError, match="max_clip_s"):
        DatasetConfig(min_clip_s=10, max_clip_s=15).validate()
    with pytest.raises(AisingerError, match="unknown settings"):
        DatasetConfig.from_dict({"sample_rate": 44100, "colour": "blue"})
    assert DatasetConfig.from_dict(DatasetConfig().to_dict()) == DatasetConfig()


# ----------------------------------------------------------------------------------------------
# slicing on synthetic level curves (frames of 10 ms, dBFS)


def _levels(segments):
    """Concatenate (seconds, level_db) pieces into a frame level curve."""
    return np.concatenate([np.full(int(round(s * 100)), db, dtype=np.float32)
                           for s, db in segments])


def test_plan_splits_long_runs_at_the_quietest_point():
    s = SliceSettings.from_config(DatasetConfig())
    lv = _levels([(1, -90), (12, -20), (0.2, -35), (14, -20), (1, -90)])  # dip at 13.0-13.2 s
    pieces = plan_clips(lv, s)
    assert [p.kind for p in pieces] == ["clip", "clip"]
    assert 13.0 <= pieces[0].b / 100 <= 13.2 and pieces[1].a == pieces[0].b
    lv = _levels([(1, -90), (40, -20), (1, -90)])  # no dip at all: still <= 15 s each
    pieces = plan_clips(lv, s)
    assert all(2.0 <= p.seconds <= 15.0 for p in pieces) and len(pieces) == 3
    assert abs(pieces[0].a / 100 - (1 - s.pad_s)) < 0.011
    assert abs(pieces[-1].b / 100 - (41 + s.pad_s)) < 0.011


def test_plan_merges_short_phrases_and_reports_too_short():
    s = SliceSettings.from_config(DatasetConfig())
    # three 0.9 s phrases 0.5 s apart merge into one clip; a lone 0.5 s note is too short
    lv = _levels([(1, -90), (0.9, -20), (0.5, -90), (0.9, -20), (0.5, -90), (0.9, -20),
                  (3, -90), (0.5, -20), (3, -90), (4, -20), (1, -90)])
    pieces = plan_clips(lv, s)
    assert [p.kind for p in pieces] == ["clip", "too_short", "clip"]
    assert abs(pieces[0].seconds - (3 * 0.9 + 2 * 0.5 + 2 * s.pad_s)) < 0.02
    # pauses shorter than min_silence_s do not cut; clicks are ignored
    lv = _levels([(1, -90), (2, -20), (0.2, -90), (2, -20), (1, -90), (0.03, -10), (1, -90)])
    pieces = plan_clips(lv, s)
    assert len(pieces) == 1 and abs(pieces[0].seconds - (4.2 + 2 * s.pad_s)) < 0.02


# ----------------------------------------------------------------------------------------------
# long files: blockwise processing with bounded memory

LONG_SR = 16000  # the long test file is 16 kHz PCM16 (230 MB for 2 hours), resampled to 44.1 kHz

RUN_BUILD = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from aisinger.dataset import DatasetConfig, build_dataset
    r = build_dataset([sys.argv[1]], sys.argv[2], name="long", consent_self=True,
                      config=DatasetConfig(**json.loads(sys.argv[3])))
    # VmHWM: the peak RSS of this process's own memory.  ru_maxrss is not used: Linux carries
    # the forking parent's RSS over exec into it, so a large pytest process (late in the
    # suite) inflated it by its own size.
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(json.dumps({"rss_mb": int(hwm) / 1024, "clips": r.clips}))
""")


def _write_long(path, seconds: float, snippets) -> None:
    """Write a long 16 kHz PCM16 file of silence with ``snippets`` [(start_s, audio)] pasted
    in, one minute at a time (never the whole file in memory)."""
    n, step = int(seconds * LONG_SR), 60 * LONG_SR
    with sf.SoundFile(str(path), "w", samplerate=LONG_SR, channels=snippets[0][1].ndim,
                      subtype="PCM_16") as f:
        for s in range(0, n, step):
            block = np.zeros((min(step, n - s), snippets[0][1].ndim), dtype=np.float32)
            for t0, x in snippets:
                x2 = x.reshape(x.shape[0], -1) if x.ndim == 1 else x.T
                a = int(t0 * LONG_SR)
                lo, hi = max(a, s), min(a + x2.shape[0], s + block.shape[0])
                if hi > lo:
                    block[lo - s:hi - s] = x2[lo - a:hi - a]
            f.write(block)


def _run_build_subprocess(src, out, config: dict) -> dict:
    """Build in a fresh process; return its peak RSS (MB) and clip count."""
    env = {**os.environ, "AISINGER_THREADS": "1", "AISINGER_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", RUN_BUILD, str(src), str(out),
                           json.dumps(config)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


RSS_LIMIT_MB = 1270
"""Absolute cap: the 2-hour file's samples alone at 44.1 kHz float32 would take 1270 MB, so a
build that loaded the whole file could not stay under it."""
RSS_GROWTH_MB = 150
"""A 2-hour build may use at most this much more memory than a 10-minute build measured in the
same environment: memory must not grow with the length of the file."""


def test_two_hour_file_blockwise_bounded_memory(tmp_path):
    from aisinger.io.audio import resample

    phrase, _ = _phrase(10, seed=3)  # ~7.5 s
    x = resample(phrase, SR, LONG_SR)
    block_s = DatasetConfig().block_s
    # one phrase straddles the first block border; the others are far apart
    starts = [100.0, block_s - 2.5, 3600.0, 7190.0]
    _write_long(tmp_path / "long.wav", 2 * 3600, [(t, x) for t in starts])
    _write_long(tmp_path / "short.wav", 600, [(t, x) for t in starts[:2]])
    short = _run_build_subprocess(tmp_path / "short.wav", tmp_path / "ds_short", {})
    res = _run_build_subprocess(tmp_path / "long.wav", tmp_path / "ds", {})
    doc = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert res["rss_mb"] < RSS_LIMIT_MB
    assert res["rss_mb"] < short["rss_mb"] + RSS_GROWTH_MB, (res, short)
    assert abs(doc["sources"][0]["duration"] - 7200) < 0.01
    # every pasted phrase is found, the one across the block border in one piece of sound
    for t in starts:
        inside = [c for c in doc["clips"] if t - 0.5 <= c["start"] and c["end"] <= t + 8.0]
        assert inside and sum(c["duration"] for c in inside) > 6.0
    border = [c for c in doc["clips"] if c["start"] < block_s < c["end"]]
    assert len(border) == 1
    assert not doc["rejected"]


@pytest.mark.slow
def test_two_hour_song_file_separated_in_blocks(tmp_path):
    """A 2-hour stereo recording with two accompanied songs: auto separation of their blocks
    only, memory still bounded."""
    from aisinger.io.audio import resample
    from aisinger.lab import accompany, mix

    vocal, notes = _phrase(12, seed=5)
    song = mix(vocal, accompany(notes, sr=SR, seed=5), vocal_to_acc_db=3.0)[0]
    song = resample(song, SR, LONG_SR)
    _write_long(tmp_path / "long.wav", 2 * 3600, [(1000.0, song), (5000.0, song)])
    res = _run_build_subprocess(tmp_path / "long.wav", tmp_path / "ds", {})
    doc = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert res["rss_mb"] < RSS_LIMIT_MB
    blocks = [b for b in doc["sources"][0]["blocks"] if not b["silent"]]
    assert len(blocks) == 2 and all(b["separated"] for b in blocks)
    assert res["clips"] >= 2 and all(c["separated"] for c in doc["clips"])
