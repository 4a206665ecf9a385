"""Tests of the lab: synthetic singing, accompaniment, mixing and the parallel corpus."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from aisinger.errors import AisingerError
from aisinger.dsp.frames import FRAME_RATE, n_frames
from aisinger.lab import Note, accompany, make_melody, mix, render, sing, sing_with_f0, speak
import pyworld

SR = 44100
F0_TOLERANCE_CENTS = 20.0

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")


def _md5(x: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(x).tobytes()).hexdigest()


def harvest_cents_error(audio: np.ndarray, sr: int, f0_true: np.ndarray) -> tuple[float, float]:
    """Median |error| in cents of pyworld harvest vs ``f0_true`` on frames voiced in both, and
    the fraction of truly voiced frames harvest also calls voiced."""
    pw = pyworld
    f0_est, _ = pw.harvest(audio.astype(np.float64), sr, f0_floor=50.0, f0_ceil=1100.0,
                           frame_period=1000.0 / FRAME_RATE)
    n = min(len(f0_est), len(f0_true))
    both = (f0_est[:n] > 0) & (f0_true[:n] > 0)
    cents = 1200 * np.abs(np.log2(f0_est[:n][both] / f0_true[:n][both]))
    return float(np.median(cents)), float(both.sum() / max((f0_true[:n] > 0).sum(), 1))


FOUR_NOTES = [Note(60, 0.3, 0.5), Note(64, 0.8, 0.5), Note(67, 1.3, 0.4), Note(65, 1.8, 0.8)]
FOUR_SYLLABLES = ["la", "love", "sun", "day"]


@pytest.fixture(scope="module")
def slt_rendition():
    return render(FOUR_SYLLABLES, FOUR_NOTES, "flite-slt", sr=SR, seed=3)


# ---------------------------------------------------------------- TTS / melody


@needs_flite
def test_speak_flite_is_deterministic_and_resampled():
    a = speak("hello", "flite-slt", sr=22050)
    b = speak("hello", "flite-slt", sr=22050)
    assert a.dtype == np.float32 and a.ndim == 1 and len(a) > 22050 // 4
    assert np.array_equal(a, b)
    assert np.abs(a).max() > 0.05


def test_speak_unknown_voice_is_user_error():
    with pytest.raises(AisingerError, match="unknown lab voice"):
        speak("hello", "no-such-voice")


def test_speak_missing_binary_is_user_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AisingerError, match="not found"):
        speak("hello", "flite-slt")


def test_make_melody_deterministic_and_in_register():
    from aisinger.lab.melody import REGISTERS

    for reg in ("low", "mid", "high"):
        m1 = make_melody(12, seed=5, register=reg)
        assert m1 == make_melody(12, seed=5, register=reg)
        lo, hi = REGISTERS[reg]
        assert all(lo <= n.midi <= hi for n in m1)
        assert all(b.start >= a.end - 1e-9 for a, b in zip(m1, m1[1:]))
    assert make_melody(12, seed=5) != make_melody(12, seed=6)
    with pytest.raises(AisingerError):
        make_melody(0, seed=1)


# ---------------------------------------------------------------- singing


@needs_flite
def test_sing_length_level_and_no_nan(slt_rendition):
    r = slt_rendition
    expected = int(np.ceil((FOUR_NOTES[-1].end + 0.3) * SR - 1e-6))
    assert abs(len(r.audio) - expected) <= SR // FRAME_RATE
    assert np.all(np.isfinite(r.audio))
    assert len(r.f0) == n_frames(len(r.audio), SR)
    peak = np.abs(r.audio).max()
    assert 0.05 < peak <= 1.0
    # Each note window carries sound; the lead-in is (near) silent.
    for a, b in r.note_frames:
        seg = r.audio[a * SR // FRAME_RATE: b * SR // FRAME_RATE]
        assert np.sqrt(np.mean(seg ** 2)) > 0.01
    lead = r.audio[: int(0.2 * SR)]
    assert np.sqrt(np.mean(lead ** 2)) < 1e-3


@needs_flite
def test_sing_imposed_f0_recovered_by_harvest(slt_rendition):
    r = slt_rendition
    median, coverage = harvest_cents_error(r.audio, SR, r.f0)
    assert median < F0_TOLERANCE_CENTS, median
    assert coverage > 0.8, coverage
    # The imposed contour follows the notes (vibrato around the note pitch).
    for note, (a, b) in zip(FOUR_NOTES, r.voiced_frames):
        mid = r.f0[(a + b) // 2]
        assert abs(1200 * np.log2(mid / note.hz)) < 100


@needs_flite
def test_sing_deterministic_and_seed_dependent(slt_rendition):
    audio, f0 = sing_with_f0(FOUR_SYLLABLES, FOUR_NOTES, "flite-slt", sr=SR, seed=3)
    assert _md5(audio) == _md5(slt_rendition.audio)
    assert np.array_equal(f0, slt_rendition.f0)
    other = sing(FOUR_SYLLABLES, FOUR_NOTES, "flite-slt", sr=SR, seed=4)
    assert _md5(other) != _md5(audio)


@needs_flite
@needs_espeak
def test_parallel_voices_share_note_timing(slt_rendition):
    other = render(FOUR_SYLLABLES, FOUR_NOTES, "espeak-en-m3", sr=SR, seed=3)
    assert other.note_frames == slt_rendition.note_frames
    assert len(other.audio) == len(slt_rendition.audio)
    # Voiced parts lie inside the shared note windows.
    for (a, b), (va, vb) in zip(other.note_frames, other.voiced_frames):
        assert a <= va < vb <= b


def test_sing_rejects_mismatched_syllables():
    with pytest.raises(AisingerError, match="one syllable per note"):
        sing(["la"], FOUR_NOTES, "flite-slt")


# ---------------------------------------------------------------- accompaniment and mix


@needs_fluidsynth
def test_accompaniment_stereo_nonsilent_deterministic():
    notes = make_melody(6, seed=2)
    acc = accompany(notes, sr=SR, seed=1)
    assert acc.shape[0] == 2 and acc.dtype == np.float32
    assert acc.shape[1] == int(round((notes[-1].end + 1.0) * SR))
    rms = np.sqrt(np.mean(acc ** 2))
    assert rms > 0.01 and np.abs(acc).max() <= 1.0
    assert _md5(acc) == _md5(accompany(notes, sr=SR, seed=1))
    fixed = accompany(notes, sr=SR, seed=1, seconds=3.0)
    assert fixed.shape == (2, 3 * SR)


def test_mix_parts_sum_and_ratio():
    rng = np.random.default_rng(0)
    vocal = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    acc = (0.3 * rng.standard_normal((2, SR + 100))).astype(np.float32)
    m, v, a = mix(vocal, acc, vocal_to_acc_db=6.0)
    assert m.shape == v.shape == a.shape == (2, SR + 100)
    assert np.array_equal(m, v + a)
    ratio_db = 20 * np.log10(np.sqrt(np.mean(v[:, :SR] ** 2)) / np.sqrt(np.mean(a[:, :SR] ** 2)))
    assert abs(ratio_db - 6.0) < 0.5
    assert np.abs(m).max() <= 1.0
    with pytest.raises(AisingerError):
        mix(np.zeros(100), acc)


# ---------------------------------------------------------------- corpus

from aisinger.lab.corpus import CorpusConfig, load_manifest, make_corpus, parallel_clips  # noqa: E402

SMALL_CORPUS = CorpusConfig(seed=7, voices=("flite-slt", "flite-rms", "espeak-yue-f4"),
                            n_phrases=2, n_shared=1, n_songs=1, phrases_per_song=1,
                            notes_per_phrase=(4, 5))


def _tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    if not (shutil.which("flite") and shutil.which("espeak-ng") and shutil.which("fluidsynth")):
        pytest.skip("flite, espeak-ng and fluidsynth are needed for the corpus")
    root = tmp_path_factory.mktemp("corpus")
    return root, make_corpus(root, config=SMALL_CORPUS, workers=1)


def test_corpus_manifest_schema(small_corpus):
    import soundfile as sf

    root, path = small_corpus
    assert path == root / "manifest.json"
    m = load_manifest(root)
    assert m["version"] >= 1 and m["sr"] == SR and m["frame_rate"] == FRAME_RATE
    assert m["config"]["seed"] == 7 and list(m["voices"]) == list(SMALL_CORPUS.voices)
    # en: 2 phrases x 2 English voices + the shared one by yue; yue: 2 phrases.
    assert len(m["clips"]) == 2 * 2 + 1 + 2
    assert {c["phrase"] for c in m["clips"] if c["voice"] == "espeak-yue-f4"} == {
        "en-000", "yue-000", "yue-001"}
    for c in m["clips"]:
        info = sf.info(root / c["audio"])
        assert (info.samplerate, info.channels, info.frames) == (SR, 1, c["n_samples"])
        f0 = np.load(root / c["f0"])
        assert f0.dtype == np.float32 and len(f0) == n_frames(c["n_samples"], SR)
        assert len(c["notes"]) == len(c["lyrics"]) == len(c["note_frames"]) == len(c["voiced_frames"])
        assert c["split"] in ("train", "test")
        assert c["split"] == m["phrases"][c["phrase"]]["split"]
        assert c["intelligible"] == (c["voice"] != "espeak-yue-f4")
        assert (root / c["audio"]).with_suffix(".json").exists()
    for lang in ("en", "yue"):
        splits = {p["split"] for p in m["phrases"].values() if p["language"] == lang}
        assert splits == {"train", "test"}
    assert not list(root.rglob(".*tmp*"))  # no temp files left behind


def test_corpus_parallel_renditions_share_timing(small_corpus):
    root, _ = small_corpus
    m = load_manifest(root)
    pairs = parallel_clips(m, "flite-slt", "espeak-yue-f4")
    assert [a["phrase"] for a, _ in pairs] == ["en-000"]
    pw = pyworld
    for phrase in m["phrases"]:
        clips = [c for c in m["clips"] if c["phrase"] == phrase]
        ref = clips[0]
        for c in clips[1:]:
            assert c["note_frames"] == ref["note_frames"]
            assert c["n_samples"] == ref["n_samples"]
            for n, r in zip(c["notes"], ref["notes"]):
                assert (n["start"], n["dur"]) == (r["start"], r["dur"])
                assert n["midi"] - r["midi"] == c["transpose"] - ref["transpose"]
        # Onset analysis on the audio: every voice sounds the right pitch in the middle of
        # every note (so note timing is the same in the audio, not only in the manifest).
        for c in clips:
            import soundfile as sf

            audio, sr = sf.read(root / c["audio"], dtype="float64")
            f0, _ = pw.harvest(audio, sr, f0_floor=50.0, f0_ceil=1100.0,
                               frame_period=1000.0 / FRAME_RATE)
            for note, (a, b) in zip(c["notes"], c["voiced_frames"]):
                q = (b - a) // 4
                seg = f0[a + q: b - q]
                seg = seg[seg > 0]
                assert len(seg) > 0, (c["id"], note)
                err = 1200 * np.log2(np.median(seg) / (440 * 2 ** ((note["midi"] - 69) / 12)))
                assert abs(err) < 60, (c["id"], note, err)


def test_corpus_f0_ground_truth_recovered(small_corpus):
    import soundfile as sf

    root, _ = small_corpus
    m = load_manifest(root)
    for c in m["clips"]:
        audio, sr = sf.read(root / c["audio"], dtype="float32")
        median, coverage = harvest_cents_error(audio, sr, np.load(root / c["f0"]))
        assert median < F0_TOLERANCE_CENTS, (c["id"], median)
        assert coverage > 0.7, (c["id"], coverage)


def test_corpus_songs_have_exact_stems(small_corpus):
    import soundfile as sf

    root, _ = small_corpus
    m = load_manifest(root)
    assert {(r["song"], r["voice"]) for r in m["song_renditions"]} == {
        ("song-en-00", "flite-slt"), ("song-en-00", "flite-rms"), ("song-en-00", "espeak-yue-f4"),
        ("song-yue-00", "espeak-yue-f4")}
    lengths = set()
    for r in m["song_renditions"]:
        mixture, sr = sf.read(root / r["mix"], dtype="float64")
        vocals, _ = sf.read(root / r["vocals"], dtype="float64")
        acc, _ = sf.read(root / r["accompaniment"], dtype="float64")
        assert sr == SR and mixture.shape == vocals.shape == acc.shape and mixture.shape[1] == 2
        assert np.array_equal(mixture, vocals + acc)
        assert np.sqrt(np.mean(vocals ** 2)) > 0.01 and np.sqrt(np.mean(acc ** 2)) > 0.01
        assert len(np.load(root / r["f0"])) == n_frames(mixture.shape[0], SR)
        if r["song"] == "song-en-00":
            lengths.add(mixture.shape[0])
    assert len(lengths) == 1  # every voice's rendition of a song has the same timing


def test_corpus_deterministic_resumable(small_corpus, tmp_path):
    root, _ = small_corpus
    before = _tree_digest(root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")}
    make_corpus(root, config=SMALL_CORPUS, workers=1)  # resume: nothing to redo
    assert _tree_digest(root) == before
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")} == mtimes
    # A fresh build in 2 worker processes gives bit-identical files.
    make_corpus(tmp_path, config=SMALL_CORPUS, workers=2)
    assert _tree_digest(tmp_path) == before


def test_corpus_rejects_bad_config(tmp_path):
    with pytest.raises(AisingerError, match="unknown lab voice"):
        make_corpus(tmp_path, voices=["nobody"])
    with pytest.raises(AisingerError):
        make_corpus(tmp_path, size=0)


@pytest.mark.slow
def test_corpus_every_default_voice_sings(tmp_path):
    path = make_corpus(tmp_path, seed=1, n_phrases=1, n_shared=1, n_songs=0, workers=2)
    m = load_manifest(path)
    from aisinger.lab.corpus import DEFAULT_VOICES

    assert {c["voice"] for c in m["clips"]} == set(DEFAULT_VOICES)
    for c in m["clips"]:
        import soundfile as sf

        audio, sr = sf.read(tmp_path / c["audio"], dtype="float32")
        median, _ = harvest_cents_error(audio, sr, np.load(tmp_path / c["f0"]))
        assert median < F0_TOLERANCE_CENTS, (c["id"], median)
