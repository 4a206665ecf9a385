"""Tests of aisinger.eval: every metric on inputs whose answer is known.

Audio is made here: flite TTS sentences (two voices), WORLD resynthesis of one of them with F0
raised by a semitone, white noise.  Model loads are cached per process and the audio is shared
through module-scoped fixtures.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from aisinger.errors import AisingerError
from aisinger.eval import (METRICS, REPORT_KEYS, evaluate, evaluate_batch, format_table,
                           to_jsonable)
from aisinger.eval.dnsmos import SEGMENT_SAMPLES, dnsmos, segments
from aisinger.eval.f0 import compare_f0
from aisinger.eval.intelligibility import (edit_distance, error_rates, normalize_text,
                                           script_conversion_available)
from aisinger.eval.similarity import (embed_speaker, embed_utterance, embed_utterances,
                                      partial_starts, speaker_similarity, trim_long_silences)

SENTENCE_A = "The quick brown fox jumps over the lazy dog while the singer holds a long note."
SENTENCE_B = "Every morning she walked along the river and listened to the birds sing."

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")


def _speak(text: str, voice: str):
    from aisinger.tts.classic import speak_native

    return speak_native(text, voice)


@pytest.fixture(scope="module")
def voices():
    """{(voice, sentence): (audio, sr)} for flite slt (female) and awb (male)."""
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    return {(v, k): _speak(text, f"flite-{v}") for v in ("slt", "awb")
            for k, text in (("a", SENTENCE_A), ("b", SENTENCE_B))}


@pytest.fixture(scope="module")
def shifted(voices):
    """WORLD resynthesis of slt/b with its own F0 and with F0 x 2^(1/12) (+100 cents)."""
    import pyworld as pw

    audio, sr = voices[("slt", "b")]
    x = audio.astype(np.float64)
    period_ms = 5.0
    f0, t = pw.dio(x, sr, frame_period=period_ms)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    same = pw.synthesize(f0, sp, ap, sr, period_ms).astype(np.float32)
    up = pw.synthesize(f0 * 2.0 ** (1.0 / 12.0), sp, ap, sr, period_ms).astype(np.float32)
    return (same, sr), (up, sr)


# ----------------------------------------------------------------------------------------------
# text normalisation and error rates (no models)


def test_normalize_chinese_removes_punctuation_and_spaces():
    assert normalize_text("我爱 你，中国！ 「歌声」…", "zh") == "我爱你中国歌声"
    assert normalize_text("我 愛 你。", "yue" if script_conversion_available() else "ja") in (
        "我爱你", "我愛你")
    assert normalize_text("ＡＢＣ　１２３", "zh") == "abc123"  # full-width forms and space


@pytest.mark.skipif(not script_conversion_available(), reason="opencc-purepy not installed")
def test_normalize_chinese_traditional_to_simplified():
    assert normalize_text("我們說話", "zh") == normalize_text("我们说话", "zh") == "我们说话"
    ref, hyp = "长发飘飘", "長髮飄飄"
    assert error_rates(ref, hyp, "zh")["cer"] == 0.0
    assert normalize_text("東京", "ja") == "東京"  # Japanese is not converted


def test_normalize_english_case_and_punctuation():
    assert normalize_text("Hello,  World! Don't-stop  me NOW.", "en") == "hello world dont stop me now"
    assert normalize_text("  It’s  fine ", "en") == "its fine"


def test_edit_distance_known_values_and_bruteforce():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance(["a", "b"], ["a", "b"]) == 0

    def slow(a, b):
        d = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            prev, d[0] = d[0], i
            for j, cb in enumerate(b, 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
        return d[-1]

    rng = np.random.default_rng(1)
    for _ in range(50):
        a = "".join(rng.choice(list("abcd"), rng.integers(0, 15)))
        b = "".join(rng.choice(list("abcd"), rng.integers(0, 15)))
        assert edit_distance(a, b) == slow(a, b), (a, b)


def test_error_rates():
    r = error_rates("Hello world", "hello, word!", "en")
    assert r["wer"] == pytest.approx(1 / 2)
    assert r["cer"] == pytest.approx(1 / 11)
    assert error_rates("你好世界", "你好", "zh") == {"cer": 0.5}
    assert error_rates("abc", "", "en")["cer"] == 1.0
    with pytest.raises(AisingerError):
        error_rates("?!", "x", "en")


# ----------------------------------------------------------------------------------------------
# F0 comparison on synthetic tracks


def test_compare_f0_known_tracks():
    t = np.arange(500) / 100
    src = 220 * 2 ** (np.sin(2 * np.pi * 0.5 * t) / 12)  # +-1 semitone vibrato
    src[:50] = 0  # unvoiced lead-in
    out = src * 2 ** (1 / 12)
    out[450:] = 0  # output unvoiced at the end: 50 disagreeing frames
    r = compare_f0(out, src, transpose=0)
    assert r["f0_rmse_cents"] == pytest.approx(100, abs=1e-6)
    assert r["f0_corr"] == pytest.approx(1, abs=1e-9)
    assert r["vuv_error"] == pytest.approx(50 / 500)
    assert r["f0_voiced_frames"] == 400
    assert compare_f0(out, src, transpose=1)["f0_rmse_cents"] == pytest.approx(0, abs=1e-6)
    assert compare_f0(out[:-3], src, transpose=-1)["f0_rmse_cents"] == pytest.approx(200, abs=1e-6)
    assert math.isnan(compare_f0(np.zeros(100), src[:100])["f0_rmse_cents"])


# ----------------------------------------------------------------------------------------------
# speaker similarity


def test_speaker_encoder_rejects_foreign_checkpoint(tmp_path):
    import torch

    from aisinger.errors import AssetError
    from aisinger.eval.similarity import encoder_from_file

    path = tmp_path / "other.pt"
    torch.save({"model_state": {"conv.weight": torch.zeros(2)}}, path)
    with pytest.raises(AssetError, match="not a Resemblyzer checkpoint"):
        encoder_from_file(path)


def test_partials_and_vad():
    assert partial_starts(16000) == [0]  # 1 s: one zero-padded partial
    starts = partial_starts(16000 * 5)
    assert starts[1] - starts[0] == 77 and len(starts) >= 4
    sr = 16000
    t = np.arange(sr) / sr
    voice = sum(0.1 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 20)).astype(np.float32)
    silence = np.zeros(2 * sr, dtype=np.float32)
    trimmed = trim_long_silences(np.concatenate([voice, silence, voice]))
    assert 2 * sr - 2 * 480 * 8 <= trimmed.size <= 2 * sr + 2 * 480 * 8  # the 2 s gap is cut


def test_similarity_self_and_voices(voices):
    clips = [voices[k] for k in (("slt", "a"), ("slt", "b"), ("awb", "a"), ("awb", "b"))]
    emb = embed_utterances(clips)
    assert emb.shape == (4, 256)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert np.allclose(emb[0], embed_utterance(*clips[0]), atol=1e-5)  # batching changes nothing
    same_f, same_m = float(emb[0] @ emb[1]), float(emb[2] @ emb[3])
    cross = [float(emb[i] @ emb[j]) for i in (0, 1) for j in (2, 3)]
    assert min(same_f, same_m) > max(cross) + 0.1, (same_f, same_m, cross)
    assert speaker_similarity(clips[0], clips[0]) == pytest.approx(1, abs=1e-4)
    # a speaker embedding of several clips is the normalised mean of theirs
    spk = embed_speaker(clips[:2])
    assert np.allclose(spk, (emb[0] + emb[1]) / np.linalg.norm(emb[0] + emb[1]), atol=1e-5)
    # resampled input gives (almost) the same embedding
    from aisinger.io.audio import resample

    up = resample(clips[0][0], clips[0][1], 44100)
    assert float(embed_utterance(up, 44100) @ emb[0]) > 0.99


def test_energy_vad_fallback(voices, monkeypatch):
    """Without webrtcvad the energy gate trims silences and embeddings barely change."""
    from aisinger.eval import similarity

    audio, sr = voices[("slt", "a")]
    gap = np.zeros(sr, dtype=np.float32)
    x = np.concatenate([audio, gap, audio])
    with_webrtc = embed_utterance(x, sr)
    monkeypatch.setattr(similarity, "_webrtc_flags", lambda windows: None)
    assert similarity.trim_long_silences(gap).size == 0  # digital silence: nothing voiced
    assert trim_long_silences(x).size < x.size - sr // 2
    assert float(embed_utterance(x, sr) @ with_webrtc) > 0.98


def test_evaluate_similarity_margin(voices):
    r = evaluate(voices[("awb", "a")], source=voices[("slt", "a")],
                 target_refs=[voices[("awb", "b")]], metrics=["similarity"])
    assert r["similarity_target"] > r["similarity_source"] + 0.1
    assert r["similarity_margin"] == pytest.approx(r["similarity_target"] - r["similarity_source"])


def test_resemblyzer_reference_if_installed(voices):
    """Our embeddings equal resemblyzer's (only where resemblyzer is installed)."""
    resemblyzer = pytest.importorskip("resemblyzer")
    enc = resemblyzer.VoiceEncoder("cpu", verbose=False)
    for key in (("slt", "a"), ("awb", "b")):
        audio, sr = voices[key]
        ref = enc.embed_utterance(resemblyzer.preprocess_wav(audio, source_sr=sr))
        assert float(ref @ embed_utterance(audio, sr)) > 0.999


