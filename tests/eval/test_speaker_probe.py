"""Tests of aisinger.eval.speaker_probe: segment pooling and the linear speaker probe, on
data whose answer is known (Gaussian classes with and without a class signal)."""

from __future__ import annotations

import numpy as np
import pytest

from aisinger.errors import AisingerError
from aisinger.eval.speaker_probe import (evaluate_probe, fit_probe, pool_segments, probe,
                                         select_l2)


def test_pool_segments_means_active_frames():
    frames = np.arange(12, dtype=np.float64).reshape(12, 1)  # values 0..11
    active = np.array([1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1], bool)
    out = pool_segments(frames, active, segment=4, min_active=0.5)
    # segments [0..3]: 3 active -> mean(0,1,2); [4..7]: 1 active -> dropped; [8..11]: all
    assert out.shape == (2, 1)
    assert out[:, 0].tolist() == [1.0, 9.5]
    assert pool_segments(frames, segment=5).shape == (2, 1)  # the partial tail is dropped
    assert pool_segments(frames[:3], segment=4).shape == (0, 1)
    with pytest.raises(AisingerError, match="active"):
        pool_segments(frames, active[:5])


def _classes(n_per: int, n_classes: int, dim: int, signal: float, seed: int,
             noise_seed: int | None = None):
    """Rows of ``dim`` unit Gaussian noise dims; class c adds ``signal`` to dim c (centres
    ``signal`` * sqrt(2) apart); noise drawn with ``noise_seed`` (default: ``seed``)."""
    centres = np.eye(n_classes, dim) * signal
    rng = np.random.default_rng(seed if noise_seed is None else noise_seed + 1000)
    x, y, g = [], [], []
    for c in range(n_classes):
        block = rng.standard_normal((n_per, dim))
        block += centres[c]
        x.append(block)
        y += [f"s{c}"] * n_per
        g += [i % 4 for i in range(n_per)]  # 4 "phrases"
    return np.concatenate(x), y, g


def test_probe_finds_a_linear_class_signal():
    # centres 5.7 apart in unit noise: the Bayes error is ~0.5 %
    x, y, g = _classes(40, 4, 32, signal=4.0, seed=0)
    xt, yt, _ = _classes(10, 4, 32, signal=4.0, seed=0, noise_seed=1)  # same classes, new rows
    res = probe(x, y, g, xt, yt, test_clips=[i // 5 for i in range(len(yt))])
    assert res.chance == 0.25 and res.accuracy > 0.9 and res.clip_accuracy > 0.9
    assert res.n_test == 40 and res.n_test_clips == 8
    assert res.l2 in res.cv and sum(map(sum, res.confusion)) == res.n_test


def test_probe_without_signal_is_near_chance():
    x, y, g = _classes(60, 4, 32, signal=0.0, seed=2)
    xt, yt, _ = _classes(60, 4, 32, signal=0.0, seed=2, noise_seed=3)
    res = probe(x, y, g, xt, yt)
    assert res.accuracy < 0.4  # chance 0.25; 240 test rows: 0.4 is > 6 standard deviations


def test_fit_is_deterministic_and_separates_train():
    x, y, _ = _classes(30, 3, 8, signal=4.0, seed=4)
    a, b = fit_probe(x, y, 1e-3), fit_probe(x, y, 1e-3)
    assert np.array_equal(a.weights, b.weights)
    assert np.mean(np.array(a.predict(x)) == np.array(y)) > 0.95
    # a strong penalty shrinks the weights
    assert np.abs(fit_probe(x, y, 10.0).weights).sum() < np.abs(a.weights).sum()
    # probabilities are normalised
    assert np.allclose(np.exp(a.log_proba(x)).sum(axis=1), 1.0)
    # a test label the probe never saw counts as an error, not a crash
    res = evaluate_probe(a, x[:2], ["unseen", y[1]])
    assert res.accuracy <= 0.5


def test_select_l2_and_bad_input():
    x, y, g = _classes(20, 2, 4, signal=3.0, seed=5)
    l2, cv = select_l2(x, y, g, grid=(1e-3, 1.0))
    assert l2 in (1e-3, 1.0) and set(cv) == {1e-3, 1.0} and max(cv.values()) > 0.8
    assert select_l2(x, y, [0] * len(y), grid=(1e-3, 1e-2, 1.0))[0] == 1e-2
    with pytest.raises(AisingerError, match="two classes"):
        fit_probe(x, ["a"] * len(x))
    with pytest.raises(AisingerError, match="one label per row"):
        fit_probe(x, y[:-1])
    with pytest.raises(AisingerError, match="no test segments"):
        probe(x, y, g, x[:0], [])
