"""Content (Whisper-base encoder), loudness, feature cache and the features facade.

Content-similarity metric used here: mean frame-wise cosine similarity along the
DTW path (cosine distance, path-length normalised). Time-averaged features are
not used: averaging over a phrase washes out the phonetic sequence (measured:
same phrase / different voice 0.79-0.97 vs different phrase / same voice
0.76-0.95 overlap), while DTW-aligned frames separate them clearly
(same phrase >= 0.6, different phrases <= 0.4 on these TTS voices).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from aisinger.errors import AisingerError
from aisinger.features import (
    FeatureConfig,
    Features,
    extract,
    load_features,
    save_features,
)
from aisinger.features import cache as fcache
from aisinger.features import content as fcontent
from aisinger.features import whisper as wh
from aisinger.dsp.frames import FRAME_RATE, n_frames
from aisinger.dsp.loudness import LoudnessConfig, loudness_db
from aisinger.tts.classic import speak

SR = 16000
PHRASES = {
    "fox": "The quick brown fox jumps over the lazy dog near the river bank.",
    "sea": "She sells sea shells by the sea shore every summer morning.",
}
VOICES = ("flite-slt", "flite-rms", "espeak-en-f3")
LONG_TEXT = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "The hallway smelt of boiled cabbage and old rag mats. At one end of it a coloured "
    "poster, too large for indoor display, had been tacked to the wall. It depicted simply "
    "an enormous face, more than a metre wide. Winston made for the stairs. It was no use "
    "trying the lift. Even at the best of times it was seldom working, and at present the "
    "electric current was cut off during daylight hours. The flat was seven flights up, and "
    "Winston, who was thirty-nine and had a varicose ulcer above his right ankle, went "
    "slowly, resting several times on the way. On each landing, opposite the lift-shaft, "
    "the poster with the enormous face gazed from the wall. It was one of those pictures "
    "which are so contrived that the eyes follow you about when you move. Inside the flat "
    "a fruity voice was reading out a list of figures which had something to do with the "
    "production of pig-iron."
)


# ----------------------------------------------------------------------------------------------
# helpers


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def frame_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of corresponding frames, (T,)."""
    return np.sum(_unit(a) * _unit(b), axis=-1)


