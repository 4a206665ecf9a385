"""Watermark: payload round trip, robustness to attacks (real ffmpeg codecs), inaudibility
(SNR), silence, false positives on unmarked audio, and the channel code."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from aisinger.errors import AisingerError
from aisinger.label import attacks
from aisinger.label import watermark as wm

SR = 44100
SONG_S = 25.0
PAYLOAD = wm.payload_for("test-voice-v1", 0xBEEF)


def _song(seconds: float, seed: int, voice: str = "flite-slt") -> np.ndarray:
    """Sung lab vocal over a General-MIDI accompaniment: float32 (2, samples) at SR."""
    from aisinger import lab

    notes = lab.make_melody(int(seconds * 1.6), seed=seed)
    notes = [n for n in notes if n.end < seconds - 0.5]
    syllables = (["la", "na", "da", "lu"] * len(notes))[: len(notes)]
    sung = lab.sing(syllables, notes, voice, sr=SR, seed=seed)
    acc = lab.accompany(notes, sr=SR, seconds=seconds, seed=seed)
    mix, _, _ = lab.mix(sung, acc)
    n = int(seconds * SR)
    return np.pad(mix, ((0, 0), (0, max(0, n - mix.shape[1]))))[:, :n]


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return _song(SONG_S, seed=3)


@pytest.fixture(scope="module")
def marked(song) -> np.ndarray:
    return wm.embed(song, SR, PAYLOAD)


@pytest.fixture(scope="module")
def excerpt(marked) -> np.ndarray:
    """A 12 s excerpt starting at an arbitrary, non-grid offset (so every attack also crops)."""
    return attacks.crop(marked, SR, 6.2371, 12.0)


def _snr_db(clean: np.ndarray, marked: np.ndarray) -> float:
    noise = (marked.astype(np.float64) - clean) ** 2
    return float(10 * np.log10((clean.astype(np.float64) ** 2).sum() / noise.sum()))


def test_payload_round_trip_and_fields(marked):
    r = wm.detect(marked, SR)
    assert r.present and r.crc_ok
    assert r.payload == PAYLOAD
    assert (r.voice_hash, r.content_id) == wm.split_payload(PAYLOAD)
    assert r.voice_hash == wm.voice_hash("test-voice-v1") and r.content_id == 0xBEEF
    assert r.score > 15 and r.confidence > 0.999
    assert r.bit_errors is not None and r.bit_errors <= 0.05 * r.coded_bits
    json.dumps(r.to_dict())


def test_watermark_snr_at_least_25_db(song, marked):
    assert _snr_db(song, marked) >= 25.0
    # also for a bright a-cappella voice, where the marked band holds much of the energy
    from aisinger import lab

    vocal = lab.sing(["ah"] * 8, lab.make_melody(8, seed=1), "espeak-en-f3", sr=SR)
    assert _snr_db(vocal, wm.embed(vocal, SR, PAYLOAD)) >= 25.0


def test_mark_is_robust_to_cropping(marked):
    for start in (0.0, 3.3331, 14.9):
        r = wm.detect(attacks.crop(marked, SR, start, 10.0), SR)
        assert r.present and r.payload == PAYLOAD, start


@pytest.mark.parametrize("attack", ["mp3", "aac", "resample16k", "resample22k", "resample48k",
                                    "gain+6", "gain-6", "noise20"])
def test_mark_survives_attack(excerpt, attack):
    y, sr = attacks.apply(attack, excerpt, SR, seed=1)
    r = wm.detect(y, sr)
    assert r.present, f"{attack}: z={r.score:.1f}"
    assert r.payload == PAYLOAD, f"{attack}: payload lost (z={r.score:.1f})"


@pytest.fixture(scope="module")
def vocal_excerpt() -> np.ndarray:
    """A marked a-cappella lab vocal (notes with pauses), cropped to 10 s off the grid."""
    from aisinger import lab

    notes = [n for n in lab.make_melody(24, seed=4) if n.end < 13.5]
    vocal = lab.sing((["la", "na", "mi", "do"] * len(notes))[: len(notes)], notes, "flite-slt",
                     sr=SR, seed=4)
    return attacks.crop(wm.embed(vocal, SR, PAYLOAD), SR, 1.7313, 10.0)


@pytest.mark.parametrize("attack", ["noise20", "chain"])
def test_a_cappella_vocal_survives_noise(vocal_excerpt, attack):
    """White noise at 20 dB SNR fills a sparse vocal's pauses and upper band (the weak case)."""
    y, sr = attacks.apply(attack, vocal_excerpt, SR, seed=2)
    assert _snr_db(vocal_excerpt, y) < 21.0
    r = wm.detect(y, sr)
    assert r.present and r.payload == PAYLOAD, f"{attack}: z={r.score:.1f}"


def test_attacks_really_change_the_audio(excerpt):
    """Guard against attacks that silently do nothing (which would make the tests vacuous)."""
    for name in ("mp3", "aac", "noise20", "resample16k"):
        y, _ = attacks.apply(name, excerpt, SR, seed=1)
        assert _snr_db(excerpt, y) < 45.0, name


