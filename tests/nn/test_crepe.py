"""aisinger.nn.crepe: framing, normalisation, network shapes, decoding (known outputs)."""

from __future__ import annotations

import torch

from aisinger.nn.crepe import (N_BINS, WINDOW, Crepe, cents_to_hz, decode_local_average,
                               frame_signal, hz_to_bin, normalize_frames)


def test_frame_signal_centres_frames_on_hops():
    wav = torch.arange(1000, dtype=torch.float32)
    frames = frame_signal(wav, 160)
    assert frames.shape == (1000 // 160 + 1, WINDOW)
    assert frames[0, WINDOW // 2] == 0 and frames[2, WINDOW // 2] == 320  # centred on i * hop


def test_normalize_frames_zero_mean_unit_std():
    x = normalize_frames(torch.randn(3, WINDOW) * 5 + 2)
    assert torch.allclose(x.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(1), torch.ones(3), atol=1e-5)


def test_network_shape_and_range():
    torch.manual_seed(0)
    act = Crepe("tiny").eval()(normalize_frames(torch.randn(4, WINDOW)))
    assert act.shape == (4, N_BINS) and (act >= 0).all() and (act <= 1).all()


def test_decode_one_hot_is_the_bin_centre():
    table = Crepe("tiny").cent_table
    b = int(round(hz_to_bin(440.0)))
    act = torch.zeros(1, N_BINS)
    act[0, b] = 1.0
    cents, periodicity = decode_local_average(act, table)
    assert torch.isclose(cents[0], table[b]) and periodicity[0] == 1.0
    assert abs(float(cents_to_hz(cents)[0]) - 440.0) < 440.0 * (2 ** (10 / 1200) - 1)