def dtw_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of the frames paired by DTW (steps (1,1), (1,0), (0,1)),
    computed over anti-diagonals (cells with i + j = k depend only on k - 1, k - 2)."""
    dist = 1.0 - _unit(a) @ _unit(b).T
    n, m = dist.shape
    cost = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    cost[0, 0] = 0.0
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        cands = np.stack([cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]])
        prev = np.stack([steps[i - 1, j - 1], steps[i - 1, j], steps[i, j - 1]])
        best = np.argmin(cands, axis=0)
        pick = np.arange(i.shape[0])
        cost[i, j] = dist[i - 1, j - 1] + cands[best, pick]
        steps[i, j] = prev[best, pick] + 1
    return float(1.0 - cost[n, m] / steps[n, m])


def sine(freq: float, seconds: float, sr: int, amp: float, phase: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> dict[tuple[str, str], np.ndarray]:
    """Two phrases by three TTS voices at 16 kHz."""
    return {(p, v): speak(text, v, sr=SR) for p, text in PHRASES.items() for v in VOICES}


@pytest.fixture(scope="module")
def long_speech() -> np.ndarray:
    """75 s of TTS speech (flite slt, then flite rms) at 16 kHz."""
    x = np.concatenate([speak(LONG_TEXT, "flite-slt", sr=SR), speak(LONG_TEXT, "flite-rms", sr=SR)])
    assert x.shape[0] > 75 * SR, x.shape[0] / SR
    return x[: 75 * SR]


# ----------------------------------------------------------------------------------------------
# Whisper front end


def test_slaney_mel_scale_known_answers():
    # Slaney: 200/3 Hz per mel below 1 kHz (1 kHz = 15 mel), log step ln(6.4)/27 above.
    assert np.isclose(wh._hz_to_mel(1000.0), 15.0)
    assert np.isclose(wh._hz_to_mel(500.0), 7.5)
    assert np.isclose(wh._hz_to_mel(8000.0), 15 + np.log(8.0) * 27 / np.log(6.4))
    hz = np.array([0.0, 300.0, 999.0, 1000.0, 2500.0, 7900.0])
    assert np.allclose(wh._mel_to_hz(wh._hz_to_mel(hz)), hz)


def test_mel_filterbank_shape_peaks_and_area():
    fb = wh.mel_filterbank()
    assert fb.shape == (80, 201) and fb.dtype == np.float32 and (fb >= 0).all()
    bin_hz = np.arange(201) * 16000 / 400
    edges = wh._mel_to_hz(np.linspace(0, wh._hz_to_mel(8000.0), 82))
    peaks = bin_hz[np.argmax(fb, axis=1)]
    assert np.all(np.abs(peaks - edges[1:-1]) <= 16000 / 400)  # within one FFT bin
    # Slaney normalisation: each triangle has unit area in Hz (checked where >= 4 bins wide,
    # narrower triangles are sampled too coarsely by the 40 Hz FFT bins)
    wide = (edges[2:] - edges[:-2]) >= 4 * 40.0
    area = fb.sum(axis=1) * 40.0
    assert wide.sum() >= 30 and np.allclose(area[wide], 1.0, atol=0.03)


def test_log_mel_matches_torch_stft_reference():
    """Our numpy STFT equals Whisper's reference formulation done with torch.stft."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(SR * 3)).astype(np.float32) + sine(440, 3, SR, 0.3)
    window = torch.hann_window(400)
    stft = torch.stft(torch.from_numpy(x), 400, 160, window=window, return_complex=True)
    power = (stft[..., :-1].abs() ** 2).numpy()
    ref = np.log10(np.maximum(wh.mel_filterbank() @ power, 1e-10))
    ref = (np.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    ours = wh.log_mel_spectrogram(x)
    assert ours.shape == ref.shape == (80, 300)
    assert np.abs(ours - ref).max() < 1e-4


def test_log_mel_timing_range_and_padding():
    x = np.concatenate([np.zeros(SR, np.float32), sine(1000, 1.0, SR, 0.5)])
    mel = wh.log_mel_spectrogram(x)
    assert mel.shape == (80, 200)
    energy = mel.mean(axis=0)
    onset = int(np.argmax(energy > (energy.min() + energy.max()) / 2))
    assert abs(onset - 100) <= 2  # frame i is centred on t = i / 100 s; the tone starts at 1 s
    band = int(np.argmax(mel[:, 150]))
    centres = wh._mel_to_hz(np.linspace(0, wh._hz_to_mel(8000.0), 82))[1:-1]
    assert abs(centres[band] - 1000) < 60
    assert np.isclose(mel.min(), mel.max() - 2.0, atol=1e-5)  # 8 decades / 4
    padded = wh.pad_or_trim(mel)
    assert padded.shape == (80, 3000) and np.allclose(padded[:, 200:], mel.max() - 2.0)
    assert wh.pad_or_trim(np.zeros((80, 3500), np.float32)).shape == (80, 3000)
    # 30 s of zeros appended before the analysis gives the same silence level
    full = wh.pad_or_trim(wh.log_mel_spectrogram(x, padding=wh.N_SAMPLES))
    assert np.allclose(full[:, 205:], padded[:, 205:], atol=1e-6)


# ----------------------------------------------------------------------------------------------
# content features


def test_window_layout():
    assert list(fcontent.window_starts(1500)) == [0]
    assert list(fcontent.window_starts(10)) == [0]
    for n in (1501, 2600, 3751, 9001):
        s = fcontent.window_starts(n, 1500, 500)
        assert s[0] == 0 and s[-1] == n - 1500
        assert np.all(np.diff(s) <= 1000) and np.all(np.diff(s) > 0)  # overlap >= 10 s
    assert fcontent.n_content_frames(16000 * 30, 16000) == 1501
    assert fcontent.n_content_frames(44100, 44100) == 51


def test_stitch_is_seamless_where_a_hard_cut_is_not():
    """Windows that disagree by a constant offset are blended without a jump."""
    n, window = 3000, 1500
    starts = fcontent.window_starts(n, window, 500)
    base = np.sin(np.arange(n) / 50.0)[:, None] * np.ones((1, 4))
    outs = [(int(s), base[s : s + window] + 3.0 * k) for k, s in enumerate(starts)]
    stitched = fcontent.stitch_windows(outs, n)
    steps = np.abs(np.diff(stitched - base, axis=0)).max()
    assert steps < 3.0 * 2 / 500  # offset spread over the overlap
    hard = np.concatenate([o[: e - s] for (s, o), e in zip(outs, list(starts[1:]) + [n])])
    assert np.abs(np.diff(hard - base, axis=0)).max() > 2.9  # a hard cut jumps by the offset
    single = fcontent.stitch_windows([(0, base[:window])], window)
    assert np.allclose(single, base[:window])


def test_same_phrase_other_voice_closer_than_other_phrase_same_voice(speech):
    feats = {k: fcontent.content_features(x, SR) for k, x in speech.items()}
    for (p, v), f in feats.items():
        assert f.shape == (fcontent.n_content_frames(speech[p, v].shape[0], SR), 512)
        assert f.dtype == np.float32 and np.isfinite(f).all()
    same_phrase = [dtw_similarity(feats[p, a], feats[p, b])
                   for p in PHRASES for i, a in enumerate(VOICES) for b in VOICES[i + 1:]]
    same_voice = [dtw_similarity(feats["fox", v], feats["sea", v]) for v in VOICES]
    assert min(same_phrase) > max(same_voice) + 0.1, (same_phrase, same_voice)


def test_position_component_is_removed(speech):
    """The same audio 5 s later in the window gives nearly the same features."""
    x = speech["fox", "flite-slt"]
    shifted = np.concatenate([np.zeros(5 * SR, np.float32), x])
    lag = 5 * fcontent.CONTENT_FRAME_RATE
    sims = {}
    for k in (0, 32):
        cfg = fcontent.ContentConfig(position_components=k)
        a = fcontent.content_features(x, SR, cfg)
        b = fcontent.content_features(shifted, SR, cfg)[lag : lag + a.shape[0]]
        sims[k] = frame_cosine(a, b).mean()
    assert sims[32] > 0.9 and sims[0] < sims[32] - 0.15, sims


def test_long_input_windowed_without_seams(long_speech):
    x = long_speech
    n = fcontent.n_content_frames(x.shape[0], SR)
    starts = fcontent.window_starts(n, wh.ENCODER_FRAMES, 500)
    assert len(starts) >= 3
    f = fcontent.content_features(x, SR)
    assert f.shape == (n, 512) and np.isfinite(f).all()

    # No seam: the frame-to-frame change at the window edges and in the middle of each overlap
    # is no larger than the typical change. (Measured: 1.06x the mean step; a hard cut between
    # raw encoder windows gives 1.57x, because the windows disagree on the positional signal.)
    step = np.linalg.norm(np.diff(f, axis=0), axis=1)  # step[j]: frame j -> j + 1
    edges = [int(s) for s in starts[1:]] + [int(s) + wh.ENCODER_FRAMES - 1 for s in starts[:-1]]
    mids = [(int(a) + wh.ENCODER_FRAMES + int(b)) // 2 for a, b in zip(starts[:-1], starts[1:])]
    at_joins = np.array([step[j + d] for j in edges + mids for d in (-1, 0)])
    assert at_joins.mean() < 1.3 * step.mean(), (at_joins.mean(), step.mean())

    # a single pass over a 29 s excerpt agrees with the windowed result on it
    a0 = int(starts[1]) + 100  # inside an overlap region of the windowed pass
    excerpt = x[a0 * SR // 50 : a0 * SR // 50 + 29 * SR]
    single = fcontent.content_features(excerpt, SR)
    windowed = f[a0 : a0 + single.shape[0]]
    mid = slice(50, single.shape[0] - 50)
    agree = frame_cosine(single[mid], windowed[mid]).mean()
    misaligned = frame_cosine(single[mid], f[a0 + 25 : a0 + 25 + single.shape[0]][mid]).mean()
    assert agree > 0.9 and agree > misaligned + 0.2, (agree, misaligned)


def test_short_input_and_bad_input():
    f = fcontent.content_features(sine(220, 0.25, 22050, 0.3), 22050)
    assert f.shape == (fcontent.n_content_frames(int(round(0.25 * 22050)), 22050), 512)
    with pytest.raises(AisingerError):
        fcontent.content_features(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(AisingerError):
        fcontent.content_features(np.array([0.0, np.nan], np.float32), SR)
    with pytest.raises(AisingerError):
        fcontent.content_features(np.zeros(0, np.float32), SR)
    with pytest.raises(AisingerError):
        fcontent.content_features(np.zeros(100, np.float32), SR,
                                  fcontent.ContentConfig(model="hubert"))


@pytest.mark.slow
def test_int8_close_to_float32(speech):
    x = speech["sea", "flite-rms"]
    a = fcontent.content_features(x, SR, fcontent.ContentConfig(compute_type="int8"))
    b = fcontent.content_features(x, SR, fcontent.ContentConfig(compute_type="float32"))
    assert np.percentile(frame_cosine(a, b), 5) > 0.98


# ----------------------------------------------------------------------------------------------
# loudness


@pytest.mark.parametrize("sr", [16000, 22050, 44100])
@pytest.mark.parametrize("amp", [1.0, 0.25, 0.01])
def test_loudness_of_sines(sr, amp):
    for freq in (110.0, 440.0, 3000.0):
        level = loudness_db(sine(freq, 1.0, sr, amp), sr)
        assert level.shape == (n_frames(int(round(1.0 * sr)), sr),) and level.dtype == np.float32
        expected = 20 * np.log10(amp / np.sqrt(2))
        assert np.abs(level[2:-2] - expected).max() < 0.01
        assert np.abs(level - expected).max() < 0.3  # first/last frames see half a window


def test_full_scale_sine_is_minus_3_db_and_silence_is_floor():
    assert np.isclose(np.median(loudness_db(sine(1000, 0.5, 48000, 1.0), 48000)), -3.0103, atol=0.01)
    assert np.all(loudness_db(np.zeros(16000, np.float32), 16000) == -120.0)
    cfg = LoudnessConfig(floor_db=-90.0)
    assert np.all(loudness_db(np.zeros(100, np.float32), 16000, cfg) == -90.0)


def test_loudness_timing():
    sr = 22050
    x = np.concatenate([np.zeros(sr, np.float32), sine(300, 1.0, sr, 0.5)])
    level = loudness_db(x, sr)
    window = LoudnessConfig().window_s
    t = np.arange(level.shape[0]) / FRAME_RATE
    assert np.all(level[t < 1.0 - window / 2 - 0.005] == -120.0)
    tone = (t > 1.0 + window / 2 + 0.005) & (t < t[-1] - window / 2)
    assert np.all(np.abs(level[tone] - 20 * np.log10(0.5 / np.sqrt(2))) < 0.01)
    with pytest.raises(AisingerError):
        loudness_db(np.ones((2, 10), np.float32), sr)


# ----------------------------------------------------------------------------------------------
# cache


def test_cache_hit_miss_and_keys(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(12, dtype=np.float32).reshape(3, 4) * len(calls)

    x = sine(220, 0.1, SR, 0.5)
    key = fcache.audio_key(x, SR)
    cfg = LoudnessConfig()
    a = fcache.cached("loudness", key, cfg, compute, root=tmp_path)
    b = fcache.cached("loudness", key, cfg, compute, root=tmp_path)
    assert len(calls) == 1 and np.array_equal(a, b) and b.dtype == np.float32
    # config, audio, sr, kind and version are all part of the key
    fcache.cached("loudness", key, LoudnessConfig(window_s=0.02), compute, root=tmp_path)
    y = x.copy()
    y[10] += 1e-3
    fcache.cached("loudness", fcache.audio_key(y, SR), cfg, compute, root=tmp_path)
    fcache.cached("loudness", fcache.audio_key(x, 22050), cfg, compute, root=tmp_path)
    fcache.cached("f0", key, cfg, compute, root=tmp_path)
    fcache.cached("loudness", key, cfg, compute, root=tmp_path, version="features-test")
    assert len(calls) == 6
    assert fcache.audio_key(x, SR) == key
    assert fcache.config_json(LoudnessConfig()) == fcache.config_json(LoudnessConfig())
    assert fcache.config_json({"b": 1, "a": (1, 2)}) == '{"a":[1,2],"b":1}'
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".aisinger-tmp-*"))
    fcache.cached("loudness", key, cfg, compute, root=tmp_path, enabled=False)
    assert len(calls) == 7
    assert fcache.clear("f0", root=tmp_path) == 1
    fcache.cached("f0", key, cfg, compute, root=tmp_path)
    assert len(calls) == 8


def test_cache_file_key(tmp_path):
    import soundfile as sf

    p = tmp_path / "a.wav"
    sf.write(p, sine(220, 0.2, SR, 0.5), SR)
    k1 = fcache.audio_key(p)
    assert k1 == fcache.audio_key(str(p))
    sf.write(p, sine(220, 0.2, SR, 0.4), SR)
    os.utime(p, ns=(1, 1))
    assert fcache.audio_key(p) != k1
    with pytest.raises(AisingerError):
        fcache.audio_key(tmp_path / "missing.wav")
    with pytest.raises(AisingerError):
        fcache.audio_key(np.zeros(4, np.float32))  # no sr


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty", "wrong-meta"])
def test_corrupt_cache_entry_is_recomputed(tmp_path, damage):
    calls = []

    def compute():
        calls.append(1)
        return np.full(5, 7.0, np.float32)

    key = fcache.audio_key(np.ones(10, np.float32), SR)
    fcache.cached("content", key, None, compute, root=tmp_path)
    (path,) = list(tmp_path.rglob("*.npz"))
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, data=np.zeros(5, np.float32), meta=np.array('{"other": 1}'))
    out = fcache.cached("content", key, None, compute, root=tmp_path)
    assert len(calls) == 2 and np.array_equal(out, np.full(5, 7.0, np.float32))
    again = fcache.cached("content", key, None, compute, root=tmp_path)
    assert len(calls) == 2 and np.array_equal(again, out)  # the entry was rewritten


# ----------------------------------------------------------------------------------------------
# facade


def test_extract_facade_lengths_cache_and_roundtrip(tmp_path, speech, monkeypatch):
    import soundfile as sf

    import aisinger.features as features

    x = speech["fox", "flite-slt"]
    stereo = np.stack([x, 0.5 * x])
    path = tmp_path / "voice.flac"
    sf.write(path, stereo.T, SR)
    root = tmp_path / "cache"

    f = extract(stereo, SR, cache=root)
    t = n_frames(x.shape[0], SR)
    assert isinstance(f, Features) and f.n_frames == t
    assert f.content.shape == (t, 512) and f.f0.shape == (t,) and f.loudness_db.shape == (t,)
    assert f.frame_rate == FRAME_RATE and f.sr == SR and np.isclose(f.duration, x.shape[0] / SR)
    assert f.content.dtype == f.f0.dtype == f.loudness_db.dtype == np.float32
    voiced = f.f0 > 0
    assert voiced.mean() > 0.3 and 100 < np.median(f.f0[voiced]) < 300  # a female TTS voice
    assert f.loudness_db[voiced].mean() > f.loudness_db[~voiced].mean()

    # second call: every feature from the cache (the extractors must not run)
    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(features, "content_features", boom)
    monkeypatch.setattr(features, "estimate_f0", boom)
    monkeypatch.setattr(features, "loudness_db", boom)
    g = extract(stereo, SR, cache=root)
    assert np.array_equal(g.content, f.content) and np.array_equal(g.f0, f.f0)
    with pytest.raises(AssertionError):
        extract(stereo, SR, cache=False)
    monkeypatch.undo()

    # a path gives the same features as the same audio as an array
    h = extract(path, cache=root)
    assert h.n_frames == t and np.allclose(h.loudness_db, f.loudness_db, atol=0.1)  # 16-bit FLAC
    assert frame_cosine(h.content, f.content).mean() > 0.999

    saved = save_features(f, tmp_path / "out" / "voice.npz")
    meta = json.loads(saved.with_suffix(".json").read_text())
    assert meta["n_frames"] == t and meta["config"]["content"]["model"] == "whisper-base"
    back = load_features(saved)
    assert back.config == f.config == FeatureConfig()
    assert np.array_equal(back.content, f.content) and np.array_equal(back.f0, f.f0)
    assert back.sr == SR and back.duration == f.duration
    saved.write_bytes(b"broken")
    with pytest.raises(AisingerError):
        load_features(saved)
    with pytest.raises(AisingerError):
        extract(x)  # an array needs sr


def test_content_extraction_keeps_torch_thread_count():
    """Loading Whisper (CTranslate2/OpenMP) must not change torch's thread count, which would
    silently break the determinism of training that runs after feature extraction."""
    import torch

    from aisinger.features import whisper

    old = torch.get_num_threads()
    whisper._MODELS.clear()  # force a fresh load, where the OpenMP setting happens
    try:
        torch.set_num_threads(1)
        fcontent.content_features(np.zeros(16000, np.float32), 16000)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_integrated_lufs_matches_pyloudnorm_and_gates():
    """Our chunked BS.1770 meter gives pyloudnorm's numbers (mono, stereo, 5 channels, several
    rates, lengths that cut the last block, levels that exercise both gates)."""
    import warnings

    import pyloudnorm

    from aisinger.dsp.loudness import _CHUNK, integrated_lufs

    rng = np.random.default_rng(0)
    for sr, ch, seconds in ((16000, 1, 7.3), (44100, 2, 31.7), (48000, 5, 3.05),
                            (22050, 2, 0.41), (8000, 1, _CHUNK / 8000 * 2.5)):
        n = int(sr * seconds)
        level = np.repeat(rng.uniform(0, 0.3, n // sr + 2) ** 3, sr)[:n]
        x = (rng.standard_normal((ch, n)) * level).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = pyloudnorm.Meter(sr, block_size=0.4).integrated_loudness(
                x.T.astype(np.float64) if ch > 1 else x[0].astype(np.float64))
        assert integrated_lufs(x if ch > 1 else x[0], sr) == pytest.approx(ref, abs=1e-6)
    assert integrated_lufs(np.zeros(44100, np.float32), 44100) == float("-inf")
    assert integrated_lufs(np.ones(100, np.float32), 44100) == float("-inf")  # < one block
