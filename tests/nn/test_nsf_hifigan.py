"""aisinger.nn.nsf_hifigan: the harmonic excitation (shapes, known sines, unvoiced silence)."""

from __future__ import annotations

import math

import torch

from aisinger.nn.nsf_hifigan import SINE_AMP, harmonic_excitation


def test_excitation_is_known_sines_and_silent_when_unvoiced():
    sr, hop = 16000, 160
    f0 = torch.tensor([[200.0] * 4 + [0.0] * 2])
    x = harmonic_excitation(f0, hop, sr, harmonics=3, init_phase=torch.zeros(1, 3))
    assert x.shape == (1, 6 * hop, 3)
    n = torch.arange(1, 4 * hop + 1, dtype=torch.float64)  # phase after sample n: n * f0 / sr
    for k in (1, 2, 3):
        want = SINE_AMP * torch.sin(2 * math.pi * ((k * 200.0 * n / sr) % 1.0))
        assert torch.allclose(x[0, :4 * hop, k - 1].double(), want, atol=1e-5)
    assert (x[0, 4 * hop:] == 0).all()  # unvoiced, no generator: no noise either