def test_silence_stays_silent():
    rng = np.random.default_rng(0)
    x = np.zeros((2, 8 * SR), np.float32)
    x[:, 1 * SR: 4 * SR] = rng.normal(0, 0.1, (2, 3 * SR))
    x[:, 5 * SR: 7 * SR] = rng.normal(0, 0.1, (2, 2 * SR))
    y = wm.embed(x, SR, PAYLOAD)
    guard = int(wm.SILENCE_GUARD_S * SR) + 1
    for a, b in ((0, 1 * SR - guard), (4 * SR + guard, 5 * SR - guard), (7 * SR + guard, 8 * SR)):
        assert np.all(y[:, a:b] == 0.0)
    assert not np.allclose(y[:, 2 * SR: 3 * SR], x[:, 2 * SR: 3 * SR])
    silent = np.zeros((2, 6 * SR), np.float32)
    assert np.array_equal(wm.embed(silent, SR, PAYLOAD), silent)
    assert not wm.detect(silent, SR).present


def test_no_false_positive_on_unmarked_audio(song):
    from aisinger import assets, lab
    from aisinger.io import audio

    t = np.arange(10 * SR) / SR
    rng = np.random.default_rng(7)
    clips = [song, attacks.crop(song, SR, 11.0, 10.0),
             (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
             rng.normal(0, 0.1, 10 * SR).astype(np.float32),
             lab.speak("This recording has never been watermarked by anyone.", "flite-rms",
                       sr=SR)]
    example, esr = audio.load(assets.fetch("example-song"))
    for clip, rate in [(c, SR) for c in clips] + [(example, esr)]:
        r = wm.detect(clip, rate)
        assert not r.present and r.payload is None
        # the v3 search looks at ~1 M candidates: a chance z above Z3_PAYLOAD happens (the
        # CRC then rejects it); a mark without payload needs Z3_MARK_ONLY
        assert r.score < wm.Z3_MARK_ONLY


def test_wrong_key_finds_nothing(marked):
    r = wm.detect(marked, SR, key="somebody-else")
    assert not r.present


def test_second_payload_is_distinguished(song):
    other = wm.payload_for("another-voice", 17)
    r = wm.detect(wm.embed(attacks.crop(song, SR, 0, 12.0), SR, other), SR)
    assert r.payload == other and r.payload != PAYLOAD


def test_mono_and_stereo_layouts_are_kept(song):
    mono = song.mean(axis=0)
    y = wm.embed(mono, SR, PAYLOAD)
    assert y.shape == mono.shape and y.dtype == np.float32
    assert wm.detect(y, SR).payload == PAYLOAD


def test_speed_well_under_real_time(song):
    # CPU time of this process: wall time on the shared 2-core machine measures the load
    # (the speed target itself, 0.1x with the v3 search, is checked by bench/watermark.py)
    t0 = time.process_time()
    y = wm.embed(song, SR, PAYLOAD)
    wm.detect(y, SR)
    rtf = (time.process_time() - t0) / SONG_S
    assert rtf < 0.25, f"embed+detect RTF {rtf:.3f}"


def test_tile_statistic_cancels_a_sustained_note_and_gain():
    """The log-energy contrast ignores a steady harmonic spectrum (where a within-tile energy
    balance is dominated by where the harmonics fall) and any gain."""
    t = np.arange(3 * wm.WM_SR) / wm.WM_SR
    note = (0.1 * sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 30))).astype(np.float32)
    gp = wm._group_power(wm._stft(note)[0])
    dev, var = wm._tile_values(gp, 0)
    assert float(np.sqrt(var[2:-2]).mean()) < 0.1
    tiles = gp[: len(gp) // wm.TILE_HOPS * wm.TILE_HOPS].reshape(
        -1, wm.TILE_HOPS, gp.shape[1], gp.shape[2]).sum(axis=1)
    shares = tiles / tiles.sum(axis=2, keepdims=True)
    balance_spread = np.sqrt(((shares - shares.mean(axis=2, keepdims=True)) ** 2).sum(axis=2))
    assert float(balance_spread.mean()) > 0.3  # what the v1 statistic had to fight
    dev4, _ = wm._tile_values(wm._group_power(wm._stft(4 * note)[0]), 0)
    assert np.allclose(dev4, dev, atol=1e-5)


def test_convolutional_code_corrects_errors():
    rng = np.random.default_rng(0)
    info = rng.integers(0, 2, 48).astype(np.int8)
    coded = wm.conv_encode(info)
    assert len(coded) == 2 * (48 + wm.CONV_K - 1)
    soft = 2.0 * coded - 1.0
    flip = rng.choice(len(coded), 8, replace=False)  # 8 hard errors, spread out
    soft[flip] *= -1
    assert np.array_equal(wm.viterbi_decode(soft), info)
    erased = 2.0 * coded - 1.0
    erased[rng.choice(len(coded), 20, replace=False)] = 0.0  # scattered erasures
    assert np.array_equal(wm.viterbi_decode(erased), info)
    assert not np.array_equal(wm.viterbi_decode(-soft), info)


