"""Tests of vocal separation (aisinger.separation, aisinger.nn.spleeter).

The acceptance test mixes a WORLD-sung TTS voice (aisinger.lab.sing) over a fluidsynth band
(aisinger.lab.accompany) and checks that the Spleeter backend's vocal stem is much closer to
the known vocal than the mixture is.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile as sf

from aisinger.errors import AisingerError
from aisinger.separation import (BACKENDS, N_BINS, N_FFT, SEGMENT_FRAMES, Separator,
                                 SpleeterConfig, SpleeterSeparator, channel_groups,
                                 get_separator, separate_file)

SR = 44100
MIN_SDR_GAIN_DB = 6.0
"""Acceptance: vocal-stem SDR must beat the mixture's SDR (vs the true vocal) by this much."""
SUM_ATOL = 1e-5
"""Stems must sum to the mixture within this (float32 rounding of mix - vocals)."""

needs_lab_tools = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("fluidsynth") is None,
    reason="flite and fluidsynth are needed for the synthetic song")


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Plain SDR in dB: 10 log10(|s|² / |s - ŝ|²) over all channels and samples."""
    ref, est = ref.astype(np.float64), est.astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (projection of the estimate onto the reference)."""
    ref, est = ref.ravel().astype(np.float64), est.ravel().astype(np.float64)
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


@pytest.fixture(scope="module")
def song():
    """(mixture, vocal, accompaniment), each (2, samples) at 44.1 kHz, ~20 s, vocal at 0 dB."""
    from aisinger.lab import accompany, make_melody, mix, sing
    from aisinger.lab.lyrics import make_lyrics

    n_notes, seed = 24, 1
    notes = make_melody(n_notes, seed)
    syllables = list(make_lyrics("en", n_notes, np.random.default_rng(seed)).syllables)
    vocal = sing(syllables, notes, "flite-slt", sr=SR, seed=seed)
    band = accompany(notes, sr=SR, seed=seed)
    return mix(vocal, band, vocal_to_acc_db=0.0)


@pytest.fixture(scope="module")
def separator():
    """The default Spleeter separator on one thread (the test machine is shared)."""
    return SpleeterSeparator(SpleeterConfig(threads=1))


@pytest.fixture(scope="module")
def short(song):
    """The first 6 s of the song: (mixture, vocal)."""
    m, v, _ = song
    return m[:, :6 * SR].copy(), v[:, :6 * SR].copy()


# ----------------------------------------------------------------------------------------------
# model


def test_unet_loads_checkpoints_and_gives_masks(separator):
    import torch

    from aisinger.nn.spleeter import SpleeterUNet

    net_v, _ = separator.load()
    assert isinstance(net_v, SpleeterUNet)
    n_params = sum(p.numel() for p in net_v.parameters())
    assert 9.7e6 < n_params < 9.9e6  # 9.83 M in the checkpoint (the unused 6th BN dropped)
    torch.manual_seed(0)
    x = torch.rand(1, 2, 128, 256) * 2
    with torch.inference_mode():
        m = net_v(x)
    assert m.shape == x.shape
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    with pytest.raises(ValueError):
        net_v(torch.rand(1, 2, 100, 256))


def test_both_checkpoints_load_with_ratio_mask(short):
    mix, _ = short
    sep = SpleeterSeparator(SpleeterConfig(mask="ratio", threads=1))
    net_v, net_a = sep.load()
    assert net_a is not None and net_a is not net_v
    out = sep.separate(mix, SR)
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], mix, atol=SUM_ATOL)


# ----------------------------------------------------------------------------------------------
# acceptance


@needs_lab_tools
def test_acceptance_vocal_sdr_gain(song, separator):
    mix, vocal, band = song
    t0 = time.perf_counter()
    out = separator.separate(mix, SR)
    elapsed = time.perf_counter() - t0
    mix_sdr, est_sdr = sdr(vocal, mix), sdr(vocal, out["vocals"])
    mix_si, est_si = si_sdr(vocal, mix), si_sdr(vocal, out["vocals"])
    acc_mix, acc_est = sdr(band, mix), sdr(band, out["accompaniment"])
    print(f"\nvocal SDR: mixture {mix_sdr:.2f} dB -> stem {est_sdr:.2f} dB "
          f"(gain {est_sdr - mix_sdr:.2f}); SI-SDR {mix_si:.2f} -> {est_si:.2f} dB; "
          f"accompaniment SDR {acc_mix:.2f} -> {acc_est:.2f} dB; "
          f"{mix.shape[1] / SR:.1f} s separated in {elapsed:.2f} s (1 thread)")
    assert est_sdr - mix_sdr >= MIN_SDR_GAIN_DB
    assert est_si - mix_si >= MIN_SDR_GAIN_DB
    assert acc_est - acc_mix >= MIN_SDR_GAIN_DB
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], mix, atol=SUM_ATOL)


