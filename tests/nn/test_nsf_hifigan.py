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


def test_upper_harmonics_is_the_explicit_sum_and_continues_across_chunks():
    from aisinger.nn.nsf_hifigan import upper_harmonics

    sr, hop, first, top = 16000, 80, 3, 2500.0
    f0 = torch.tensor([[0.0, 180.0, 180.0, 410.0, 0.0, 1000.0]])
    u = upper_harmonics(f0, hop, sr, first, top)
    assert u.shape == (1, 6 * hop)
    f = f0.double().repeat_interleave(hop, dim=1)[0]
    phase = torch.cumsum(f / sr, 0) % 1.0
    want = torch.zeros_like(phase)
    for n in range(phase.shape[0]):
        if f[n] > 0:  # harmonics first+1 .. floor(top / f0); none above 2500 / 1000 = 2 < 3
            for k in range(first + 1, int(top // float(f[n])) + 1):
                want[n] += SINE_AMP * math.sin(2 * math.pi * k * float(phase[n]))
    assert torch.allclose(u[0].double(), want, atol=1e-5)
    assert want[3 * hop:4 * hop].abs().max() > 0.1  # 410 Hz: harmonics 4..6 present
    assert (u[0, 4 * hop:] == 0).all()  # unvoiced, then too high for any upper harmonic
    # chunks continue each other when the second starts at the phase the first reached
    a = upper_harmonics(f0[:, :3], hop, sr, first, top)
    b = upper_harmonics(f0[:, 3:], hop, sr, first, top,
                        phase_offset=torch.tensor([float(f[:3 * hop].sum()) / sr]))
    assert torch.allclose(torch.cat([a, b], dim=1), u, atol=1e-6)