# ----------------------------------------------------------------------------------------------
# pitch


def test_f0_self_and_semitone_shift(shifted):
    same, up = shifted
    r0 = evaluate(same, source=same, metrics=["f0"])
    assert r0["f0_rmse_cents"] == pytest.approx(0, abs=1e-6)
    assert r0["vuv_error"] == 0 and r0["f0_corr"] == pytest.approx(1)
    assert r0["f0_voiced_frames"] > 200
    r1 = evaluate(up, source=same, metrics=["f0"])
    assert r1["f0_rmse_cents"] == pytest.approx(100, abs=5)
    assert r1["f0_corr"] > 0.98 and r1["vuv_error"] < 0.05
    r2 = evaluate(up, source=same, transpose=1, metrics=["f0"])
    assert r2["f0_rmse_cents"] < 10
    assert r2["f0_corr"] == pytest.approx(r1["f0_corr"])


def test_f0_length_mismatch_is_noted(shifted):
    same, _ = shifted
    audio, sr = same
    r = evaluate((audio[: audio.size - sr // 2], sr), source=same, metrics=["f0"])
    assert r["f0_length_mismatch_frames"] == pytest.approx(50, abs=1)
    assert any("lengths differ" in n for n in r["notes"])


# ----------------------------------------------------------------------------------------------
# intelligibility


def test_whisper_clean_tts_and_source_reference(voices):
    r = evaluate(voices[("slt", "a")], lyrics=SENTENCE_A, metrics=["intelligibility"])
    assert r["cer"] < 0.15 and r["wer"] < 0.25, r["info"]
    assert r["info"]["reference_kind"] == "lyrics"
    # no lyrics: the reference is the SOURCE's transcription, not the output's
    same = evaluate(voices[("slt", "a")], source=voices[("slt", "a")], metrics=["intelligibility"])
    assert same["info"]["reference_kind"] == "source transcription"
    assert same["cer"] == 0.0 and same["info"]["transcript"]
    other = evaluate(voices[("awb", "b")], source=voices[("slt", "a")], metrics=["intelligibility"])
    assert other["cer"] > 0.5, other["info"]


def test_whisper_white_noise_scores_high_cer():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(16000 * 4)).astype(np.float32)
    r = evaluate((noise, 16000), lyrics=SENTENCE_A, metrics=["intelligibility"])
    assert r["cer"] > 0.8, r["info"]


# ----------------------------------------------------------------------------------------------
# DNSMOS


def test_dnsmos_segments():
    x = np.ones(16000 * 4, dtype=np.float32)
    s = segments(x)  # doubled to 16 s -> 16 - 9.01 -> 7 hops
    assert s.shape == (7, SEGMENT_SAMPLES)
    assert segments(np.ones(16000 * 20, np.float32), hop_seconds=5).shape[0] == 3


def test_dnsmos_clean_above_noisy(voices):
    audio, sr = voices[("slt", "a")]
    clean = 0.5 * audio / np.abs(audio).max()
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.size).astype(np.float32)
    a, b = dnsmos(clean, sr), dnsmos(noisy, sr)
    for key in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"):
        assert 1.0 <= a[key] <= 5.0 and 1.0 <= b[key] <= 5.5
    assert a["dnsmos_ovrl"] > b["dnsmos_ovrl"] + 0.5
    assert a["dnsmos_bak"] > b["dnsmos_bak"] + 0.5
    assert a["dnsmos_p808"] > b["dnsmos_p808"]


# ----------------------------------------------------------------------------------------------
# evaluate / batch / reporting


def test_evaluate_skips_missing_inputs_and_reports(voices):
    audio, sr = voices[("slt", "a")]
    r = evaluate(audio, sr=sr, metrics=["similarity", "f0", "intelligibility", "rtf"],
                 timing={"processing_seconds": 1.5})
    assert set(r["skipped"]) == {"similarity", "f0", "intelligibility"}
    assert r["rtf"] == pytest.approx(1.5 / (audio.size / sr))
    j = to_jsonable({**r, "f0_corr": float("nan")})
    json.dumps(j, allow_nan=False)
    assert set(REPORT_KEYS) <= set(j) and j["f0_corr"] is None and j["cer"] is None
    table = format_table(r)
    assert "rtf" in table and "similarity skipped" in table


def test_evaluate_bad_inputs(tmp_path):
    x = np.zeros(1600, np.float32)
    with pytest.raises(AisingerError, match="unknown metric"):
        evaluate((x, 16000), metrics=["nope"])
    with pytest.raises(AisingerError, match="unsupported language"):
        evaluate((x, 16000), lang="fr")
    with pytest.raises(AisingerError, match="not found"):
        evaluate(tmp_path / "missing.wav")
    with pytest.raises(AisingerError, match="sample rate"):
        evaluate(x)
    with pytest.raises(AisingerError, match="no audio files"):
        evaluate((x, 16000), target_refs=tmp_path, metrics=["rtf"])
    assert list(METRICS) == ["similarity", "f0", "intelligibility", "dnsmos", "naturalness",
                             "spectrum", "rtf"]


def test_evaluate_batch_layouts(voices, tmp_path):
    from aisinger.io.audio import save

    for case, (out, src, tgt) in {"c1": ("awb_a", "slt_a", "awb_b"),
                                  "c2": ("slt_a", "slt_a", "slt_b")}.items():
        d = tmp_path / "folder" / case
        (d / "target").mkdir(parents=True)
        v = {n: voices[(n[:3], n[-1])] for n in (out, src, tgt)}
        save(d / "output.wav", *v[out])
        save(d / "source.flac", *v[src])
        save(d / "target" / "ref1.wav", *v[tgt])
    results = evaluate_batch(tmp_path / "folder", metrics=["similarity"])
    assert [r["output"].split("/")[-2] for r in results] == ["c1", "c2"]
    assert results[0]["similarity_margin"] > 0 > results[1]["similarity_margin"]
    # a CSV manifest with relative paths and a failing row
    manifest = tmp_path / "folder" / "eval.csv"
    manifest.write_text("output,source,target,processing_seconds\n"
                        "c1/output.wav,c1/source.flac,c1/target,2.0\n"
                        "c2/missing.wav,,,\n")
    rows = evaluate_batch(tmp_path / "folder", metrics=["similarity", "rtf"])
    assert rows[0]["similarity_target"] == pytest.approx(results[0]["similarity_target"], abs=1e-5)
    assert rows[0]["rtf"] > 0 and "error" in rows[1]
    table = format_table(rows)
    assert any(line.startswith("mean") for line in table.splitlines()) and "error" in table
    # triples given directly
    direct = evaluate_batch([(voices[("awb", "a")], voices[("slt", "a")], [voices[("awb", "b")]])],
                            metrics=["similarity"])
    assert direct[0]["similarity_target"] == pytest.approx(results[0]["similarity_target"], abs=1e-3)
