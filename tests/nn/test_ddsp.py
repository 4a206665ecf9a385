"""aisinger.nn.ddsp: oscillator bank, noise synthesiser and decoders (shapes, known outputs)."""

from __future__ import annotations

import math

import torch

from aisinger.nn.ddsp import (DdspConfig, build_decoder, exp_sigmoid, harmonic_synth,
                              noise_synth, sine_multiples, upsample_frames)

SR, HOP = 24000, 240


def test_sine_multiples_is_sin_of_multiples():
    x = torch.linspace(0, 2 * math.pi, 97, dtype=torch.float64)
    got = sine_multiples(x, 8)
    assert got.shape == (8, 97)
    want = torch.stack([torch.sin(m * x) for m in range(1, 9)])
    assert torch.allclose(got, want, atol=1e-10)


def test_harmonic_synth_one_harmonic_is_a_sine():
    f0 = torch.full((1, 11), 440.0)
    amp = torch.full((1, 11, 1), 0.5)
    y, end_phase = harmonic_synth(f0, amp, 2000, SR, HOP)
    n = torch.arange(2000, dtype=torch.float64)
    want = 0.5 * torch.sin(2 * math.pi * 440.0 * n / SR)
    assert y.shape == (1, 2000) and y.dtype == torch.float32
    assert torch.allclose(y[0].double(), want, atol=1e-5)
    assert math.isclose(float(end_phase[0]), (2 * math.pi * 440.0 * 2000 / SR) % (2 * math.pi),
                        abs_tol=1e-9)


def test_noise_synth_shape_and_silence():
    gen = torch.Generator().manual_seed(0)
    y = noise_synth(torch.ones(2, 2000 // HOP + 1, 5), 2000, HOP, generator=gen)
    assert y.shape == (2, 2000) and y.abs().max() > 0.1
    assert noise_synth(torch.zeros(1, 2000 // HOP + 1, 5), 2000, HOP).abs().max() == 0


def test_upsample_frames_and_exp_sigmoid_known_values():
    x = torch.tensor([[[0.0], [1.0]]])
    assert torch.allclose(upsample_frames(x, 4, 2)[0, :, 0], torch.tensor([0.0, 0.5, 1.0, 1.0]))
    assert math.isclose(float(exp_sigmoid(torch.tensor(0.0))), 2 * 0.5 ** math.log(10) + 1e-7,
                        rel_tol=1e-6)


def test_decoder_shapes():
    torch.manual_seed(0)
    for decoder in ("harmonic-noise", "harmonic-envelope"):
        cfg = DdspConfig(decoder=decoder, content_dim=16, hidden=32, layers=2, kernel=3,
                         n_harmonics=8, n_noise_bands=9)
        model = build_decoder(cfg).eval()
        t = 20
        c = model.controls(torch.randn(2, t, 16), torch.full((2, t), 220.0), torch.ones(2, t),
                           torch.full((2, t), -20.0))
        assert c["f0"].shape == (2, t)
        harm, noise, _ = model.synthesize(c, (t - 1) * cfg.hop)
        assert harm.shape == noise.shape == (2, (t - 1) * cfg.hop)
        assert torch.isfinite(harm).all() and torch.isfinite(noise).all()
