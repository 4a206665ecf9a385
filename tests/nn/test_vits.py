"""aisinger.nn.vits and nn.vits_train: F0 bins, mel loss (known values)."""

from __future__ import annotations

import torch

from aisinger.nn.vits import f0_to_coarse
from aisinger.nn.vits_train import MelLoss


def test_f0_to_coarse_known_bins():
    got = f0_to_coarse(torch.tensor([0.0, 30.0, 50.0, 1100.0, 5000.0]))
    assert got.tolist() == [1, 1, 1, 255, 255]
    mid = f0_to_coarse(torch.tensor([220.0, 440.0]))
    assert 1 < int(mid[0]) < int(mid[1]) < 255


def test_mel_loss_zero_on_equal_and_positive_otherwise():
    torch.manual_seed(0)
    loss = MelLoss(16000, 512, 128, n_mels=40)
    y = torch.randn(2, 4000)
    assert float(loss(y, y)) == 0.0
    assert float(loss(y, 0.5 * y)) > 0.1
    assert loss.mel(y).shape == (2, 40, (4000 - 128) // 128 + 1)  # padded by (n_fft - hop) / 2