# ----------------------------------------------------------------------------------------------
# shapes, rates, channels


@pytest.mark.parametrize("layout", ["mono-1d", "mono-2d", "stereo"])
def test_shape_and_sum_preserved(short, separator, layout):
    mix, vocal = short
    x = {"mono-1d": mix.mean(0), "mono-2d": mix.mean(0, keepdims=True), "stereo": mix}[layout]
    out = separator.separate(x, SR)
    assert set(out) == {"vocals", "accompaniment"}
    for stem in out.values():
        assert stem.shape == x.shape and stem.dtype == np.float32
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], x, atol=SUM_ATOL)
    ref = vocal.mean(0) if layout == "mono-1d" else vocal.mean(0, keepdims=True) \
        if layout == "mono-2d" else vocal
    assert sdr(ref, out["vocals"]) - sdr(ref, x) >= MIN_SDR_GAIN_DB


def test_other_sample_rate(short, separator):
    """22.05 kHz in -> 22.05 kHz stems of the same length, still separating."""
    from aisinger.io.audio import resample

    mix, vocal = short
    sr = 22050
    x, v = resample(mix, SR, sr), resample(vocal, SR, sr)
    out = separator.separate(x, sr)
    assert out["vocals"].shape == x.shape
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], x, atol=SUM_ATOL)
    gain = sdr(v, out["vocals"]) - sdr(v, x)
    print(f"\n22.05 kHz vocal SDR gain {gain:.2f} dB")
    assert gain >= MIN_SDR_GAIN_DB


def test_six_channels_processed_as_pairs(short, separator):
    """5.1: pairs (0,1), (2,3), (4,5); each pair's stems equal a stereo run on that pair."""
    mix, _ = short
    n = 3 * SR
    stereo = mix[:, :n]
    x = np.zeros((6, n), dtype=np.float32)
    x[0:2] = stereo
    x[4:6] = 0.5 * stereo[::-1]  # a different pair (swapped, quieter); channels 2-3 silent
    out = separator.separate(x, SR)
    assert out["vocals"].shape == (6, n)
    ref = separator.separate(stereo, SR)["vocals"]
    np.testing.assert_allclose(out["vocals"][0:2], ref, atol=1e-5)
    assert np.abs(out["vocals"][2:4]).max() == 0.0
    ref2 = separator.separate(np.ascontiguousarray(x[4:6]), SR)["vocals"]
    np.testing.assert_allclose(out["vocals"][4:6], ref2, atol=1e-5)
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], x, atol=SUM_ATOL)


def test_channel_groups():
    assert channel_groups(1) == [(0,)]
    assert channel_groups(2) == [(0, 1)]
    assert channel_groups(5) == [(0, 1), (2, 3), (4,)]
    assert channel_groups(6) == [(0, 1), (2, 3), (4, 5)]


def test_very_short_input(separator):
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 300))).astype(np.float32)
    out = separator.separate(x, SR)
    assert out["vocals"].shape == (2, 300)
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], x, atol=SUM_ATOL)


# ----------------------------------------------------------------------------------------------
# chunking and options


def test_chunked_equals_unchunked(song):
    """Chunks of one 512-frame segment vs the whole song in one go (~2.3 segments)."""
    mix, _, _ = song
    x = mix[:, :int(SEGMENT_FRAMES * 2.3) * 1024]
    whole = SpleeterSeparator(SpleeterConfig(chunk_segments=None, threads=1)).separate(x, SR)
    chunked = SpleeterSeparator(SpleeterConfig(chunk_segments=1, threads=1)).separate(x, SR)
    diff = np.abs(whole["vocals"] - chunked["vocals"]).max()
    assert diff <= 1e-5, diff


def test_high_band_zeros_leaves_no_vocal_above_11khz():
    """With high_band='zeros' the vocal stem has (almost) no energy above the modelled band."""
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, 4 * SR))).astype(np.float32)  # white noise, full band
    spec_edge_hz = N_BINS * SR / N_FFT
    energies = {}
    for hb in ("zeros", "average"):
        v = SpleeterSeparator(SpleeterConfig(high_band=hb, threads=1)).separate(x, SR)["vocals"]
        s = np.abs(np.fft.rfft(v, axis=-1)) ** 2
        f = np.fft.rfftfreq(v.shape[-1], 1 / SR)
        energies[hb] = s[:, f > spec_edge_hz + 200].sum() / s.sum()
    assert energies["zeros"] < 1e-4
    assert energies["average"] > 100 * energies["zeros"]