def test_list_viterbi_starts_with_the_viterbi_path_and_recovers_more():
    rng = np.random.default_rng(3)
    single = listed = 0
    for _ in range(60):
        info = rng.integers(0, 2, 48).astype(np.int8)
        soft = 2.0 * wm.conv_encode(info) - 1.0 + rng.normal(0, 1.05, 2 * (48 + wm.CONV_K - 1))
        paths = wm.viterbi_list(soft, 8)
        assert np.array_equal(paths[0], wm.viterbi_decode(soft))
        assert len({p.tobytes() for p in paths}) == len(paths) == 8  # distinct paths
        single += np.array_equal(paths[0], info)
        listed += any(np.array_equal(p, info) for p in paths)
    assert listed >= single + 6  # measured 52 % -> 76 % at this noise level (300 draws)


def test_payload_helpers():
    p = wm.payload_for("voice", 65535)
    assert len(p) == wm.PAYLOAD_BITS // 8
    assert wm.split_payload(p) == (wm.voice_hash("voice"), 65535)
    assert wm.split_payload(wm.payload_for(None, 3)) == (0, 3)
    with pytest.raises(AisingerError):
        wm.payload_for("voice", 1 << 16)
    with pytest.raises(AisingerError):
        wm.embed(np.zeros(100, np.float32), SR, b"12345")
    with pytest.raises(AisingerError):
        wm.detect(np.full(SR, np.nan, np.float32), SR)


# ----------------------------------------------------------------------------------------------
# slow: the false-positive scan on ≥ 200 unmarked clips


def _corpus_dir(tmp_path_factory) -> Path:
    for cand in (os.environ.get("AISINGER_LAB_CORPUS"), "bench/results/lab-corpus"):
        if cand and (Path(cand) / "manifest.json").is_file():
            return Path(cand)
    from aisinger.lab import make_corpus

    out = tmp_path_factory.mktemp("corpus")
    make_corpus(out, seed=0)
    return out


@pytest.mark.slow
def test_false_positive_scan_200_clips(tmp_path_factory):
    from aisinger import assets
    from aisinger.io import audio
    from aisinger.lab import load_manifest

    root = _corpus_dir(tmp_path_factory)
    manifest = load_manifest(root / "manifest.json")
    clips: list[tuple[np.ndarray, int]] = []
    for c in manifest["clips"]:
        clips.append(audio.load(root / c["audio"]))
    for s in manifest.get("song_renditions", []):
        for stem in ("mix", "vocals", "accompaniment"):
            x, sr = audio.load(root / s[stem])
            clips += [(x[:, i: i + 10 * sr], sr) for i in range(0, x.shape[1] - 10 * sr, 10 * sr)]
    x, sr = audio.load(assets.fetch("example-song"))
    clips += [(x, sr), (x[:, ::-1].copy(), sr)]
    rng = np.random.default_rng(11)
    t = np.arange(8 * SR) / SR
    while len(clips) < 210:
        f = rng.uniform(80, 2000)
        clips.append(((0.2 * np.sin(2 * np.pi * f * t) + rng.normal(0, 0.02, t.size))
                      .astype(np.float32), SR))
    scores = [wm.detect(c, sr) for c, sr in clips]
    assert len(scores) >= 200
    assert sum(r.present for r in scores) == 0
    assert max(r.score for r in scores) < wm.Z3_MARK_ONLY


def test_long_input_is_marked_in_segments_like_one_piece(monkeypatch):
    """Inputs over SEGMENT_BLOCKS + 2 blocks are marked segment by segment (bounded memory):
    the mark equals the one-piece mark away from the joints, and an excerpt across a joint
    reads the payload."""
    rng = np.random.default_rng(5)
    sr = 16000
    blk = wm.V3_BLOCK_COLS * wm.TILE_HOPS * wm.HOP  # samples at WM_SR
    monkeypatch.setattr(wm, "SEGMENT_BLOCKS", 4)  # joints every ~20 s instead of ~82 s
    n = 11 * blk  # > SEGMENT_BLOCKS + 2 blocks: two joints
    env = np.repeat(rng.uniform(0.05, 0.4, n // 1600 + 1), 1600)[:n]
    x = (rng.standard_normal(n) * env).astype(np.float32)
    pay = wm.payload_for("segment-test", 77)
    seg = wm.embed(x, sr, pay) - x
    monkeypatch.setattr(wm, "SEGMENT_BLOCKS", 10 ** 6)
    one = wm.embed(x, sr, pay) - x
    mid = slice(blk, 3 * blk)  # inside the first segment's core, away from its joint
    assert np.sqrt(np.mean((seg[mid] - one[mid]) ** 2)) < 1e-3 * np.sqrt(np.mean(one ** 2))
    joint = 4 * blk
    r = wm.detect((x + seg)[joint - 5 * sr:joint + 5 * sr], sr)
    assert r.present and r.crc_ok and r.payload == pay
