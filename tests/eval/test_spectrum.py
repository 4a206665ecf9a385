"""Tests of aisinger.eval.spectrum: long-term spectrum per octave band, output vs references.

Signals with a known answer: white noise, the same noise through a first-order recursive
filter (its band levels follow from |H(f)|², integrated here independently of the module), a
pair of sines, resampled copies.
"""

from __future__ import annotations

import numpy as np
import pytest

from aisinger.errors import AisingerError
from aisinger.eval import evaluate
from aisinger.eval.spectrum import (band_edges, bands_for_rate, band_fractions,
                                    spectrum_difference)
from aisinger.io.audio import resample, save


def _noise(sr: int, seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


def test_identical_audio_is_zero_everywhere():
    x = _noise(24000)
    d = spectrum_difference((x, 24000), [(x, 24000)])
    assert d.bands_hz == (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
    assert np.allclose(d.delta_db, 0.0, atol=1e-9) and d.max_abs_db < 1e-9
    # the level does not matter (dB relative to the total energy), nor a silent lead-in
    quiet = np.concatenate([np.zeros(24000, np.float32), 0.05 * x])
    assert spectrum_difference((quiet, 24000), (x, 24000)).max_abs_db < 0.05


def test_white_noise_band_shares():
    """White noise: each band's share of the energy is its share of the bandwidth (within the
    noise's own variation: ~0.1 dB standard deviation in the 125 Hz band of 30 s)."""
    sr = 16000
    frac = band_fractions(_noise(sr, 30.0), sr)
    widths = np.array([band_edges(c)[1] - band_edges(c)[0] for c in bands_for_rate(sr)])
    assert frac.sum() == pytest.approx(1.0)
    assert np.allclose(10 * np.log10(frac), 10 * np.log10(widths / widths.sum()), atol=0.3)


def test_first_order_filter_tilt():
    """y[n] = x[n] + 0.7 y[n-1] (a low-pass) vs white x: the expected band difference is
    |H|² integrated per band, normalised like the module normalises."""
    from scipy.signal import lfilter

    sr, a = 16000, 0.7
    x = _noise(sr, 10.0)
    y = lfilter([1.0], [1.0, -a], x).astype(np.float32)
    d = spectrum_difference(y, [x], sr=sr)
    f = np.linspace(0.0, sr / 2, 400001)
    h2 = 1.0 / np.abs(1.0 - a * np.exp(-2j * np.pi * f / sr)) ** 2
    num, den = [], []
    for c in d.bands_hz:
        lo, hi = band_edges(c)
        m = (f >= lo) & (f < hi)
        num.append(h2[m].sum())
        den.append(m.sum())
    expected = 10 * np.log10((np.array(num) / sum(num)) / (np.array(den) / sum(den)))
    assert expected[0] > 6 and expected[-1] < -5  # a real tilt: ~12 dB across the bands
    assert np.allclose(d.delta_db, expected, atol=0.15)
    assert d.max_abs_db == pytest.approx(np.max(np.abs(expected)), abs=0.15)


def test_sine_pair_level_step():
    """Two equal sines (250 Hz, 2 kHz) vs the same with the 2 kHz one 6 dB down."""
    sr = 22050
    t = np.arange(sr * 3) / sr
    low = np.sin(2 * np.pi * 250 * t)
    high = np.sin(2 * np.pi * 2000 * t)
    ref = (0.3 * (low + high)).astype(np.float32)
    out = (0.3 * (low + 0.5 * high)).astype(np.float32)
    d = dict(zip(spectrum_difference((out, sr), (ref, sr)).bands_hz,
                 spectrum_difference((out, sr), (ref, sr)).delta_db))
    # ref: both bands hold 1/2 of the energy; out: 1/1.25 and 0.25/1.25
    assert d[250.0] == pytest.approx(10 * np.log10(0.8 / 0.5), abs=0.05)
    assert d[2000.0] == pytest.approx(10 * np.log10(0.2 / 0.5), abs=0.05)


def test_mismatched_rates_use_the_lowest_nyquist():
    x44 = _noise(44100)
    x24 = resample(x44, 44100, 24000)
    x16 = resample(x44, 44100, 16000)
    d = spectrum_difference((x24, 24000), [(x44, 44100)])
    assert d.bands_hz[-1] == 8000.0 and d.max_abs_db < 0.1
    # a reference at 16 kHz limits the comparison to 4 kHz
    d = spectrum_difference((x24, 24000), [(x44, 44100), (x16, 16000)])
    assert d.bands_hz[-1] == 4000.0 and d.max_abs_db < 0.1
    # max_rate: the model's rate when the output was resampled up
    d = spectrum_difference((x44, 44100), [(x44, 44100)], max_rate=16000)
    assert d.bands_hz[-1] == 4000.0
    # an output without its top octaves (an 8 kHz model resampled to 44.1 kHz) is seen; at
    # 44.1 kHz the 16 kHz band (11.3-22.6 kHz) is incomplete, so 8 kHz is the top band
    up = resample(resample(x44, 44100, 8000), 8000, 44100)
    d = spectrum_difference((up, 44100), [(x44, 44100)])
    assert d.bands_hz[-1] == 8000.0 and d.delta_db[-1] < -30
    # the bands below 2.8 kHz are intact: each holds more of the smaller total, by the same
    # factor (11.2 kHz of bandwidth in the total vs ~3.9 kHz: about +4.6 dB)
    assert 4.0 < d.delta_db[2] < 5.5 and np.ptp(d.delta_db[:5]) < 0.3


def test_paths_and_metric_registry(tmp_path):
    sr = 16000
    x = _noise(sr, 3.0)
    save(tmp_path / "out.wav", x, sr)
    save(tmp_path / "refs" / "a.wav", x, sr)
    d = spectrum_difference(tmp_path / "out.wav", [tmp_path / "refs" / "a.wav"])
    assert d.max_abs_db < 0.01
    r = evaluate(tmp_path / "out.wav", target_refs=tmp_path / "refs", metrics=["spectrum"])
    assert r["spectrum_max_abs_db"] < 0.01
    assert set(r["info"]["spectrum"]["delta_db"]) == {"125", "250", "500", "1000", "2000", "4000"}
    r = evaluate(tmp_path / "out.wav", metrics=["spectrum"])
    assert "spectrum" in r["skipped"] and "spectrum_max_abs_db" not in r
    # a silent output: undefined (NaN) with a note, the other metrics still run
    r = evaluate((np.zeros(sr, np.float32), sr), target_refs=tmp_path / "refs",
                 metrics=["spectrum"])
    assert np.isnan(r["spectrum_max_abs_db"]) and any("silent" in n for n in r["notes"])


def test_bad_inputs():
    x = _noise(16000, 1.0)
    with pytest.raises(AisingerError, match="sample rate"):
        spectrum_difference(x, [x])
    with pytest.raises(AisingerError, match="silent"):
        spectrum_difference((np.zeros(16000, np.float32), 16000), [(x, 16000)])
    with pytest.raises(AisingerError, match="too low"):
        spectrum_difference((x, 600), [(x, 600)])
    with pytest.raises(AisingerError, match="no reference"):
        spectrum_difference((x, 16000), [])
    with pytest.raises(AisingerError, match="not found"):
        spectrum_difference("/nonexistent/out.wav", [(x, 16000)])