def test_bad_inputs_and_options(separator):
    with pytest.raises(AisingerError):
        separator.separate(np.full((2, 1000), np.nan, dtype=np.float32), SR)
    with pytest.raises(AisingerError):
        separator.separate(np.zeros((2, 2, 100), dtype=np.float32), SR)
    with pytest.raises(AisingerError):
        separator.separate(np.zeros((1000, 2), dtype=np.float32), SR)  # (samples, channels)
    with pytest.raises(AisingerError):
        separator.separate(np.zeros((2, 0), dtype=np.float32), SR)
    with pytest.raises(AisingerError):
        separator.separate(np.zeros((2, 1000), dtype=np.float32), 0)
    with pytest.raises(AisingerError):
        SpleeterSeparator(SpleeterConfig(high_band="ones"))  # type: ignore[arg-type]
    with pytest.raises(AisingerError):
        SpleeterSeparator(SpleeterConfig(chunk_segments=0))


# ----------------------------------------------------------------------------------------------
# registry and files


def test_registry():
    assert set(BACKENDS) >= {"spleeter", "demucs"}
    sep = get_separator()
    assert isinstance(sep, Separator) and sep.name == "spleeter" and sep.sample_rate == SR
    with pytest.raises(AisingerError, match="unknown separation backend"):
        get_separator("nope")


@pytest.mark.skipif(importlib.util.find_spec("demucs") is not None, reason="demucs is installed")
def test_demucs_unavailable_message():
    with pytest.raises(AisingerError) as err:
        get_separator("demucs")
    msg = str(err.value)
    assert "torchaudio" in msg and "pip install demucs" in msg and "spleeter" in msg
    assert "\n" not in msg


def test_separate_file_writes_both(short, tmp_path):
    mix, _ = short
    song_path = tmp_path / "song.flac"
    sr = 48000
    from aisinger.io.audio import resample

    x = resample(mix[:, :3 * SR], SR, sr)
    sf.write(song_path, x.T, sr, subtype="PCM_24")
    before = song_path.read_bytes()
    out = separate_file(song_path, tmp_path / "stems",
                        backend=SpleeterSeparator(SpleeterConfig(threads=1)))
    assert set(out) == {"vocals", "accompaniment"}
    stems = {}
    for name, path in out.items():
        assert path == tmp_path / "stems" / f"{name}.wav" and path.is_file()
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (sr, 2, x.shape[1])
        assert info.subtype == "FLOAT"
        stems[name], _ = sf.read(path, dtype="float32", always_2d=True)
    assert song_path.read_bytes() == before  # the input is untouched
    loaded, _ = sf.read(song_path, dtype="float32", always_2d=True)
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], loaded, atol=SUM_ATOL)
    assert not list((tmp_path / "stems").glob(".*tmp*"))  # no temp files left


def test_separate_file_refuses_to_overwrite_input(tmp_path):
    song_path = tmp_path / "vocals.wav"
    sf.write(song_path, np.zeros((SR, 2), dtype=np.float32), SR)
    with pytest.raises(AisingerError):
        separate_file(song_path, tmp_path)


# ----------------------------------------------------------------------------------------------
# resources (slow)

_RESOURCE_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np, soundfile as sf
    from aisinger.separation import SpleeterSeparator, SpleeterConfig, separate_file
    song, out_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sep = SpleeterSeparator(SpleeterConfig(threads=threads))
    t = time.perf_counter(); sep.load(); load_s = time.perf_counter() - t
    t = time.perf_counter(); separate_file(song, out_dir, backend=sep)
    sep_s = time.perf_counter() - t
    # VmHWM, not ru_maxrss (which carries the forking parent's RSS over exec)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    rss_mb = int(hwm) / 1024
    print(f"{load_s:.3f} {sep_s:.3f} {rss_mb:.1f}")
""")


@pytest.mark.slow
@needs_lab_tools
def test_ten_minute_song_memory_and_speed(song, tmp_path):
    """A 10-minute stereo song (the test song tiled) separates under 2 GB peak RSS."""
    mix, _, _ = song
    reps = int(np.ceil(600 * SR / mix.shape[1]))
    long = np.tile(mix, (1, reps))[:, :600 * SR]
    path = tmp_path / "long.wav"
    sf.write(path, long.T, SR, subtype="PCM_16")
    del long
    proc = subprocess.run([sys.executable, "-c", _RESOURCE_SCRIPT, str(path),
                           str(tmp_path / "out"), "2"], capture_output=True, text=True,
                          check=True)
    load_s, sep_s, rss_mb = map(float, proc.stdout.split()[-3:])
    print(f"\n10-min stereo: model load {load_s:.2f} s, separate_file {sep_s:.1f} s "
          f"(RTF {sep_s / 600:.3f}, 2 threads), peak RSS {rss_mb:.0f} MB")
    assert rss_mb < 2048
    assert sf.info(tmp_path / "out" / "vocals.wav").frames == 600 * SR
