"""The shared frame-rate convention."""

import numpy as np

from aisinger.dsp import frames


def test_n_frames_convention():
    assert frames.FRAME_RATE == 100
    assert frames.n_frames(44100, 44100) == 101
    assert frames.n_frames(16000 * 3, 16000) == 301
    assert frames.n_frames(0, 16000) == 1


def test_resample_frames_rates():
    x = np.arange(50, dtype=np.float32)  # 50 frames/s ramp: value = index = 50 * t
    y = frames.resample_frames(x, 99, rate_in=50)
    t = np.arange(99) / 100
    assert np.allclose(y, np.minimum(t * 50, 49), atol=1e-5)
    d = frames.resample_frames(np.ones((10, 3)), 20)
    assert d.shape == (20, 3) and d.dtype == np.float32


def test_resample_f0_keeps_unvoiced_and_interpolates_in_log():
    f0 = np.array([100, 100, 0, 0, 400, 400], dtype=np.float32)
    y = frames.resample_f0(f0, 11, rate_in=50)  # 6 frames @50 → 11 frames @100
    assert y[0] == 100 and y[4] == 0 and y[10] == 400
    mid = frames.resample_f0(np.array([100, 400], np.float32), 3, rate_in=50)
    assert np.isclose(mid[1], 200, rtol=1e-4)  # geometric mean: log-frequency interpolation
    assert not frames.resample_f0(np.zeros(5), 9).any()
