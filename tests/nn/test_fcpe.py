"""aisinger.nn.fcpe: mel front end and network (shapes, a known spectral peak, decoding)."""

from __future__ import annotations

import math

import torch

from aisinger.nn.fcpe import (FCPE, HOP, N_BINS, N_MELS, SAMPLE_RATE, MelFrontEnd,
                              cents_to_hz, decode_local_argmax, hz_to_mel_slaney,
                              mel_filterbank, mel_to_hz_slaney)


def test_slaney_mel_round_trip():
    f = torch.tensor([0.0, 440.0, 1000.0, 4000.0], dtype=torch.float64)
    assert torch.allclose(mel_to_hz_slaney(hz_to_mel_slaney(f)), f, atol=1e-6)


def test_front_end_shape_and_tone_peak():
    n = SAMPLE_RATE // 2
    t = torch.arange(n) / SAMPLE_RATE
    mel = MelFrontEnd()(torch.sin(2 * math.pi * 1000.0 * t)[None])
    assert mel.shape == (1, n // HOP + 1, N_MELS)
    peak = int(mel[0, 10:-10].mean(0).argmax())
    centres = mel_filterbank().argmax(dim=1)  # FFT bin each mel band peaks at
    assert abs(int(centres[peak]) - round(1000.0 * 1024 / SAMPLE_RATE)) <= 2


def test_network_shape_and_range():
    torch.manual_seed(0)
    act = FCPE().eval()(torch.randn(2, 30, N_MELS))
    assert act.shape == (2, 30, N_BINS) and (act >= 0).all() and (act <= 1).all()


def test_decode_one_hot_is_the_bin_centre():
    table = FCPE().cent_table
    act = torch.zeros(1, 1, N_BINS)
    act[0, 0, 200] = 1.0
    cents = decode_local_argmax(act, table)[0]
    assert torch.isclose(cents.reshape(-1)[0], table[200])
    assert torch.isclose(cents_to_hz(torch.tensor(1200.0)), torch.tensor(20.0))
